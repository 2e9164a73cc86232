"""Run one crawl: decide full / incremental / resume, run the spider, record the outcome.

The decisions live in the store (crawl_runs, crawl_targets), so that a crawl
killed at any point is finished by running the same command again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crawler.eutils import (
    DEFAULT_BATCH,
    NCBI_EUTILS,
    check_query,
    common_params,
    endpoint,
    parse_ncbi_date,
    parse_user_date,
    redact,
    redact_url,
    window_from_user,
)
from crawler.spiders.pubmed import SearchSpec
from crawler.strategy import DEFAULT_QUERY
from pipeline.errors import CrawlError, StoreError
from pipeline.store import DEFAULT_DB, Store, resolve_db_path

log = logging.getLogger(__name__)

# Per request: an efetch of 500 records takes NCBI well under 30 s; a hung server fails a
# request after this, and a crawl (5 retries with back-off) in about 3.5 minutes, not 6.5.
REQUEST_TIMEOUT = 30.0


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
        return f"CrawlConfig(query={self.query[:40]!r}..., db={self.db!r}, url={self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """The URL as printed and stored (crawl_runs): a key written into it is masked."""
        return redact_url(self.eutils_url)

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
        eutils_url = check_url(self.eutils_url)
        mindate = parse_user_date(self.mindate, name="--mindate") if self.mindate else None
        maxdate = parse_user_date(self.maxdate, name="--maxdate") if self.maxdate else None
        lo, hi = window_from_user(mindate, maxdate)
        if lo and hi and lo > hi:
            raise CrawlError(f"--mindate {mindate} is after --maxdate {maxdate}")
        if lo and lo > date.today():
            raise CrawlError(f"--mindate {mindate} is in the future")
        return replace(self, query=query, mindate=mindate, maxdate=maxdate, eutils_url=eutils_url)


def check_url(url: str) -> str:
    """An http(s) URL with a host, its scheme in lower case (HTTP:// is a fine URL)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as err:
        raise CrawlError(f"E-utilities URL {url!r} is not a valid URL ({err})") from err
    if parts.scheme.lower() not in ("http", "https"):
        raise CrawlError(f"E-utilities URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise CrawlError(f"E-utilities URL {url!r} names no host")
    return urlunsplit(parts._replace(scheme=parts.scheme.lower()))


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
        self.requests_counted = 0  # requests already added to crawl_runs (by the item pipeline)
        self._targets: set[str] | None = None
        row = store.unfinished_run(config.query, config.shown_url)
        if row is not None and not config.full:
            self.run_id = int(row["id"])
            self.mode = row["mode"]
            self.since = row["since"]
            self.resumed = True
            self.targets_ready = row["total"] is not None
            store.update_run(self.run_id, status="running", error=None)
            return
        last = store.last_completed_run(config.query, config.shown_url)
        if last is not None and not config.full:
            self.mode = "incremental"
            self.since = watermark(last["started_at"], store.max_date("revised_date"))
        self.run_id = store.start_run(
            config.query, config.shown_url, self.mode, is_demo=config.is_demo, since=self.since
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
        self._targets = set(ids)

    def targets(self) -> set[str]:
        """Every PMID this run asked for (done or not): records outside it are not stored."""
        if self._targets is None:
            rows = self.store.conn.execute(
                "SELECT pmid FROM crawl_targets WHERE run_id=?", (self.run_id,)
            )
            self._targets = {str(r[0]) for r in rows}
        return self._targets

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
    """The key out of a record's message and traceback, before any handler formats it."""

    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret
        self._fmt = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.secret in msg:
            record.msg, record.args = redact(msg, self.secret), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._fmt.formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = redact(record.exc_text, self.secret)
        if record.stack_info and self.secret in record.stack_info:
            record.stack_info = redact(record.stack_info, self.secret)
        return True


def _guard_handlers(secret: str | None) -> None:
    """Put the redaction filter on every root handler there is now.

    Scrapy replaces its root handler when a crawler is created, dropping any filter set
    before; so this runs again once the engine has started, on the handler that logs.
    """
    if not secret:
        return
    for h in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactFilter) for f in h.filters):
            h.addFilter(_RedactFilter(secret))


@contextlib.contextmanager
def crawl_lock(db: str) -> Iterator[None]:
    """One crawl per database: a second one would resume the first's run beside it.

    flock on <db>.crawl-lock, held for the whole crawl; the OS drops it when the process
    ends in any way (kill -9 too), so a stale lock cannot block the next crawl.
    """
    path = Path(str(db) + ".crawl-lock")
    created = not path.exists()
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # the store reports an unwritable place itself, naming the database
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CrawlError(
                f"another crawl is running on {db}; wait for it to finish (one crawl per database)"
            ) from None
        try:
            yield
        except StoreError:
            # the store refused the file (not kea's, newer, unwritable): leave nothing of
            # ours beside it
            if created:
                path.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock


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
    with crawl_lock(config.db):
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
    from scrapy.signals import engine_started

    from crawler.settings import scrapy_settings
    from crawler.spiders.pubmed import PubmedSpider

    plan = RunPlan(config, store)
    if config.is_demo:
        store.set_meta("demo", "1")
    settings = scrapy_settings(api_key=bool(config.api_key), backoff_base=config.backoff_base)
    settings["KEA_API_KEY"] = config.api_key
    settings["KEA_EUTILS_URL"] = config.shown_url  # for messages only
    settings["DOWNLOAD_TIMEOUT"] = min(float(settings["DOWNLOAD_TIMEOUT"]), REQUEST_TIMEOUT)
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(PubmedSpider)
    _guard_handlers(config.api_key)
    crawler.signals.connect(lambda: _guard_handlers(config.api_key), signal=engine_started)
    started = time.monotonic()
    process.crawl(crawler, plan=plan)
    _guard_handlers(config.api_key)
    _run_stoppable(process, lambda signum: _stop_now(config, plan, crawler, signum))
    seconds = time.monotonic() - started
    spider = crawler.spider
    requests = int(crawler.stats.get_value("downloader/request_count", 0) or 0)
    # the item pipeline added the requests made up to its last batch, in that batch's
    # transaction; the rest (after the last batch) now
    store.add_requests(plan.run_id, max(0, requests - plan.requests_counted))
    plan.requests_counted = max(requests, plan.requests_counted)
    reason = crawler.stats.get_value("finish_reason")
    for w in getattr(spider, "warnings", []):
        print(f"warning: {redact(w, config.api_key)}", file=sys.stderr)
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
        missing=len(pending)
        + getattr(spider, "truncated_windows", 0)
        + sum(getattr(spider, "unlisted", {}).values()),
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


def _run_stoppable(process: Any, on_signal: Any) -> None:
    """Run the crawl; SIGTERM/SIGINT end it at once through on_signal(signum).

    Scrapy's own handlers stop gracefully: they wait for the request in flight, up to the
    download timeout (half a minute against a hung server). Nothing needs that wait: each
    batch is stored in one transaction and a run resumes from the store, as after kill -9.
    """
    old = {s: signal.signal(s, lambda signum, _f: on_signal(signum)) for s in _STOP_SIGNALS}
    try:
        process.start(install_signal_handlers=False)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_now(config: CrawlConfig, plan: RunPlan, crawler: Any, signum: int) -> None:
    """Record the stop on a connection of its own, say so in one line, and exit (code 2).

    Whatever the threads were doing is cut off as by kill -9, which the store survives
    (an unfinished batch is rolled back); a connection of its own so as not to commit
    half of a transaction the interrupted code had open.
    """
    name = signal.Signals(signum).name
    try:
        sent = int(crawler.stats.get_value("downloader/request_count", 0) or 0)
        with Store(config.db) as store:
            store.add_requests(plan.run_id, max(0, sent - plan.requests_counted))
            store.update_run(plan.run_id, status="running", error=f"stopped: {name}")
    finally:
        sys.stderr.write(
            f"kea crawl: error: crawl stopped by {name}; what was fetched is stored: "
            "run the same command again to resume\n"
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(2)


def _drop_demo(store: Store) -> None:
    """A real crawl replaces the team-written demo records, which are nobody's data."""
    if not store.is_demo:
        return
    with store.transaction() as c:
        c.execute("DELETE FROM labels WHERE pmid IN (SELECT pmid FROM articles WHERE is_demo=1)")
        c.execute("DELETE FROM articles WHERE is_demo=1")
        c.execute("DELETE FROM meta WHERE key='demo'")
