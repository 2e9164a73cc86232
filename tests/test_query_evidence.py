"""Issue 8, data side: retracted studies never counted, participants "not stated" instead of
0, the confidence of the value shown (never of an absent class), human-verified labels with
who/when and no model probability, and the provenance every export carries.

A small hand-made store of fictional records: every expected number is written out here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import query as q
from pipeline.query import StudyFilter
from pipeline.records import Article
from pipeline.store import Store, content_hash


def _article(pmid: str, *, retracted: bool = False, year: int = 2022) -> Article:
    return Article(
        pmid=pmid,
        title=f"Fictional ketamine study {pmid}",
        journal="Journal of Invented Psychiatry",
        pub_year=year,
        entrez_date=f"{year}-05-01",
        retracted=retracted,
    )


def _labels(a: Article, model: str = "model-A", **over) -> dict:
    row = {
        "pmid": a.pmid,
        "model_version": model,
        "content_hash": content_hash(a),
        "relevance": "in_scope",
        "conditions": ["depression"],
        "subgroups": [],
        "design": "rct",
        "outcome": "beneficial",
        "sample_size": None,
        "drug": "ketamine",
        "routes": ["iv"],
        "comparator": "placebo",
        "psychotherapy": False,
        "confidence": {"relevance": 0.9, "design": 0.9, "outcome": 0.8},
        "evidence": {"design": "randomised", "outcome": "improved"},
        "needs_review": False,
        "review_fields": [],
    }
    row.update(over)
    return row


# pmid -> (retracted, label overrides)
ROWS = {
    "91000001": (True, {"design": "systematic_review", "sample_size": 125}),  # retracted MA
    "91000002": (False, {"sample_size": 40}),
    "91000003": (False, {"sample_size": None}),
    "91000004": (False, {"design": "systematic_review", "sample_size": None}),
    "91000005": (True, {"outcome": "no_benefit", "sample_size": 300, "conditions": ["ptsd"]}),
    "91000006": (False, {"outcome": "no_benefit", "sample_size": 60, "conditions": ["ptsd"]}),
    "91000007": (False, {"design": "observational", "sample_size": 12}),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ev") / "kea.sqlite"
    with Store(path) as store:
        run = store.start_run("ketamine[tiab] (fictional)", "http://127.0.0.1:0/x", "full")
        arts = [_article(p, retracted=r) for p, (r, _) in ROWS.items()]
        store.upsert_batch(arts, run_id=run)
        store.update_run(run, status="completed", finished_at=1_764_000_000.0)
        store.save_labels(
            _labels(a, model="model-B" if a.pmid == "91000007" else "model-A", **ROWS[a.pmid][1])
            for a in arts
        )
    return path


@pytest.fixture(scope="module")
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = q.connect(db)
    yield c
    c.close()


# -- retracted studies are never evidence ---------------------------------------------------
def test_headline_leaves_retracted_out(conn):
    h = q.headline(conn)
    assert h["in_scope"] == 5
    assert h["rcts"] == 3  # 91000002, 3, 6 (not the retracted 91000005)
    assert h["systematic_reviews"] == 1  # 91000004 (not the retracted meta-analysis)
    assert h["retracted"] == 2
    assert h["retracted_pmids"] == ["91000005", "91000001"]


def test_outcome_summary_leaves_retracted_out_and_says_not_stated(conn):
    rows = {(r["condition"], r["outcome"]): r for r in q.outcome_summary(conn, StudyFilter())}
    dep = rows[("depression", "beneficial")]
    # 91000002 (N=40), 91000003 (no N), 91000004 (review, no N); never the retracted N=125
    assert dep["studies"] == 3
    assert dep["participants"] == 40
    assert dep["with_n"] == 1 and dep["n_not_stated"] == 2
    ptsd = rows[("ptsd", "no_benefit")]
    assert ptsd["studies"] == 1 and ptsd["participants"] == 60  # not 360
    none_stated = q.outcome_summary(conn, StudyFilter(designs=("systematic_review",)))
    assert none_stated == [
        {
            "condition": "depression",
            "outcome": "beneficial",
            "studies": 1,
            "participants": None,  # not 0: nobody said the review had no participants
            "with_n": 0,
            "n_not_stated": 1,
        }
    ]
    left = q.retracted_not_counted(conn, StudyFilter(), designs=q.STRONG_DESIGNS)
    assert left["count"] == 2 and left["pmids"] == ["91000005", "91000001"]
    assert left["text"] == "2 retracted studies not counted"
    assert left["studies"][1]["pubmed_url"] == "https://pubmed.ncbi.nlm.nih.gov/91000001/"
    one = q.retracted_not_counted(conn, StudyFilter(conditions=("ptsd",)))
    assert one["text"] == "1 retracted study not counted" and one["pmids"] == ["91000005"]
    assert q.retracted_not_counted(conn, StudyFilter(designs=("observational",)))["text"] is None


def test_maps_timeline_breakdowns_and_flow_leave_retracted_out(conn):
    emap = {
        (r["condition"], r["design"], r["outcome"]): r["studies"]
        for r in q.evidence_map(conn, StudyFilter())
    }
    assert emap[("depression", "systematic_review", "beneficial")] == 1
    assert emap[("ptsd", "rct", "no_benefit")] == 1
    assert sum(emap.values()) == 5
    assert sum(r["studies"] for r in q.timeline(conn, StudyFilter())) == 5
    designs = {r["value"]: r["studies"] for r in q.breakdown(conn, StudyFilter(), "design")}
    assert designs == {"rct": 3, "systematic_review": 1, "observational": 1}
    assert sum(r["studies"] for r in q.breakdown(conn, StudyFilter(), "condition")) == 5
    # asking for the retracted ones only: they are listed, but none is counted
    only = StudyFilter(retracted=True)
    assert q.evidence_map(conn, only) == [] and q.outcome_summary(conn, only) == []
    assert q.count_studies(conn, only) == 2 and q.count_studies(conn, only, counted=True) == 0
    assert {r["pmid"] for r in q.list_studies(conn, only)} == {"91000001", "91000005"}
    flow = q.prisma_flow(conn)
    assert flow["in_scope"] == 7 and flow["retracted"] == 2 and flow["included"] == 5
    assert flow["in_scope_by_condition"]["depression"] == 4
    assert flow["in_scope_by_condition"]["ptsd"] == 1


def test_question_answer_leaves_retracted_out(conn):
    ans = q.question_answer(conn, [StudyFilter(), StudyFilter(conditions=("depression",))])
    assert ans["studies"] == 4  # each study once across the two filters
    assert {r["pmid"] for r in ans["rows"]} == {"91000002", "91000003", "91000004", "91000006"}
    assert ans["totals"]["beneficial"] == 3 and ans["totals"]["no_benefit"] == 1
    cell = next(
        c
        for c in ans["cells"]
        if c["design"] == "systematic_review" and c["outcome"] == "beneficial"
    )
    assert cell == {
        "design": "systematic_review",
        "outcome": "beneficial",
        "studies": 1,
        "participants": None,
        "with_n": 0,
        "n_not_stated": 1,
    }
    assert ans["participants"] == 100 and ans["n_not_stated"] == 2
    assert ans["retracted"]["pmids"] == ["91000005", "91000001"]
    assert [r["pmid"] for r in ans["largest"]] == ["91000006", "91000002"]
    assert ans["truncated"] is False


# -- the confidence of what is shown -------------------------------------------------------------
def test_set_label_confidence_is_of_the_shown_members_not_absent_classes():
    old = {  # written before confidence[<set label>] existed
        "conditions": ["depression"],
        "design": "rct",
        "confidence": {
            "relevance": 0.97,
            "conditions:depression": 0.96,
            "conditions:ptsd": 0.01,  # confidently NOT about PTSD
            "conditions:anxiety": 0.0,  # confidently NOT about anxiety
            "design:rct": 0.88,  # old per-value key of a single label
        },
        "verified": [],
    }
    shown = q.shown_confidence(old)
    assert shown["conditions"] == 0.96
    assert shown["design"] == 0.88
    assert shown["relevance"] == 0.97
    assert shown["outcome"] is None  # nothing says
    assert q.lowest_confidence(shown) == ("design", 0.88)
    new = dict(old, confidence={**old["confidence"], "conditions": 0.91})
    assert q.shown_confidence(new)["conditions"] == 0.91  # the label's own wins
    two = dict(old, conditions=["depression", "ptsd"])
    assert q.shown_confidence(two)["conditions"] == 0.01  # a shown member can be the weak one


@pytest.fixture
def verified_db(tmp_path: Path) -> Path:
    path = tmp_path / "kea.sqlite"
    a, b = _article("92000001"), _article("92000002")
    conf = {
        "relevance": 0.95,
        "conditions:depression": 0.93,
        "conditions:anxiety": 0.02,
        "design": 0.55,
        "outcome": 0.7,
    }
    with Store(path) as store:
        store.upsert_batch([a, b])
        store.save_labels(
            [
                _labels(a, confidence=conf, evidence={"design": "model words", "outcome": "x"}),
                _labels(b, confidence=conf),
            ]
        )
        store.add_correction(
            "92000001", "design", "observational", source="dashboard", author="alice"
        )
    return path


def test_rows_carry_the_confidence_of_the_shown_value(verified_db):
    conn = q.connect(verified_db)
    rows = {r["pmid"]: r for r in q.list_studies(conn, StudyFilter())}
    plain = rows["92000002"]
    assert plain["label_confidence"]["conditions"] == 0.93
    assert plain["min_confidence"] == 0.55 and plain["min_confidence_label"] == "design"
    assert plain["verified_by"] == {}
    fixed = rows["92000001"]
    assert fixed["design"] == "observational"
    assert fixed["label_confidence"]["design"] == 1.0
    assert fixed["min_confidence"] == 0.7 and fixed["min_confidence_label"] == "outcome"
    who = fixed["verified_by"]["design"]
    assert who["author"] == "alice" and who["source"] == "dashboard"
    assert datetime.strptime(who["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).year >= 2026
    assert "design" not in fixed["confidence"]  # never the model's old probability
    d = q.study_detail(conn, "92000001")
    assert d["label_confidence"]["design"] == 1.0
    assert d["verified_by"]["design"]["author"] == "alice"
    assert "design" not in d["evidence"] and d["evidence"]["outcome"] == "x"
    assert "design" not in d["confidence"] and d["confidence"]["outcome"] == 0.7
    assert d["min_confidence"] == 0.7
    conn.close()


# -- provenance -------------------------------------------------------------------------------
def test_provenance_names_query_crawl_models_and_filter(conn):
    now = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    p = q.provenance(conn, StudyFilter(scope="all"), now=now)
    assert p["query"] == "ketamine[tiab] (fictional)"  # from the crawl run: no meta here
    assert p["evidence_as_of"] == "2025-11-24T16:00:00Z"
    assert p["model_versions"] == ["model-A", "model-B"]  # from the labels table
    assert p["model_version"] == "model-A, model-B"
    assert p["filter"] == "scope=all" and p["filter_fields"] == {"scope": "all"}
    assert p["record_count"] == 7 and p["retracted_count"] == 2
    assert p["exported_at"] == "2026-12-04T09:30:00Z"
    assert p["kea_version"] and p["kea_version"] != "unknown"
    assert "NCBI" in p["source"] and p["ncbi_disclaimer"].startswith(
        "https://www.ncbi.nlm.nih.gov/"
    )
    ptsd = q.provenance(conn, StudyFilter(conditions=("ptsd",)))
    assert ptsd["record_count"] == 2 and ptsd["filter"] == "conditions=ptsd"
    assert ptsd["model_versions"] == ["model-A"]
    picked = q.provenance(conn, StudyFilter(scope="all"), pmids=["91000007", "nonsense"])
    assert picked["record_count"] == 1 and picked["model_versions"] == ["model-B"]
    assert picked["selected_pmids"] == ["91000007"]


def test_provenance_of_unlabelled_records(tmp_path):
    path = tmp_path / "kea.sqlite"
    with Store(path) as store:
        store.upsert_batch([_article("93000001")])
    conn = q.connect(path)
    p = q.provenance(conn, StudyFilter(scope="all"))
    assert p["model_versions"] == [] and p["model_version"] == "not classified"
    assert p["evidence_as_of"] is None and p["record_count"] == 1
    conn.close()


def test_list_rows_carry_review_flags_and_evidence(verified_db):
    conn = q.connect(verified_db)
    with Store(verified_db) as store:
        store.save_labels(
            [_labels(_article("92000002"), review_fields=["design"], needs_review=True)]
        )
    row = next(r for r in q.list_studies(conn, StudyFilter()) if r["pmid"] == "92000002")
    assert row["review"] == ["design"] and row["needs_review"] is True
    assert row["evidence"] == {"design": "randomised", "outcome": "improved"}
    conn.close()
