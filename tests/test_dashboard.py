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
from datetime import UTC, datetime
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
    live = want.pop("live", False)  # the Overview's counts leave retracted studies out
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
    if live:
        retracted = {r.article.pmid for r in make_records(N, SEED) if r.article.retracted}
        out -= retracted
    return out


def table_pmids(at: AppTest) -> set[str]:
    frame = at.dataframe[0].value
    return {u.rstrip("/").rsplit("/", 1)[-1] for u in frame["pmid_url"]}


# -- every page ---------------------------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(monkeypatch: pytest.MonkeyPatch, store_path: Path, page: str) -> None:
    at = open_app(monkeypatch, store_path, page)
    assert at.title, f"{page} has no title"
    assert all("not counted" in e.value for e in at.error), "only retracted notes are errors"
    assert not at.warning, "no demo banner on a non-demo store"


def test_overview_headline_matches_store(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    at = open_app(monkeypatch, store_path)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Studies in scope"] == f"{len(expected_pmids(live=True)):,}"
    assert metrics["RCTs"] == f"{len(expected_pmids(design='rct', live=True)):,}"
    assert len(expected_pmids(live=True)) < len(expected_pmids()), "the store has retracted ones"
    at.selectbox(key="ov_cond").set_value("ptsd")
    at.selectbox(key="ov_design").set_value("rct").run()
    link = [p for p in at.get("page_link") if "PTSD" in p.proto.label][0]
    assert link.proto.label.startswith(
        f"Open {len(expected_pmids(condition='ptsd', design='rct', live=True))} "
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
    labels = at.table[0].value
    design_row = labels[labels["Label"] == "Design"].iloc[0]
    assert design_row["Value"] == fmt.pretty(d["design"])
    if "design" not in d["verified"]:
        assert design_row["Confidence of this value"] == fmt.pct(d["confidence"]["design"])
    codes = [c.value for c in at.code]
    for style in ("ama", "apa", "vancouver"):
        assert format_citation(d, style) in codes
    assert d["evidence"]["design"] in set(labels["Evidence (sentence or terms)"])


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
    assert not at.get("selectbox") or f"fix_{pmid}_design" not in [w.key for w in at.selectbox]
    at.toggle(key=f"fix_open_{pmid}").set_value(True).run()
    at.selectbox(key=f"fix_{pmid}_design").set_value("observational")
    at.button(key=f"FormSubmitter:fix_{pmid}-Save correction").click().run()
    assert not at.exception
    with Store(store_copy) as store:
        assert store.corrections_for(pmid) == {"design": "observational"}
        assert "design" in store.get_labels(pmid)["verified"]
    labels = at.table[0].value
    row = labels[labels["Label"] == "Design"].iloc[0]
    assert row["Value"] == "Observational" and row["Status"].startswith("✔")
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
    assert len(captured) == 6, "six different file names"
    want = expected_pmids(condition="ptsd", design="rct")
    import zipfile

    files: dict[str, bytes] = {}
    for name, fn in captured.items():
        assert name and re.fullmatch(r"kea-ptsd-rct-\d{4}-\d{2}-\d{2}\.(\w+\.zip|xlsx)", name), name
        if name.endswith(".xlsx"):
            files["kea-studies.xlsx"] = fn()
            continue
        with zipfile.ZipFile(io.BytesIO(fn())) as zf:
            inner = [n for n in zf.namelist() if not n.endswith(".about.json")]
            assert len(inner) == 1 and inner[0] + ".about.json" in zf.namelist()
            files["kea-studies." + inner[0].rsplit(".", 1)[1]] = zf.read(inner[0])

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
        {"pmid": "5", "design": "rct", "outcome": "mixed", "sample_size": None},
        {
            "pmid": "4",
            "design": "systematic_review",
            "outcome": "beneficial",
            "sample_size": 900,
            "retracted": True,
        },
    ]
    s = fmt.answer_summary(rows)
    rct, review = s["table"]
    assert rct["Beneficial"] == "2 studies · 40 participants; N not stated (1 study)"
    assert rct["No benefit"] == "1 study · 100 participants"
    assert rct["Mixed"] == "1 study · N not stated (1 study)"
    assert review["Beneficial"] == "—", "a retracted review is not counted as evidence"
    assert s["totals"] == {"beneficial": 2, "no_benefit": 1, "mixed": 1, "not_reported": 0}
    assert [r["pmid"] for r in s["retracted"]] == ["4"] and s["studies"] == 4
    assert [r["pmid"] for r in s["largest"]] == ["3", "1"], "retracted studies are not showcased"


def test_outcome_table_says_n_not_stated_never_zero_participants() -> None:
    rows = [
        {"condition": "ocd", "outcome": "beneficial", "studies": 2, "participants": 0, "with_n": 0},
        {
            "condition": "ocd",
            "outcome": "no_benefit",
            "studies": 1,
            "participants": 30,
            "with_n": 1,
        },
    ]
    t = fmt.outcome_table(rows)
    row = t.iloc[0].to_dict()
    assert row["Condition"] == "OCD"
    assert row["Beneficial"] == "2 studies · N not stated (2 studies)"
    assert row["No benefit"] == "1 study · 30 participants"
    assert not any(c.startswith("0 participants") or " 0 participants" in c for c in t.iloc[0])


def test_plural_and_author_line() -> None:
    assert fmt.plural(1, "study") == "1 study" and fmt.plural(2, "study") == "2 studies"
    assert fmt.plural(1_200, "participant") == "1,200 participants"
    names = [f"Author{i} AB" for i in range(40)]
    line = fmt.author_line(names, budget=60)
    assert line.endswith(" et al.")
    assert all(part in names for part in line.removesuffix(" et al.").split(", "))
    assert fmt.author_line(["Solo X"]) == "Solo X"


def test_confidence_is_of_the_shown_value() -> None:
    """Not the minimum over every class: a record confidently *not* about anxiety is fine."""
    old = {  # a row written before set labels carried their own confidence
        "pmid": "1",
        "design": "rct",
        "outcome": "beneficial",
        "conditions": ["depression"],
        "confidence": {
            "design": 0.81,
            "outcome": 0.77,
            "conditions:depression": 0.93,
            "conditions:anxiety": 0.02,
            "subgroups:ocd": 0.01,
        },
        "verified": [],
        "min_confidence": 0.01,
    }
    frame = fmt.studies_frame([old])
    assert frame["confidence"].iloc[0] == pytest.approx(0.77)
    assert frame["conditions"].iloc[0] == "Depression 93%"
    new = {**old, "confidence": {**old["confidence"], "conditions": 0.6}}
    assert fmt.studies_frame([new])["confidence"].iloc[0] == pytest.approx(0.6)
    rows = {r["label"]: r for r in fmt.label_rows({**new, "review": ["conditions"]})}
    assert rows["Conditions"]["probability"] == pytest.approx(0.6)
    assert rows["Conditions"]["status"].startswith("⚑")
    assert rows["Design"]["probability"] == pytest.approx(0.81)
    assert rows["Design"]["status"] == "model"
    verified = fmt.studies_frame([{**new, "verified": ["outcome"]}])
    assert verified["confidence"].iloc[0] == pytest.approx(0.6)
    assert verified["outcome"].iloc[0] == "Beneficial ✔"


def test_human_verified_label_shows_who_and_when_not_the_model(
    monkeypatch: pytest.MonkeyPatch, store_copy: Path
) -> None:
    from pipeline.corrections import record_corrections

    conn = connect(store_copy)
    pmid = next(p for p in sorted(expected_pmids()) if not study_detail(conn, p)["verified"])
    before = study_detail(conn, pmid)
    assert before["evidence"]["design"] and before["confidence"]["design"]
    record_corrections(
        store_copy, pmid, {"design": "observational"}, source="cli", author="Dr Ana Reviewer"
    )
    at = open_app(monkeypatch, store_copy, "views/studies.py", {"pmid": pmid})
    labels = at.table[0].value
    row = labels[labels["Label"] == "Design"].iloc[0]
    today = datetime.now(UTC).date().isoformat()
    assert row["Status"] == f"✔ human-verified by Dr Ana Reviewer on {today}"
    assert not row["Confidence of this value"], "no model probability beside a correction"
    assert not row["Evidence (sentence or terms)"], "no model evidence beside a correction"
    other = labels[labels["Label"] == "Relevance"].iloc[0]
    assert other["Confidence of this value"] == fmt.pct(before["confidence"]["relevance"])


def test_overview_and_questions_say_retracted_not_counted(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    conn = connect(store_path)
    from pipeline.query import count_studies

    k = count_studies(conn, StudyFilter(retracted=True))
    assert k >= 1
    at = open_app(monkeypatch, store_path)
    want = fmt.plural(k, "retracted study", "retracted studies") + " not counted"
    assert any(want in e.value for e in at.error), [e.value for e in at.error]
    links = [p for p in at.get("page_link") if "retracted" in p.proto.label]
    assert links and "ret=1" in links[0].proto.query_string
    strong = count_studies(conn, StudyFilter(retracted=True, designs=("rct", "systematic_review")))
    notes = [e.value for e in at.error]
    if strong:
        assert any(fmt.plural(strong, "retracted study", "retracted studies") in n for n in notes)
    at.switch_page("views/questions.py").run()
    assert not at.exception
    assert all("retracted" in e.value and "not counted" in e.value for e in at.error)


def test_studies_table_columns_and_selected_export(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    at = open_app(monkeypatch, store_path, "views/studies.py")
    frame = at.dataframe[0].value
    assert {"comparator", "psychotherapy"} <= set(frame.columns)
    assert not (frame.astype(str) == "None").any().any(), "missing values are empty, not 'None'"
    order = list(fmt.STUDY_COLUMNS)
    assert order.index("n") < 5 and order.index("outcome") < 5, "N and Outcome come first"
    rows = list(frame["pmid_url"])
    picked = [u.rstrip("/").rsplit("/", 1)[-1] for u in rows[:3]]
    from dashboard import data

    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                data.export_selected(str(store_path), "csv", StudyFilter(), picked).decode()
            )
        )
    )
    assert sorted(r["pmid"] for r in csv_rows) == sorted(picked)
    ris = rispy.loads(data.export_selected(str(store_path), "ris", StudyFilter(), picked).decode())
    assert len(ris) == 3


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
    frames = [d.value for d in at.dataframe]
    frame = next(f for f in frames if "metric" in f.columns)
    assert list(frame.columns) == ["label", "metric", "value", "interval", "n", "split"]
    sealed = "sealed test set (never read while building)"
    assert frame.values.tolist() == [  # sealed rows first, then by registry order
        ["Design", "macro-F1", "0.71", "—", 80, sealed],
        ["Conditions", "exact match", "0.80", "0.75–0.84", 400, "cross-validated"],
        ["Design", "macro-F1", "0.71", "0.66–0.76", 400, "cross-validated"],
        ["Outcome", "macro-F1", "0.62", "0.55–0.69", 400, "cross-validated"],
    ]
    text = " ".join(m.value for m in at.markdown)
    assert "below 0.50" in text and "23%" in text and "61%" in text and "93%" in text
    assert "What ⚑ means" in text
    review = next(f for f in frames if "fully right" in f.columns)
    assert review.values.tolist() == [["flagged ⚑", "23%", "61%"], ["not flagged", "77%", "93%"]]
    assert any("m-1" in c.value for c in at.caption)


