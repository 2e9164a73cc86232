"""Write filtered records with their labels as JSONL, CSV, XLSX, RIS, BibTeX or CSL-JSON.

Records stream from ``pipeline.query.iter_articles`` in strength order, so a 50k-record
export never holds every record in memory (XLSX excepted: openpyxl's write-only mode
keeps memory flat but the zip is written at the end).

File layout choices, made for the tools that read them:
- JSONL: one object per record, nothing else (``pandas.read_json(lines=True)``, ``jq``).
- CSV: a plain RFC 4180 table, header on line 1, sets joined with "; ", confidence as a
  JSON object. No comment lines: Excel, R and pandas read it with no options. The
  provenance (query, crawl date, model, filter, NCBI notice) is in the XLSX "About" sheet.
- XLSX: sheet "Studies" (the CSV columns) and sheet "About" (provenance, one key a row).
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
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipeline import cite
from pipeline.errors import ExportError
from pipeline.query import (
    StudyFilter,
    crawl_history,
    export_record,
    iter_articles,
    meta,
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
NCBI_NOTICE = (
    "Bibliographic data from PubMed (U.S. National Library of Medicine, via NCBI E-utilities). "
    "NLM/NCBI neither endorse nor check this export or the labels added to it; abstracts may "
    "be protected by their publishers' copyright."
)


class _Counter:
    """Counts records as they stream past, for the 'wrote N records' line."""

    def __init__(self) -> None:
        self.n = 0


def _records(
    conn: sqlite3.Connection, f: StudyFilter, counter: _Counter
) -> Iterator[tuple[Any, dict[str, Any]]]:
    demo = meta(conn).get("demo") == "1"
    for article, labels, is_demo in iter_articles(conn, f):
        counter.n += 1
        yield article, export_record(article, labels, is_demo=is_demo if demo else None)


# -- flat rows (CSV, XLSX) --------------------------------------------------------------------
def flat_row(rec: dict[str, Any]) -> dict[str, Any]:
    """Lists joined with '; ', the confidence dict as compact JSON, None kept as None."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if isinstance(value, list):
            value = LIST_SEPARATOR.join(str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, sort_keys=True, separators=(",", ":"))
        out[key] = value
    return out


def _csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    import csv

    buf = io.StringIO()
    writer: csv.DictWriter[str] | None = None
    for rec in rows:
        flat = flat_row(rec)
        if writer is None:
            writer = csv.DictWriter(buf, fieldnames=list(flat), lineterminator="\r\n")
            writer.writeheader()
        writer.writerow(flat)
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if writer is None:  # no records: still a header, so tools see the columns
        writer = csv.DictWriter(buf, fieldnames=_empty_columns(), lineterminator="\r\n")
        writer.writeheader()
        yield buf.getvalue()


def _empty_columns() -> list[str]:
    from pipeline.records import Article

    return list(export_record(Article(pmid="0"), None))


# -- text formats ----------------------------------------------------------------------------
def _text_chunks(
    conn: sqlite3.Connection, fmt: str, f: StudyFilter, counter: _Counter
) -> Iterator[str]:
    records = _records(conn, f, counter)
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


# -- XLSX ---------------------------------------------------------------------------------------
def describe_filter(f: StudyFilter) -> str:
    """The filter as 'name=value' pairs, only what differs from the defaults."""
    parts = []
    for fld in fields(f):
        value = getattr(f, fld.name)
        if value != fld.default:
            shown = ",".join(value) if isinstance(value, tuple) else value
            parts.append(f"{fld.name}={shown}")
    return "; ".join(parts) if parts else "none"


def about(conn: sqlite3.Connection, f: StudyFilter, count: int) -> dict[str, str]:
    """Provenance of an export: what was searched, when, by which model, with which filter."""
    info = meta(conn)
    finished = next(
        (
            r["finished"]
            for r in crawl_history(conn, 50)
            if r["status"] == "completed" and r["finished"]
        ),
        None,
    )
    out = {
        "query": info.get("query") or "unknown",
        "crawl date": finished or "no completed crawl",
        "model version": info.get("model_version") or "not classified",
        "export time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "filter": describe_filter(f),
        "record count": str(count),
        "source": NCBI_NOTICE,
    }
    if info.get("demo") == "1":
        out["data"] = "demo data: built-in fictional stand-in records, not real PubMed data"
    return out


def _xlsx_cell(ws: Any, value: Any) -> Any:
    """A value that stays data: text starting with '=' must not become a formula, control
    characters are not allowed in XLSX, and a cell holds at most 32,767 characters."""
    if not isinstance(value, str):
        return value
    from openpyxl.cell.cell import (
        ILLEGAL_CHARACTERS_RE,  # lazy: openpyxl costs every kea command ~0.8 s
    )

    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > XLSX_CELL_LIMIT:
        value = value[: XLSX_CELL_LIMIT - 1] + "\u2026"
    if not value.startswith("="):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _write_xlsx(conn: sqlite3.Connection, f: StudyFilter, target: str | IO[bytes]) -> int:
    from openpyxl import Workbook

    counter = _Counter()
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Studies")
    header_done = False
    for _article, rec in _records(conn, f, counter):
        flat = flat_row(rec)
        if not header_done:
            ws.append(list(flat))
            header_done = True
        ws.append([_xlsx_cell(ws, v) for v in flat.values()])
    if not header_done:
        ws.append(_empty_columns())
    info = wb.create_sheet("About")
    info.append(["key", "value"])
    for key, value in about(conn, f, counter.n).items():
        info.append([key, _xlsx_cell(info, value)])
    wb.save(target)
    return counter.n


# -- public entry points ------------------------------------------------------------------------
def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def export_bytes(conn: sqlite3.Connection, fmt: str, f: StudyFilter) -> bytes:
    """The whole export in memory, for the dashboard's download buttons."""
    _check_format(fmt)
    if fmt == "xlsx":
        buf = io.BytesIO()
        _write_xlsx(conn, f, buf)
        return buf.getvalue()
    return "".join(_text_chunks(conn, fmt, f, _Counter())).encode("utf-8")


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


def export_to(store: Any, fmt: str, out: str, f: StudyFilter) -> int:
    """Export the records of an open ``Store`` matching ``f`` to a file or '-' (stdout).

    Returns the number of records written.
    """
    _check_format(fmt)
    conn = store.conn
    if fmt == "xlsx":
        if out == "-":
            raise ExportError(
                "xlsx is a binary format: give a file with --out, e.g. --out kea.xlsx"
            )
        return write_file(out, lambda target: _write_xlsx(conn, f, target))

    counter = _Counter()
    if out == "-":
        for chunk in _text_chunks(conn, fmt, f, counter):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return counter.n

    def write(fh: IO[bytes]) -> int:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        for chunk in _text_chunks(conn, fmt, f, counter):
            text.write(chunk)
        text.flush()
        text.detach()  # the caller closes the file (and reports its errors)
        return counter.n

    return write_file(out, write)
