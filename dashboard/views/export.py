"""Export: the current filter as a file (built only when its button is clicked)."""

from __future__ import annotations

from functools import partial

import streamlit as st

from dashboard import data, filters, ui
from pipeline.export import FORMATS

db = ui.db()
f = filters.sidebar()
st.title("Export")
filters.url_notice()
n = data.count_studies(db, f)
st.markdown(
    f"**{n:,} studies** match the current filter (set it in the sidebar or on the "
    "Studies page). Each file is built when you click its button."
)
if n == 0:
    ui.no_rows()

for fmt_ in FORMATS.values():
    c1, c2 = st.columns([1, 3])
    c1.download_button(
        fmt_.title,
        data=partial(data.download_bytes, db, fmt_.name, f),
        file_name=data.download_name(f, fmt_.name),
        mime=fmt_.mime if fmt_.name == "xlsx" else "application/zip",
        on_click="ignore",
        disabled=n == 0,
        key=f"dl_{fmt_.name}",
        icon=":material/download:",
        width="stretch",
    )
    c2.caption(fmt_.what)
st.caption(
    "File names carry the filter and the date. The Excel file has an About sheet (query, "
    "crawl date, model version, filter); every other format comes as a zip with the file "
    "and its `.about.json` (the same provenance). Every tabular format carries each label, "
    "fact and the confidence of its value."
)
