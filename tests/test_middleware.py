"""The E-utilities middleware's retry decisions, in process: no network, no subprocess.

Each test hands the middleware one answer (or one network error) and checks what it does:
the request it sends again (with which pause), the answer it passes on, or the one fatal line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import scrapy
from scrapy.http import Request, Response
from scrapy.utils.test import get_crawler
from twisted.internet import error as neterr

import crawler.middlewares as mw_module
from crawler.middlewares import EutilsMiddleware, FatalEutilsError

URL = "http://127.0.0.1:9/entrez/eutils/"
ESEARCH_OK = (
    b'<?xml version="1.0" ?>\n<eSearchResult><Count>1</Count><IdList><Id>1</Id>'
    b"</IdList></eSearchResult>\n"
)
EFETCH_OK = b"<PubmedArticleSet>\n<PubmedArticle/>\n</PubmedArticleSet>\n"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the middleware asks for, instead of sleeping them."""
    got: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        got.append(seconds)

    monkeypatch.setattr(mw_module, "_sleep", fake_sleep)
    return got


@pytest.fixture
def mw() -> EutilsMiddleware:
    crawler = get_crawler(
        settings_dict={
            "KEA_RETRY_BACKOFF_BASE": 1.0,
            "KEA_EUTILS_URL": URL,
            "KEA_API_KEY": "SECRETKEY123",
        }
    )
    crawler.spider = scrapy.Spider.from_crawler(crawler, name="t")
    return EutilsMiddleware.from_crawler(crawler)


def request(endpoint: str = "esearch", **meta: Any) -> Request:
    return Request(
        URL + f"{endpoint}.fcgi?db=pubmed", meta={"endpoint": endpoint, **meta}, priority=10
    )


def answer(
    mw: EutilsMiddleware, req: Request, status: int, body: bytes, headers: dict | None = None
) -> Request | Response:
    resp = Response(req.url, status=status, body=body, headers=headers or {}, request=req)
    return asyncio.run(mw.process_response(req, resp))


def fail(mw: EutilsMiddleware, req: Request, exc: Exception) -> Request | None:
    return asyncio.run(mw.process_exception(req, exc))


def until_fatal(step: Any, req: Request) -> tuple[int, str]:
    """Feed the same fault to each retry until the middleware gives up; (retries, line)."""
    n = 0
    while True:
        try:
            req = step(req)
        except FatalEutilsError as err:
            return n, str(err)
        assert isinstance(req, Request)
        n += 1
        assert n < 100


def test_good_answers_pass_through(mw: EutilsMiddleware, pauses: list[float]) -> None:
    req = request()
    assert isinstance(answer(mw, req, 200, ESEARCH_OK), Response)
    assert isinstance(answer(mw, request("efetch"), 200, EFETCH_OK), Response)
    assert pauses == []


def test_429_waits_retry_after(mw: EutilsMiddleware, pauses: list[float]) -> None:
    req = request()
    again = answer(mw, req, 429, b'{"error":"API rate limit exceeded"}', {"Retry-After": "7"})
    assert isinstance(again, Request) and again.url == req.url
    assert again.dont_filter and again.priority == req.priority + 100
    assert again.meta["kea_ratelimit"] == 1
    assert pauses == [7.0]


def test_429_without_retry_after_waits_the_default(
    mw: EutilsMiddleware, pauses: list[float]
) -> None:
    again = answer(mw, request(), 429, b"")
    assert isinstance(again, Request)
    assert pauses == [2.0]


def test_rate_limit_json_inside_200_is_a_429(mw: EutilsMiddleware, pauses: list[float]) -> None:
    again = answer(mw, request(), 200, b'{"error":"API rate limit exceeded","count":"11"}')
    assert isinstance(again, Request) and again.meta["kea_ratelimit"] == 1
    assert pauses == [2.0]


def test_5xx_backs_off_exponentially_then_one_fatal_line(
    mw: EutilsMiddleware, pauses: list[float]
) -> None:
    n, line = until_fatal(lambda r: answer(mw, r, 503, b"<html>busy</html>"), request("efetch"))
    assert n == EutilsMiddleware.MAX_RETRIES
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert line == "efetch failed 6 times in a row: HTTP 503"


def test_each_kind_of_fault_counts_its_own_tries(mw: EutilsMiddleware, pauses: list[float]) -> None:
    req = answer(mw, request(), 429, b"", {"Retry-After": "1"})
    req = answer(mw, req, 500, b"")
    assert isinstance(req, Request)
    assert req.meta["kea_ratelimit"] == 1 and req.meta["kea_server"] == 1
    assert pauses == [1.0, 1.0]  # the first back-off of a 500 after a 429 is still 1 s


