"""The dashboard's only door to the store: cached wrappers over ``pipeline.query``.

Pages never touch SQL or connections; they call these functions. Results are
cached for a short time (the store changes only when a crawl or a correction
runs), keyed by the database path and the filter, so a filter change that was
seen before answers from memory. Nothing here opens the database at import.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

import streamlit as st

from pipeline import corrections, query
from pipeline.query import StudyFilter

TTL_S = 60


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


@st.cache_data(ttl=TTL_S, show_spinner=False)
def headline(db: str) -> dict[str, Any]:
    return query.headline(conn(db))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def meta(db: str) -> dict[str, Any]:
    return query.meta(conn(db))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def count_studies(db: str, f: StudyFilter) -> int:
    return query.count_studies(conn(db), f)


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=256)
def list_studies(
    db: str, f: StudyFilter, sort: str = "strength", limit: int = 200, offset: int = 0
) -> list[dict[str, Any]]:
    return query.list_studies(conn(db), f, sort=sort, limit=limit, offset=offset)


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=256)
def study_detail(db: str, pmid: str) -> dict[str, Any] | None:
    return query.study_detail(conn(db), pmid)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def evidence_map(db: str, f: StudyFilter) -> list[dict[str, Any]]:
    return query.evidence_map(conn(db), f)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def outcome_summary(db: str, f: StudyFilter) -> list[dict[str, Any]]:
    return query.outcome_summary(conn(db), f)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def timeline(db: str, f: StudyFilter) -> list[dict[str, Any]]:
    return query.timeline(conn(db), f)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def breakdown(db: str, f: StudyFilter, field: str) -> list[dict[str, Any]]:
    return query.breakdown(conn(db), f, field)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def prisma_flow(db: str) -> dict[str, Any]:
    return query.prisma_flow(conn(db))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def crawl_history(db: str, limit: int = 20) -> list[dict[str, Any]]:
    return query.crawl_history(conn(db), limit=limit)


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