def test_about_label_review_and_calibration_rows() -> None:
    review = {
        "label_flagged_share": 0.3,
        "label_precision_flagged": 0.72,
        "label_precision_unflagged": 0.96,
    }
    assert fmt.label_review_rows(review) == [
        {"labels": "labels flagged ⚑", "share of labels": "30%", "right": "72%"},
        {"labels": "labels not flagged", "share of labels": "70%", "right": "96%"},
    ]
    card = {
        "calibration": [
            {"label": "design", "split": "dev_cv", "ece": 0.031, "threshold": 0.72, "n": 318},
            {
                "label": "outcome",
                "split": "sealed",
                "ece": 0.05,
                "ece_ci_low": 0.02,
                "ece_ci_high": 0.08,
                "threshold": 0.88,
                "flagged_share": 0.4,
                "precision_flagged": 0.6,
                "precision_unflagged": 0.9,
                "n": 156,
            },
        ]
    }
    rows = fmt.calibration_rows(card)
    assert [r["Label"] for r in rows] == ["Outcome", "Design"], "sealed rows first"
    assert rows[0]["Calibration error (ECE)"] == "0.050 (0.020–0.080)"
    assert rows[0]["Right when flagged"] == "60%" and rows[1]["Flagged"] == "—"


# -- issue 8: speed work (numbers, the grid's own export, plain Vega-Lite charts) ----------
def test_n_and_year_are_numbers_that_sort_numerically_with_missing_empty(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    rows = [
        {"pmid": "1", "title": "a", "year": 2009, "sample_size": 900},
        {"pmid": "2", "title": "b", "year": None, "sample_size": None},
        {"pmid": "3", "title": "c", "year": 2010, "sample_size": 80},
    ]
    frame = fmt.studies_frame(rows)
    assert str(frame["n"].dtype) == "Int64" and str(frame["year"].dtype) == "Int64"
    # as numbers 80 < 900 (as text "900" < "80"); a missing one is <NA>, not "" or "None"
    assert frame.sort_values("n")["n"].tolist()[:2] == [80, 900]
    assert frame["n"].isna().tolist() == [False, True, False]

    at = open_app(monkeypatch, store_path, "views/studies.py")
    grid = at.dataframe[0]
    cols = json.loads(grid.proto.columns)
    assert cols["n"]["type_config"]["type"] == "number"
    assert cols["year"]["type_config"]["type"] == "number"
    assert grid.proto.placeholder == "", "a missing N is an empty cell, not a grey 'None'"
    shown = grid.value
    assert str(shown["n"].dtype) == "Int64" and shown["n"].notna().any()


def test_grid_has_no_export_past_the_formula_guard(
    monkeypatch: pytest.MonkeyPatch, store_path: Path, tmp_path: Path
) -> None:
    """The grid's own CSV download would write '=HYPERLINK(...)' titles as is: it is off."""
    from streamlit import config

    config.set_option("client.disableDataExport", False)
    open_app(monkeypatch, store_path, "views/studies.py")
    assert config.get_option("client.disableDataExport") is True
    cmd = streamlit_command(tmp_path / "k.sqlite", 8765, "127.0.0.1")
    assert cmd[cmd.index("--client.disableDataExport") + 1] == "true"


def test_overview_charts_are_vega_lite_with_a_clickable_map(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    from dashboard import charts

    at = open_app(monkeypatch, store_path)
    drawn = at.get("vega_lite_chart")
    assert len(drawn) == 2, "evidence map and timeline"
    assert list(drawn[0].proto.selection_mode) == [charts.CELL], "a cell click selects it"
    spec = json.loads(drawn[0].proto.spec)
    assert spec["layer"][0]["params"][0]["select"]["fields"] == ["condition", "design"]
    clicked = {"selection": {"cell": [{"condition": "ptsd", "design": "rct"}]}}
    assert charts.selected_cell(clicked) == ("ptsd", "rct")
    assert charts.selected_cell({"selection": {"cell": []}}) == (None, None)
    src = (APP.parent / "views" / "overview.py").read_text()
    assert "altair" not in src, "altair validated every chart on every rerun: not used"


def test_study_links_are_markdown_that_survives_any_doi() -> None:
    sici = "https://doi.org/10.1002/(SICI)1097-4571(199806)49:8<693::AID-ASI4>3.0.CO;2-0"
    line = fmt.link_line("https://pubmed.ncbi.nlm.nih.gov/123/", sici)
    assert "[PubMed](https://pubmed.ncbi.nlm.nih.gov/123/)" in line
    target = re.search(r"\[DOI\]\(([^)]*)\)", line).group(1)
    assert not set("()<> $*") & set(target), "nothing in the target ends the link early"
    from urllib.parse import unquote

    assert unquote(target) == sici
    assert fmt.link_line(None, None) == ""
