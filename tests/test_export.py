"""pipeline.export: every format parses back with the tools users read it with, and the
`kea export` command writes it."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import bibtexparser
import openpyxl
import pandas as pd
import pytest
import rispy
from citeproc import Citation, CitationItem, CitationStylesBibliography, formatter
from citeproc.source.json import CiteProcJSON
from factories import Record, make_records, write_store

from kea.cli import main
from pipeline import export, query
from pipeline.cite import _style
from pipeline.errors import ExportError
from pipeline.query import StudyFilter
from pipeline.store import Store

ALL = StudyFilter(scope="all")
BIB_FIELDS = (
    "pmid",
    "doi",
    "pmcid",
    "title",
    "abstract",
    "journal",
    "year",
    "authors",
    "publication_types",
    "mesh_terms",
    "keywords",
    "language",
    "retracted",
)
LABEL_NAMES = (
    "relevance",
    "conditions",
    "subgroups",
    "design",
    "outcome",
    "sample_size",
    "drug",
    "routes",
    "comparator",
    "psychotherapy",
)
LABEL_FIELDS = (*LABEL_NAMES, "confidence", "needs_review", "verified")
FLAT_LABEL_FIELDS = (
    *LABEL_NAMES,
    "needs_review",
    "verified",
    *(f"confidence_{n}" for n in LABEL_NAMES),
    *(f"evidence_{n}" for n in LABEL_NAMES),
)


def _model_view(labels: dict, key: str) -> dict:
    """A stored confidence/evidence dict minus the entries of human-verified labels."""
    drop = set(labels.get("verified") or ())
    return {k: v for k, v in labels[key].items() if k.split(":")[0] not in drop}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    recs = make_records(60, 11)
    # one record whose title would be a formula in a spreadsheet, one with '#' and quotes
    recs[0].article = dataclasses.replace(recs[0].article, title='=HYPERLINK("x") fictional')
    recs[1].article = dataclasses.replace(recs[1].article, title='Fictional #1, "quoted"; study')
    recs[0].deleted = recs[1].deleted = False
    return recs


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, records: list[Record]) -> Path:
    path = write_store(tmp_path_factory.mktemp("x") / "kea.sqlite", records)
    with Store(path) as store:
        store.set_meta("ncbi_api_key", "SECRET-KEY-123")
    return path


@pytest.fixture(scope="module")
def conn(db: Path):
    return query.connect(db)


def _live(records):
    return [r for r in records if not r.deleted]


def test_jsonl(conn, records):
    lines = export.export_bytes(conn, "jsonl", ALL).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == len(_live(records))
    by = {r["pmid"]: r for r in rows}
    for rec in _live(records):
        row = by[rec.article.pmid]
        assert set(BIB_FIELDS + LABEL_FIELDS) <= set(row)
        assert row["authors"] == rec.article.author_names
        assert row["title"] == rec.article.title and row["year"] == rec.article.pub_year
        assert row["retracted"] is rec.article.retracted
        if rec.labels is None:
            assert all(row[f] is None for f in LABEL_FIELDS)
        else:
            assert row["conditions"] == rec.labels["conditions"]
            assert row["confidence"] == _model_view(rec.labels, "confidence")
            assert row["evidence"] == _model_view(rec.labels, "evidence")
            assert row["design"] == rec.labels["design"]
            assert row["label_confidence"]["relevance"] == rec.labels["confidence"]["relevance"]
            if "design" in rec.labels.get("verified", []):
                assert row["label_confidence"]["design"] == 1.0
                assert row["verified_by"]["design"]["source"] == "cli"
    assert "is_demo" not in rows[0]
    assert [r["pmid"] for r in rows] == [
        r["pmid"] for r in query.list_studies(conn, ALL, limit=None)
    ]


def test_csv_reads_with_pandas(conn, records):
    data = export.export_bytes(conn, "csv", ALL)
    df = pd.read_csv(io.BytesIO(data), dtype={"pmid": str})
    assert len(df) == len(_live(records))
    assert set(BIB_FIELDS + FLAT_LABEL_FIELDS) <= set(df.columns)
    assert "confidence" not in df.columns  # one column per label, not a JSON string
    by = df.set_index("pmid")
    for rec in _live(records)[:20]:
        row = by.loc[rec.article.pmid]
        title = rec.article.title
        assert row["title"] == ("'" + title if title.startswith("=") else title)  # no formula
        if rec.labels and rec.labels["conditions"]:
            assert row["conditions"] == "; ".join(rec.labels["conditions"])
            assert row["confidence_relevance"] == rec.labels["confidence"]["relevance"]
        if rec.labels is None:
            assert pd.isna(row["design"])


def _about_sheet(wb) -> dict:
    return {k: v for k, v, _meaning in wb["About"].iter_rows(min_row=2, values_only=True)}


def test_xlsx_two_sheets(conn, records):
    data = export.export_bytes(conn, "xlsx", StudyFilter(designs=("rct",)))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Studies", "About"]
    studies = pd.read_excel(io.BytesIO(data), sheet_name="Studies", dtype={"pmid": str})
    want = query.count_studies(conn, StudyFilter(designs=("rct",)))
    assert len(studies) == want > 0
    assert set(studies["design"]) == {"rct"}
    about = _about_sheet(wb)
    assert about["record_count"] == str(want)
    assert about["filter"] == "designs=rct"
    assert about["model_version"] == "factory-1"
    assert about["evidence_as_of"] == "2025-11-24T16:00:00Z"
    assert about["query"] == "ketamine[tiab] (fictional factory query)"
    assert "NCBI" in about["source"] and "data" not in about


def test_ris_round_trip(conn, records):
    refs = rispy.loads(export.export_bytes(conn, "ris", ALL).decode())
    assert len(refs) == len(_live(records))
    by = {r["accession_number"]: r for r in refs}
    rec = next(
        r.article
        for r in _live(records)
        if r.article.pages and r.article.volume and r.article.doi and r.article.authors
    )
    ref = by[rec.pmid]
    assert ref["title"] == rec.title and ref["secondary_title"] == rec.journal
    assert ref["year"] == str(rec.pub_year) and ref["volume"] == rec.volume
    assert f"{ref['start_page']}-{ref['end_page']}" == rec.pages
    assert ref["doi"] == rec.doi
    assert ref["urls"] == [f"https://pubmed.ncbi.nlm.nih.gov/{rec.pmid}/"]
    assert len(ref["authors"]) == len(rec.authors)
    retracted = [r.article.pmid for r in _live(records) if r.article.retracted]
    assert all(by[p]["notes"] == ["RETRACTED"] for p in retracted)


def test_bibtex_round_trip(conn, records):
    lib = bibtexparser.parse_string(export.export_bytes(conn, "bibtex", ALL).decode())
    assert not lib.failed_blocks
    assert len(lib.entries) == len(_live(records))
    keys = {e.key for e in lib.entries}
    assert keys == {f"pmid{r.article.pmid}" for r in _live(records)}


def test_csljson_renders_with_citeproc(conn, records):
    items = json.loads(export.export_bytes(conn, "csljson", ALL))
    assert len(items) == len(_live(records))
    bib = CitationStylesBibliography(_style("apa"), CiteProcJSON(items), formatter.plain)
    for it in items:
        bib.register(Citation([CitationItem(it["id"])]))
    assert len(bib.bibliography()) == len(items)


def test_store_without_labels(tmp_path):
    db = write_store(tmp_path / "bare.sqlite", make_records(12, 3, labelled=0.0, deleted=0.0))
    conn = query.connect(db)
    for fmt in export.FORMATS:
        assert export.export_bytes(conn, fmt, ALL)
    rows = [json.loads(x) for x in export.export_bytes(conn, "jsonl", ALL).splitlines()]
    assert len(rows) == 12 and all(r["relevance"] is None for r in rows)
    # the default in-scope view of an unlabelled store is empty, and every format copes
    for fmt in export.FORMATS:
        export.export_bytes(conn, fmt, StudyFilter())
    assert json.loads(export.export_bytes(conn, "csljson", StudyFilter())) == []
    header = pd.read_csv(io.BytesIO(export.export_bytes(conn, "csv", StudyFilter())))
    assert len(header) == 0 and "pmid" in header.columns


def test_demo_store_is_marked(tmp_path):
    db = write_store(tmp_path / "demo.sqlite", make_records(8, 4), demo=True)
    conn = query.connect(db)
    rows = [json.loads(x) for x in export.export_bytes(conn, "jsonl", ALL).splitlines()]
    assert rows and all(r["is_demo"] is True for r in rows)
    wb = openpyxl.load_workbook(io.BytesIO(export.export_bytes(conn, "xlsx", ALL)))
    assert "demo data" in _about_sheet(wb)["data"]


def test_errors(db, tmp_path):
    with Store(db) as store:
        with pytest.raises(ExportError, match="--out"):
            export.export_to(store, "xlsx", "-", ALL)
        with pytest.raises(ExportError, match="jsonl"):
            export.export_to(store, "docx", str(tmp_path / "x.docx"), ALL)
        missing = tmp_path / "no" / "such" / "dir" / "x.csv"
        with pytest.raises(ExportError, match="cannot write"):
            export.export_to(store, "csv", str(missing), ALL)


def test_api_key_never_written(db, tmp_path):
    with Store(db) as store:
        for fmt in export.FORMATS:
            out = tmp_path / f"all.{fmt}"
            export.export_to(store, fmt, str(out), ALL)
            assert b"SECRET-KEY-123" not in out.read_bytes()
            assert not list(tmp_path.glob("*.part"))


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_export_jsonl_to_file(db, tmp_path, records, capsys):
    out = tmp_path / "all.jsonl"
    assert main(["export", "--format", "jsonl", "--db", str(db), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == len(_live(records))  # no label filter: every stored record
    err = capsys.readouterr().err
    assert f"wrote {len(rows)} records" in err and "all.jsonl.about.json" in err


def test_cli_export_filtered_to_stdout(db, records, capsys):
    assert main(["export", "--format", "jsonl", "--db", str(db), "--design", "rct"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    want = [
        r
        for r in _live(records)
        if r.labels and r.labels["relevance"] == "in_scope" and r.labels["design"] == "rct"
    ]
    assert len(rows) == len(want) > 0
    assert {r["design"] for r in rows} == {"rct"}


def test_cli_export_ris_stdout(db, records, capsys):
    assert main(["export", "--format", "ris", "--db", str(db), "--all"]) == 0
    assert len(rispy.loads(capsys.readouterr().out)) == len(_live(records))


def test_cli_bad_filter_value(db, capsys):
    assert main(["export", "--format", "jsonl", "--db", str(db), "--design", "rtc"]) == 2
    err = capsys.readouterr().err
    assert "'rtc'" in err and "--design" in err


def test_cli_xlsx_to_stdout_is_an_error(db, capsys):
    assert main(["export", "--format", "xlsx", "--db", str(db)]) == 2
    assert "--out" in capsys.readouterr().err


# -- real records (read from ../shared at test time, never copied) ----------------------------
def _author(name: str):
    from pipeline.records import Author

    last, _, initials = name.rpartition(" ")
    if last and initials.isalpha() and initials.isupper() and len(initials) <= 4:
        return Author(last_name=last, initials=initials)
    return Author(collective_name=name)


def _corpus_article(d: dict):
    from pipeline.records import AbstractSection, Article, MeshHeading

    return Article(
        pmid=d["pmid"],
        title=d["title"],
        journal=d["journal"],
        pub_year=d["year"],
        doi=d["doi"],
        pmcid=d["pmcid"],
        authors=[_author(a) for a in d["authors"]],
        abstract_sections=[AbstractSection(text=d["abstract"])] if d["abstract"] else [],
        publication_types=d["publication_types"],
        keywords=d["keywords"],
        mesh=[MeshHeading(descriptor=m) for m in d["mesh_terms"]],
    )


def test_real_corpus_exports_parse_back(corpus, tmp_db):
    from pipeline import cite

    articles = [_corpus_article(d) for d in corpus]
    with Store(tmp_db) as store:
        store.upsert_batch(articles)
        store.save_labels({"pmid": d["pmid"], **d["labels"]} for d in corpus)
    conn = query.connect(tmp_db)
    n = len(corpus)
    assert len(export.export_bytes(conn, "jsonl", ALL).splitlines()) == n
    assert len(pd.read_csv(io.BytesIO(export.export_bytes(conn, "csv", ALL)))) == n
    assert len(pd.read_excel(io.BytesIO(export.export_bytes(conn, "xlsx", ALL)))) == n
    refs = rispy.loads(export.export_bytes(conn, "ris", ALL).decode())
    assert {r["title"] for r in refs} == {a.title for a in articles}
    lib = bibtexparser.parse_string(export.export_bytes(conn, "bibtex", ALL).decode())
    assert not lib.failed_blocks and len(lib.entries) == n
    assert len(json.loads(export.export_bytes(conn, "csljson", ALL))) == n
    # citeproc-py takes 10-40 ms a citation: every record in AMA, a spread in the others
    for i, a in enumerate(articles):
        for style in ("ama",) if i % 6 else ("ama", "apa", "vancouver"):
            assert a.title.rstrip(".")[:20] in cite.format_citation(a, style)
    gold_in = sum(d["labels"]["relevance"] == "in_scope" for d in corpus)
    assert query.count_studies(conn, StudyFilter()) == gold_in
    # every real title, used as a search, finds its own record without an FTS error
    for a in articles[:60]:
        hits = query.list_studies(conn, StudyFilter(search=a.title, scope="all"), limit=None)
        assert a.pmid in {h["pmid"] for h in hits}
