"""End-to-end crawls of the offline stand-in with the real `kea crawl`, exact counts and contents.

A subprocess each: a Twisted reactor cannot be restarted in one process. So only what needs the
whole crawl is here; the middleware's retry decisions (test_middleware.py), the spider's
splitting (test_spider.py) and input checks (test_spider.py) run in process.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import StandinRecord, revise_record, synthetic_records
from crawler.standin.server import StandinServer
from pipeline.parse import parse_efetch
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "KEYabc123SECRETzz"


def kea(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    full_env.update({"NCBI_EMAIL": "tests@example.org", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "kea.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def crawl(db: Path, url: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return kea("crawl", "--db", str(db), "--eutils-url", url, "--quiet", *extra, env=env)


# `kea crawl` with a short retry back-off (CrawlConfig.backoff_base), so fault tests are quick.
FAST_CLI = (
    "import sys, dataclasses, crawler.run as r, kea.cli as c; real = r.run_crawl; "
    "r.run_crawl = lambda cfg: real(dataclasses.replace(cfg, backoff_base=0.05)); "
    "sys.exit(c.main(sys.argv[1:]))"
)


def fast_crawl(db: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NCBI_API_KEY"}
    env["NCBI_EMAIL"] = "tests@example.org"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            FAST_CLI,
            "crawl",
            "--db",
            str(db),
            "--eutils-url",
            url,
            "--quiet",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stored(db: Path) -> dict[str, dict]:
    with Store(db) as s:
        return {
            a.pmid: {
                "title": a.title,
                "journal": a.journal,
                "doi": a.doi,
                "year": a.pub_year,
                "authors": a.author_names,
                "abstract": a.abstract,
                "revised": a.revised_date,
            }
            for a in s.iter_articles()
        }


def assert_same_records(db: Path, records: list[StandinRecord]) -> None:
    got = stored(db)
    assert sorted(got, key=int) == sorted((r.pmid for r in records), key=int)
    for r in records:
        g = got[r.pmid]
        assert g["title"] == r.fields["title"]
        assert g["journal"] == r.fields["journal"]
        assert g["doi"] == r.fields["doi"]
        assert g["year"] == r.fields["year"]
        assert g["authors"] == r.fields["authors"]
        assert g["abstract"] == r.fields["abstract"]


def efetched_records(server: StandinServer) -> int:
    return sum(
        r.n_records_returned for r in server.requests if r.endpoint == "efetch" and r.status == 200
    )


def test_full_crawl_exact_and_polite(tmp_db: Path) -> None:
    records = synthetic_records(1200, seed=1)
    with StandinServer(records) as srv:
        res = crawl(tmp_db, srv.url, "--batch-size", "500")
        assert res.returncode == 0, res.stderr
        assert "1200 fetched (1200 new" in res.stdout
        # the lower bound: 1 esearch + ceil(1200/500) efetch
        assert srv.count("esearch") == 1
        assert srv.count("efetch") == 3
        assert srv.max_requests_in_window(1.0) <= 3
        for r in srv.requests:
            assert r.params.get("tool") == "kea"
            assert r.params.get("email") == "tests@example.org"
    assert_same_records(tmp_db, records)
    with Store(tmp_db) as s:
        run = s.runs(1)[0]
        assert run["status"] == "completed" and run["total"] == 1200 and run["requests"] == 4


def test_paging_past_the_9999_window_with_api_key(tmp_db: Path, tmp_path: Path) -> None:
    # lean records (no abstract, authors, MeSH): this test is about paging, not content
    lean = ("pmid", "title", "journal", "year", "month", "day", "entrez_date", "revised_date")
    records = [
        replace(r, fields={k: r.fields[k] for k in lean}) for r in synthetic_records(10_100, seed=2)
    ]
    with StandinServer(records, api_keys={SECRET_KEY}) as srv:
        res = crawl(tmp_db, srv.url, "--batch-size", "2000", env={"NCBI_API_KEY": SECRET_KEY})
        assert res.returncode == 0, res.stderr
        assert srv.max_requests_in_window(1.0) <= 10
        assert srv.count("esearch") > 1  # had to split by date
        # every esearch stayed inside the window NCBI pages through
        for r in srv.requests:
            if r.endpoint == "esearch":
                assert int(r.params.get("retmax", "20")) <= 9999
    with Store(tmp_db) as s:
        assert s.count() == 10_100
        n_rows = s.conn.execute("SELECT COUNT(DISTINCT pmid), COUNT(*) FROM articles").fetchone()
        assert n_rows[0] == n_rows[1] == 10_100
    # the key never lands in the database or the output
    assert SECRET_KEY not in res.stdout + res.stderr
    for f in tmp_db.parent.glob(tmp_db.name + "*"):
        assert SECRET_KEY.encode() not in f.read_bytes()


def test_faults_429_5xx_truncation_errors_history_loss(tmp_db: Path) -> None:
    records = synthetic_records(900, seed=3)
    faults = (
        "esearch:1=429,efetch:1=500,efetch:2=truncate,efetch:3=error200,"
        "efetch:4=reset,efetch:5=history_lost,efetch:6=slow:0.5,efetch:7=503,"
        "efetch:8=ratelimit200"
    )
    with StandinServer(records, faults=faults, retry_after=0.5) as srv:
        res = fast_crawl(tmp_db, srv.url, "--batch-size", "200")
        assert res.returncode == 0, res.stderr
        assert srv.max_requests_in_window(1.0) <= 3
        # history lost once: exactly one extra search
        assert srv.count("esearch") == 3  # 429 answer + first search + the repeat
    assert_same_records(tmp_db, records)


def _count_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_db: Path) -> None:
    records = synthetic_records(600, seed=5)
    slow = ",".join(f"efetch:{i}=slow:0.3" for i in range(1, 7))  # the first run's pages
    with StandinServer(records, faults=slow) as srv:
        env = {**os.environ, "NCBI_EMAIL": "tests@example.org"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kea.cli",
                "crawl",
                "--db",
                str(tmp_db),
                "--eutils-url",
                srv.url,
                "--quiet",
                "--batch-size",
                "100",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while _count_rows(tmp_db) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = _count_rows(tmp_db)
        assert 0 < before < 600
        fetched_first = efetched_records(srv)
        res = crawl(tmp_db, srv.url, "--batch-size", "100")
        assert res.returncode == 0, res.stderr
        assert "resumed" in res.stdout
        refetched = efetched_records(srv) - fetched_first
        # the second run fetches what was missing, plus at most the batch in flight at the kill
        assert 600 - before <= refetched <= 600 - before + 100
    assert_same_records(tmp_db, records)


def test_incremental_second_crawl_fetches_only_changes(tmp_db: Path) -> None:
    old = synthetic_records(400, seed=6, end_date=date(2024, 12, 31))
    with StandinServer(old) as srv:
        assert crawl(tmp_db, srv.url).returncode == 0
        first = efetched_records(srv)
        assert first == 400
        today = date.today()
        new = synthetic_records(
            40, seed=7, start_pmid=95_000_001, start_date=today - timedelta(days=3), end_date=today
        )
        revised = [revise_record(r, today) for r in old[100:125]]
        srv.upsert_records(new + revised)
        srv.delete_records([old[5].pmid])
        res = crawl(tmp_db, srv.url)
        assert res.returncode == 0, res.stderr
        assert "incremental" in res.stdout
        second = efetched_records(srv) - first
        # the watermark is the newest revision held (2024-12-31 at most): records last
        # revised on that very day are checked again, nothing else unchanged is fetched
        max_rev = max(r.modified_date for r in old)
        same_day = sum(1 for r in old if r.modified_date == max_rev and r not in old[100:125])
        assert second == 40 + 25 + same_day
    got = stored(tmp_db)
    assert len(got) == 440  # the deleted PMID is not refetched by this crawl; it stays stored
    for r in revised:
        assert got[r.pmid]["title"] == r.fields["title"]
    for r in new:
        assert got[r.pmid]["title"] == r.fields["title"]


def test_bad_input_one_clear_line_nothing_lost(tmp_db: Path) -> None:
    """The other bad inputs are checked in process (test_spider.py), before any request too."""
    records = synthetic_records(20, seed=10)
    with Store(tmp_db) as s:
        s.upsert_batch(parse_efetch(efetch_document(r.xml() for r in records)).articles, [])
    with StandinServer(records) as srv:
        n_requests = len(srv.requests)
        res = crawl(tmp_db, srv.url, "--query", "(ketamine AND depression")
        assert res.returncode == 2
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        assert lines == [
            "kea crawl: error: malformed query: 1 unclosed '(' in '(ketamine AND depression'"
        ], res.stderr
        assert len(srv.requests) == n_requests  # rejected before any request
    assert len(stored(tmp_db)) == 20


def test_invalid_api_key_is_reported_and_not_echoed(tmp_db: Path) -> None:
    with StandinServer(synthetic_records(10), api_keys={"the-right-key"}) as srv:
        res = crawl(tmp_db, srv.url, env={"NCBI_API_KEY": SECRET_KEY})
    assert res.returncode == 2
    assert "API key invalid" in res.stderr
    assert SECRET_KEY not in res.stdout + res.stderr


def test_error_inside_200_is_an_error_not_an_empty_result(tmp_db: Path) -> None:
    with StandinServer(synthetic_records(10), faults="esearch:1-4=error200") as srv:
        res = fast_crawl(tmp_db, srv.url)
        assert srv.count("esearch") == 4  # the first answer and three retries
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("kea crawl: error: esearch: NCBI answered with an error: "), res.stderr
    with Store(tmp_db) as s:
        assert s.count() == 0 and s.runs(1)[0]["status"] == "failed"


def test_unwritable_database_path(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root may write anywhere; a path under a regular file is unwritable for everyone
        blocker = tmp_path / "file"
        blocker.write_text("x")
        res = kea(
            "crawl", "--db", str(blocker / "kea.sqlite"), "--eutils-url", "http://127.0.0.1:9/"
        )
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            res = kea(
                "crawl", "--db", str(ro / "x" / "kea.sqlite"), "--eutils-url", "http://127.0.0.1:9/"
            )
        finally:
            ro.chmod(0o700)
    assert res.returncode == 2
    assert "kea.sqlite" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_offline_fallback_uses_demo_records(tmp_db: Path) -> None:
    res = kea(
        "crawl",
        "--db",
        str(tmp_db),
        "--eutils-url",
        "http://127.0.0.1:9/entrez/eutils/",
        "--offline-fallback",
        "--quiet",
    )
    assert res.returncode == 0, res.stderr
    assert "unreachable" in res.stderr and "DEMO" in res.stderr
    assert "DEMO DATA" in res.stdout
    with Store(tmp_db) as s:
        assert s.is_demo
        titles = [a.title for a in s.iter_articles()]
    assert len(titles) >= 60 and all(t.startswith("[Demo] ") for t in titles)
