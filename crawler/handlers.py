"""Scrapy's HTTP/1.1 download handler, paced at send time and without Twisted's silent resend.

Every request Scrapy sends (first tries, retries, re-searches) passes through
``download_request`` here, immediately before the agent writes it: the one place where
NCBI's cap can be held against real send times (crawler/ratelimit.py says how).

Twisted's connection pool sends an idempotent request again, at once, when a reused
connection drops before the answer. That resend would skip the limiter (the stand-in saw a
fourth request within one second after a reset). Without it, the dropped request fails,
and EutilsMiddleware retries it after a back-off, through the limiter like any other.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

from crawler.ratelimit import RATE_NO_KEY, SendLimiter

POLL = 0.02  # seconds between looks while the window is full of requests in flight

# One limiter per crawl, shared by the http and https handlers (Scrapy builds one each).
_LIMITERS: weakref.WeakKeyDictionary[Any, SendLimiter] = weakref.WeakKeyDictionary()


def limiter_for(crawler: Any) -> SendLimiter:
    """The crawl's limiter, at KEA_MAX_RATE requests/s (NCBI's no-key cap by default)."""
    found = _LIMITERS.get(crawler)
    if found is None:
        found = SendLimiter(crawler.settings.getfloat("KEA_MAX_RATE", RATE_NO_KEY))
        _LIMITERS[crawler] = found
    return found


async def _pause(seconds: float) -> None:
    from twisted.internet import reactor  # the one Scrapy installed; never at import time

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))


class PoliteHTTP11DownloadHandler(HTTP11DownloadHandler):
    def __init__(self, crawler: Any):
        super().__init__(crawler)
        self._pool.retryAutomatically = False
        self.limiter = limiter_for(crawler)

    async def download_request(self, request: Request) -> Response:
        waited = 0.0
        while (wait := self.limiter.delay()) > 0:
            wait = POLL if math.isinf(wait) else wait
            await _pause(wait)
            waited += wait
        if waited and self._crawler.stats is not None:
            self._crawler.stats.inc_value("kea/limiter/waited_s", round(waited, 3))
        entry = self.limiter.sent()
        try:
            return await super().download_request(request)
        finally:
            self.limiter.finished(entry)
