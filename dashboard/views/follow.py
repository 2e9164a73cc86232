"""Follow: save the current search, download the feeds of the atlas and of saved searches."""

from __future__ import annotations

import streamlit as st

from dashboard import filters, search_ui, ui

db = ui.db()
st.title("Follow what is new")
f, _dropped = filters.url.read_query_params(filters._filter_params(filters._url_params()))
filters.url_notice()
search_ui.follow_page(db, f)
