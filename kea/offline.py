"""`kea crawl --offline-fallback`: crawl NCBI, or the built-in stand-in when NCBI is away.

The application wires the two; the crawler knows only the URL it is given, and the
stand-in knows nothing of the crawler.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from crawler.run import CrawlConfig, CrawlSummary, kept_summary, probe, run_crawl
from crawler.standin.demo import demo_records
from crawler.standin.server import StandinServer
from pipeline.store import Store


def crawl_or_demo(config: CrawlConfig) -> CrawlSummary:
    """Crawl config.eutils_url; when it cannot be reached, crawl the stand-in's DEMO records.

    Real records already stored are never replaced by demo ones: then nothing is crawled.
    """
    if config.is_demo:
        return run_crawl(config)
    why = probe(config.eutils_url, email=config.email)
    if why is None:
        return run_crawl(config)
    with Store(config.db) as store:
        real = store.conn.execute("SELECT COUNT(*) FROM articles WHERE is_demo=0").fetchone()[0]
    if real:
        print(
            f"E-utilities unreachable at {config.shown_url} ({why}); keeping the "
            f"{real} records already stored",
            file=sys.stderr,
        )
        return kept_summary(config.db)
    with StandinServer(demo_records()) as server:
        print(
            f"NCBI E-utilities unreachable at {config.shown_url} ({why}); continuing "
            f"offline with the built-in stand-in and its DEMO records",
            file=sys.stderr,
        )
        return run_crawl(replace(config, eutils_url=server.url, is_demo=True, api_key=None))
