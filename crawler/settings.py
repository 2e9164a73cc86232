"""Scrapy settings: NCBI politeness as one commented block, built from the crawl config."""

from __future__ import annotations

from typing import Any

# NCBI: at most 3 requests/s without an API key, 10/s with one, counted over every
# E-utility together. Biopython spaces calls 0.37 s ("0.3333 sometimes hit the limit");
# we do the same, and 0.12 s with a key.
DELAY_NO_KEY = 0.37
DELAY_WITH_KEY = 0.12  # 8.3 req/s: a margin for network jitter under the hard 10/s cap


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
        "DOWNLOAD_DELAY": DELAY_WITH_KEY if api_key else DELAY_NO_KEY,
        "DOWNLOAD_DELAY_JITTER": 0,  # Scrapy's default ±50 % would break the hard cap
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
