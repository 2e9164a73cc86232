"""Crawl benchmarks on the offline stand-in.

1. Requests per crawl against the lower bound 1 esearch + ceil(N / batch) efetch,
   for N = 1,000 and 20,000 (past the 9,999 window, so date splitting is counted).
2. End to end, a 9,000-record `kea crawl` (parse + store + FTS index) against a bare
   Biopython esearch/efetch loop that only parses, both as a user runs them (a fresh
   process each) at NCBI's no-key pace (3 requests/s). Goal: ratio <= 1.2.
"""

from __future__ import annotations

import math
import os
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


def _kea_crawl(db: Path, url: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
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
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
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


def end_to_end(n: int = 9000) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env["NCBI_EMAIL"] = "bench@example.org"
    records = synthetic_records(n, seed=7)
    for r in records:  # render once before timing: both clients then meet the same warm server
        r.xml()
    with tempfile.TemporaryDirectory() as tmp:
        with StandinServer(records) as srv:
            kea_s = _kea_crawl(Path(tmp) / "kea.sqlite", srv.url, env)
        with StandinServer(records) as srv:
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", BIOPYTHON_LOOP, srv.url],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            bio_s = time.perf_counter() - started
            assert int(out.stdout.strip()) == n
    return {
        "records": n,
        "kea_crawl_s": round(kea_s, 2),
        "biopython_loop_s": round(bio_s, 2),
        "ratio": round(kea_s / bio_s, 3),
        "goal_ratio": 1.2,
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
    print(
        f"9,000-record crawl: kea {e['kea_crawl_s']}s vs bare Biopython loop "
        f"{e['biopython_loop_s']}s -> ratio {e['ratio']} (goal <= 1.2)"
    )
    return out


if __name__ == "__main__":
    run()
