"""`make bench`: run every benchmark, print its table, save bench/results.json.

Targets are checked here, never as timed assertions in tests.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

MODULES = ["bench_crawl", "bench_parse", "bench_classify", "bench_dashboard", "bench_browser"]


def main(argv: list[str]) -> int:
    wanted = argv or MODULES
    out_path = Path(__file__).with_name("results.json")
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    for name in wanted:
        try:
            mod = importlib.import_module(f"bench.{name}")
        except ImportError as err:
            print(f"== {name}: not available ({err})")
            continue
        print(f"== {name}")
        started = time.time()
        results[name] = {
            "measured_at": time.strftime("%Y-%m-%d %H:%M"),
            **mod.run(),
            "bench_seconds": round(time.time() - started, 1),
        }
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": __import__("os").cpu_count(),
        "platform": platform.platform(),
    }
    out_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"saved {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
