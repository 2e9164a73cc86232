"""Item pipelines, one job each: validate a batch, then store it (one transaction)."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapy.exceptions import DropItem
from tqdm import tqdm

from crawler.eutils import is_pmid
from crawler.items import FetchedBatch
from pipeline.store import Store

log = logging.getLogger(__name__)


class ValidateBatchPipeline:
    """Keep only records this run asked for, with a valid PMID; an empty batch is dropped.

    A record outside the run's targets is nobody's: a server answering with more (or other)
    records than asked for must not grow the store.
    """

    def __init__(self, crawler: Any = None):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidateBatchPipeline:
        return cls(crawler)

    def process_item(self, item: FetchedBatch) -> FetchedBatch:
        plan = getattr(getattr(self.crawler, "spider", None), "plan", None)
        targets = plan.targets() if plan is not None and hasattr(plan, "targets") else None
        good = [a for a in item.articles if a.pmid and is_pmid(a.pmid)]
        if len(good) != len(item.articles):
            log.warning("dropped %d records without a valid PMID", len(item.articles) - len(good))
        if targets is not None:
            asked = [a for a in good if a.pmid in targets]
            if len(asked) != len(good):
                log.warning(
                    "dropped %d records the crawl did not ask for (PMIDs %s)",
                    len(good) - len(asked),
                    ", ".join(a.pmid for a in good if a.pmid not in targets)[:200],
                )
            good = asked
        item.articles = good
        item.deleted_pmids = [
            p for p in item.deleted_pmids if p and is_pmid(p) and (targets is None or p in targets)
        ]
        if not item.articles and not item.deleted_pmids:
            raise DropItem("efetch batch held no records")
        return item


class StoreBatchPipeline:
    """Upsert each batch and tick off its targets in the same transaction; show progress."""

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.store: Store | None = None
        self.bar: tqdm | None = None
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kea-store")

    @classmethod
    def from_crawler(cls, crawler: Any) -> StoreBatchPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        plan = self.crawler.spider.plan
        self.store = Store(plan.config.db)

    def close_spider(self) -> None:
        self.pool.shutdown(wait=True)
        if self.store is not None:
            self.store.close()
        if self.bar is not None:
            self.bar.close()

    async def process_item(self, item: FetchedBatch) -> FetchedBatch:
        plan = self.crawler.spider.plan
        # One writer thread: batches are stored in order, one transaction each, while the
        # reactor goes on sending requests at NCBI's pace.
        done, total = await asyncio.get_running_loop().run_in_executor(
            self.pool, functools.partial(self._write, item, plan)
        )
        if plan.config.progress:
            self._progress(done, total, len(item.articles))
        return item

    def _write(self, item: FetchedBatch, plan: Any) -> tuple[int, int]:
        """Store the batch, and the requests made so far, in one transaction.

        So crawl_runs.requests is right after a kill too: the UPDATE opens the transaction
        (sqlite3's implicit BEGIN) that upsert_batch then commits, or rolls back with it.
        """
        assert self.store is not None
        sent = int(self.crawler.stats.get_value("downloader/request_count", 0) or 0)
        new_requests = max(0, sent - plan.requests_counted)
        if new_requests:
            self.store.conn.execute(
                "UPDATE crawl_runs SET requests=requests+? WHERE id=?", (new_requests, plan.run_id)
            )
        try:
            self.store.upsert_batch(
                item.articles, item.deleted_pmids, run_id=plan.run_id, is_demo=plan.config.is_demo
            )
        except BaseException:
            self.store.conn.rollback()
            raise
        plan.requests_counted += new_requests
        return self.store.target_count(plan.run_id)

    def _progress(self, done: int, total: int, batch: int) -> None:
        """One line with count, rate and ETA; a resumed crawl starts from what it had."""
        if self.bar is None:
            self.bar = tqdm(
                total=total,
                initial=max(0, done - batch),
                unit="rec",
                desc="fetched",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(done - self.bar.n)
