"""Issue 11, crawl side: the key never leaks, a bad answer is never a success, one crawl per
database, run statistics survive kills, fatal errors are one line, signals stop a crawl at once.

End-to-end checks run the real `kea crawl` in a subprocess, against the stand-in (its fault
plans) or, for answers the stand-in cannot give (malformed esearch ids, extra records), a tiny
scripted server here. Several faults share one crawl where they can, to keep this file quick.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from scrapy.http import Request, Response

from crawler.eutils import EutilsAnswerError, parse_esearch, redact_url
from crawler.item_pipelines import ValidateBatchPipeline
from crawler.items import FetchedBatch
from crawler.run import CrawlConfig, RunPlan
from crawler.spiders.pubmed import EutilsRequest, PubmedSpider, SearchSpec
from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import synthetic_records
from crawler.standin.server import StandinServer
from pipeline.errors import CrawlError
from pipeline.parse import parse_efetch
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
KEY = "KEYleak9876SECRETqq"

# `kea crawl` with a short back-off; LOG=DEBUG makes Scrapy print every request it makes
# ("Crawled (200) <GET ...>", retries), the widest net for a leaked key.
CLI = (
    "import os, sys, dataclasses, crawler.run as r, crawler.settings as st, kea.cli as c\n"
    "real = r.run_crawl\n"
    "r.run_crawl = lambda cfg: real(dataclasses.replace(cfg, backoff_base=0.02))\n"
    "if os.environ.get('LOG'):\n"
    "    s0 = st.scrapy_settings\n"
    "    st.scrapy_settings = lambda **k: s0(**{**k, 'log_level': os.environ['LOG']})\n"
    "sys.exit(c.main(sys.argv[1:]))\n"
)


def kea(*args: str, key: str | None = None, log: str | None = None, **popen: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "LOG")}
    env["NCBI_EMAIL"] = "tests@example.org"
    if key:
        env["NCBI_API_KEY"] = key
    if log:
        env["LOG"] = log
    cmd = [sys.executable, "-c", CLI, *args]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, **popen)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def crawl(db: Path, url: str, *extra: str, **kw: Any) -> subprocess.CompletedProcess:
    return kea("crawl", "--db", str(db), "--eutils-url", url, "--quiet", *extra, **kw)


def no_key_anywhere(db: Path, *outputs: str) -> None:
    for out in outputs:
        assert KEY not in out
    for f in db.parent.glob(db.name + "*"):
        assert KEY.encode() not in f.read_bytes(), f


def one_line(res: subprocess.CompletedProcess, starts: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith(starts), res.stderr


def run_row(db: Path) -> sqlite3.Row:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM crawl_runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        con.close()


# -- a scripted E-utilities server: answers chosen by the test ---------------------------
@contextmanager
def scripted(answer: Callable[[str, dict[str, str]], bytes]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, query: str) -> None:
            name = urlsplit(self.path).path.rsplit("/", 1)[-1].removesuffix(".fcgi")
            body = answer(name, dict(parse_qsl(query)))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._reply(urlsplit(self.path).query)

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            self._reply(self.rfile.read(n).decode())

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/entrez/eutils/"
    finally:
        srv.shutdown()
        srv.server_close()


def esearch_xml(count: int | str, ids: list[str] | None) -> bytes:
    id_list = (
        "" if ids is None else "<IdList>" + "".join(f"<Id>{i}</Id>" for i in ids) + "</IdList>"
    )
    return (
        f"<eSearchResult><Count>{count}</Count><RetMax>{len(ids or [])}</RetMax>"
        f"<RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>MCID_X</WebEnv>{id_list}"
        "</eSearchResult>"
    ).encode()


# -- #1 the API key never leaks ---------------------------------------------------------
def test_the_key_is_not_in_a_printed_request() -> None:
    url = "http://h/esearch.fcgi?db=pubmed&tool=kea&api_key=" + KEY + "&email=x"
    for req in (EutilsRequest(url), EutilsRequest(url).replace(priority=5)):
        assert KEY not in repr(req) and KEY not in str(req) and "api_key=***" in str(req)
    assert redact_url("http://h/?API_KEY=abc#f") == "http://h/?API_KEY=***#f"
    assert redact_url("https://me:pw@h/x/") == "https://me:***@h/x/"


def test_a_key_written_into_the_url_is_not_stored_or_printed(tmp_db: Path) -> None:
    res = crawl(tmp_db, f"http://127.0.0.1:1/entrez/eutils/?api_key={KEY}")
    one_line(res, "kea crawl: error: E-utilities server unreachable at http://127.0.0.1:1/")
    assert "api_key=***" in res.stderr
    no_key_anywhere(tmp_db, res.stdout, res.stderr)


def test_the_key_never_leaks_on_any_failure_path(tmp_path: Path) -> None:
    """7 failure paths, each read for the key in stdout, stderr, the store and an export."""
    records = synthetic_records(300, seed=21)
    checked = 0
    # 1. unreachable server: one clear line, no "Error downloading" traceback (#8)
    db = tmp_path / "unreachable.sqlite"
    res = crawl(db, "http://127.0.0.1:1/", key=KEY)
    one_line(res, "kea crawl: error: E-utilities server unreachable at http://127.0.0.1:1/")
    no_key_anywhere(db, res.stdout, res.stderr)
    checked += 1
    # 2-4. retries exhausted: 5xx, truncation, ERROR inside a 200 answer
    for name, faults, line in (
        ("5xx", "efetch:1-6=500", "kea crawl: error: efetch failed 6 times in a row: HTTP 500"),
        ("cut", "efetch:1-6=truncate", "kea crawl: error: efetch failed 6 times in a row"),
        ("err200", "esearch:1-4=error200", "kea crawl: error: esearch: NCBI answered with an"),
    ):
        db = tmp_path / f"{name}.sqlite"
        with StandinServer(records, faults=faults) as srv:
            res = crawl(db, srv.url, "--batch-size", "100", key=KEY)
        one_line(res, line)
        no_key_anywhere(db, res.stdout, res.stderr)
        checked += 1
    # 5. an invalid key
    db = tmp_path / "badkey.sqlite"
    with StandinServer(records, api_keys={"the-right-one"}) as srv:
        res = crawl(db, srv.url, key=KEY)
    one_line(res, "kea crawl: error: NCBI rejected the API key")
    no_key_anywhere(db, res.stdout, res.stderr)
    checked += 1
    # 6-7. faults a crawl survives (history loss, retried 5xx/cut/ERROR/reset), logged at DEBUG
    db = tmp_path / "survived.sqlite"
    faults = "efetch:1=history_lost,efetch:2=500,efetch:3=truncate,efetch:4=error200,efetch:5=reset"
    with StandinServer(records, faults=faults, api_keys={KEY}) as srv:
        res = crawl(db, srv.url, "--batch-size", "100", key=KEY, log="DEBUG")
        assert res.returncode == 0, res.stderr[-2000:]
        assert srv.count("esearch") == 2  # the history loss was met and searched again
    assert "api_key=***" in res.stderr  # the requests were logged, with the key masked
    exported = kea("export", "--db", str(db), "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    no_key_anywhere(db, res.stdout, res.stderr, exported.stdout, exported.stderr)
    checked += 2
    # 8. parse retries: an answer that ends well but does not parse, three times over
    db = tmp_path / "parse.sqlite"
    ids = [r.pmid for r in records[:5]]
    bad_fetch = b"<?xml version='1.0'?><PubmedArticleSet><PubmedArticle><x></PubmedArticleSet>"
    with scripted(lambda ep, p: esearch_xml(5, ids) if ep == "esearch" else bad_fetch) as url:
        res = crawl(db, url, key=KEY, log="DEBUG")
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith("kea crawl: error: efetch answer could not be parsed 4 times")
    )
    no_key_anywhere(db, res.stdout, res.stderr)
    checked += 1
    assert checked == 8


# -- #2 a bad esearch answer is never a success -----------------------------------------
@pytest.mark.parametrize(
    "ids", [["1001", "abc"], ["1002.5"], ["1" * 23], ["١٠٠١"], ["-5"], ["0"], [" "]]
)
def test_esearch_ids_that_are_not_pmids_are_an_error(ids: list[str]) -> None:
    with pytest.raises(EutilsAnswerError, match="not a PMID"):
        parse_esearch(esearch_xml(len(ids), ids))


@pytest.mark.parametrize("count", ["many", "3.0", "-1", "1" * 30, "١٠"])
def test_esearch_count_that_is_not_a_number_is_an_error(count: str) -> None:
    with pytest.raises(EutilsAnswerError, match="is not a number"):
        parse_esearch(esearch_xml(count, ["1001"]))


def _spider(tmp_db: Path) -> tuple[PubmedSpider, RunPlan, Store]:
    store = Store(tmp_db)
    plan = RunPlan(CrawlConfig(eutils_url="http://127.0.0.1:9/", email="t@e.org"), store)
    return PubmedSpider(plan=plan), plan, store


def _answer(spider: PubmedSpider, body: bytes) -> list[Any]:
    spec = SearchSpec("all")
    from crawler.spiders.pubmed import SearchState

    spider.searches[spec.key] = SearchState(spec)
    spider.outstanding = 1
    req = Request("http://127.0.0.1:9/esearch.fcgi", meta={"search_key": spec.key, "gen": 0})
    return list(spider.parse_search(Response(req.url, body=body, request=req)))


@pytest.mark.parametrize(("count", "ids"), [(50, ["1001", "1002", "1003"]), (3, None)])
def test_a_count_larger_than_the_list_is_reported_missing(
    tmp_db: Path, count: int, ids: list[str] | None
) -> None:
    spider, plan, store = _spider(tmp_db)
    try:
        _answer(spider, esearch_xml(count, ids))
        gap = count - len(ids or [])
        assert sum(spider.unlisted.values()) == gap
        assert any(f"counted {count} records but listed" in w for w in spider.warnings)
        assert spider.fetch_planned
    finally:
        store.close()


def test_targets_that_cannot_be_stored_leave_the_run_unplanned(tmp_db: Path) -> None:
    spider, plan, store = _spider(tmp_db)

    def boom(by_role: dict[str, list[str]]) -> None:
        raise ValueError("cannot store the targets")

    plan.record_targets = boom  # type: ignore[method-assign]
    try:
        with pytest.raises(ValueError):
            _answer(spider, esearch_xml(2, ["1001", "1002"]))
        assert not spider.fetch_planned  # so the run ends "searches did not complete"
    finally:
        store.close()


def test_bad_esearch_answers_end_to_end(tmp_path: Path) -> None:
    """A bad id: a failed run, one line, exit 2. Count above the list: completed, gap missing."""
    records = synthetic_records(3, seed=22)
    good = [r.pmid for r in records]
    fetch = efetch_document(r.xml() for r in records)
    db = tmp_path / "bad.sqlite"
    with scripted(
        lambda ep, p: esearch_xml(2, ["1001", "1002.5"]) if ep == "esearch" else fetch
    ) as u:
        res = crawl(db, u)
    one_line(res, "kea crawl: error: esearch failed: esearch listed '1002.5', not a PMID")
    assert run_row(db)["status"] == "failed"
    db = tmp_path / "gap.sqlite"
    with scripted(lambda ep, p: esearch_xml(50, good) if ep == "esearch" else fetch) as u:
        res = crawl(db, u)
    assert res.returncode == 0, res.stderr
    assert "3 fetched (3 new, 0 updated, 0 deleted, 47 missing)" in res.stdout
    assert "esearch counted 50 records but listed 3" in res.stderr


# -- #3 records nobody asked for are not stored; a rejected one is counted missing ----------
def test_records_outside_the_targets_are_not_stored(tmp_db: Path) -> None:
    records = synthetic_records(4, seed=23)
    arts = parse_efetch(efetch_document(r.xml() for r in records)).articles

    class Plan:
        def targets(self) -> set[str]:
            return {records[0].pmid, records[1].pmid}

    class Crawler:
        spider = type("S", (), {"plan": Plan()})()

    item = ValidateBatchPipeline(Crawler()).process_item(
        FetchedBatch(articles=arts, deleted_pmids=[records[2].pmid, records[0].pmid])
    )
    assert [a.pmid for a in item.articles] == [records[0].pmid, records[1].pmid]
    assert item.deleted_pmids == [records[0].pmid]


def test_extra_and_rejected_records_end_to_end(tmp_path: Path) -> None:
    records = synthetic_records(4, seed=24)
    asked = [r.pmid for r in records[:3]]  # records[3] is served though nobody asked for it
    xmls = [r.xml() for r in records]
    xmls[2] = xmls[2].replace(f">{records[2].pmid}</PMID>", f">{records[2].pmid}²</PMID>", 1)
    fetch = efetch_document(xmls)
    db = tmp_path / "extra.sqlite"
    with scripted(lambda ep, p: esearch_xml(3, asked) if ep == "esearch" else fetch) as u:
        res = crawl(db, u)
    assert res.returncode == 0, res.stderr
    with Store(db) as s:
        assert sorted(a.pmid for a in s.iter_articles()) == sorted(asked[:2])
    assert "(2 new, 0 updated, 0 deleted, 1 missing)" in res.stdout, res.stdout


# -- #4 one crawl per database ---------------------------------------------------------
def test_a_second_crawl_on_one_database_is_refused_and_touches_nothing(tmp_db: Path) -> None:
    records = synthetic_records(300, seed=25)
    with StandinServer(records, faults="efetch:1=slow:6") as srv:
        first = crawl_popen(tmp_db, srv.url, "--batch-size", "100")
        try:  # the first crawl is waiting for its first page while the second one starts
            _wait(lambda: srv.count("esearch") >= 1)
            searches = srv.count("esearch")
            second = crawl(tmp_db, srv.url, "--batch-size", "100")
            one_line(second, f"kea crawl: error: another crawl is running on {tmp_db}")
            assert srv.count("esearch") == searches  # the second sent nothing (it would search)
            assert run_row(tmp_db)["id"] == 1 and run_row(tmp_db)["error"] is None
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        # a killed crawl leaves no stale lock behind: the next one resumes and completes
        res = crawl(tmp_db, srv.url, "--batch-size", "100")
        assert res.returncode == 0, res.stderr
        assert "resumed" in res.stdout


def test_the_lock_is_taken_before_the_store_is_opened(tmp_db: Path) -> None:
    fd = os.open(str(tmp_db) + ".crawl-lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        res = crawl(tmp_db, "http://127.0.0.1:1/")
        one_line(res, "kea crawl: error: another crawl is running on")
        assert not tmp_db.exists()  # nothing was touched
    finally:
        os.close(fd)


# -- #11 requests are counted as the crawl goes ------------------------------------------
def test_requests_are_counted_in_each_batch_so_a_kill_keeps_them(tmp_db: Path) -> None:
    records = synthetic_records(600, seed=26)
    slow = ",".join(f"efetch:{i}=slow:0.3" for i in range(1, 7))
    with StandinServer(records, faults=slow) as srv:
        proc = crawl_popen(tmp_db, srv.url, "--batch-size", "100")
        _wait(lambda: _rows(tmp_db) >= 300)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen = len(srv.requests)
    counted = run_row(tmp_db)["requests"]
    # every request sent before the last stored batch, which may include the one in flight
    # at the kill (the stand-in logs a request once answered); before the fix: 0
    assert seen - 2 <= counted <= seen + 1, (counted, seen)


# -- #8/#12 one-line errors, URLs, timeouts, signals -------------------------------------
def test_url_checks() -> None:
    cfg = CrawlConfig(eutils_url="HTTP://Example.org/entrez/eutils/").validated()
    assert cfg.eutils_url == "http://Example.org/entrez/eutils/"
    for bad, why in (
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://h:99999/", "is not a valid URL"),
        ("http:///x", "names no host"),
        ("ftp://h/", "must start with http:// or https://"),
    ):
        with pytest.raises(CrawlError, match=why.replace("(", r"\(").replace(")", r"\)")):
            CrawlConfig(eutils_url=bad).validated()


def test_bad_url_is_one_line_from_the_cli(tmp_db: Path) -> None:
    res = crawl(tmp_db, "http://[::1")
    one_line(res, "kea crawl: error: E-utilities URL 'http://[::1' is not a valid URL")


def test_a_request_times_out_after_30_seconds(
    tmp_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scrapy.crawler

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake(settings: dict[str, Any]) -> None:
        seen.update(settings)
        raise Stop

    monkeypatch.setattr(scrapy.crawler, "CrawlerProcess", fake)
    from crawler.run import run_crawl

    with pytest.raises(Stop):
        run_crawl(CrawlConfig(db=str(tmp_db), eutils_url="http://127.0.0.1:9/", email="t@e.org"))
    assert seen["DOWNLOAD_TIMEOUT"] <= 30


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_hung_crawl_at_once(tmp_db: Path, sig: signal.Signals) -> None:
    arrived, release = threading.Event(), threading.Event()

    def hang(ep: str, p: dict[str, str]) -> bytes:
        arrived.set()
        release.wait(30)  # a hung server: the answer would come after the 30 s timeout
        return esearch_xml(0, [])

    with scripted(hang) as url:
        proc = crawl_popen(tmp_db, url)
        try:
            assert arrived.wait(60)
            time.sleep(0.3)
            t0 = time.monotonic()
            proc.send_signal(sig)
            _out, err = proc.communicate(timeout=40)
            took = time.monotonic() - t0
        finally:
            release.set()
    assert took < 3, took  # before: Scrapy waited for the request in flight (~30 s)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [
        f"kea crawl: error: crawl stopped by {sig.name}; what was fetched is stored: "
        "run the same command again to resume"
    ]


# -- helpers -------------------------------------------------------------------------------
def crawl_popen(db: Path, url: str, *extra: str) -> subprocess.Popen:
    return kea(
        "crawl",
        "--db",
        str(db),
        "--eutils-url",
        url,
        "--quiet",
        *extra,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait(cond: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0
