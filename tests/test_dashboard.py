"""The dashboard under streamlit's AppTest: every page, filters, detail, corrections, exports.

Stores are built by tests/factories.py from fictional records, so expected numbers
are worked out here in plain Python and compared with what the pages show.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import rispy
from factories import make_records, make_store
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dashboard import fmt, url
from dashboard.launch import resolve_db, streamlit_command
from pipeline.cite import format_citation
from pipeline.errors import KeaError
from pipeline.query import StudyFilter, connect, study_detail
from pipeline.records import AbstractSection, Article
from pipeline.store import Store

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = (
    "views/overview.py",
    "views/studies.py",
    "views/export.py",
    "views/questions.py",
    "views/about.py",
)
TIMEOUT = 60
N, SEED = 200, 7
HOSTILE_TITLE = "<script>window.kea_pwned=1</script> *bold* [x](javascript:alert(1)) $x$ :red[y]"
HOSTILE_ABSTRACT = "<img src=x onerror=alert(1)> Results: **not bold** <b>not html</b>"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("dash") / "kea.sqlite", n=N, seed=SEED)


@pytest.fixture
def store_copy(store_path: Path, tmp_path: Path) -> Path:
    """A private copy for tests that write (corrections)."""
    dst = tmp_path / "copy.sqlite"
    shutil.copy(store_path, dst)
    return dst


def open_app(
    monkeypatch: pytest.MonkeyPatch,
    db: Path,
    page: str | None = None,
    params: dict[str, Any] | None = None,
) -> AppTest:
    monkeypatch.setenv("KEA_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    if page:
        at.switch_page(page)
        if params:
            at.query_params.update(params)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_pmids(**want: Any) -> set[str]:
    """The fictional records a filter should find, computed without SQL."""
    out = set()
    for r in make_records(N, SEED):
        lab = r.labels
        if r.deleted or lab is None or lab["relevance"] != "in_scope":
            continue
        if "condition" in want and want["condition"] not in lab["conditions"]:
            continue
        if "design" in want and lab["design"] != want["design"]:
            continue
        out.add(r.article.pmid)
    # make_store turns the first 3 labelled records' design into a human-verified "rct"
    fixed = [r for r in make_records(N, SEED) if r.labels is not None][:3]
    for r in fixed:
        lab = r.labels
        ok = (
            not r.deleted
            and lab["relevance"] == "in_scope"
            and ("condition" not in want or want["condition"] in lab["conditions"])
        )
        if "design" in want:
            ok = ok and want["design"] == "rct"
        (out.add if ok else out.discard)(r.article.pmid)
    return out


def table_pmids(at: AppTest) -> set[str]:
    frame = at.dataframe[0].value
    return {u.rstrip("/").rsplit("/", 1)[-1] for u in frame["pmid_url"]}


# -- every page ---------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(monkeypatch: pytest.MonkeyPatch, store_path: Path, page: str) -> None:
    at = open_app(monkeypatch, store_path, page)
    assert at.title, f"{page} has no title"
    assert not at.error
    assert not at.warning, "no demo banner on a non-demo store"


def test_overview_headline_matches_store(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    at = open_app(monkeypatch, store_path)
    metrics = {m.label: m.value for m in at.metric}
    retracted = {r.article.pmid for r in make_records(N, SEED) if r.article.retracted}
    assert retracted & expected_pmids(), "the factory store has a retracted in-scope study"
    # retracted studies are never counted (issue 8)
    assert metrics["Studies in scope"] == f"{len(expected_pmids() - retracted):,}"
    assert metrics["RCTs"] == f"{len(expected_pmids(design='rct') - retracted):,}"
    at.selectbox(key="ov_cond").set_value("ptsd")
    at.selectbox(key="ov_design").set_value("rct").run()
    link = [p for p in at.get("page_link") if "PTSD" in p.proto.label][0]
    assert link.proto.label.startswith(
        f"Open {len(expected_pmids(condition='ptsd', design='rct'))} "
    )
    assert "c=ptsd" in link.proto.query_string and "d=rct" in link.proto.query_string


# -- studies: filters, URL, detail, corrections ------------------------------------------
def test_filters_change_table_and_url(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    at = open_app(monkeypatch, store_path, "views/studies.py")
    assert table_pmids(at) == expected_pmids()
    at.multiselect(key="f_conditions").set_value(["ptsd"])
    at.multiselect(key="f_designs").set_value(["rct"]).run()
    want = expected_pmids(condition="ptsd", design="rct")
    assert want and table_pmids(at) == want
    assert at.query_params["c"] == "ptsd" and at.query_params["d"] == "rct"


def test_shared_link_opens_same_view(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    pmid = sorted(expected_pmids(condition="ptsd", design="rct"))[0]
    params = {"c": "ptsd", "d": "rct", "pmid": pmid}
    at = open_app(monkeypatch, store_path, "views/studies.py", params)
    assert at.multiselect(key="f_conditions").value == ["ptsd"]
    assert at.multiselect(key="f_designs").value == ["rct"]
    assert table_pmids(at) == expected_pmids(condition="ptsd", design="rct")
    assert at.selectbox(key="st_pmid").value == pmid
    assert at.query_params["pmid"] == pmid


def test_detail_shows_labels_confidence_and_citations(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    conn = connect(store_path)
    pmid = sorted(expected_pmids())[5]
    d = study_detail(conn, pmid)
    at = open_app(monkeypatch, store_path, "views/studies.py", {"pmid": pmid})
    labels = at.dataframe[1].value
    design_row = labels[labels["label"] == "Design"].iloc[0]
    assert design_row["value"] == fmt.pretty(d["design"])
    if "design" not in d["verified"]:
        assert design_row["probability"] == pytest.approx(d["confidence"]["design"])
    codes = [c.value for c in at.code]
    for style in ("ama", "apa", "vancouver"):
        assert format_citation(d, style) in codes
    assert d["evidence"]["design"] in set(labels["evidence"].dropna())


def test_retracted_and_needs_review_are_marked(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    recs = [r for r in make_records(N, SEED) if r.article.pmid in expected_pmids()]
    retracted = next(r.article.pmid for r in recs if r.article.retracted)
    at = open_app(monkeypatch, store_path, "views/studies.py", {"pmid": retracted})
    assert any(fmt.RETRACTED_MARK in e.value for e in at.error)
    frame = at.dataframe[0].value
    row = frame[frame["pmid_url"].str.contains(retracted)].iloc[0]
    assert row["title"].startswith(fmt.RETRACTED_MARK)
    flagged = frame[frame["status"].fillna("").str.contains(fmt.REVIEW_MARK)]
    conn = connect(store_path)
    for link in flagged["pmid_url"]:
        assert study_detail(conn, link.rstrip("/").rsplit("/", 1)[-1])["needs_review"]


def test_correction_form_writes_a_human_correction(
    monkeypatch: pytest.MonkeyPatch, store_copy: Path
) -> None:
    conn = connect(store_copy)
    pmid = next(
        p for p in sorted(expected_pmids()) if study_detail(conn, p)["design"] != "observational"
    )
    at = open_app(monkeypatch, store_copy, "views/studies.py", {"pmid": pmid})
    at.selectbox(key=f"fix_{pmid}_design").set_value("observational")
    at.button(key=f"FormSubmitter:fix_{pmid}-Save correction").click().run()
    assert not at.exception
    with Store(store_copy) as store:
        assert store.corrections_for(pmid) == {"design": "observational"}
        assert "design" in store.get_labels(pmid)["verified"]
    labels = at.dataframe[1].value
    row = labels[labels["label"] == "Design"].iloc[0]
    assert row["value"] == "Observational" and row["status"].startswith("✔")
    assert any("human-verified" in s.value for s in at.success)


# -- exports ------------------------------------------------------------------------------
def test_exports_produce_parseable_files(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    captured: dict[str | None, Any] = {}
    original = MediaFileManager.add_deferred

    def spy(
        self: MediaFileManager,
        data_callable: Any,
        mimetype: Any,
        coordinates: str,
        file_name: str | None = None,
        **kw: Any,
    ) -> str:
        captured[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = open_app(monkeypatch, store_path, "views/export.py", {"c": "ptsd", "d": "rct"})
    assert len(at.get("download_button")) == 6
    want = expected_pmids(condition="ptsd", design="rct")
    files = {name: fn() for name, fn in captured.items()}

    rows = list(csv.DictReader(io.StringIO(files["kea-studies.csv"].decode("utf-8"))))
    assert {r["pmid"] for r in rows} == want
    assert {"design", "outcome", "confidence_design", "needs_review"} <= set(rows[0])
    jsonl = [json.loads(x) for x in files["kea-studies.jsonl"].decode().splitlines() if x]
    assert {r["pmid"] for r in jsonl} == want
    ris = rispy.loads(files["kea-studies.ris"].decode("utf-8"))
    assert len(ris) == len(want)
    bib = files["kea-studies.bib"].decode("utf-8")
    import bibtexparser

    assert len(bibtexparser.parse_string(bib).entries) == len(want)
    assert {str(i["PMID"]) for i in json.loads(files["kea-studies.json"])} == want
    wb = openpyxl.load_workbook(io.BytesIO(files["kea-studies.xlsx"]))
    assert len(wb.sheetnames) >= 2, "a data sheet and a metadata sheet"
    assert wb[wb.sheetnames[0]].max_row - 1 == len(want)


# -- sizes and states ---------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    db = tmp_path / "empty.sqlite"
    Store(db).close()
    at = open_app(monkeypatch, db, page)
    assert any("kea crawl" in i.value for i in at.info)


def test_one_record_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = make_store(tmp_path / "one.sqlite", n=1, seed=3, labelled=1.0, deleted=0.0)
    for page in PAGES:
        open_app(monkeypatch, db, page)


def test_missing_store_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = open_app(monkeypatch, tmp_path / "nope.sqlite")
    assert any("No evidence store" in e.value and "kea crawl" in e.value for e in at.error)


def test_two_thousand_records(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = make_store(tmp_path / "big.sqlite", n=2000, seed=11)
    at = open_app(monkeypatch, db, "views/studies.py")
    total = StudyFilter()
    conn = connect(db)
    from pipeline.query import count_studies

    n = count_studies(conn, total)
    assert n > 200
    assert len(at.dataframe[0].value) == 200
    at.number_input(key="st_page").set_value(2).run()
    assert not at.exception and len(at.dataframe[0].value) == min(200, n - 200)
    for page in ("views/overview.py", "views/questions.py"):
        at.switch_page(page).run()
        assert not at.exception


@pytest.mark.parametrize("page", PAGES)
def test_demo_banner_on_every_page(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str
) -> None:
    db = make_store(tmp_path / "demo.sqlite", n=30, seed=5, demo=True)
    at = open_app(monkeypatch, db, page)
    assert any(w.value.startswith("Demo data: fictional records") for w in at.warning)


def test_script_in_title_is_shown_as_text(
    monkeypatch: pytest.MonkeyPatch, store_copy: Path
) -> None:
    pmid = "90099999"
    art = Article(
        pmid=pmid,
        title=HOSTILE_TITLE,
        journal="<i>J</i>",
        pub_year=2024,
        abstract_sections=[AbstractSection(text=HOSTILE_ABSTRACT, label="<u>AIM</u>")],
    )
    with Store(store_copy) as store:
        store.upsert_batch([art])
    at = open_app(
        monkeypatch, store_copy, "views/studies.py", {"sc": "all", "q": "kea_pwned", "pmid": pmid}
    )
    assert table_pmids(at) == {pmid}
    assert at.dataframe[0].value["title"].iloc[0] == HOSTILE_TITLE  # the grid shows plain text
    heading = [m.value for m in at.markdown if "kea" in m.value and "pwned" in m.value]
    assert heading, "the title is shown"
    for body in heading:
        assert re.search(r"(?<!\\)[<\[*$]", body) is None, "markup left unescaped"
        assert fmt.md_unescape(body).endswith(HOSTILE_TITLE)
    assert HOSTILE_ABSTRACT in [t.value for t in at.text]  # st.text never renders markup
    assert not [m for m in at.markdown if m.proto.allow_html and "pwned" in m.value]


# -- pure helpers ---------------------------------------------------------------------------
def test_md_escape_round_trips_and_disarms() -> None:
    for s in (HOSTILE_TITLE, HOSTILE_ABSTRACT, "a\\b", "line 1\nline 2", "plain words"):
        esc = fmt.md_escape(s)
        assert fmt.md_unescape(esc) == s
        assert "<" not in esc.replace("\\<", "")


def test_answer_summary_counts_and_participants() -> None:
    rows = [
        {"pmid": "1", "design": "rct", "outcome": "beneficial", "sample_size": 40},
        {"pmid": "2", "design": "rct", "outcome": "beneficial", "sample_size": None},
        {"pmid": "3", "design": "rct", "outcome": "no_benefit", "sample_size": 100},
        {
            "pmid": "4",
            "design": "systematic_review",
            "outcome": "mixed",
            "sample_size": 900,
            "retracted": True,
        },
    ]
    s = fmt.answer_summary(rows)
    rct = s["table"][0]
    assert (rct["Beneficial"], rct["Beneficial participants"]) == (2, 40)
    assert (rct["No benefit"], rct["No benefit participants"]) == (1, 100)
    assert s["totals"] == {"beneficial": 2, "no_benefit": 1, "mixed": 1, "not_reported": 0}
    assert [r["pmid"] for r in s["largest"]] == ["3", "1"], "retracted studies are not showcased"


def test_questions_file_builds_filters() -> None:
    spec = json.loads((APP.parent / "questions.json").read_text())["questions"]
    assert len(spec) == 7
    for q in spec:
        assert q["claim"] and q["how"]
        f = StudyFilter(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in q["filter"].items()}
        )
        assert url.from_query_params(url.to_query_params(f)) == f


def test_launch_command_and_missing_db(tmp_path: Path) -> None:
    with pytest.raises(KeaError, match="does not exist"):
        resolve_db(str(tmp_path / "missing.sqlite"))
    db = make_store(tmp_path / "k.sqlite", n=3)
    cmd = streamlit_command(resolve_db(str(db)), 8765, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[-2:] == ["--db", str(db.resolve())]


CARD = {  # the shape pipeline.classify.card.model_card() returns (issue 7)
    "model_version": "m-1",
    "metrics": [
        {
            "label": "outcome",
            "metric": "macro_f1",
            "value": 0.62,
            "ci_low": 0.55,
            "ci_high": 0.69,
            "n": 400,
            "split": "cv",
        },
        {
            "label": "design",
            "metric": "macro_f1",
            "value": 0.714,
            "ci_low": None,
            "ci_high": None,
            "n": 80,
            "split": "sealed",
        },
        {
            "label": "design",
            "metric": "macro_f1",
            "value": 0.71,
            "ci_low": 0.66,
            "ci_high": 0.76,
            "n": 400,
            "split": "cv",
        },
        {
            "label": "conditions",
            "metric": "exact",
            "value": 0.8,
            "ci_low": 0.75,
            "ci_high": 0.84,
            "n": 400,
            "split": "cv",
        },
    ],
    "review": {
        "threshold": 0.5,
        "flagged_share": 0.23,
        "accuracy_flagged": 0.61,
        "accuracy_unflagged": 0.93,
    },
}


def test_about_shows_model_card_metrics(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    from pipeline import query

    monkeypatch.setattr(query, "model_card", lambda: None)
    at = open_app(monkeypatch, store_path, "views/about.py")
    assert any("not available" in i.value for i in at.info)
    assert not at.dataframe[-1].value.columns.isin(["metric"]).any()

    monkeypatch.setattr(query, "model_card", lambda: CARD)
    at.run()
    assert not at.exception
    frame = at.dataframe[-1].value
    assert list(frame.columns) == ["label", "metric", "value", "interval", "n", "split"]
    assert frame.values.tolist() == [
        ["Conditions", "exact match", "0.80", "0.75–0.84", 400, "cross-validated"],
        ["Design", "macro-F1", "0.71", "0.66–0.76", 400, "cross-validated"],
        ["Design", "macro-F1", "0.71", "—", 80, "sealed test set"],
        ["Outcome", "macro-F1", "0.62", "0.55–0.69", 400, "cross-validated"],
    ]
    text = " ".join(m.value for m in at.markdown)
    assert "below 0.50" in text and "23%" in text and "61%" in text and "93%" in text
    assert any("m-1" in c.value for c in at.caption)
