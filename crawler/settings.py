"""Scrapy settings: NCBI politeness as one commented block, built from the crawl config."""

from __future__ import annotations

from typing import Any

from scrapy.settings import default_settings as defaults

from crawler.ratelimit import rate_for

# NCBI: at most 3 requests/s without an API key, 10/s with one, counted over every
# E-utility together. The cap is held at send time by the download handler's limiter
# (crawler/ratelimit.py), not by DOWNLOAD_DELAY: Scrapy counts that delay from the moment
# a request leaves its queue, and under CPU load the send can come much later.

# Scrapy components kea never uses, left out of Scrapy's lists so that they are not imported:
# at start-up they cost ~0.6 s and ~15 MiB (the remote-control extension imports aiohttp,
# the cookies middleware tldextract), a third of a 9,000-record crawl's overhead over a
# bare Biopython loop. Kept: CoreStats (finish_reason), LogCount, CloseSpider, and the
# middlewares a request needs (timeout, headers, user agent, gzip, redirect, proxy, stats).
UNUSED_EXTENSIONS = (
    "scrapy.extensions.remote_control.RemoteControl",
    "scrapy.extensions.telnet.TelnetConsole",
    "scrapy.extensions.memusage.MemoryUsage",
    "scrapy.extensions.memdebug.MemoryDebugger",
    "scrapy.extensions.feedexport.FeedExporter",
    "scrapy.extensions.logstats.LogStats",
    "scrapy.extensions.spiderstate.SpiderState",
    "scrapy.extensions.throttle.AutoThrottle",
)
UNUSED_DOWNLOADER_MIDDLEWARES = (
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware",
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware",
    "scrapy.downloadermiddlewares.retry.RetryMiddleware",  # EutilsMiddleware retries
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware",
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
    "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware",
)


def _without(base: dict[str, int], unused: tuple[str, ...]) -> dict[str, int]:
    """Scrapy's default component list minus ours to drop (new Scrapy components stay on)."""
    return {path: order for path, order in base.items() if path not in unused}


DOWNLOAD_TIMEOUT = 60.0  # an efetch of 500 records can take NCBI half a minute


def scrapy_settings(
    *, api_key: bool, backoff_base: float = 1.0, log_level: str = "WARNING"
) -> dict[str, Any]:
    return {
        "BOT_NAME": "kea",
        "USER_AGENT": "kea/0.1 (Ketamine Evidence Atlas; +https://pubmed.ncbi.nlm.nih.gov/)",
        "ROBOTSTXT_OBEY": False,  # an API, not a web site
        # -- politeness -----------------------------------------------------------
        "CONCURRENT_REQUESTS": 1,  # one request in flight, ever
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "KEA_MAX_RATE": rate_for(api_key),  # requests/s, enforced in handlers.py
        "DOWNLOAD_DELAY": 0,  # the limiter spaces sends; a second, earlier gate only adds waits
        "DOWNLOAD_DELAY_JITTER": 0,
        "AUTOTHROTTLE_ENABLED": False,  # it does not know a hard req/s cap
        # -- retries: our EutilsMiddleware owns them (Retry-After, back-off, truncation,
        #    errors inside 200 answers) and build each retry with Scrapy's get_retry_request;
        #    Scrapy's own RetryMiddleware would double them.
        "RETRY_ENABLED": False,
        "KEA_RETRY_BACKOFF_BASE": backoff_base,  # 1, 2, 4, 8, 16 s with the default
        "DOWNLOAD_TIMEOUT": DOWNLOAD_TIMEOUT,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,  # a cut transfer is an error, never a short batch
        "DOWNLOAD_HANDLERS": {  # no unpaced resend after a dropped connection (handlers.py)
            "http": "crawler.handlers.PoliteHTTP11DownloadHandler",
            "https": "crawler.handlers.PoliteHTTP11DownloadHandler",
        },
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.middlewares.EutilsMiddleware": 560,
        },
        # the *_BASE lists without kea's unused components: naming one, even as None in
        # EXTENSIONS, makes Scrapy import it (it normalises every key by loading it)
        "EXTENSIONS_BASE": _without(defaults.EXTENSIONS_BASE, UNUSED_EXTENSIONS),
        "DOWNLOADER_MIDDLEWARES_BASE": _without(
            defaults.DOWNLOADER_MIDDLEWARES_BASE, UNUSED_DOWNLOADER_MIDDLEWARES
        ),
        "ITEM_PIPELINES": {
            "crawler.item_pipelines.ValidateBatchPipeline": 100,
            "crawler.item_pipelines.StoreBatchPipeline": 500,
        },
        # Fetch in the order planned (searches first, then pages in order).
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": log_level,
        "LOG_INSTALL_ROOT_HANDLER": True,
        "LOG_FORMAT": "%(levelname)s: %(message)s",
    }
