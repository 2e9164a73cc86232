"""The dashboard's only door to the store: cached wrappers over ``pipeline.query``.

Pages never touch SQL or connections; they call these functions. Results are
cached keyed by the database path, the filter and the store's *stamp* (the
modification times of the database file and its WAL), so an answer is reused
until a crawl, a classification or a correction changes the store, and a filter
seen before answers from memory. Nothing here opens the database at import.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from pipeline import corrections, query
from pipeline.query import StudyFilter

TTL_S = 3600  # a safety net: the stamp already drops answers when the store changes


def db_path(argv: list[str] | None = None) -> Path:
    """The store to show: ``-- --db PATH`` after ``streamlit run``, else $KEA_DB, else the default.

    Streamlit hands everything after ``--`` to the script as ``sys.argv``.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return query.resolve_db_path(args.db)


@st.cache_resource(show_spinner=False)
def _connection(db: str) -> sqlite3.Connection:
    """One read-only connection per database file, shared by every session."""
    return query.connect(db)


def conn(db: str) -> sqlite3.Connection:
    return _connection(db)


def stamp(db: str) -> tuple[int, int]:
    """When the store last changed: mtimes of the file and its WAL (0 when absent)."""
    out = []
    for path in (db, db + "-wal"):
        try:
            out.append(Path(path).stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return out[0], out[1]


def _cached(fn: Any, **cache: Any) -> Any:
    """``fn(conn, *args)`` as a cached ``wrapper(db, *args)`` keyed by the store's stamp."""

    def run(db: str, _stamp: tuple[int, int], name: str, *args: Any, **kw: Any) -> Any:
        return fn(conn(db), *args, **kw)

    run.__qualname__ = f"kea_{fn.__name__}"  # one cache per query function
    cached = st.cache_data(ttl=TTL_S, show_spinner=False, **cache)(run)

    def call(db: str, *args: Any, **kw: Any) -> Any:
        return cached(db, stamp(db), fn.__name__, *args, **kw)

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


headline = _cached(query.headline)
meta = _cached(query.meta)
count_studies = _cached(query.count_studies, max_entries=512)
evidence_map = _cached(query.evidence_map)
outcome_summary = _cached(query.outcome_summary)
timeline = _cached(query.timeline)
breakdown = _cached(query.breakdown)
prisma_flow = _cached(query.prisma_flow)
crawl_history = _cached(query.crawl_history)
_list = _cached(query.list_studies, max_entries=256)
_corrections = _cached(query.corrections_of, max_entries=256)
_detail = _cached(query.study_detail, max_entries=256)


def list_studies(
    db: str, f: StudyFilter, sort: str = "strength", limit: int = 200, offset: int = 0
) -> list[dict[str, Any]]:
    return _list(db, f, sort=sort, limit=limit, offset=offset)


def study_detail(db: str, pmid: str) -> dict[str, Any] | None:
    """One study, with who corrected which label and when (``corrections``)."""
    d = _detail(db, pmid)
    if d is None:
        return None
    return {**d, "corrections": _corrections(db, pmid) if d.get("verified") else {}}


def retracted_count(db: str, f: StudyFilter) -> int:
    """How many retracted studies the filter holds: shown beside counts they are left out of."""
    return count_studies(db, replace(f, retracted=True))


def retracted_filter(f: StudyFilter) -> StudyFilter:
    """The Studies view listing the retracted studies a count left out."""
    return replace(f, retracted=True)


def citation(article: dict[str, Any], style: str) -> str:
    """AMA, APA or Vancouver text for one study (pure; cheap enough not to cache)."""
    from pipeline.cite import format_citation

    return format_citation(article, style)


def export_bytes(db: str, fmt: str, f: StudyFilter) -> bytes:
    """Build an export when its button is clicked.

    Runs in the download handler's thread, so it opens its own short-lived
    connection instead of sharing the cached one.
    """
    from pipeline.export import export_bytes as _export

    c = query.connect(db)
    try:
        return _export(c, fmt, f)
    finally:
        c.close()


def record_correction(
    db: str, pmid: str, changes: dict[str, Any], author: str | None = None
) -> list[str]:
    """Write a human correction: the dashboard's only write to the store.

    Returns the corrected field names and drops cached answers so every page
    shows the human-verified value at once.
    """
    done = corrections.record_corrections(db, pmid, changes, source="dashboard", author=author)
    st.cache_data.clear()
    return done


def model_card() -> dict[str, Any] | None:
    """The classifier's model card through the query layer, or None when there is none."""
    return query.model_card()


SELECTED_FORMATS = ("csv", "jsonl", "ris")


def export_selected(db: str, fmt: str, f: StudyFilter, pmids: list[str]) -> bytes:
    """The rows a user ticked in the Studies table, in ``fmt`` (csv, jsonl or ris).

    CSV and JSONL are the export module's own output for the filter, cut to the chosen
    rows (so its columns and its neutralising of formula cells apply unchanged); RIS is
    written by ``pipeline.cite`` from the chosen records.
    """
    want = {str(p) for p in pmids}
    if fmt == "ris":
        from pipeline.cite import to_ris

        c = query.connect(db)
        try:
            arts = [a for a, _l, _d in query.iter_articles(c, f) if a.pmid in want]
        finally:
            c.close()
        return to_ris(arts).encode("utf-8")
    whole = export_bytes(db, fmt, f).decode("utf-8")
    if fmt == "jsonl":
        keep = [x for x in whole.splitlines() if x and str(json.loads(x).get("pmid")) in want]
        return "".join(x + "\n" for x in keep).encode("utf-8")
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(whole, newline="")))
        if not rows:
            return b""
        col = rows[0].index("pmid")
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(rows[0])
        out.writerows(r for r in rows[1:] if r and r[col] in want)
        return buf.getvalue().encode("utf-8")
    raise ValueError(f"selected rows export as {', '.join(SELECTED_FORMATS)}, not {fmt!r}")