def test_truncated_body_is_retried(mw: EutilsMiddleware, pauses: list[float]) -> None:
    cut = EFETCH_OK[: len(EFETCH_OK) // 2]
    again = answer(mw, request("efetch"), 200, cut)
    assert isinstance(again, Request) and again.meta["kea_truncated"] == 1
    n, line = until_fatal(lambda r: answer(mw, r, 200, cut), request("efetch"))
    assert line == "efetch failed 6 times in a row: truncated or non-XML answer"


def test_error_inside_200_is_retried_then_reported(
    mw: EutilsMiddleware, pauses: list[float]
) -> None:
    body = b"<eSearchResult><ERROR>Search Backend failed: try later</ERROR></eSearchResult>"
    n, line = until_fatal(lambda r: answer(mw, r, 200, body), request())
    assert n == EutilsMiddleware.MAX_ERROR_BODY
    assert pauses == [1.0, 2.0, 4.0]
    assert line == "esearch: NCBI answered with an error: Search Backend failed: try later"


def test_error_in_a_400_answer_is_fatal_at_once(mw: EutilsMiddleware, pauses: list[float]) -> None:
    body = b"<eSearchResult><ERROR>Invalid query syntax</ERROR></eSearchResult>"
    with pytest.raises(FatalEutilsError, match="NCBI answered with an error: Invalid query"):
        answer(mw, request(), 400, body)
    assert pauses == []


def test_invalid_api_key_is_fatal_and_not_echoed(mw: EutilsMiddleware, pauses: list[float]) -> None:
    with pytest.raises(FatalEutilsError) as err:
        answer(mw, request(), 400, b'{"error":"API key invalid","api-key":"SECRETKEY123"}')
    assert "API key invalid" in str(err.value) and "SECRETKEY123" not in str(err.value)


def test_history_lost_goes_to_the_spider(mw: EutilsMiddleware, pauses: list[float]) -> None:
    req = request("efetch", search_key="all:none:-:-")
    body = b"<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>"
    passed = answer(mw, req, 200, body)
    assert isinstance(passed, Response)
    assert req.meta["history_error"] == "Unable to obtain query #1"
    assert pauses == []


def test_reset_and_timeout_back_off(mw: EutilsMiddleware, pauses: list[float]) -> None:
    again = fail(mw, request("efetch"), neterr.ConnectionLost("reset"))
    assert isinstance(again, Request) and again.meta["kea_network"] == 1
    n, line = until_fatal(lambda r: fail(mw, r, neterr.TimeoutError()), request("efetch"))
    assert n == EutilsMiddleware.MAX_RETRIES
    assert line.startswith("efetch failed 6 times in a row: TimeoutError")


def test_unreachable_server_says_so(mw: EutilsMiddleware, pauses: list[float]) -> None:
    n, line = until_fatal(lambda r: fail(mw, r, neterr.ConnectionRefusedError()), request())
    assert n == EutilsMiddleware.MAX_UNREACHABLE
    assert pauses == [1.0, 2.0, 4.0]
    assert line == f"E-utilities server unreachable at {URL} (ConnectionRefusedError)"


def test_giving_up_leaves_only_the_fatal_line(
    mw: EutilsMiddleware, pauses: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        until_fatal(lambda r: answer(mw, r, 502, b""), request())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if "Gave up" in r.getMessage()]


def test_back_off_base_is_a_setting(pauses: list[float]) -> None:
    crawler = get_crawler(settings_dict={"KEA_RETRY_BACKOFF_BASE": 0.25})
    crawler.spider = scrapy.Spider.from_crawler(crawler, name="t")
    mw = EutilsMiddleware.from_crawler(crawler)
    until_fatal(lambda r: answer(mw, r, 500, b""), request())
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert crawler.stats.get_value("kea/retries/count") == 5
    assert crawler.stats.get_value("kea/retries/max_reached") == 1


# ---- start-up: Scrapy components kea does not use are not even imported -----------------

STARTUP_PROBE = """
import sys
from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list
from crawler.settings import scrapy_settings
s = Settings(scrapy_settings(api_key=True))
for name in ("EXTENSIONS", "DOWNLOADER_MIDDLEWARES"):
    print(name, " ".join(build_component_list(s.getwithbase(name))))
print("IMPORTED", " ".join(m for m in ("aiohttp", "tldextract", "twisted.conch") if m in sys.modules))
"""


def test_unused_scrapy_components_are_not_loaded() -> None:
    """The remote-control extension (aiohttp), cookies (tldextract) and telnet (conch) cost a
    crawl ~0.6 s and ~15 MiB at start-up; the components a request needs stay."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())
    assert lines["IMPORTED"].strip() == ""
    ext, mws = lines["EXTENSIONS"].split(), lines["DOWNLOADER_MIDDLEWARES"].split()
    assert "scrapy.extensions.corestats.CoreStats" in ext  # finish_reason
    assert not any("RemoteControl" in e or "Telnet" in e for e in ext)
    for needed in (
        "DownloadTimeoutMiddleware",
        "UserAgentMiddleware",
        "HttpCompressionMiddleware",
        "HttpProxyMiddleware",
        "DownloaderStats",  # downloader/request_count, the run's request count
        "EutilsMiddleware",
    ):
        assert any(m.endswith(needed) for m in mws), needed
    assert not any(m.endswith("CookiesMiddleware") for m in mws)
