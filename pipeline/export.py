"""Write filtered records with their labels as JSONL, CSV, XLSX, RIS, BibTeX or CSL-JSON.

Records stream from ``pipeline.query.iter_articles`` in strength order, so a 50k-record
export never holds every record in memory (XLSX excepted: openpyxl's write-only mode
keeps memory flat but the zip is written at the end).

File layout choices, made for the tools that read them:
- JSONL: one object per record, nothing else (``pandas.read_json(lines=True)``, ``jq``).
- CSV: a plain RFC 4180 table, header on line 1, sets joined with "; ", one column per
  label confidence (``confidence_<label>``) and evidence (``evidence_<label>``). No comment
  lines: Excel, R and pandas read it with no options. A cell that a spreadsheet would run
  as a formula (text starting with = + - @, tab or carriage return) is prefixed with ``'``
  (OWASP's CSV-injection advice), in every table we write.
- XLSX: sheet "Studies" (the CSV columns; every text cell a string, never a formula;
  frozen header, autofilter, column widths) and sheet "About" (provenance, one key a row).
- Provenance (``query.provenance``) travels with every export: the XLSX "About" sheet; for
  the other formats `kea export` writes ``<file>.about.json`` beside the file, and the
  dashboard offers a zip of both (``export_zip``). File names carry the filter and the date
  (``export_filename``).
A regular file (or a new path) is written to ``<out>.part`` and renamed over it, so a failed
export leaves no half file behind; a symlink to one has its target replaced, never the link.
Anything else (a FIFO, ``/dev/stdout``, a device) is written through, because renaming over
it would replace the special file itself (as root, even ``/dev/full``'s device node).
The NCBI API key is never read here, so it cannot leak into an export.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from pipeline import cite
from pipeline.errors import ExportError
from pipeline.labels import FILTERABLE, LABEL_NAMES
from pipeline.query import (
    NCBI_NOTICE,
    StudyFilter,
    describe_filter,
    export_record,
    iter_articles,
    meta,
    provenance,
)


@dataclass(frozen=True)
class Format:
    """An export format as the CLI (``--format NAME``) and the dashboard's buttons name it."""

    name: str
    title: str
    extension: str
    mime: str
    what: str


# The one list of export formats: `kea export --format` choices and the dashboard's buttons.
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "xlsx",
            "Excel (.xlsx)",
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "every label, fact and confidence, plus a metadata sheet",
        ),
        Format("csv", "CSV", "csv", "text/csv", "one row per study, every label and confidence"),
        Format("jsonl", "JSONL", "jsonl", "application/x-ndjson", "one JSON object per study"),
        Format(
            "ris",
            "RIS",
            "ris",
            "application/x-research-info-systems",
            "for Zotero, EndNote, Mendeley",
        ),
        Format("bibtex", "BibTeX", "bib", "application/x-bibtex", "for LaTeX"),
        Format(
            "csljson",
            "CSL-JSON",
            "json",
            "application/vnd.citationstyles.csl+json",
            "for citation processors (Zotero, Pandoc)",
        ),
    )
}
LIST_SEPARATOR = "; "
XLSX_CELL_LIMIT = 32_767
ABOUT_SUFFIX = ".about.json"
__all__ = [
    "FORMATS",
    "FLAT_COLUMNS",
    "FORMULA_TRIGGERS",
    "NCBI_NOTICE",  # re-exported from pipeline.query for older callers
    "Download",
    "Written",
    "about",
    "about_filename",
    "about_json",
    "csv_text",
    "describe_filter",  # re-exported from pipeline.query
    "export_bytes",
    "export_download",
    "export_file",
    "export_filename",
    "export_to",
    "export_zip",
    "flat_row",
    "neutralise",
    "write_file",
]


class _Counter:
    """Counts records as they stream past, for the 'wrote N records' line."""

    def __init__(self) -> None:
        self.n = 0


