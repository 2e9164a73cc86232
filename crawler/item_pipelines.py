"""Item pipelines, one job each: validate a batch, then store it (one transaction)."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy.exceptions import DropItem

from crawler.items import FetchedBatch
from pipeline.store import Store

log = logging.getLogger(__name__)


class ValidateBatchPipeline:
    """Drop records without a numeric PMID; a batch with nothing usable is dropped whole."""

    def process_item(self, item: FetchedBatch) -> FetchedBatch:
        good = [a for a in item.articles if a.pmid and a.pmid.isdigit()]
        if len(good) != len(item.articles):
            log.warning("dropped %d records without a valid PMID", len(item.articles) - len(good))
        item.articles = good
        item.deleted_pmids = [p for p in item.deleted_pmids if p and p.isdigit()]
        if not item.articles and not item.deleted_pmids:
            raise DropItem("efetch batch held no records")
        return item


class StoreBatchPipeline:
    """Upsert each batch and tick off its targets in the same transaction; show progress."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.store: Store | None = None
        self.started = time.monotonic()
        self.fetched = 0
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kea-store")

    @classmethod
    def from_crawler(cls, crawler: Any) -> StoreBatchPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        plan = self.crawler.spider.plan
        self.store = Store(plan.config.db)
        self.started = time.monotonic()

    def close_spider(self) -> None:
        self.pool.shutdown(wait=True)
        if self.store is not None:
            self.store.close()
        if self.crawler.spider.plan.config.progress and sys.stderr.isatty():
            sys.stderr.write("\n")

    async def process_item(self, item: FetchedBatch) -> FetchedBatch:
        plan = self.crawler.spider.plan
        # One writer thread: batches are stored in order, one transaction each, while the
        # reactor goes on sending requests at NCBI's pace.
        done, total = await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(self._write, item, plan))
        self.fetched += len(item.articles)
        if plan.config.progress:
            self._progress(done, total)
        return item

    def _write(self, item: FetchedBatch, plan: Any) -> tuple[int, int]:
        assert self.store is not None
        self.store.upsert_batch(item.articles, item.deleted_pmids, run_id=plan.run_id,
                                is_demo=plan.config.is_demo)
        return self.store.target_count(plan.run_id)

    def _progress(self, done: int, total: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.fetched / elapsed
        eta = (total - done) / rate if rate > 0 else 0.0
        pct = 100.0 * done / total if total else 100.0
        line = (f"fetched {done}/{total} records ({pct:.0f}%) "
                f"{rate:.0f} rec/s ETA {eta:.0f}s")
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line.ljust(70))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
