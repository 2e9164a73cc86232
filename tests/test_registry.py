"""Walk the label registry: every label reaches the CLI, the filter, the SQL, the exports and
the dashboard, so a label added to ``pipeline.labels`` cannot be forgotten on the read side.

Each check is derived from the ``Label`` itself (its kind, vocabulary, flags and keys),
never from a list of today's labels; the expected counts come from a plain-Python
oracle over the factory records, not from the SQL under test.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from factories import Record, make_records, write_store
from streamlit.testing.v1 import AppTest

from dashboard import url
from kea.cli import build_parser
from kea.filters_cli import filter_from_args, labels_from_args
from pipeline import export
from pipeline import query as q
from pipeline.labels import FILTERABLE, LABELS, Label
from pipeline.query import StudyFilter

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
IDS = [lab.name for lab in LABELS]
FILTER_IDS = [lab.name for lab in FILTERABLE]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return make_records(300, seed=11)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, records: list[Record]) -> Path:
    return write_store(tmp_path_factory.mktemp("registry") / "kea.sqlite", records)


@pytest.fixture(scope="module")
def conn(db: Path):
    c = q.connect(db)
    yield c
    c.close()


def _options(parser: argparse.ArgumentParser, command: str) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for action in sub.choices[command]._actions for s in action.option_strings}


def _filter_value(lab: Label) -> Any:
    """A non-default filter value of the label's kind (the last vocabulary id: not the first
    one a lazy loop would happen to get right)."""
    if lab.has_vocabulary:
        return (lab.vocabulary[-1],)
    if lab.kind == "integer":
        return 7
    return False  # 0 in SQLite: the value a truthiness bug drops


def _cli_argv(lab: Label, value: Any) -> list[str]:
    if lab.has_vocabulary:
        return [f"--{lab.cli_flag}", ",".join(value)]
    if lab.kind == "integer":
        return [f"--{lab.cli_flag}", str(value)]
    return [f"--{lab.cli_flag}" if value else f"--no-{lab.cli_flag}"]


def _label_input(lab: Label) -> tuple[str, Any]:
    """What a person types on `kea label` for this label, and the value it must become."""
    if lab.is_set:
        two = lab.vocabulary[-2:]
        return ",".join(reversed(two)), sorted(two)
    if lab.has_vocabulary:
        return lab.vocabulary[-1], lab.vocabulary[-1]
    if lab.kind == "integer":
        return "42", 42
    return "false", False


def _matches(lab: Label, stored: Any, want: Any) -> bool:
    """The oracle: does one record's label value pass the label's filter?"""
    if lab.is_set:
        return bool(set(stored or []) & set(want))
    if lab.has_vocabulary:
        return stored in want
    if lab.kind == "integer":
        return stored is not None and stored >= want
    return stored is not None and bool(stored) == want


# -- the CLI ------------------------------------------------------------------------------
def test_cli_flag_names_are_unique():
    flags = [lab.cli_flag for lab in FILTERABLE]
    assert len(flags) == len(set(flags))
    assert not set(flags) & {"since", "until", "search", "all", "format", "out", "db"}


@pytest.mark.parametrize("lab", LABELS, ids=IDS)
def test_label_reaches_the_cli(lab: Label):
    parser = build_parser()
    if lab.filter:
        assert f"--{lab.cli_flag}" in _options(parser, "export")
    assert f"--{lab.name.replace('_', '-')}" in _options(parser, "label")
    raw, want = _label_input(lab)
    args = parser.parse_args(["label", "1", f"--{lab.name.replace('_', '-')}", raw])
    assert labels_from_args(args) == {lab.name: want}


# -- the filter ---------------------------------------------------------------------------
def test_url_keys_are_unique():
    keys = list(url.url_keys().values())
    assert len(keys) == len(set(keys))
    assert set(url.url_keys()) == {f.name for f in fields(StudyFilter)}


@pytest.mark.parametrize("lab", FILTERABLE, ids=FILTER_IDS)
def test_label_reaches_the_filter(lab: Label):
    names = {f.name: f for f in fields(StudyFilter)}
    assert lab.filter in names
    value = _filter_value(lab)
    f = StudyFilter(**{lab.filter: value})
    assert f != StudyFilter() and f.has_label_filter()
    params = url.to_query_params(f)
    assert set(params) == {lab.url_key}
    assert url.from_query_params(params) == f
    assert url.from_query_params({k: [v] for k, v in params.items()}) == f
    args = build_parser().parse_args(["export", "--format", "csv", *_cli_argv(lab, value)])
    parsed = filter_from_args(args)
    assert getattr(parsed, lab.filter) == value and parsed.scope == "in_scope"


# -- the SQL ------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", FILTERABLE, ids=FILTER_IDS)
def test_label_filter_reaches_the_sql(lab: Label, conn, records: list[Record]):
    value = _filter_value(lab)
    live = [r for r in records if not r.deleted]
    labelled = [r for r in live if r.labels is not None]
    want = sum(_matches(lab, r.labels[lab.name], value) for r in labelled)
    got = q.count_studies(conn, StudyFilter(scope="all", **{lab.filter: value}))
    assert got == want
    assert 0 < got < len(live), "the filter must change the count"
    in_scope = sum(
        _matches(lab, r.labels[lab.name], value) and r.labels["relevance"] == "in_scope"
        for r in labelled
    )
    assert q.count_studies(conn, StudyFilter(**{lab.filter: value})) == in_scope


# -- the exports --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(conn) -> dict[str, Any]:
    everything = StudyFilter(scope="all")
    text = {fmt: export.export_bytes(conn, fmt, everything) for fmt in ("csv", "jsonl")}
    sheet = openpyxl.load_workbook(io.BytesIO(export.export_bytes(conn, "xlsx", everything)))
    return {
        "csv": next(csv.reader(io.StringIO(text["csv"].decode()))),
        "xlsx": [c.value for c in next(sheet["Studies"].iter_rows(max_row=1))],
        "jsonl": [json.loads(line) for line in text["jsonl"].decode().splitlines()],
    }


@pytest.mark.parametrize("lab", LABELS, ids=IDS)
def test_label_reaches_the_exports(lab: Label, exported: dict[str, Any], records: list[Record]):
    assert lab.name in exported["csv"]
    assert lab.name in exported["xlsx"]
    rows = {r["pmid"]: r for r in exported["jsonl"]}
    for r in records:
        if r.deleted:
            continue
        got = rows[r.article.pmid][lab.name]
        want = None if r.labels is None else r.labels[lab.name]
        if lab.is_set and want is not None:
            want = sorted(want)
        assert got == want, (r.article.pmid, lab.name)


# -- the dashboard ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def studies_page(db: Path, records: list[Record]) -> tuple[AppTest, str]:
    pmid = next(r.article.pmid for r in records if r.labels and not r.deleted)
    mp = pytest.MonkeyPatch()
    mp.setenv("KEA_DB", str(db))
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.switch_page("views/studies.py")
        at.query_params.update({"pmid": pmid})
        at.run()
        at.toggle(key=f"fix_open_{pmid}").set_value(True).run()  # the correction form
    finally:
        mp.undo()
    assert not at.exception, [e.value for e in at.exception]
    return at, pmid


def _widget_keys(at: AppTest) -> set[str]:
    kinds = ("multiselect", "selectbox", "number_input", "text_input", "radio")
    return {w.key for kind in kinds for w in at.get(kind) if w.key}


@pytest.mark.parametrize("lab", LABELS, ids=IDS)
def test_label_reaches_the_dashboard(lab: Label, studies_page: tuple[AppTest, str]):
    at, pmid = studies_page
    keys = _widget_keys(at)
    if lab.filter:
        assert f"f_{lab.filter}" in keys, "no sidebar filter widget"
        if lab.has_vocabulary:  # options shown by their display names, in TAXONOMY order
            shown = at.multiselect(key=f"f_{lab.filter}").options
            assert shown == list(lab.values.values())
    assert f"fix_{pmid}_{lab.name}" in keys, "no field in the correction form"
    if lab.is_set:
        assert at.multiselect(key=f"fix_{pmid}_{lab.name}").options == list(lab.values.values())
    elif lab.has_vocabulary:
        shown = at.selectbox(key=f"fix_{pmid}_{lab.name}").options
        assert set(lab.values.values()) <= set(shown)
    table = at.table[0].value
    assert lab.title in set(table["Label"]), "no row in the study's label table"


# -- `kea label --by` ---------------------------------------------------------------------
def test_kea_label_records_who_corrects(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, records: list[Record]
):
    """Every label flag parses through Label.parse and --by (default $USER) is the author."""
    import json
    import sqlite3

    from kea.cli import main

    db = write_store(tmp_path / "k.sqlite", records[:5], corrections=0)

    def stored() -> list[tuple[str, Any, str | None]]:
        with sqlite3.connect(db) as c:
            rows = c.execute("SELECT field, value, author FROM corrections ORDER BY id").fetchall()
        return [(f, json.loads(v), a) for f, v, a in rows]

    pmid = records[0].article.pmid
    argv = ["label", pmid, "--db", str(db)]
    for lab in LABELS:
        argv += [f"--{lab.name.replace('_', '-')}", _label_input(lab)[0]]
    assert main([*argv, "--by", "Ada Quill"]) == 0
    assert stored() == [(lab.name, _label_input(lab)[1], "Ada Quill") for lab in LABELS]
    monkeypatch.setenv("USER", "bram")
    assert main(["label", pmid, "--db", str(db), "--design", "rct"]) == 0
    assert stored()[-1] == ("design", "rct", "bram")
    before = stored()
    assert main(["label", pmid, "--db", str(db), "--design", "rtc"]) == 2
    assert stored() == before
