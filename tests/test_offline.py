"""`kea crawl --offline-fallback` decisions that need no crawl (the crawl itself: test_crawl.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import kea.offline as offline
from crawler.run import CrawlConfig
from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import synthetic_records
from pipeline.parse import parse_efetch
from pipeline.store import Store

UNREACHABLE = "http://127.0.0.1:9/entrez/eutils/"  # the discard port: nothing listens


def _seed(db: Path, n: int, *, is_demo: bool) -> None:
    records = synthetic_records(n, seed=4)
    with Store(db) as s:
        s.upsert_batch(
            parse_efetch(efetch_document(r.xml() for r in records)).articles, [], is_demo=is_demo
        )


def test_real_records_are_kept_when_ncbi_is_away(
    tmp_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(tmp_db, 3, is_demo=False)
    monkeypatch.setattr(offline, "run_crawl", lambda cfg: pytest.fail("must not crawl"))
    summary = offline.crawl_or_demo(CrawlConfig(db=str(tmp_db), eutils_url=UNREACHABLE))
    assert summary.status == "skipped" and summary.stored == 3 and not summary.is_demo
    err = capsys.readouterr().err
    assert err.startswith(f"E-utilities unreachable at {UNREACHABLE} (")
    assert err.rstrip().endswith("keeping the 3 records already stored")


def test_unreachable_with_no_real_records_crawls_the_demo_standin(
    tmp_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(tmp_db, 2, is_demo=True)  # demo records are not worth keeping over a fresh demo crawl
    seen: list[CrawlConfig] = []
    monkeypatch.setattr(offline, "run_crawl", lambda cfg: seen.append(cfg) or "done")
    cfg = CrawlConfig(db=str(tmp_db), eutils_url=UNREACHABLE, api_key="k")
    assert offline.crawl_or_demo(cfg) == "done"
    (used,) = seen
    assert used.is_demo and used.api_key is None
    assert used.eutils_url.startswith("http://127.0.0.1:") and used.eutils_url != UNREACHABLE


def test_reachable_server_is_crawled_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[CrawlConfig] = []
    monkeypatch.setattr(offline, "probe", lambda url, email: None)
    monkeypatch.setattr(offline, "run_crawl", lambda cfg: seen.append(cfg) or "done")
    cfg = CrawlConfig(eutils_url=UNREACHABLE)
    assert offline.crawl_or_demo(cfg) == "done" and seen == [cfg]
