"""Rendering pieces several pages share: banners, empty states, the study detail."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data, fmt
from pipeline.errors import KeaError

DEMO_TEXT = (
    "Demo data: fictional records from the offline stand-in, not real PubMed studies. "
    "Do not cite them or draw conclusions from them; run `kea crawl` with network access "
    "for the real literature."
)


def db() -> str:
    """The database path every page reads (CLI `--db`, then $KEA_DB, then the default)."""
    return str(data.db_path())


def store_banners() -> bool:
    """Banners shown on every page; False when there is no store to show at all."""
    path = data.db_path()
    if not path.is_file():
        st.error(
            f"No evidence store at {fmt.md_escape(str(path))}. Run `kea crawl` (and `kea classify`) first, "
            "or start the dashboard with `kea dashboard --db PATH`."
        )
        return False
    try:
        head = data.headline(str(path))
    except KeaError as err:
        st.error(f"Cannot read the evidence store: {fmt.md_escape(str(err))}")
        return False
    if head.get("is_demo"):
        st.warning(DEMO_TEXT, icon=":material/warning:")
    if head["total_records"] == 0:
        st.info(
            "The store is empty: no PubMed records yet. Run `kea crawl` to fetch them and "
            "`kea classify` to label them, then reload this page.",
            icon=":material/inbox:",
        )
    elif head["labelled"] == 0:
        st.info(
            f"{head['total_records']:,} records are stored but none is classified yet: run "
            "`kea classify` to label them. Until then only the *all stored* view has rows.",
            icon=":material/label:",
        )
    return True


STUDIES_PAGE = "views/studies.py"


def no_rows(what: str = "studies", *, sidebar: bool = True) -> None:
    """An empty state; only pages with sidebar filters point at the sidebar."""
    hint = (
        "Widen it in the sidebar (or run `kea crawl`)." if sidebar else "Run `kea crawl` for more."
    )
    st.info(f"No {what} match the current filter. {hint}")


def retracted_note(k: int, listing: Any) -> None:
    """'⚠ RETRACTED: 1 retracted study not counted', linked to the list of them.

    ``listing`` is the StudyFilter that lists them (``data.retracted_filter``). Shown
    beside every count retracted studies are left out of, so they are impossible to miss.
    """
    from dashboard import url

    text = fmt.retracted_note(k)
    if not text:
        return
    st.error(f"{text} in these figures.", icon=":material/block:")
    st.page_link(
        STUDIES_PAGE,
        label=f"List the {fmt.plural(k, 'retracted study', 'retracted studies')}",
        query_params=url.to_query_params(listing),
        icon=":material/block:",
    )


def retracted_banner() -> None:
    st.error(
        f"{fmt.RETRACTED_MARK}: this article has been retracted. Do not rely on its findings.",
        icon=":material/block:",
    )


def record_text(text: str | None, *, heading: str | None = None) -> None:
    """Untrusted record text, shown literally (markup and script never run)."""
    if heading:
        st.markdown(f"{heading} {fmt.md_escape(text or '(no title)')}")
    elif text:
        st.text(text)


def citations(detail: dict[str, Any]) -> None:
    """AMA, APA and Vancouver, each in a code block so it has a copy button."""
    cols = st.columns(3)
    for col, (style, name) in zip(
        cols, (("ama", "AMA"), ("apa", "APA"), ("vancouver", "Vancouver")), strict=True
    ):
        with col:
            st.caption(name)
            try:
                st.code(data.citation(detail, style), language=None, wrap_lines=True)
            except KeaError as err:
                st.warning(f"{name} citation unavailable: {fmt.md_escape(str(err))}")
