"""Run one crawl: decide full / incremental / resume, run the spider, record the outcome.

The decisions live in the store (crawl_runs, crawl_targets), so that a crawl
killed at any point is finished by running the same command again.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from crawler.eutils import (
    DEFAULT_BATCH,
    NCBI_EUTILS,
    check_query,
    common_params,
    endpoint,
    parse_ncbi_date,
    parse_user_date,
    redact,
    window_from_user,
)
from crawler.spiders.pubmed import SearchSpec
from crawler.strategy import DEFAULT_QUERY
from pipeline.errors import CrawlError
from pipeline.store import DEFAULT_DB, Store, resolve_db_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlConfig:
    query: str = DEFAULT_QUERY
    db: str = DEFAULT_DB
    eutils_url: str = NCBI_EUTILS
    batch_size: int = DEFAULT_BATCH
    full: bool = False
    max_records: int | None = None
    mindate: str | None = None
    maxdate: str | None = None
    api_key: str | None = None
    email: str | None = None
    progress: bool = True
    is_demo: bool = False
    backoff_base: float = 1.0  # seconds before the first retry; doubles on each further one

    def __repr__(self) -> str:  # never print the key
        return f"CrawlConfig(query={self.query[:40]!r}..., db={self.db!r}, url={self.eutils_url!r})"

    @classmethod
    def from_env(cls, **overrides: Any) -> CrawlConfig:
        """Arguments win over KEA_DB / KEA_EUTILS_URL / NCBI_API_KEY / NCBI_EMAIL."""
        db = resolve_db_path(overrides.pop("db", None))  # the store's one rule for --db/KEA_DB
        given = {k: v for k, v in overrides.items() if v is not None}
        env = os.environ
        cfg = cls(
            db=str(db),
            eutils_url=env.get("KEA_EUTILS_URL") or cls.eutils_url,
            api_key=env.get("NCBI_API_KEY") or None,
            email=env.get("NCBI_EMAIL") or None,
        )
        cfg = replace(cfg, **given)
        return cfg.validated()

    def validated(self) -> CrawlConfig:
        """One clear line for each kind of bad input, before any request is made."""
        query = check_query(self.query)
        if not (1 <= self.batch_size <= 10_000):
            raise CrawlError(f"--batch-size must be between 1 and 10000, not {self.batch_size}")
        if self.max_records is not None and self.max_records < 1:
            raise CrawlError(f"--max-records must be positive, not {self.max_records}")
        if not self.eutils_url.startswith(("http://", "https://")):
            raise CrawlError(
                f"E-utilities URL {self.eutils_url!r} must start with http:// or https://"
            )
        mindate = parse_user_date(self.mindate, name="--mindate") if self.mindate else None
        maxdate = parse_user_date(self.maxdate, name="--maxdate") if self.maxdate else None
        lo, hi = window_from_user(mindate, maxdate)
        if lo and hi and lo > hi:
            raise CrawlError(f"--mindate {mindate} is after --maxdate {maxdate}")
        if lo and lo > date.today():
            raise CrawlError(f"--mindate {mindate} is in the future")
        return replace(self, query=query, mindate=mindate, maxdate=maxdate)


class RunPlan:
    """What this run must do; shared by the spider (reads) and the store pipeline (writes)."""

    def __init__(self, config: CrawlConfig, store: Store):
        self.config = config
        self.store = store
        self.query = config.query
        self.batch_size = config.batch_size
        self.resumed = False
        self.targets_ready = False
        self.since: str | None = None
        self.mode = "full"
        row = store.unfinished_run(config.query, config.eutils_url)
        if row is not None and not config.full:
            self.run_id = int(row["id"])
            self.mode = row["mode"]
            self.since = row["since"]
            self.resumed = True
            self.targets_ready = row["total"] is not None
            store.update_run(self.run_id, status="running", error=None)
            return
        last = store.last_completed_run(config.query, config.eutils_url)
        if last is not None and not config.full:
            self.mode = "incremental"
            self.since = watermark(last["started_at"], store.max_date("revised_date"))
        self.run_id = store.start_run(
            config.query, config.eutils_url, self.mode, is_demo=config.is_demo, since=self.since
        )

    def root_searches(self) -> list[SearchSpec]:
        lo, hi = window_from_user(self.config.mindate, self.config.maxdate)
        datetype = "edat" if (lo or hi) else None
        specs = [SearchSpec("all", datetype, lo, hi)]
        if self.mode == "incremental" and self.since:
            specs.append(SearchSpec("revised", "mdat", parse_ncbi_date(self.since), date.today()))
        return specs

    def record_targets(self, by_role: dict[str, list[str]]) -> None:
        """Decide once per run which PMIDs to fetch; a resumed run keeps its decision."""
        if self.targets_ready:
            return
        all_ids = list(dict.fromkeys(by_role.get("all", [])))
        if self.mode == "incremental":
            stored = self.store.stored_pmids()
            ids = [p for p in all_ids if int(p) not in stored]
            ids = list(dict.fromkeys(ids + by_role.get("revised", [])))
        else:
            ids = all_ids
        if self.config.max_records is not None:
            ids = ids[: self.config.max_records]
        self.store.set_targets(self.run_id, ids)
        self.targets_ready = True

    def pending(self) -> set[str]:
        return {str(p) for p in self.store.pending_targets(self.run_id)}

    def report_total(self) -> None:
        done, total = self.store.target_count(self.run_id)
        if self.config.progress:
            what = "resuming: " if self.resumed else ""
            print(
                f"{what}{total - done} of {total} records to fetch ({self.mode} crawl)",
                file=sys.stderr,
            )


def watermark(last_started: float, max_revised: str | None) -> str:
    """The day from which revisions are fetched again.

    The earlier of the last completed crawl's start and the newest revision we
    hold, so that neither a clock gap nor a late-indexed revision is missed.
    """
    day = datetime.fromtimestamp(last_started).date()
    if max_revised:
        try:
            day = min(day, parse_ncbi_date(max_revised[:10]))
        except CrawlError:
            pass
    return day.isoformat()


@dataclass
class CrawlSummary:
    run_id: int
    mode: str
    status: str
    total: int
    fetched: int
    new: int
    updated: int
    deleted: int
    missing: int
    requests: int
    seconds: float
    stored: int
    resumed: bool
    is_demo: bool
    warnings: list[str]

    def one_line(self) -> str:
        demo = " [DEMO DATA from the built-in stand-in]" if self.is_demo else ""
        resumed = " (resumed)" if self.resumed else ""
        return (
            f"crawl #{self.run_id} {self.status} ({self.mode}{resumed}): {self.total} records "
            f"planned, {self.fetched} fetched ({self.new} new, {self.updated} updated, "
            f"{self.deleted} deleted, {self.missing} missing) with {self.requests} requests in "
            f"{self.seconds:.1f}s; the store holds {self.stored} records{demo}"
        )


class _RedactFilter(logging.Filter):
    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.secret in msg:
            record.msg, record.args = redact(msg, self.secret), None
        return True


def probe(eutils_url: str, *, email: str | None, timeout: float = 8.0) -> str | None:
    """None when the server answers at all; otherwise why it cannot be reached."""
    from urllib.parse import urlencode

    url = (
        endpoint(eutils_url, "einfo")
        + "?"
        + urlencode({"db": "pubmed", **common_params(email=email, api_key=None)})
    )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read(64)
        return None
    except urllib.error.HTTPError:
        return None  # it answered: reachable
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        return str(reason) or type(err).__name__


def run_crawl(config: CrawlConfig) -> CrawlSummary:
    """Crawl config.eutils_url into the store; the caller decides which server that is."""
    store = Store(config.db)  # fails early, with the path, if it is not writable
    try:
        if config.email is None and not config.is_demo:
            print(
                "warning: NCBI_EMAIL is not set; NCBI asks every client for a contact e-mail",
                file=sys.stderr,
            )
        return _crawl(config, store)
    finally:
        store.close()


def kept_summary(db: str) -> CrawlSummary:
    """The outcome of a crawl that was skipped: nothing fetched, the store as it is."""
    with Store(db) as store:
        runs = store.runs(limit=1)
        r = runs[0] if runs else None
        return CrawlSummary(
            run_id=int(r["id"]) if r else 0,
            mode=r["mode"] if r else "-",
            status="skipped",
            total=0,
            fetched=0,
            new=0,
            updated=0,
            deleted=0,
            missing=0,
            requests=0,
            seconds=0.0,
            stored=store.count(),
            resumed=False,
            is_demo=False,
            warnings=[],
        )


def _crawl(config: CrawlConfig, store: Store) -> CrawlSummary:
    from scrapy.crawler import CrawlerProcess

    from crawler.settings import scrapy_settings
    from crawler.spiders.pubmed import PubmedSpider

    plan = RunPlan(config, store)
    if config.is_demo:
        store.set_meta("demo", "1")
    settings = scrapy_settings(api_key=bool(config.api_key), backoff_base=config.backoff_base)
    settings["KEA_API_KEY"] = config.api_key
    settings["KEA_EUTILS_URL"] = config.eutils_url
    process = CrawlerProcess(settings)
    if config.api_key:
        for h in logging.getLogger().handlers:
            h.addFilter(_RedactFilter(config.api_key))
    crawler = process.create_crawler(PubmedSpider)
    started = time.monotonic()
    process.crawl(crawler, plan=plan)
    process.start()  # blocks until the spider closes
    seconds = time.monotonic() - started
    spider = crawler.spider
    requests = int(crawler.stats.get_value("downloader/request_count", 0) or 0)
    store.add_requests(plan.run_id, requests)
    reason = crawler.stats.get_value("finish_reason")
    for w in getattr(spider, "warnings", []):
        print(f"warning: {w}", file=sys.stderr)
    if spider is not None and spider.fatal_error:
        msg = redact(spider.fatal_error, config.api_key)
        store.update_run(plan.run_id, status="failed", error=msg, finished_at=time.time())
        raise CrawlError(msg + " (what was fetched is stored; run again to resume)")
    if reason == "finished" and spider is not None and not spider.fetch_planned:
        reason = "searches did not complete"
    if reason != "finished":
        store.update_run(plan.run_id, status="running", error=f"stopped: {reason}")
        raise CrawlError(f"crawl stopped ({reason}); run the same command again to resume")
    pending = plan.pending()
    store.update_run(
        plan.run_id,
        status="completed",
        finished_at=time.time(),
        missing=len(pending) + getattr(spider, "truncated_windows", 0),
    )
    if not config.is_demo:
        _drop_demo(store)
    store.set_meta("query", config.query)
    store.analyze()
    row = store.conn.execute("SELECT * FROM crawl_runs WHERE id=?", (plan.run_id,)).fetchone()
    return CrawlSummary(
        run_id=plan.run_id,
        mode=plan.mode,
        status="completed",
        total=row["total"] or 0,
        fetched=row["fetched"],
        new=row["new"],
        updated=row["updated"],
        deleted=row["deleted"],
        missing=row["missing"],
        requests=row["requests"],
        seconds=seconds,
        stored=store.count(),
        resumed=plan.resumed,
        is_demo=config.is_demo,
        warnings=list(getattr(spider, "warnings", [])),
    )


def _drop_demo(store: Store) -> None:
    """A real crawl replaces the team-written demo records, which are nobody's data."""
    if not store.is_demo:
        return
    with store.transaction() as c:
        c.execute("DELETE FROM labels WHERE pmid IN (SELECT pmid FROM articles WHERE is_demo=1)")
        c.execute("DELETE FROM articles WHERE is_demo=1")
        c.execute("DELETE FROM meta WHERE key='demo'")