def _records(
    conn: sqlite3.Connection,
    f: StudyFilter,
    counter: _Counter,
    pmids: Sequence[str | int] | None = None,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    demo = meta(conn).get("demo") == "1"
    for article, labels, is_demo in iter_articles(conn, f, pmids):
        counter.n += 1
        yield article, export_record(article, labels, is_demo=is_demo if demo else None)


# -- flat rows (CSV, XLSX) --------------------------------------------------------------------
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell no spreadsheet will run: one starting with = + - @, tab or CR gets a
    leading ``'`` (OWASP, CSV injection). Numbers and None pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


HEAD_COLUMNS = ("pmid", "title", "year", "authors", "journal", "retracted", "pubmed_url", "doi")
REVIEW_COLUMNS = ("needs_review", "review", "verified", "verified_by", "model_version")
TAIL_COLUMNS = (
    "abstract",
    "pmcid",
    "journal_iso",
    "pub_date",
    "volume",
    "issue",
    "pages",
    "publication_types",
    "mesh_terms",
    "keywords",
    "language",
    "entrez_date",
    "trial_ids",  # registry ids (pipeline.trials), "; "-joined
)
FLAT_COLUMNS = (
    *HEAD_COLUMNS,
    *LABEL_NAMES,
    *REVIEW_COLUMNS,
    *(f"confidence_{name}" for name in LABEL_NAMES),
    *(f"evidence_{name}" for name in LABEL_NAMES),
    *TAIL_COLUMNS,
)
"""The CSV/XLSX columns: who and what first, the labels, then how sure, then the rest."""


def _joined(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(v) for v in value)
    return value


def _evidence_text(evidence: dict[str, Any] | None, name: str) -> str | None:
    """The sentence or terms behind one label; a set label's members as 'member: text'."""
    if not evidence:
        return None
    parts = [str(evidence[name])] if evidence.get(name) else []
    parts += [
        f"{key.split(':', 1)[1]}: {text}"
        for key, text in evidence.items()
        if key.startswith(name + ":") and text
    ]
    return LIST_SEPARATOR.join(parts) or None


def _verified_text(verified_by: dict[str, Any] | None) -> str | None:
    """'design: alice 2026-12-01T10:00:00Z' for each human-verified label."""
    if not verified_by:
        return None
    parts = []
    for name, who in verified_by.items():
        bits = [who.get("author") or "author not recorded", who.get("at") or ""]
        parts.append(f"{name}: {' '.join(b for b in bits if b)}")
    return LIST_SEPARATOR.join(parts)


def flat_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One export record as a table row (``FLAT_COLUMNS``, plus is_demo on demo stores):
    lists joined with '; ', one column per label confidence and evidence, None kept."""
    shown = rec.get("label_confidence") or {}
    out: dict[str, Any] = {}
    for col in FLAT_COLUMNS:
        if col.startswith("confidence_"):
            out[col] = shown.get(col.removeprefix("confidence_"))
        elif col.startswith("evidence_"):
            out[col] = _evidence_text(rec.get("evidence"), col.removeprefix("evidence_"))
        elif col == "verified_by":
            out[col] = _verified_text(rec.get("verified_by"))
        else:
            out[col] = _joined(rec.get(col))
    if "is_demo" in rec:
        out["is_demo"] = rec["is_demo"]
    return out


def _csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    header_done = False
    for rec in rows:
        flat = flat_row(rec)
        if not header_done:
            writer.writerow(list(flat))
            header_done = True
        writer.writerow([neutralise(v) for v in flat.values()])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if not header_done:  # no records: still a header, so tools see the columns
        writer.writerow(_empty_columns())
        yield buf.getvalue()


def csv_text(rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Any table (e.g. the dashboard's own rows) as CSV with the same formula guard."""
    import csv

    rows = list(rows)
    cols = list(columns) if columns is not None else list(rows[0]) if rows else []
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in cols])
    for r in rows:
        writer.writerow([neutralise(_joined(r.get(c))) for c in cols])
    return buf.getvalue()


def _empty_columns() -> list[str]:
    return list(FLAT_COLUMNS)


