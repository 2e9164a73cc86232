"""Export: the current filter as a file (built only when its button is clicked)."""

from __future__ import annotations

from functools import partial

import streamlit as st

from dashboard import data, filters, ui

FORMATS = (
    # fmt, button label, file extension, mime type, what it is for
    (
        "xlsx",
        "Excel (.xlsx)",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "every label, fact and confidence, plus a metadata sheet",
    ),
    ("csv", "CSV", "csv", "text/csv", "one row per study, every label and confidence"),
    ("jsonl", "JSONL", "jsonl", "application/x-ndjson", "one JSON object per study"),
    ("ris", "RIS", "ris", "application/x-research-info-systems", "for Zotero, EndNote, Mendeley"),
    ("bibtex", "BibTeX", "bib", "application/x-bibtex", "for LaTeX"),
    (
        "csljson",
        "CSL-JSON",
        "json",
        "application/vnd.citationstyles.csl+json",
        "for citation processors (Zotero, Pandoc)",
    ),
)

db = ui.db()
f = filters.sidebar()
st.title("Export")
n = data.count_studies(db, f)
st.markdown(
    f"**{n:,} studies** match the current filter (set it in the sidebar or on the "
    "Studies page). Each file is built when you click its button."
)
if n == 0:
    ui.no_rows()

for fmt_, label, ext, mime, what in FORMATS:
    c1, c2 = st.columns([1, 3])
    c1.download_button(
        label,
        data=partial(data.export_bytes, db, fmt_, f),
        file_name=f"kea-studies.{ext}",
        mime=mime,
        on_click="ignore",
        disabled=n == 0,
        key=f"dl_{fmt_}",
        icon=":material/download:",
        width="stretch",
    )
    c2.caption(what)
st.caption(
    "The Excel file has a metadata sheet (query, crawl date, model version, filter); every "
    "tabular format carries each label, fact and its confidence."
)
