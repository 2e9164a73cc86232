"""pipeline.query against a factory store: every filter, ordering, search, overview numbers.

Expected values are worked out in plain Python from the same fictional records the
store was built from, so each test compares two independent computations.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from factories import Record, make_records, write_store

from dashboard import url
from kea.cli import build_parser
from kea.filters_cli import filter_from_args
from pipeline import query as q
from pipeline.errors import KeaError, StoreError
from pipeline.labels import DESIGN_RANK
from pipeline.query import StudyFilter
from pipeline.store import Store

N, SEED = 400, 7


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return make_records(N, SEED)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, records: list[Record]) -> Path:
    return write_store(tmp_path_factory.mktemp("q") / "kea.sqlite", records)


@pytest.fixture(scope="module")
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = q.connect(db)
    yield c
    c.close()


def _words(text: str | None) -> set[str]:
    return set(re.findall(r"\w+", (text or "").lower()))


def _expected(
    records: list[Record], pred, scope: str = "in_scope", deleted: bool = False
) -> set[str]:
    out = set()
    for r in records:
        if r.deleted and not deleted:
            continue
        lab = r.labels
        if scope != "all" and (lab is None or lab["relevance"] != scope):
            continue
        if pred(r.article, lab):
            out.add(r.article.pmid)
    return out


def _has(field, values):
    def pred(_a, lab):
        if lab is None:
            return False
        v = lab[field]
        return bool(set(v) & set(values)) if isinstance(v, list) else v in values

    return pred


FILTER_CASES = [
    ({"conditions": ("ptsd",)}, _has("conditions", ("ptsd",))),
    ({"conditions": ("ptsd", "anxiety")}, _has("conditions", ("ptsd", "anxiety"))),
    ({"subgroups": ("trd", "bipolar")}, _has("subgroups", ("trd", "bipolar"))),
    ({"designs": ("rct",)}, _has("design", ("rct",))),
    ({"designs": ("rct", "systematic_review")}, _has("design", ("rct", "systematic_review"))),
    ({"outcomes": ("no_benefit",)}, _has("outcome", ("no_benefit",))),
    ({"drugs": ("esketamine",)}, _has("drug", ("esketamine",))),
    ({"routes": ("intranasal",)}, _has("routes", ("intranasal",))),
    ({"comparators": ("placebo", "midazolam")}, _has("comparator", ("placebo", "midazolam"))),
    ({"psychotherapy": True}, lambda a, lab: lab is not None and lab["psychotherapy"] is True),
    ({"psychotherapy": False}, lambda a, lab: lab is not None and not lab["psychotherapy"]),
    ({"min_n": 500}, lambda a, lab: lab is not None and (lab["sample_size"] or 0) >= 500),
    ({"year_from": 2010}, lambda a, lab: a.pub_year >= 2010),
    ({"year_to": 2012}, lambda a, lab: a.pub_year <= 2012),
    ({"year_from": 2010, "year_to": 2015}, lambda a, lab: 2010 <= a.pub_year <= 2015),
    ({"retracted": True}, lambda a, lab: a.retracted),
    ({"retracted": False}, lambda a, lab: not a.retracted),
    ({"needs_review": True}, lambda a, lab: lab is not None and lab["needs_review"]),
    ({"needs_review": False}, lambda a, lab: lab is not None and not lab["needs_review"]),
    ({"population": "animal"}, _has("design", ("preclinical",))),
    ({"population": "human"}, lambda a, lab: lab is not None and lab["design"] != "preclinical"),
    ({"search": "midazolam"}, lambda a, lab: "midazolam" in _words(a.title) | _words(a.abstract)),
    (
        {"search": "remission placebo"},
        lambda a, lab: {"remission", "placebo"} <= _words(a.title) | _words(a.abstract),
    ),
    (
        {"search": "esket*"},
        lambda a, lab: any(w.startswith("esket") for w in _words(a.title) | _words(a.abstract)),
    ),
]


@pytest.mark.parametrize(("kwargs", "pred"), FILTER_CASES, ids=[str(c[0]) for c in FILTER_CASES])
@pytest.mark.parametrize("scope", ["in_scope", "all"])
def test_each_filter_matches_python(conn, records, kwargs, pred, scope):
    f = StudyFilter(scope=scope, **kwargs)
    want = _expected(records, pred, scope=scope)
    base = _expected(records, lambda a, lab: True, scope=scope)
    assert 0 < len(want) < len(base), "the fixture must make this filter narrow the set"
    assert q.count_studies(conn, f) == len(want)
    assert {r["pmid"] for r in q.list_studies(conn, f, limit=None)} == want


def test_scopes_and_deleted(conn, records):
    everything = lambda a, lab: True  # noqa: E731
    for scope in ("in_scope", "off_topic", "all"):
        want = _expected(records, everything, scope=scope)
        assert q.count_studies(conn, StudyFilter(scope=scope)) == len(want)
    live = _expected(records, everything, scope="all")
    with_deleted = _expected(records, everything, scope="all", deleted=True)
    assert len(with_deleted) > len(live)
    assert q.count_studies(conn, StudyFilter(scope="all", include_deleted=True)) == len(
        with_deleted
    )
    unlabelled = {r.article.pmid for r in records if r.labels is None and not r.deleted}
    assert unlabelled and unlabelled <= live
    assert not unlabelled & {r["pmid"] for r in q.list_studies(conn, StudyFilter(), limit=None)}


def test_filters_combine_with_and(conn, records):
    f = StudyFilter(conditions=("depression",), designs=("rct", "observational"), year_from=2005)
    want = _expected(
        records,
        lambda a, lab: (
            "depression" in lab["conditions"]
            and lab["design"] in ("rct", "observational")
            and a.pub_year >= 2005
        ),
    )
    assert q.count_studies(conn, f) == len(want) > 0


def _rank(row):
    return DESIGN_RANK.get(row["design"], len(DESIGN_RANK))


def test_strength_order(conn):
    rows = q.list_studies(conn, StudyFilter(scope="all"), limit=None)
    assert rows[0]["design"] == "systematic_review"
    keys = [
        (
            _rank(r),
            r["sample_size"] is None,
            -(r["sample_size"] or 0),
            r["year"] is None,
            -(r["year"] or 0),
        )
        for r in rows
    ]
    assert keys == sorted(keys)
    assert rows[-1]["design"] is None  # unlabelled last


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("newest", lambda r: r["entrez_date"]),
        ("year", lambda r: r["year"]),
        ("n", lambda r: r["sample_size"] or 0),
    ],
)
def test_other_sorts(conn, sort, key):
    rows = q.list_studies(conn, StudyFilter(), sort=sort, limit=None)
    values = [key(r) for r in rows]
    assert values == sorted(values, reverse=True)


def test_relevance_sort_and_paging(conn):
    f = StudyFilter(search="midazolam", scope="all")
    ranked = q.list_studies(conn, f, sort="relevance", limit=None)
    assert len(ranked) == q.count_studies(conn, f)
    page2 = q.list_studies(conn, f, sort="relevance", limit=5, offset=5)
    assert [r["pmid"] for r in page2] == [r["pmid"] for r in ranked[5:10]]
    # without a search "relevance" falls back to strength
    assert q.list_studies(conn, StudyFilter(), sort="relevance", limit=20) == q.list_studies(
        conn, StudyFilter(), limit=20
    )
    with pytest.raises(ValueError, match="strength"):
        q.list_studies(conn, StudyFilter(), sort="bogus")


@pytest.mark.parametrize(
    "text",
    [
        '"',
        "AND(",
        "*",
        'ketamine"',
        "NEAR(a b",
        "OR",
        '""',
        "title:x",
        "^x",
        "a AND OR NOT",
        "(((",
        "-",
        "'; DROP TABLE",
    ],
)
def test_hostile_search_is_safe(conn, text):
    """A search the query language cannot read is one clear error, never SQL's or another
    search; one it can read runs with bound parameters (pipeline.search)."""
    f = StudyFilter(search=text, scope="all")
    try:
        n = q.count_studies(conn, f)
    except q.SearchSyntaxError as err:
        assert "at character" in str(err) or "search" in str(err)
        return
    assert n == len(q.list_studies(conn, f, sort="relevance", limit=None))
    q.evidence_map(conn, f)


def test_list_row_shape(conn, records):
    rows = q.list_studies(conn, StudyFilter(scope="all"), limit=None)
    by = {r["pmid"]: r for r in rows}
    rec = next(r for r in records if r.labels and r.article.doi and not r.deleted)
    row = by[rec.article.pmid]
    assert row["conditions"] == rec.labels["conditions"]
    assert row["routes"] == rec.labels["routes"]
    assert row["design"] == rec.labels["design"]
    # the factory's model gave relevance and design (the others are unknown); a human
    # correction is 1.0
    shown = {
        k: 1.0 if k in (rec.labels.get("verified") or ()) else v
        for k, v in rec.labels["confidence"].items()
    }
    assert row["min_confidence"] == min(shown.values())
    assert row["label_confidence"]["relevance"] == shown["relevance"]
    assert row["pubmed_url"] == f"https://pubmed.ncbi.nlm.nih.gov/{rec.article.pmid}/"
    assert row["doi_url"] == f"https://doi.org/{rec.article.doi}"
    assert row["retracted"] is rec.article.retracted
    verified = [r for r in rows if r["verified"]]
    assert verified and all(r["verified"] == ["design"] and r["design"] == "rct" for r in verified)
    unlabelled = next(r for r in records if r.labels is None and not r.deleted)
    assert by[unlabelled.article.pmid]["design"] is None
    assert by[unlabelled.article.pmid]["min_confidence"] is None


def test_study_detail(conn, records):
    rec = next(r for r in records if r.labels and r.article.authors)
    d = q.study_detail(conn, rec.article.pmid)
    assert d["title"] == rec.article.title
    assert d["abstract_sections"][0]["label"] == "BACKGROUND"
    assert d["mesh"][0]["major"] is True
    assert d["author_names"] == rec.article.author_names
    assert d["design"] == rec.labels["design"] and d["labelled"] is True
    # a human-verified label keeps none of the model's confidence or evidence
    drop = set(rec.labels.get("verified") or ())
    assert d["confidence"] == {k: v for k, v in rec.labels["confidence"].items() if k not in drop}
    assert d["evidence"] == {k: v for k, v in rec.labels["evidence"].items() if k not in drop}
    assert d["pubmed_url"].endswith(f"/{rec.article.pmid}/")
    bare = next(r for r in records if r.labels is None)
    d = q.study_detail(conn, int(bare.article.pmid))
    assert d["labelled"] is False and d["relevance"] is None and d["needs_review"] is None
    assert q.study_detail(conn, "1") is None
    assert q.study_detail(conn, "not-a-pmid") is None


def _live_in_scope(records):
    return [
        r for r in records if not r.deleted and r.labels and r.labels["relevance"] == "in_scope"
    ]


def _counted(records):
    """The in-scope studies that count as evidence: never a retracted one."""
    return [r for r in _live_in_scope(records) if not r.article.retracted]


def test_headline(conn, records):
    today = date(2024, 6, 1)
    h = q.headline(conn, today=today)
    live = [r for r in records if not r.deleted]
    ins = _counted(records)
    since = (today - timedelta(days=30)).isoformat()
    assert h["total_records"] == len(live)
    assert h["labelled"] == sum(r.labels is not None for r in live)
    assert h["in_scope"] == len(ins)
    assert h["rcts"] == sum(r.labels["design"] == "rct" for r in ins)
    assert h["systematic_reviews"] == sum(r.labels["design"] == "systematic_review" for r in ins)
    retracted = [r for r in _live_in_scope(records) if r.article.retracted]
    assert h["retracted"] == len(retracted) > 0
    assert sorted(h["retracted_pmids"]) == sorted(r.article.pmid for r in retracted)
    assert h["new_last_30_days"] == sum(r.article.entrez_date >= since for r in ins)
    assert h["needs_review"] == sum(bool(r.labels and r.labels["needs_review"]) for r in live)
    assert h["last_update"] == "2025-11-24T16:00:00Z"
    assert h["is_demo"] is False


def test_evidence_map_outcome_summary_timeline_breakdown(conn, records):
    ins = _counted(records)
    want = Counter(
        (c, r.labels["design"], r.labels["outcome"]) for r in ins for c in r.labels["conditions"]
    )
    got = {
        (x["condition"], x["design"], x["outcome"]): x["studies"]
        for x in q.evidence_map(conn, StudyFilter())
    }
    assert got == dict(want)
    only = {
        k for k in (x["condition"] for x in q.evidence_map(conn, StudyFilter(conditions=("ptsd",))))
    }
    assert only == {"ptsd"}

    strong = [r for r in ins if r.labels["design"] in ("rct", "systematic_review")]
    summary = {
        (x["condition"], x["outcome"]): (x["studies"], x["participants"], x["n_not_stated"])
        for x in q.outcome_summary(conn, StudyFilter())
    }
    expect: dict = {}
    for r in strong:
        n = r.labels["sample_size"]
        for c in r.labels["conditions"]:
            s, p, missing = expect.get((c, r.labels["outcome"]), (0, None, 0))
            if n is not None:
                p = (p or 0) + n
            expect[(c, r.labels["outcome"])] = (s + 1, p, missing + (n is None))
    assert summary == expect
    assert any(missing for _, _, missing in summary.values())  # some sizes not stated
    assert q.outcome_summary(conn, StudyFilter(designs=("case_report",))) == []

    tl = {(x["year"], x["design"]): x["studies"] for x in q.timeline(conn, StudyFilter())}
    assert tl == dict(Counter((r.article.pub_year, r.labels["design"]) for r in ins))

    drugs = {x["value"]: x["studies"] for x in q.breakdown(conn, StudyFilter(), "drug")}
    assert drugs == dict(Counter(r.labels["drug"] for r in ins))
    routes = {x["value"]: x["studies"] for x in q.breakdown(conn, StudyFilter(), "routes")}
    assert routes == dict(Counter(v for r in ins for v in r.labels["routes"]))
    pt = {x["value"] for x in q.breakdown(conn, StudyFilter(), "psychotherapy")}
    assert pt <= {True, False}
    with pytest.raises(ValueError, match="drug"):
        q.breakdown(conn, StudyFilter(), "title")


def test_prisma_flow(conn, records):
    p = q.prisma_flow(conn)
    live = [r for r in records if not r.deleted]
    assert p["retrieved"] == len(records)
    assert p["deleted"] == len(records) - len(live)
    assert p["duplicates"] == 0 and "PMID" in p["duplicates_note"]
    assert p["unlabelled"] == sum(r.labels is None for r in live)
    assert p["off_topic"] == sum(
        bool(r.labels and r.labels["relevance"] == "off_topic") for r in live
    )
    assert p["in_scope"] == len(_live_in_scope(records))
    assert p["unlabelled"] + p["off_topic"] + p["in_scope"] == p["screened"]
    assert p["included"] == len(_counted(records)) == p["in_scope"] - p["retracted"]
    assert p["in_scope_by_condition"] == {
        c: sum(c in r.labels["conditions"] for r in _counted(records))
        for c in ("depression", "ptsd", "anxiety")
    }


def test_meta_crawl_history_and_api_key_redaction(tmp_path):
    db = write_store(tmp_path / "k.sqlite", make_records(5, 1))
    with Store(db) as store:
        run = store.start_run("x", "https://example.invalid/eutils?api_key=SECRET123&x=1", "full")
        store.update_run(run, status="failed")
        store.set_meta("ncbi_api_key", "SECRET123")
    conn = q.connect(db)
    hist = q.crawl_history(conn)
    assert [h["status"] for h in hist] == ["failed", "completed"]
    assert hist[1]["finished"] == "2025-11-24T16:00:00Z"
    assert "SECRET123" not in repr(hist) and "SECRET123" not in repr(q.meta(conn))
    assert q.meta(conn)["model_version"] == "factory-1"


def test_iter_export_rows(conn, records):
    rows = list(q.iter_export_rows(conn, StudyFilter(scope="all")))
    assert len(rows) == sum(not r.deleted for r in records)
    listed = [r["pmid"] for r in q.list_studies(conn, StudyFilter(scope="all"), limit=None)]
    assert [r["pmid"] for r in rows] == listed
    bare = next(r for r in rows if r["relevance"] is None)
    assert bare["conditions"] is None and bare["confidence"] is None and "is_demo" not in bare
    full = next(r for r in rows if r["relevance"] is not None)
    assert isinstance(full["conditions"], list) and isinstance(full["confidence"], dict)


def test_empty_store(tmp_db):
    Store(tmp_db).close()
    conn = q.connect(tmp_db)
    f = StudyFilter(search="ketamine", conditions=("ptsd",))
    assert q.count_studies(conn, f) == 0
    assert q.list_studies(conn, StudyFilter()) == []
    assert q.evidence_map(conn, StudyFilter()) == []
    assert q.timeline(conn, StudyFilter()) == []
    assert q.breakdown(conn, StudyFilter(), "drug") == []
    h = q.headline(conn)
    assert h["total_records"] == 0 and h["last_update"] is None
    assert q.prisma_flow(conn)["retrieved"] == 0
    assert list(q.iter_export_rows(conn, StudyFilter(scope="all"))) == []
    assert q.crawl_history(conn) == [] and q.meta(conn) == {}


def test_connect_is_read_only_and_checks_path(db, tmp_path):
    conn = q.connect(db)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM labels")
    with pytest.raises(StoreError, match="does not exist"):
        q.connect(tmp_path / "missing.sqlite")


# -- URL and CLI round trips ----------------------------------------------------------------
FULL = StudyFilter(
    conditions=("ptsd", "depression"),
    subgroups=("trd",),
    designs=("rct",),
    outcomes=("mixed",),
    drugs=("esketamine",),
    routes=("iv", "oral"),
    comparators=("placebo",),
    psychotherapy=False,
    min_n=30,
    year_from=2010,
    year_to=2020,
    search='ketamine, "infusion"',
    scope="all",
    population="human",
    needs_review=True,
    retracted=False,
    include_deleted=True,
)


def test_query_params_round_trip():
    params = url.to_query_params(FULL)
    assert all(isinstance(v, str) for v in params.values())
    assert url.from_query_params(params) == FULL
    # st.query_params.get_all() gives lists
    as_lists = {k: [v] for k, v in params.items()}
    assert url.from_query_params(as_lists) == FULL
    assert url.to_query_params(StudyFilter()) == {}
    assert url.from_query_params({}) == StudyFilter()
    assert StudyFilter().is_empty() and not FULL.is_empty()


def test_query_params_are_tolerant():
    f = url.from_query_params(
        {
            "c": ["ptsd", "nonsense"],
            "d": "rct,,bogus",
            "n": "lots",
            "yf": "20x",
            "sc": "weird",
            "pop": "martian",
            "pt": "maybe",
            "q": "   ",
            "unknown": "1",
            "r": [],
            "yt": 3.5,
            "o": None,
            "dr": 7,
        }
    )
    assert f == StudyFilter(conditions=("ptsd",), designs=("rct",))


def _cli(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["export", "--format", "jsonl", *argv])


def test_filter_from_args_scope_and_values():
    assert filter_from_args(_cli()).scope == "all"
    assert filter_from_args(_cli("--search", "ketamine", "--since", "2020")).scope == "all"
    f = filter_from_args(
        _cli(
            "--design",
            "rct",
            "--condition",
            "ptsd,depression",
            "--route",
            "iv",
            "--psychotherapy",
            "--min-n",
            "20",
        )
    )
    assert f.scope == "in_scope" and f.designs == ("rct",)
    assert f.conditions == ("ptsd", "depression") and f.psychotherapy is True and f.min_n == 20
    assert filter_from_args(_cli("--design", "rct", "--all")).scope == "all"
    assert filter_from_args(_cli("--no-psychotherapy")).psychotherapy is False


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--design", "rtc"), "rtc"),
        (("--condition", "ptsd", "--condition", "flu"), "flu"),
        (("--route", "nasal"), "nasal"),
        (("--min-n", "0"), "--min-n"),
        (("--since", "2020", "--until", "2010"), "--since"),
        (("--search", '" *'), "--search"),
    ],
)
def test_filter_from_args_rejects_bad_values(argv, named):
    with pytest.raises(KeaError, match=re.escape(named)):
        filter_from_args(_cli(*argv))
