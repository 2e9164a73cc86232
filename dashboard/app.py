"""Ketamine Evidence Atlas dashboard: ``streamlit run dashboard/app.py -- --db PATH``.

The entry point only sets up navigation and the banners every page shares
(missing store, empty store, demo data); each page is a thin file in ``views/``.
Anything a page did not expect is shown as one plain line and logged here, never as a
traceback: a traceback shows file paths and code to whoever opens a crafted link.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only dashboard/ on sys.path
    sys.path.insert(0, str(HERE.parent))

from dashboard import ui  # noqa: E402

log = logging.getLogger("kea.dashboard")
UNEXPECTED = (
    "Something went wrong while showing this page; the details are in the dashboard's log. "
    "Reload the page, or open it without the link's settings."
)

st.set_option("client.showErrorDetails", "none")  # Streamlit's own fallback shows no trace
# The grid's own "Download as CSV" (and cell copy) would write record text as is, past the
# exports' formula guard (pipeline.export.neutralise): data leaves through the exports only.
st.set_option("client.disableDataExport", True)
st.set_page_config(
    page_title="Ketamine Evidence Atlas", page_icon=":material/explore:", layout="wide"
)

PAGES = [
    st.Page(
        HERE / "views" / "overview.py", title="Overview", icon=":material/explore:", default=True
    ),
    st.Page(HERE / "views" / "studies.py", title="Studies", icon=":material/search:"),
    st.Page(HERE / "views" / "export.py", title="Export", icon=":material/download:"),
    st.Page(HERE / "views" / "follow.py", title="Follow", icon=":material/rss_feed:"),
    st.Page(HERE / "views" / "questions.py", title="Questions", icon=":material/help:"),
    st.Page(HERE / "views" / "about.py", title="About", icon=":material/info:"),
]

page = st.navigation(PAGES)
try:
    if ui.store_banners():
        page.run()
except Exception:  # st.stop/st.rerun are BaseException: they pass through
    log.exception("dashboard page %s failed", page.url_path or "overview")
    st.error(UNEXPECTED, icon=":material/error:")
