"""Crawl benchmarks on the offline stand-in.

1. Requests per crawl against the lower bound 1 esearch + ceil(N / batch) efetch,
   for N = 1,000 and 20,000 (past the 9,999 window, so date splitting is counted).
2. End to end, a 9,000-record `kea crawl` (parse + store + FTS index) against a bare
   Biopython esearch/efetch loop that only parses, both as a user runs them (a fresh
   process each), both WITH an API key (10 requests/s, the pace where kea's own costs
   show), side by side in pairs: wall time, CPU time (user + sys) and peak RSS of each
   process, read from os.wait4's rusage of that one child. Medians of the pairs.
   Goals: wall <= 1.2x the loop's, peak memory <= 1.5x.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from crawler.standin.records import synthetic_records
from crawler.standin.server import StandinServer

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
KEY = "bench-key"

BIOPYTHON_LOOP = textwrap.dedent(
    """
    import sys, urllib.request
    from Bio import Entrez
    base = sys.argv[1]
    real_urlopen = Entrez.urlopen
    def local(req, *a, **k):
        req.full_url = req.full_url.replace(
            "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/", base)
        return real_urlopen(req, *a, **k)
    Entrez.urlopen = local
    Entrez.email, Entrez.tool = "bench@example.org", "kea-bench"
    Entrez.api_key = sys.argv[2] if len(sys.argv) > 2 else None
    h = Entrez.esearch(db="pubmed", term="ketamine", usehistory="y", retmax=9999)
    res = Entrez.read(h)
    n = int(res["Count"]); got = 0
    for start in range(0, n, 500):
        h = Entrez.efetch(db="pubmed", retmode="xml", retstart=start, retmax=500,
                          webenv=res["WebEnv"], query_key=res["QueryKey"])
        got += len(Entrez.read(h)["PubmedArticle"])
    print(got)
    """
)


TIME = "/usr/bin/time"  # GNU time: a small parent, so the peak RSS it reports is the child's


def measured(cmd: list[str], env: dict[str, str]) -> tuple[dict, str]:
    """Run one process to the end: its wall, CPU (user + sys) seconds and peak RSS (MiB).

    Through GNU time, not os.wait4 from here: Linux counts the memory a child had before
    exec (a copy of this benchmark process, stand-in and records included) in its maxrss.
    """
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as usage,
    ):
        started = time.perf_counter()
        code = subprocess.call(
            [TIME, "-f", "%U %S %M", "-o", usage.name, *cmd],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if code != 0:
            raise RuntimeError(f"{cmd[:4]} failed ({code}): {err.read()[-2000:]}")
        user, system, max_kib = usage.read().split()[-3:]
        return {
            "wall_s": wall,
            "cpu_s": float(user) + float(system),
            "peak_rss_mib": int(max_kib) / 1024,
        }, out.read()


def _kea_cmd(db: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kea.cli",
        "crawl",
        "--db",
        str(db),
        "--eutils-url",
        url,
        "--quiet",
        "--batch-size",
        str(BATCH),
    ]


def _kea_crawl(db: Path, url: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(_kea_cmd(db, url), cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def requests_per_crawl(n: int) -> dict:
    env = {**os.environ, "NCBI_EMAIL": "bench@example.org", "NCBI_API_KEY": KEY}
    with (
        tempfile.TemporaryDirectory() as tmp,
        StandinServer(synthetic_records(n, seed=n), api_keys={KEY}) as srv,
    ):
        seconds = _kea_crawl(Path(tmp) / "kea.sqlite", srv.url, env)
        esearch, efetch = srv.count("esearch"), srv.count("efetch")
        max_rate = srv.max_requests_in_window(1.0)
    bound = 1 + math.ceil(n / BATCH)
    return {
        "records": n,
        "esearch": esearch,
        "efetch": efetch,
        "requests": esearch + efetch,
        "lower_bound": bound,
        "ratio": round((esearch + efetch) / bound, 3),
        "seconds": round(seconds, 1),
        "max_requests_per_s": max_rate,
    }


def end_to_end(n: int = 9000, pairs: int = 5) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env["NCBI_EMAIL"] = "bench@example.org"
    kea_env = {**env, "NCBI_API_KEY": KEY}
    records = synthetic_records(n, seed=7)
    for r in records:  # render once before timing: both clients then meet the same warm server
        r.xml()
    runs: dict[str, list[dict]] = {"kea": [], "biopython": []}
    requests: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(pairs):
            with StandinServer(records, api_keys={KEY}) as srv:
                got, _ = measured(_kea_cmd(Path(tmp) / f"kea{i}.sqlite", srv.url), kea_env)
                runs["kea"].append(got)
                requests["kea"] = len(srv.requests)
                kea_max = srv.max_requests_in_window(1.0)
            with StandinServer(records, api_keys={KEY}) as srv:
                got, out = measured([sys.executable, "-c", BIOPYTHON_LOOP, srv.url, KEY], env)
                runs["biopython"].append(got)
                requests["biopython"] = len(srv.requests)
                assert int(out.strip()) == n
    med = {
        who: {k: round(statistics.median(r[k] for r in rs), 2) for k in rs[0]}
        for who, rs in runs.items()
    }
    kea, bio = med["kea"], med["biopython"]
    return {
        "records": n,
        "pairs": pairs,
        "api_key": True,
        "requests": requests,
        "request_floor_s": round(requests["kea"] / 10, 2),
        "kea_max_requests_per_s": kea_max,
        "kea": kea,
        "biopython_loop": bio,
        "ratio_wall": round(kea["wall_s"] / bio["wall_s"], 3),
        "ratio_cpu": round(kea["cpu_s"] / bio["cpu_s"], 3),
        "ratio_memory": round(kea["peak_rss_mib"] / bio["peak_rss_mib"], 3),
        "goal_ratio_wall": 1.2,
        "goal_ratio_memory": 1.5,
    }


def run() -> dict:
    out = {
        "requests_1000": requests_per_crawl(1000),
        "requests_20000": requests_per_crawl(20_000),
        "end_to_end_9000": end_to_end(),
    }
    for key in ("requests_1000", "requests_20000"):
        r = out[key]
        print(
            f"{r['records']:>6} records: {r['requests']} requests ({r['esearch']} esearch + "
            f"{r['efetch']} efetch) vs lower bound {r['lower_bound']} "
            f"(x{r['ratio']}), {r['seconds']}s, max {r['max_requests_per_s']} req/s"
        )
    e = out["end_to_end_9000"]
    k, b = e["kea"], e["biopython_loop"]
    print(
        f"9,000-record crawl with a key, median of {e['pairs']} pairs ({e['requests']} requests, "
        f"floor {e['request_floor_s']}s): kea {k['wall_s']}s wall, {k['cpu_s']}s CPU, "
        f"{k['peak_rss_mib']} MiB vs bare Biopython loop {b['wall_s']}s, {b['cpu_s']}s, "
        f"{b['peak_rss_mib']} MiB -> x{e['ratio_wall']} wall (goal <= 1.2), x{e['ratio_cpu']} "
        f"CPU, x{e['ratio_memory']} memory (goal <= 1.5)"
    )
    return out


if __name__ == "__main__":
    run()
