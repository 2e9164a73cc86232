"""Scrapy's HTTP/1.1 download handler without Twisted's silent resend.

Twisted's connection pool sends an idempotent request again, at once, when a reused
connection drops before the answer. That resend skips DOWNLOAD_DELAY (the stand-in saw a
fourth request within one second after a reset) and NCBI's hard 3-per-second cap with it.
Without it, the dropped request fails, and EutilsMiddleware retries it after a back-off.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler


class PoliteHTTP11DownloadHandler(HTTP11DownloadHandler):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pool.retryAutomatically = False
