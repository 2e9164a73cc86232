"""The dashboard's only door to the store: cached wrappers over ``pipeline.query``.

Pages never touch SQL or connections; they call these functions. Results are
cached keyed by the database path, the filter and the store's *stamp* (the
modification times of the database file and its WAL), so an answer is reused
until a crawl, a classification or a correction changes the store, and a filter
seen before answers from memory. Nothing here opens the database at import.
"""

from __future__ import annotations

import argparse
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
_retracted = _cached(query.retracted_not_counted, max_entries=256)
_detail = _cached(query.study_detail, max_entries=256)


def list_studies(
    db: str, f: StudyFilter, sort: str = "strength", limit: int = 200, offset: int = 0
) -> list[dict[str, Any]]:
    return _list(db, f, sort=sort, limit=limit, offset=offset)


def study_detail(db: str, pmid: str) -> dict[str, Any] | None:
    """One study, with who corrected which label and when (``verified_by``)."""
    return _detail(db, pmid)


def retracted_count(db: str, f: StudyFilter, designs: tuple[str, ...] | None = None) -> int:
    """How many retracted studies a count of ``f`` (of ``designs``) leaves out."""
    return int(_retracted(db, replace(f, retracted=None), designs)["count"])


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


def download_name(f: StudyFilter, fmt: str, selected: int | None = None) -> str:
    """The file a download button gives: ``kea-ptsd-rct-2026-12-04.csv.zip`` (the export
    and its ``.about.json`` provenance; the format stays in the name, so the six buttons
    never offer one name), or the ``.xlsx`` itself (its About sheet)."""
    from pipeline.export import export_filename

    name = export_filename(f, fmt, selected=selected)
    return name if fmt == "xlsx" else name + ".zip"


def download_bytes(db: str, fmt: str, f: StudyFilter, pmids: list[str] | None = None) -> bytes:
    """The export module's download for a format (zip with provenance, or XLSX), built when
    its button is clicked, on its own short-lived connection."""
    from pipeline.export import export_download

    c = query.connect(db)
    try:
        return export_download(c, fmt, f, pmids).data
    finally:
        c.close()


def export_selected(db: str, fmt: str, f: StudyFilter, pmids: list[str]) -> bytes:
    """Only the rows a user ticked, written by the export module (bare file, no zip)."""
    from pipeline.export import export_bytes as _export

    c = query.connect(db)
    try:
        return _export(c, fmt, f, list(pmids))
    finally:
        c.close()
