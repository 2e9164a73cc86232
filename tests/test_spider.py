"""The spider's and the run plan's decisions, in process: no reactor, no network.

The spider is handed esearch answers and yields requests; what it yields is checked: date
splitting past the 9,999 window, giving up on a server that ignores windows or a single day
with too many records, warnings. The run plan (full / incremental / resume) and the input
checks are plain objects over a temporary store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from scrapy.http import Request, Response

from crawler.eutils import ESEARCH_MAX, parse_ncbi_date
from crawler.run import CrawlConfig, RunPlan, watermark
from crawler.spiders.pubmed import EARLIEST, PubmedSpider, SearchSpec
from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import synthetic_records
from pipeline.errors import CrawlError
from pipeline.parse import parse_efetch
from pipeline.store import Store

URL = "http://127.0.0.1:9/entrez/eutils/"


class FakePlan:
    """What the spider asks of crawler.run.RunPlan, recording what it was told."""

    def __init__(self, specs: list[SearchSpec], batch: int = 500):
        self.config = CrawlConfig(eutils_url=URL, email="t@example.org")
        self.query = "ketamine"
        self.batch_size = batch
        self.specs = specs
        self.targets: dict[str, list[str]] | None = None

    def root_searches(self) -> list[SearchSpec]:
        return self.specs

    def record_targets(self, by_role: dict[str, list[str]]) -> None:
        self.targets = by_role

    def pending(self) -> set[str]:
        return {p for ids in (self.targets or {}).values() for p in ids}

    def report_total(self) -> None:
        pass


def esearch_body(count: int, ids: Iterable[int], *, miss: str | None = None) -> bytes:
    id_xml = "".join(f"<Id>{i}</Id>" for i in ids)
    errors = f"<ErrorList><PhraseNotFound>{miss}</PhraseNotFound></ErrorList>" if miss else ""
    return (
        f"<eSearchResult><Count>{count}</Count><RetMax>0</RetMax><RetStart>0</RetStart>"
        f"<QueryKey>1</QueryKey><WebEnv>MCID_1</WebEnv><IdList>{id_xml}</IdList>"
        f"{errors}</eSearchResult>"
    ).encode()


def params(req: Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(req.url).query))


def start(spider: PubmedSpider) -> list[Request]:
    async def collect() -> list[Request]:
        return [r async for r in spider.start()]

    return asyncio.run(collect())


def answer(spider: PubmedSpider, req: Request, body: bytes) -> list[Any]:
    return list(spider.parse_search(Response(req.url, body=body, request=req)))


def searches(out: list[Any]) -> list[Request]:
    return [r for r in out if isinstance(r, Request) and r.meta["endpoint"] == "esearch"]


def fetches(out: list[Any]) -> list[Request]:
    return [r for r in out if isinstance(r, Request) and r.meta["endpoint"] == "efetch"]


def test_one_search_under_the_window_then_history_pages() -> None:
    plan = FakePlan([SearchSpec("all")], batch=500)
    spider = PubmedSpider(plan=plan)
    (root,) = start(spider)
    assert params(root)["usehistory"] == "y" and "mindate" not in params(root)
    out = answer(spider, root, esearch_body(1200, range(1, 1201)))
    pages = fetches(out)
    assert searches(out) == []
    assert [(params(r)["retstart"], params(r)["retmax"]) for r in pages] == [
        ("0", "500"),
        ("500", "500"),
        ("1000", "200"),
    ]
    assert all(params(r)["WebEnv"] == "MCID_1" for r in pages)
    assert plan.targets == {"all": [str(i) for i in range(1, 1201)]}


def test_past_9999_the_window_is_split_without_gap_or_overlap() -> None:
    plan = FakePlan([SearchSpec("all")])
    spider = PubmedSpider(plan=plan)
    (root,) = start(spider)
    halves = searches(answer(spider, root, esearch_body(15_000, range(1, ESEARCH_MAX + 1))))
    assert len(halves) == 2
    (lo1, hi1), (lo2, hi2) = [(params(r)["mindate"], params(r)["maxdate"]) for r in halves]
    assert parse_ncbi_date(lo1) == EARLIEST and parse_ncbi_date(hi2) == date.today()
    assert parse_ncbi_date(lo2) - parse_ncbi_date(hi1) == timedelta(days=1)
    assert all(params(r)["datetype"] == "edat" for r in halves)
    assert fetches(answer(spider, halves[0], esearch_body(9000, range(1, 9001)))) == []
    out = answer(spider, halves[1], esearch_body(6000, range(9001, 15_001)))
    assert len(fetches(out)) == 30  # 9,000 + 6,000 records in pages of 500
    assert len(plan.targets["all"]) == 15_000
    assert spider.warnings == [] and spider.truncated_windows == 0


def test_server_ignoring_date_windows_stops_splitting() -> None:
    spider = PubmedSpider(plan=FakePlan([SearchSpec("all")]))
    body = esearch_body(10_200, range(1, ESEARCH_MAX + 1))  # every window answers the same
    queue, sent, out = start(spider), 0, []
    while queue and sent < 50:
        req = queue.pop(0)
        sent += 1
        got = answer(spider, req, body)
        queue += searches(got)
        out += fetches(got)
    assert sent <= 5  # the root, one split, perhaps one more level started meanwhile
    assert out and spider.windows_ignored and spider.truncated_windows == 201
    assert set(spider.warnings) == {
        "the server ignores date windows; only the first 9999 of 10200 records can be listed"
    }


def test_more_than_9999_on_one_day_keeps_what_can_be_listed() -> None:
    day = date(2021, 3, 4)
    spider = PubmedSpider(plan=FakePlan([SearchSpec("all", "edat", day, day)]))
    (root,) = start(spider)
    out = answer(spider, root, esearch_body(10_100, range(1, ESEARCH_MAX + 1)))
    assert searches(out) == [] and fetches(out)
    assert spider.truncated_windows == 101
    assert spider.warnings == [
        "10100 records share the single day 2021-03-04; PubMed lists "
        "only 9999 of them, the rest are not reachable by esearch"
    ]


def test_phrase_not_found_is_a_warning_not_an_error() -> None:
    plan = FakePlan([SearchSpec("all")])
    spider = PubmedSpider(plan=plan)
    (root,) = start(spider)
    assert answer(spider, root, esearch_body(0, [], miss="nomatchxyz")) == []
    assert spider.warnings == ["PubMed ignored parts of the query: PhraseNotFound: nomatchxyz"]
    assert plan.targets == {"all": []}


# -- the run plan ------------------------------------------------------------------------------
def _complete(store: Store, cfg: CrawlConfig) -> None:
    plan = RunPlan(cfg, store)
    store.update_run(plan.run_id, status="completed", finished_at=time.time())


def test_plan_full_then_incremental_then_full_again(tmp_db: Path) -> None:
    cfg = CrawlConfig(eutils_url=URL)
    with Store(tmp_db) as store:
        first = RunPlan(cfg, store)
        assert first.mode == "full" and not first.resumed
        assert [s.role for s in first.root_searches()] == ["all"]
        store.update_run(first.run_id, status="completed", finished_at=time.time())
        second = RunPlan(cfg, store)
        assert second.mode == "incremental" and second.since == date.today().isoformat()
        revised = second.root_searches()[1]
        assert (revised.role, revised.datetype, revised.hi) == ("revised", "mdat", date.today())
        store.update_run(second.run_id, status="completed", finished_at=time.time())
        assert RunPlan(CrawlConfig(eutils_url=URL, full=True), store).mode == "full"


def test_plan_resumes_an_unfinished_run_with_its_targets(tmp_db: Path) -> None:
    cfg = CrawlConfig(eutils_url=URL, max_records=3)
    with Store(tmp_db) as store:
        plan = RunPlan(cfg, store)
        plan.record_targets({"all": ["5", "3", "5", "9", "1"]})
        assert plan.pending() == {"5", "3", "9"}  # deduplicated, order kept, then capped
        again = RunPlan(cfg, store)  # the first was killed
        assert again.resumed and again.run_id == plan.run_id and again.targets_ready
        again.record_targets({"all": ["7"]})  # a resumed run keeps its decision
        assert again.pending() == {"5", "3", "9"}


def test_incremental_targets_are_new_plus_revised(tmp_db: Path) -> None:
    records = synthetic_records(6, seed=3)
    cfg = CrawlConfig(eutils_url=URL)
    with Store(tmp_db) as store:
        batch = parse_efetch(efetch_document(r.xml() for r in records[:4]))
        store.upsert_batch(batch.articles, [])
        _complete(store, cfg)
        plan = RunPlan(cfg, store)
        ids = [r.pmid for r in records]
        plan.record_targets({"all": ids, "revised": [ids[1], ids[5]]})
        assert plan.pending() == {ids[4], ids[5], ids[1]}


def test_watermark_is_the_earlier_of_last_start_and_newest_revision() -> None:
    started = time.mktime((2025, 3, 10, 12, 0, 0, 0, 0, -1))
    assert watermark(started, "2025-01-31") == "2025-01-31"
    assert watermark(started, "2025-06-01") == "2025-03-10"
    assert watermark(started, None) == "2025-03-10"
    assert watermark(started, "garbage") == "2025-03-10"


def test_deleted_citation_is_marked_not_dropped(tmp_db: Path) -> None:
    records = synthetic_records(5, seed=9)
    with Store(tmp_db) as s:
        s.upsert_batch(parse_efetch(efetch_document(r.xml() for r in records)).articles, [])
        s.upsert_batch([], [records[0].pmid])
        row = s.conn.execute(
            "SELECT deleted FROM articles WHERE pmid=?", (int(records[0].pmid),)
        ).fetchone()
        assert row[0] == 1
        assert s.count() == 4


# -- input checks (what `kea crawl` says before any request) ---------------------------------
@pytest.mark.parametrize(
    ("fields", "line"),
    [
        (
            {"query": "(ketamine AND depression"},
            "malformed query: 1 unclosed '(' in '(ketamine AND depression'",
        ),
        (
            {"query": 'ketamine "depression'},
            "malformed query: unbalanced double quote in 'ketamine \"depression'",
        ),
        ({"query": "  "}, "the query is empty"),
        (
            {"mindate": "2023/02/30"},
            "--mindate '2023/02/30' is an impossible date (day is out of range for month)",
        ),
        (
            {"mindate": "2023/13"},
            "--mindate '2023/13' is an impossible date (month must be in 1..12)",
        ),
        (
            {"mindate": "yesterday"},
            "--mindate 'yesterday' is not a date: use YYYY, YYYY/MM or YYYY/MM/DD",
        ),
        ({"mindate": "2024", "maxdate": "2020"}, "--mindate 2024 is after --maxdate 2020"),
        ({"mindate": "2999"}, "--mindate 2999 is in the future"),
        ({"batch_size": 0}, "--batch-size must be between 1 and 10000, not 0"),
        ({"max_records": 0}, "--max-records must be positive, not 0"),
        (
            {"eutils_url": "ftp://x/"},
            "E-utilities URL 'ftp://x/' must start with http:// or https://",
        ),
    ],
)
def test_bad_input_is_one_clear_line(fields: dict[str, Any], line: str) -> None:
    with pytest.raises(CrawlError) as err:
        CrawlConfig(**fields).validated()
    assert str(err.value) == line


def test_good_dates_are_normalised() -> None:
    cfg = CrawlConfig(mindate="2020-5", maxdate="2020/05/17").validated()
    assert (cfg.mindate, cfg.maxdate) == ("2020/05", "2020/05/17")
