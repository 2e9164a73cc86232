"""One downloader middleware that knows how E-utilities fails and what to do about it.

429 (or the rate-limit JSON inside a 200): wait Retry-After, then retry.
5xx, timeouts, dropped connections, cut bodies: exponential back-off, then give up
with one clear line. An <ERROR> inside an answer: history errors go to the spider
(which searches again); other errors are retried twice, then reported.
While this middleware waits, the request stays in flight, and with one request
in flight at a time nothing else is sent: the wait is a real pause.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import exceptions as scrapy_exc
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import error as neterr
from twisted.internet import task
from twisted.web._newclient import ResponseFailed

from crawler.eutils import (
    error_text,
    is_history_error,
    is_rate_limited,
    looks_complete,
    redact,
    retry_after_seconds,
)

log = logging.getLogger(__name__)


class _NoGiveUpLine(logging.Filter):
    """Scrapy logs "Gave up retrying" at ERROR; our FatalEutilsError line says it once, better."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Gave up retrying")


retry_log = logging.getLogger(__name__ + ".retry")
retry_log.addFilter(_NoGiveUpLine())

ROOTS = {"esearch": b"eSearchResult", "efetch": b"PubmedArticleSet", "einfo": b"eInfoResult"}
NETWORK_ERRORS = (
    scrapy_exc.DownloadTimeoutError,
    scrapy_exc.DownloadFailedError,
    scrapy_exc.ResponseDataLossError,
    neterr.TimeoutError,
    neterr.TCPTimedOutError,
    neterr.ConnectionRefusedError,
    neterr.ConnectionDone,
    neterr.ConnectionLost,
    neterr.DNSLookupError,
    ResponseFailed,
    OSError,
)
UNREACHABLE = (
    neterr.DNSLookupError,
    neterr.ConnectionRefusedError,
    neterr.NoRouteError,
    scrapy_exc.DownloadConnectionRefusedError,
    scrapy_exc.CannotResolveHostError,
)


class FatalEutilsError(Exception):
    """The crawl cannot go on; the message is the one line the user sees."""


async def _sleep(seconds: float) -> None:
    if seconds > 0:
        from twisted.internet import reactor  # the one Scrapy installed; never at import time

        await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))


class EutilsMiddleware:
    MAX_RETRIES = 5  # transient faults: 1, 2, 4, 8, 16 s
    MAX_UNREACHABLE = 3  # DNS / refused: 1, 2, 4 s, then say the server is unreachable
    MAX_RATE_LIMITED = 20
    MAX_ERROR_BODY = 3  # non-history <ERROR> answers: 1, 2, 4 s, then a clear error

    def __init__(self, crawler: Any):
        self.crawler = crawler
        self.backoff = crawler.settings.getfloat("KEA_RETRY_BACKOFF_BASE", 1.0)

    @classmethod
    def from_crawler(cls, crawler: Any) -> EutilsMiddleware:
        return cls(crawler)

    @property
    def _secret(self) -> str | None:
        return self.crawler.settings.get("KEA_API_KEY")

    def _stat(self, key: str) -> None:
        self.crawler.stats.inc_value(f"kea/{key}")

    def process_request(self, request: Request) -> None:
        spider = self.crawler.spider
        key = request.meta.get("search_key")
        if key is not None and hasattr(spider, "is_stale"):
            if spider.is_stale(key, request.meta.get("gen", 0)):
                # planned against a history set we already replaced: don't spend a request
                raise IgnoreRequest("stale history generation")
        self._stat(f"requests/{request.meta.get('endpoint', 'other')}")
        return None

    async def _retry(
        self, request: Request, kind: str, reason: str, limit: int, wait: float | None = None
    ) -> Request:
        """A copy of request for Scrapy to send again after a pause, or the one fatal line.

        Each kind of fault counts its own tries (a request may meet a 429 and a 500): the
        kind's count is handed to get_retry_request as its retry_times.
        """
        done = request.meta.get(f"kea_{kind}", 0)
        request.meta["retry_times"] = done
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=kind,
            max_retry_times=limit,
            priority_adjust=100,
            logger=retry_log,
            stats_base_key="kea/retries",
        )
        endpoint = request.meta.get("endpoint", "request")
        if retry is None:
            if kind == "unreachable":
                raise FatalEutilsError(
                    f"E-utilities server unreachable at {self.crawler.settings.get('KEA_EUTILS_URL')}"
                    f" ({reason})"
                )
            raise FatalEutilsError(f"{endpoint} failed {limit + 1} times in a row: {reason}")
        tries = retry.meta["retry_times"]
        retry.meta[f"kea_{kind}"] = tries
        delay = wait if wait is not None else self.backoff * (2 ** (tries - 1))
        log.info("%s: %s; retry %d/%d in %.1fs", endpoint, reason, tries, limit, delay)
        await _sleep(delay)
        return retry

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        body = response.body
        status = response.status
        endpoint = request.meta.get("endpoint", "request")
        if is_rate_limited(status, body):
            self._stat("rate_limited")
            wait = retry_after_seconds(response.headers.get(b"Retry-After"))
            return await self._retry(
                request, "ratelimit", "rate limit (429)", self.MAX_RATE_LIMITED, wait=max(wait, 0.5)
            )
        msg = error_text(body) if status in (200, 400) else None
        if status == 400 and body.lstrip()[:1] == b"{" and msg and "api key" in msg.lower():
            raise FatalEutilsError(
                "NCBI rejected the API key (HTTP 400: API key invalid); check NCBI_API_KEY"
            )
        if status >= 500 or status == 408:
            return await self._retry(request, "server", f"HTTP {status}", self.MAX_RETRIES)
        if msg is not None:
            if is_history_error(msg):
                request.meta["history_error"] = redact(msg, self._secret)
                return response  # the spider searches again
            if status == 200 and request.meta.get("kea_errorbody", 0) < self.MAX_ERROR_BODY:
                return await self._retry(
                    request, "errorbody", f"ERROR answer: {msg[:200]}", self.MAX_ERROR_BODY
                )
            raise FatalEutilsError(
                f"{endpoint}: NCBI answered with an error: {redact(msg, self._secret)[:300]}"
            )
        if status != 200:
            snippet = redact(body[:200].decode("utf-8", "replace"), self._secret)
            raise FatalEutilsError(f"{endpoint}: HTTP {status} from E-utilities: {snippet!r}")
        root = ROOTS.get(endpoint)
        if root is not None and not looks_complete(body, root):
            return await self._retry(
                request, "truncated", "truncated or non-XML answer", self.MAX_RETRIES
            )
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, IgnoreRequest | FatalEutilsError):
            return None
        if isinstance(exception, UNREACHABLE):
            return await self._retry(
                request, "unreachable", type(exception).__name__, self.MAX_UNREACHABLE
            )
        if isinstance(exception, NETWORK_ERRORS):
            reason = redact(f"{type(exception).__name__}: {exception}"[:200], self._secret)
            return await self._retry(request, "network", reason, self.MAX_RETRIES)
        return None
