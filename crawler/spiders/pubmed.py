"""The PubMed spider: esearch with the history server, then batched efetch.

It builds requests and hands answers to parse functions; it stores nothing
(the item pipelines do). Which PMIDs to fetch is decided once, after the
searches, and written to the store, so a killed crawl resumes from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, IgnoreRequest
from scrapy.http import FormRequest, Request, Response
from scrapy.utils.defer import deferred_from_coro

from crawler.eutils import (
    ESEARCH_MAX,
    EutilsAnswerError,
    chunks,
    common_params,
    efetch_history_params,
    efetch_ids_params,
    endpoint,
    esearch_params,
    ncbi_date,
    parse_esearch,
    plan_history_pages,
    redact_url,
    split_window,
    use_post,
)
from crawler.items import FetchedBatch
from crawler.middlewares import FatalEutilsError
from pipeline.errors import ParseError
from pipeline.parse import parse_efetch

log = logging.getLogger(__name__)

EARLIEST = date(1781, 1, 1)  # older than any PubMed entry date
MAX_RESEARCH = 3  # history lost this often for one search: fetch its records by id instead
MAX_PARSE_RETRIES = 3


class EutilsRequest(Request):
    """A GET whose printed form never holds the API key.

    Scrapy and its middlewares print requests as ``<GET url>`` in every log line they write
    (download errors, retries, spider errors); the key stays in the URL sent, not in the
    one shown. Copies made for retries (Request.replace) keep the class.
    """

    def __repr__(self) -> str:
        return f"<{self.method} {redact_url(self.url)}>"

    __str__ = __repr__


class EutilsFormRequest(FormRequest):
    """A POST (the key is in the body, never printed); the same printed form as a GET."""

    def __repr__(self) -> str:
        return f"<{self.method} {redact_url(self.url)}>"

    __str__ = __repr__


@dataclass
class SearchSpec:
    """One esearch: the query, optionally within an inclusive date window."""

    role: str  # "all" (every record of the query) or "revised" (modified since the watermark)
    datetype: str | None = None  # edat | mdat; None: no date restriction
    lo: date | None = None
    hi: date | None = None

    @property
    def key(self) -> str:
        lo = self.lo.isoformat() if self.lo else "-"
        hi = self.hi.isoformat() if self.hi else "-"
        return f"{self.role}:{self.datetype or 'none'}:{lo}:{hi}"


@dataclass
class SearchState:
    spec: SearchSpec
    gen: int = 0
    webenv: str | None = None
    query_key: str | None = None
    ids: list[str] = field(default_factory=list)
    count: int = 0
    researches: int = 0
    parent_count: int | None = None  # the count of the window this one was split from
    siblings: list[int] | None = None  # counts of both halves of that split, as they arrive


class PubmedSpider(scrapy.Spider):
    name = "pubmed"

    def __init__(self, plan: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan = plan  # crawler.run.RunPlan
        self.searches: dict[str, SearchState] = {}
        self.leaf_order: list[str] = []
        self.outstanding = 0
        self.fatal_error: str | None = None
        self.fetch_planned = False
        self.second_pass_done = False
        self.warnings: list[str] = []
        self.truncated_windows = 0
        self.unlisted: dict[str, int] = {}  # search key -> records counted but not listed
        self.windows_ignored = False
        self._closing: Any = None
        self.parse_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kea-parse")

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> PubmedSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    # -- request building --------------------------------------------------
    def _params(self, params: dict[str, str]) -> dict[str, str]:
        cfg = self.plan.config
        return {**params, **common_params(email=cfg.email, api_key=cfg.api_key)}

    def _request(self, name: str, params: dict[str, str], callback: Any, **meta: Any) -> Request:
        # Biopython's rule (the reference client): POST when the parameters are long or
        # carry 200+ ids, GET otherwise. The API key is redacted from every log line.
        full = self._params(params)
        url = endpoint(self.plan.config.eutils_url, name)
        common = {
            "callback": callback,
            "errback": self.on_error,
            "dont_filter": True,
            "meta": {"endpoint": name, **meta},
            "priority": 10 if name == "esearch" else 0,
        }
        if use_post(full):
            return EutilsFormRequest(url, formdata=full, **common)
        return EutilsRequest(url + "?" + urlencode(full), method="GET", **common)

    def search_request(self, state: SearchState) -> Request:
        s = state.spec
        params = esearch_params(
            self.plan.query,
            mindate=ncbi_date(s.lo) if s.lo else None,
            maxdate=ncbi_date(s.hi) if s.hi else None,
            datetype=s.datetype or "edat",
        )
        self.outstanding += 1
        return self._request("esearch", params, self.parse_search, search_key=s.key, gen=state.gen)

    def is_stale(self, key: str, gen: int) -> bool:
        st = self.searches.get(key)
        return st is not None and gen < st.gen

    # -- flow ---------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        for spec in self.plan.root_searches():
            state = SearchState(spec)
            self.searches[spec.key] = state
            yield self.search_request(state)

    def parse_search(self, response: Response) -> Iterator[Any]:
        self.outstanding -= 1
        key = response.meta["search_key"]
        state = self.searches[key]
        try:
            res = parse_esearch(response.body)
        except EutilsAnswerError as err:
            self._fatal(f"esearch failed: {err}")
        if res.errors.get("PhraseNotFound") or res.errors.get("FieldNotFound"):
            self.warnings.append(
                "PubMed ignored parts of the query: "
                + "; ".join(f"{k}: {', '.join(v)}" for k, v in res.errors.items())
            )
        if state.siblings is not None:
            state.siblings.append(res.count)
            if len(state.siblings) == 2 and min(state.siblings) >= (state.parent_count or 0):
                # both halves of a window counted the whole window: the server ignores date
                # windows, and splitting further would only multiply requests
                self.windows_ignored = True
                self.truncated_windows = max(self.truncated_windows, res.count - len(res.ids))
                self.warnings.append(
                    f"the server ignores date windows; only the first {len(res.ids)} of "
                    f"{res.count} records can be listed"
                )
        accounted = self.windows_ignored  # a gap already counted as unreachable
        halves = None
        if res.count > len(res.ids) and res.count > ESEARCH_MAX and not self.windows_ignored:
            halves = _weighted_split(state.spec.lo or EARLIEST, state.spec.hi or date.today())
            if halves is None:  # a single day past the window: keep what can be listed
                accounted = True
                self.truncated_windows += res.count - len(res.ids)
                self.warnings.append(
                    f"{res.count} records share the single day {state.spec.lo}; PubMed lists "
                    f"only {len(res.ids)} of them, the rest are not reachable by esearch"
                )
        if halves is not None:
            yield from self._split(state, res.count, halves)
        else:
            state.ids, state.webenv, state.query_key, state.count = (
                res.ids,
                res.webenv,
                res.query_key,
                res.count,
            )
            if key not in self.leaf_order:
                self.leaf_order.append(key)
            gap = len(res.ids) < res.count and not accounted and key not in self.unlisted
            if gap:  # an answer that lists fewer ids than it counts is not a complete one
                self.unlisted[key] = res.count - len(set(res.ids))
                self.warnings.append(
                    f"esearch counted {res.count} records but listed {len(res.ids)}; the "
                    f"{self.unlisted[key]} not listed are counted missing"
                )
            if self.fetch_planned:
                yield from self.plan_search_fetches(state)
        if self.outstanding == 0 and not self.fetch_planned:
            yield from self.plan_fetches()

    def _split(
        self, state: SearchState, count: int, halves: tuple[tuple[date, date], tuple[date, date]]
    ) -> Iterator[Any]:
        s = state.spec
        log.info("search %s counts %d > %d: splitting by date", s.key, count, ESEARCH_MAX)
        siblings: list[int] = []
        for a, b in halves:
            spec = SearchSpec(s.role, s.datetype or "edat", a, b)
            child = SearchState(spec, parent_count=count, siblings=siblings)
            self.searches[spec.key] = child
            yield self.search_request(child)

    def plan_fetches(self) -> Iterator[Any]:
        """All searches are in: decide the targets (once per run), then the requests."""
        leaves = [self.searches[k] for k in self.leaf_order]
        by_role: dict[str, list[str]] = {}
        for st in leaves:
            by_role.setdefault(st.spec.role, []).extend(st.ids)
        self.plan.record_targets(by_role)
        self.fetch_planned = True  # only once the targets are stored: else the run never ran
        pending = self.plan.pending()
        self.plan.report_total()
        assigned: set[str] = set()
        by_id: list[str] = []
        for st in leaves:
            mine = pending & set(st.ids) - assigned
            assigned |= mine
            yield from self._history_requests(st, mine, by_id)
        by_id.extend(sorted(pending - assigned, key=int))
        yield from self._id_requests(by_id)

    def plan_search_fetches(self, state: SearchState) -> Iterator[Any]:
        """A search ran again after its history set was lost: fetch what it still owes."""
        pending = self.plan.pending() & set(state.ids)
        by_id: list[str] = []
        yield from self._history_requests(state, pending, by_id)
        yield from self._id_requests(by_id)

    def _history_requests(
        self, st: SearchState, pending: set[str], by_id: list[str]
    ) -> Iterator[Any]:
        if not pending:
            return
        if not st.webenv or not st.query_key or st.researches >= MAX_RESEARCH:
            by_id.extend(sorted(pending, key=int))
            return
        pages, sparse = plan_history_pages(st.ids, pending, self.plan.batch_size)
        by_id.extend(sparse)
        for start, size in pages:
            yield self._request(
                "efetch",
                efetch_history_params(st.webenv, st.query_key, start, size),
                self.parse_fetch,
                search_key=st.spec.key,
                gen=st.gen,
            )

    def _id_requests(self, pmids: list[str]) -> Iterator[Any]:
        for chunk in chunks(pmids, self.plan.batch_size):
            yield self._request("efetch", efetch_ids_params(chunk), self.parse_fetch)

    async def parse_fetch(self, response: Response) -> AsyncIterator[Any]:
        key = response.meta.get("search_key")
        if response.meta.get("history_error"):
            for req in self._research(key, response.meta["history_error"]):
                yield req
            return
        try:
            # parsed off the reactor thread, so the next request leaves on time meanwhile
            batch = await asyncio.get_running_loop().run_in_executor(
                self.parse_pool, parse_efetch, response.body
            )
        except ParseError as err:
            tries = response.meta.get("kea_parse", 0) + 1
            if tries > MAX_PARSE_RETRIES:
                self._fatal(f"efetch answer could not be parsed {tries} times: {err}")
            meta = dict(response.request.meta)
            meta["kea_parse"] = tries
            yield response.request.replace(meta=meta, dont_filter=True)
            return
        for reason in batch.rejected:  # the rest of the batch is kept; the run counts it missing
            log.warning("efetch answer held an unusable record, skipped: %s", reason)
        for reason in batch.warnings:
            log.warning("efetch record kept with oversized fields cut: %s", reason)
        yield FetchedBatch(articles=batch.articles, deleted_pmids=batch.deleted_pmids)

    def _research(self, key: str | None, message: str) -> Iterator[Any]:
        st = self.searches.get(key) if key else None
        if st is None:
            self._fatal(f"efetch lost its history set: {message}")
        gen = st.gen
        if self.is_stale(key, gen) or st.webenv is None:
            return
        st.researches += 1
        st.gen += 1
        st.webenv = None
        log.info("history set of %s lost (%s): searching again", key, message)
        if st.researches >= MAX_RESEARCH:
            pending = self.plan.pending() & set(st.ids)
            yield from self._id_requests(sorted(pending, key=int))
            return
        yield self.search_request(st)

    # -- end of crawl ------------------------------------------------------
    def on_idle(self) -> None:
        """Records a page did not bring (withdrawn, or skipped): ask for them by id, once."""
        if self.fatal_error or not self.fetch_planned or self.second_pass_done:
            return
        self.second_pass_done = True
        pending = sorted(self.plan.pending(), key=int)
        if not pending:
            return
        log.info("%d planned records did not arrive; fetching them by id", len(pending))
        for req in self._id_requests(pending):
            self.crawler.engine.crawl(req)
        raise DontCloseSpider

    def on_error(self, failure: Any) -> None:
        """Handle every failed download here, so Scrapy prints no traceback for it.

        A fatal one closes the spider without raising: an errback that raises makes Scrapy
        log "Error downloading ..." with a traceback before the one line the user should see.
        """
        exc = failure.value
        if isinstance(exc, FatalEutilsError):
            return self._fatal_quietly(str(exc))
        if isinstance(exc, CloseSpider):
            return self._fatal_quietly(self.fatal_error or f"closed: {exc.reason}")
        if isinstance(exc, IgnoreRequest):  # planned against a replaced history set: not lost
            return None
        request = getattr(failure, "request", None)
        what = request.meta.get("endpoint") if request is not None else None
        if what == "esearch":
            return self._fatal_quietly(f"esearch failed: {type(exc).__name__}: {str(exc)[:200]}")
        # a lost efetch page: its records stay pending and the by-id pass asks again
        log.warning("efetch failed (%s); its records will be asked for by id", type(exc).__name__)

    def _fatal(self, message: str) -> None:
        """From a callback: Scrapy closes the spider on CloseSpider without logging it."""
        if self.fatal_error is None:
            self.fatal_error = message
        raise CloseSpider("fatal")

    def _fatal_quietly(self, message: str) -> None:
        """From an errback: close the spider ourselves, and let the failure end here."""
        if self.fatal_error is None:
            self.fatal_error = message
        if self._closing is None and getattr(self, "crawler", None) is not None:
            self._closing = deferred_from_coro(
                self.crawler.engine.close_spider_async(reason="fatal")
            )
            self._closing.addErrback(lambda f: log.debug("closing the spider: %s", f.value))


def _weighted_split(lo: date, hi: date) -> tuple[tuple[date, date], tuple[date, date]] | None:
    """Split a date window; long ones unevenly, since PubMed grows fast in recent years."""
    span = (hi - lo).days
    if span > 20 * 365:
        mid = lo + timedelta(days=int(span * 0.8))
        return (lo, mid), (mid + timedelta(days=1), hi)
    return split_window(lo, hi)