# -- text formats ----------------------------------------------------------------------------
def _text_chunks(
    conn: sqlite3.Connection,
    fmt: str,
    f: StudyFilter,
    counter: _Counter,
    pmids: Sequence[str | int] | None = None,
) -> Iterator[str]:
    records = _records(conn, f, counter, pmids)
    if fmt == "jsonl":
        for _article, rec in records:
            yield json.dumps(rec, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        yield from _csv_chunks(rec for _article, rec in records)
    elif fmt == "ris":
        for article, _rec in records:
            yield cite.to_ris([article])
    elif fmt == "bibtex":
        for article, _rec in records:
            yield cite.to_bibtex([article]) + "\n"
    elif fmt == "csljson":
        sep = "[\n"
        for article, _rec in records:
            yield sep + json.dumps(cite.csl_item(article), ensure_ascii=False)
            sep = ",\n"
        yield "[]\n" if sep == "[\n" else "\n]\n"
    else:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


# -- provenance and file names ---------------------------------------------------------------
ABOUT_ROWS = (
    ("query", "the PubMed search the store was built from"),
    ("evidence_as_of", "end of the last completed crawl (UTC): newer records are not here"),
    ("model_version", "the classifier version(s) that made the labels of these records"),
    ("filter", "what the export was narrowed to ('none': every in-scope study)"),
    ("record_count", "records in this export"),
    ("retracted_count", "retracted records among them (marked; never counted as evidence)"),
    ("exported_at", "when this file was written (UTC)"),
    ("kea_version", "the Ketamine Evidence Atlas version"),
    ("source", "where the bibliographic data comes from"),
    ("ncbi_disclaimer", "NCBI's disclaimer and copyright notice"),
)


def about(
    conn: sqlite3.Connection,
    f: StudyFilter,
    count: int | None = None,
    *,
    fmt: str | None = None,
    filename: str | None = None,
    pmids: Sequence[str | int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """``query.provenance`` of an export, with the format, file name and records written."""
    out = provenance(conn, f, pmids=pmids, now=now)
    if count is not None:
        out["record_count"] = count
    if fmt is not None:
        out["format"] = fmt
    if filename is not None:
        out["file"] = filename
    return out


def about_json(info: dict[str, Any]) -> bytes:
    """The ``<file>.about.json`` sidecar: the provenance, indented, UTF-8."""
    return (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _about_rows(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [(key, _about_value(info.get(key)), meaning) for key, meaning in ABOUT_ROWS]
    if info.get("selected_pmids") is not None:
        rows.append(
            ("selected_pmids", _about_value(info["selected_pmids"]), "only these rows were chosen")
        )
    if info.get("demo"):
        rows.append(
            (
                "data",
                "demo data: built-in fictional stand-in records, not real PubMed data",
                "these are not real studies",
            )
        )
    return rows


def _about_value(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


_SLUG = re.compile(r"[^a-z0-9]+")
FILENAME_SLUG_LIMIT = 80


def _slug(text: object) -> str:
    return _SLUG.sub("-", str(text).lower()).strip("-")


def _filter_words(f: StudyFilter) -> list[str]:
    """Short words for what differs from the default view, in the registry's order."""
    by_filter = {lab.filter: lab for lab in FILTERABLE if lab.filter}
    words: list[str] = []
    handled = set()
    for name, lab in by_filter.items():
        value = getattr(f, name, None)
        handled.add(name)
        if lab.has_vocabulary:
            words += [_slug(v) for v in value or ()]
        elif lab.kind == "integer" and value is not None:
            words.append(f"{_slug(lab.name)}-{int(value)}-plus")
        elif lab.kind == "boolean" and value is not None:
            words.append(_slug(lab.name) if value else f"no-{_slug(lab.name)}")
    y0, y1 = f.year_from, f.year_to
    if y0 is not None and y1 is not None:
        words.append(f"{y0}-{y1}" if y0 != y1 else str(y0))
    elif y0 is not None:
        words.append(f"from-{y0}")
    elif y1 is not None:
        words.append(f"to-{y1}")
    handled |= {"year_from", "year_to"}
    for fld in fields(f):
        if fld.name in handled:
            continue
        value = getattr(f, fld.name)
        if value == fld.default:
            continue
        if isinstance(value, bool):
            words.append(_slug(fld.name) if value else f"not-{_slug(fld.name)}")
        elif isinstance(value, tuple):
            words += [_slug(v) for v in value]
        else:
            words.append(
                f"{_slug(fld.name)}-{_slug(value)}" if fld.name == "search" else _slug(value)
            )
    return [w for w in words if w]


def export_filename(
    f: StudyFilter, fmt: str, today: date | None = None, *, selected: int | None = None
) -> str:
    """``kea-ptsd-rct-2026-12-04.csv``: the filter's values and the date in the name.

    Only [a-z0-9-]; the filter part is cut at 80 characters (with a short hash of the
    whole, so two long filters never share a name); ``selected``: 'selected-N' rows.
    """
    _check_format(fmt)
    words = _filter_words(f)
    if selected is not None:
        words.append(f"selected-{int(selected)}")
    part = "-".join(words)
    if len(part) > FILENAME_SLUG_LIMIT:
        import hashlib

        digest = hashlib.sha256(part.encode()).hexdigest()[:8]
        part = part[:FILENAME_SLUG_LIMIT].rsplit("-", 1)[0] + "-" + digest
    day = (today or datetime.now(UTC).date()).isoformat()
    stem = "-".join(x for x in ("kea", part, day) if x)
    return f"{stem}.{FORMATS[fmt].extension}"


def about_filename(export_name: str) -> str:
    """The sidecar of an export file: ``kea-ptsd-2026-12-04.csv.about.json``."""
    return export_name + ABOUT_SUFFIX


# -- XLSX ---------------------------------------------------------------------------------------
XLSX_WIDTHS = {
    "pmid": 11,
    "title": 60,
    "year": 7,
    "authors": 30,
    "journal": 28,
    "retracted": 10,
    "pubmed_url": 14,
    "doi": 22,
    "abstract": 80,
    "verified_by": 30,
    "review": 20,
    "mesh_terms": 40,
    "publication_types": 24,
    "keywords": 30,
}


def _column_width(name: str) -> float:
    if name in XLSX_WIDTHS:
        return XLSX_WIDTHS[name]
    if name.startswith("evidence_"):
        return 40
    if name.startswith("confidence_"):
        return max(12, len(name) * 0.9)
    return max(12, min(30, len(name) + 2))


def _xlsx_cell(ws: Any, value: Any) -> Any:
    """A value that stays data: text a spreadsheet could read as a formula is a string cell
    with Excel's quote prefix (shown as typed, stays text when edited), control characters
    (not allowed in XLSX) are dropped, and a cell holds at most 32,767 characters."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell.cell import (
        ILLEGAL_CHARACTERS_RE,  # lazy: openpyxl costs every kea command ~0.8 s
    )

    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > XLSX_CELL_LIMIT:
        value = value[: XLSX_CELL_LIMIT - 1] + "\u2026"
    if not value.startswith(FORMULA_TRIGGERS):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"  # openpyxl would otherwise store '=...' as a formula
    cell.quotePrefix = True
    return cell


def _write_xlsx(
    conn: sqlite3.Connection,
    f: StudyFilter,
    target: str | IO[bytes],
    pmids: Sequence[str | int] | None = None,
    filename: str | None = None,
) -> int:
    from openpyxl import Workbook

    counter = _Counter()
    wb = Workbook(write_only=True)
    try:
        return _fill_xlsx(conn, f, target, wb, counter, pmids, filename)
    except BaseException:
        _discard_sheets(wb)
        raise


def _discard_sheets(wb: Any) -> None:
    """Close a failed write-only workbook's sheet streams and delete their temporary files
    (openpyxl removes them only on a successful save)."""
    for sheet in wb.worksheets:
        try:
            sheet.close()
        except Exception:  # noqa: BLE001 - best effort on the way out of an error
            pass
        out = getattr(getattr(sheet, "_writer", None), "out", None)
        if isinstance(out, str):
            Path(out).unlink(missing_ok=True)


def _fill_xlsx(
    conn: sqlite3.Connection,
    f: StudyFilter,
    target: str | IO[bytes],
    wb: Any,
    counter: _Counter,
    pmids: Sequence[str | int] | None,
    filename: str | None,
) -> int:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet("Studies")
    columns = _empty_columns()
    if meta(conn).get("demo") == "1":
        columns.append("is_demo")
    for i, name in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = _column_width(name)
    ws.freeze_panes = "C2"  # header row and pmid/title stay in view
    bold = Font(bold=True)
    header = []
    for name in columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for _article, rec in _records(conn, f, counter, pmids):
        flat = flat_row(rec)
        ws.append([_xlsx_cell(ws, flat.get(c)) for c in columns])
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{counter.n + 1}"
    info = wb.create_sheet("About")
    info.column_dimensions["A"].width = 18
    info.column_dimensions["B"].width = 80
    info.column_dimensions["C"].width = 60
    info.append(["key", "value", "meaning"])
    facts = about(conn, f, counter.n, fmt="xlsx", filename=filename, pmids=pmids)
    for key, value, meaning in _about_rows(facts):
        info.append([key, _xlsx_cell(info, value), meaning])
    _save_xlsx(wb, target)
    return counter.n


def _save_xlsx(wb: Any, target: str | IO[bytes]) -> None:
    """``wb.save(target)``, but a write that fails closes the zip archive: openpyxl leaves it
    open, and when it is collected later its ``__del__`` prints a traceback ('seek of closed
    file') after the export's one error line."""
    from zipfile import ZIP_DEFLATED, ZipFile

    from openpyxl.writer.excel import ExcelWriter

    archive = ZipFile(target, "w", ZIP_DEFLATED, allowZip64=True)
    try:
        ExcelWriter(wb, archive).save()
    except BaseException:
        try:
            archive.close()  # fails again on a broken target, but forgets its file
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise


# -- public entry points ------------------------------------------------------------------------
def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def export_bytes(
    conn: sqlite3.Connection,
    fmt: str,
    f: StudyFilter,
    pmids: Sequence[str | int] | None = None,
    *,
    filename: str | None = None,
) -> bytes:
    """The whole export in memory, for the dashboard's download buttons.

    ``pmids``: only these of the filtered records (selected rows), in strength order.
    XLSX carries its About sheet; for the other formats see ``export_zip``.
    """
    _check_format(fmt)
    if fmt == "xlsx":
        buf = io.BytesIO()
        _write_xlsx(conn, f, buf, pmids, filename)
        return buf.getvalue()
    return "".join(_text_chunks(conn, fmt, f, _Counter(), pmids)).encode("utf-8")


@dataclass(frozen=True)
class Download:
    """A file for the dashboard's download button."""

    name: str
    data: bytes
    mime: str


def export_download(
    conn: sqlite3.Connection,
    fmt: str,
    f: StudyFilter,
    pmids: Sequence[str | int] | None = None,
    *,
    today: date | None = None,
    now: datetime | None = None,
) -> Download:
    """What the dashboard offers for a format: the XLSX itself (its About sheet is the
    provenance), any other format as a zip of the file and its ``.about.json``."""
    _check_format(fmt)
    selected = None if pmids is None else len(pmids)
    name = export_filename(f, fmt, today, selected=selected)
    if fmt == "xlsx":
        return Download(name, export_bytes(conn, fmt, f, pmids, filename=name), FORMATS[fmt].mime)
    return Download(
        name.rsplit(".", 1)[0] + ".zip",
        export_zip(conn, fmt, f, pmids, today=today, now=now),
        "application/zip",
    )


def export_zip(
    conn: sqlite3.Connection,
    fmt: str,
    f: StudyFilter,
    pmids: Sequence[str | int] | None = None,
    *,
    today: date | None = None,
    now: datetime | None = None,
) -> bytes:
    """A zip holding the export (``export_filename``) and its ``<file>.about.json``."""
    import zipfile

    _check_format(fmt)
    name = export_filename(f, fmt, today, selected=None if pmids is None else len(pmids))
    counter = _Counter()
    if fmt == "xlsx":
        data = export_bytes(conn, fmt, f, pmids, filename=name)
        counter.n = provenance(conn, f, pmids=pmids)["record_count"]
    else:
        data = "".join(_text_chunks(conn, fmt, f, counter, pmids)).encode("utf-8")
    info = about(conn, f, counter.n, fmt=fmt, filename=name, pmids=pmids, now=now)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
        zf.writestr(about_filename(name), about_json(info))
    return buf.getvalue()


def _reason(err: OSError) -> str:
    """'no space left on device' from an OSError (its strerror, first letter lower-case)."""
    text = err.strerror or (errno.errorcode.get(err.errno or 0)) or str(err)
    return text[:1].lower() + text[1:]


def _atomic_write(out: str, target: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Write to '<target>.part', then rename: readers never see a half-written export."""
    part = target.with_name(target.name + ".part")
    try:
        old_mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
        part.unlink(missing_ok=True)  # a stale part (or a planted link) is never written through
        with open(part, "wb") as fh:
            n = write(fh)
        if old_mode is not None:
            os.chmod(part, old_mode)  # the replaced file keeps its permissions
        os.replace(part, target)
    except OSError as err:
        part.unlink(missing_ok=True)
        raise ExportError(f"cannot write {out}: {_reason(err)}") from err
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return n


def _write_through(out: str, write: Callable[[IO[bytes]], int]) -> int:
    """Write straight into a FIFO, a device or a terminal: there is nothing to rename.

    Opened once, write-only: zipfile's own open ('w+b') of a FIFO can hang, and an
    open-close-open would hand a FIFO's reader an early end of file."""
    try:
        with open(out, "wb") as fh:
            return write(fh)
    except OSError as err:
        raise ExportError(f"{_reason(err)} writing {out}") from err


def write_file(out: str, write: Callable[[IO[bytes]], int]) -> int:
    """Run ``write(binary file)`` so that ``out`` ends up holding the export, whatever ``out`` is.

    New paths and regular files are replaced atomically; a symlink is followed (its target
    replaced, the link kept); special files are written through; a folder is refused.
    """
    try:
        info = os.stat(out)  # follows symlinks: what the path finally names
    except FileNotFoundError:
        info = None  # a new file, or a dangling link whose target will be created
    except OSError as err:
        raise ExportError(f"cannot write {out}: {_reason(err)}") from err
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ExportError(f"cannot write {out}: it is a folder; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        return _write_through(out, write)
    return _atomic_write(out, Path(os.path.realpath(out)), write)


@dataclass(frozen=True)
class Written:
    """What ``export_file`` wrote: records, the export's path, its sidecar (or None)."""

    records: int
    path: str
    about: str | None


def export_to(store: Any, fmt: str, out: str, f: StudyFilter) -> int:
    """Export the records of an open ``Store`` matching ``f`` to a file or '-' (stdout).

    Returns the number of records written (see ``export_file``).
    """
    return export_file(store, fmt, out, f).records


def export_file(store: Any, fmt: str, out: str, f: StudyFilter) -> Written:
    """Export to ``out``: '-' (stdout) or a file (a folder is refused: `kea export` names
    the file in it with ``export_filename``). A regular file of a format other than XLSX
    (whose About sheet carries it) gets its provenance beside it as ``<file>.about.json``;
    stdout, FIFOs and devices get none (there is no beside).
    """
    _check_format(fmt)
    conn = store.conn
    if fmt == "xlsx":
        if out == "-":
            raise ExportError(
                "xlsx is a binary format: give a file with --out, e.g. --out kea.xlsx"
            )
        name = os.path.basename(out)
        n = write_file(out, lambda target: _write_xlsx(conn, f, target, filename=name))
        return Written(n, out, None)

    counter = _Counter()
    if out == "-":
        for chunk in _text_chunks(conn, fmt, f, counter):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return Written(counter.n, out, None)

    def write(fh: IO[bytes]) -> int:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        for chunk in _text_chunks(conn, fmt, f, counter):
            text.write(chunk)
        text.flush()
        text.detach()  # the caller closes the file (and reports its errors)
        return counter.n

    special = os.path.exists(out) and not stat.S_ISREG(os.stat(out).st_mode)
    n = write_file(out, write)
    if special:
        return Written(n, out, None)
    sidecar = about_filename(out)
    info = about(conn, f, n, fmt=fmt, filename=os.path.basename(out))
    data = about_json(info)

    def write_about(fh: IO[bytes]) -> int:
        fh.write(data)
        return n

    write_file(sidecar, write_about)
    return Written(n, out, sidecar)
