"""Studies: find the right ones fast. Filters -> table -> one study's detail."""

from __future__ import annotations

from functools import partial
from typing import Any

import streamlit as st

from dashboard import data, filters, fmt, search_ui, ui, url
from pipeline.errors import KeaError
from pipeline.export import FORMATS
from pipeline.labels import BY_NAME, LABELS, Label
from pipeline.query import SORTS

PAGE_SIZE = 200
FIRST_CHARS = 5_000  # abstract characters shown at once
REST_CHARS = 200_000  # at most this much more on request
SORT_NAMES = {
    "strength": "evidence strength (reviews & RCTs first, then N)",
    "newest": "newest in PubMed",
    "year": "publication year",
    "n": "sample size",
    "relevance": "search relevance",
}
NONE = ""

db = ui.db()
f = filters.sidebar()
st.title("Studies")

total = data.count_studies(db, f)
pages = max(1, -(-total // PAGE_SIZE))
bad_keys: list[str] = []
if "st_sort" not in st.session_state:  # the URL sets the page's state once, then the widgets do
    qp_sort = st.query_params.get("sort")
    st.session_state["st_sort"] = (
        qp_sort if qp_sort in SORTS else "relevance" if f.search else "strength"
    )
    if qp_sort is not None and qp_sort not in SORTS:
        bad_keys.append("sort")
    url_page, ok = url.read_page(st.query_params.get_all("page"))
    st.session_state["st_page"] = min(url_page or 1, pages)
    if not ok:
        bad_keys.append("page")
search_ui.relevance_when_searching(f)
if st.session_state.get("st_page", 1) > pages:  # the filter narrowed: fewer pages now
    st.session_state["st_page"] = pages
url_pmid, ok = url.read_pmid(st.query_params.get_all("pmid"))
if not ok:
    bad_keys.append("pmid")
filters.url_notice(*bad_keys)
c1, c2, c3 = st.columns([2, 2, 1])
sort = c2.selectbox("Order by", SORTS, key="st_sort", format_func=SORT_NAMES.get)
page = 1
if pages > 1:
    page = int(c3.number_input(f"Page (of {pages})", 1, pages, key="st_page"))
c1.markdown(f"**{total:,} studies** match" + (" the filter" if not f.is_empty() else ""))
url_extra = {"sort": None if sort == "strength" else sort, "page": page if page > 1 else None}

rows = data.list_studies(db, f, sort, PAGE_SIZE, (page - 1) * PAGE_SIZE)
if not rows:
    ui.no_rows()
    filters.write_url(f, pmid=None, **url_extra)
    st.stop()


def show_detail(pmid: str, *, lazy: bool = False) -> None:
    d = data.study_detail(db, pmid)
    if d is None:
        st.warning(f"PMID {fmt.md_escape(str(pmid))} is not in this store.")
        return
    if d.get("retracted"):
        ui.retracted_banner()
    if d.get("deleted"):
        st.warning("PubMed has deleted or withdrawn this record.")
    ui.record_text(d.get("title"), heading="###")
    byline = " · ".join(
        x
        for x in (
            fmt.author_line(d.get("author_names")),
            d.get("journal"),
            str(d.get("pub_year") or "") or None,
        )
        if x
    )
    if byline:
        st.caption(fmt.md_escape(byline))
    search_ui.detail_follow(d)
    # links in markdown: a link button's script is one more download when a study opens
    st.markdown(fmt.link_line(d.get("pubmed_url"), d.get("doi_url")))
    if d.get("needs_review"):
        st.warning("⚑ An evidence label of this study is under review (low confidence): check it.")

    names = ["Labels", "Abstract & MeSH", "Cite", "Correct"]
    parts = (labels_table, abstract_and_mesh, ui.citations, correction_form)
    # in the dialog only the open tab is built (a tab click reruns the dialog alone):
    # opening a study then sends and draws one table, not the citations' code blocks too
    tabs = st.tabs(names, key=f"st_tab_{pmid}", on_change="rerun") if lazy else st.tabs(names)
    for tab, part in zip(tabs, parts, strict=True):
        if lazy and not tab.open:
            continue
        with tab:
            part(d)


def labels_table(d: dict[str, Any]) -> None:
    if not d.get("labelled"):
        st.info("Not classified yet: run `kea classify`.")
    # a static table: drawn at once in the dialog (a data grid costs ~0.4 s to start)
    st.table(fmt.label_frame(fmt.label_rows(d)), hide_index=True)


def abstract_and_mesh(d: dict[str, Any]) -> None:
    sections = d.get("abstract_sections") or []
    if not sections:
        st.caption("No abstract in PubMed.")
    abstract_sections(d["pmid"], sections)

    mesh = d.get("mesh") or []
    if mesh:
        st.markdown("#### MeSH terms")
        st.text("; ".join(m["descriptor"] + (" (major)" if m.get("major") else "") for m in mesh))
        st.caption("(major) = a major topic of the article")


def abstract_sections(pmid: str, sections: list[dict[str, Any]]) -> None:
    """The abstract, its first FIRST_CHARS characters at once and the rest on request.

    Real abstracts fit (the longest seen is ~7,000 characters); a store written before the
    parser's size caps may hold megabytes, which the page must not send unasked.
    """
    budget = FIRST_CHARS
    rest: list[dict[str, Any]] = []
    for s in sections:
        text = s.get("text") or ""
        if budget <= 0:
            rest.append(s)
            continue
        if s.get("label"):
            st.markdown(f"**{fmt.md_escape(s['label'])}**")
        ui.record_text(text[:budget] + ("…" if len(text) > budget else ""))
        if len(text) > budget:
            rest.append({"label": None, "text": "…" + text[budget:]})
        budget -= len(text)
    if not rest:
        return
    more = sum(len(s.get("text") or "") for s in rest)
    if st.toggle(
        f"Show the rest of the abstract ({more:,} more characters)", key=f"st_more_{pmid}"
    ):
        for s in rest:
            if s.get("label"):
                st.markdown(f"**{fmt.md_escape(s['label'])}**")
            text = s.get("text") or ""
            ui.record_text(text[:REST_CHARS])
            if len(text) > REST_CHARS:
                st.caption(
                    f"{len(text) - REST_CHARS:,} more characters are not shown here; "
                    "the export holds the whole text."
                )
                break


def _choice(lab: Label, value: Any) -> list[Any]:
    vocab = list(lab.vocabulary)
    return vocab if value in vocab else [value, *vocab]


_TRI = {None: "not stated", True: "yes", False: "no"}


def correction_widget(lab: Label, d: dict[str, Any]) -> Any:
    """The form field that corrects one label, by its kind (see pipeline.labels)."""
    key = f"fix_{d['pmid']}_{lab.name}"
    value = d.get(lab.name)
    if lab.is_set:
        return sorted(
            st.multiselect(
                lab.title,
                lab.vocabulary,
                default=[v for v in value or [] if v in lab.values],
                format_func=filters.value_name(lab),
                key=key,
                help=lab.help,
            )
        )
    if lab.has_vocabulary:
        opts = _choice(lab, value)
        return st.selectbox(
            lab.title,
            opts,
            index=opts.index(value),
            format_func=lab.display,
            key=key,
            help=lab.help,
        )
    if lab.kind == "integer":
        return st.number_input(lab.title, min_value=1, step=1, value=value, key=key, help=lab.help)
    return st.selectbox(
        lab.title,
        list(_TRI),
        index=list(_TRI).index(value),
        format_func=_TRI.get,
        key=key,
        help=lab.help,
    )


def correction_form(d: dict[str, Any]) -> None:
    """A human correction of any label, written through the store (the only write)."""
    flash = st.session_state.pop("st_flash", None)
    if flash:
        st.success(flash)
    # the form's ten widgets are built only when asked for: opening a study stays quick
    if not st.toggle("Correct a label", key=f"fix_open_{d['pmid']}"):
        return
    with st.form(f"fix_{d['pmid']}"):
        st.caption(
            "Your correction is recorded as human-verified and wins over the model, "
            "also after re-classification."
        )
        new = {lab.name: correction_widget(lab, d) for lab in LABELS}
        if st.form_submit_button("Save correction"):
            changes = {k: v for k, v in new.items() if v != _current(d, k)}
            if not changes:
                st.info("Nothing changed.")
                return
            try:
                done = data.record_correction(db, d["pmid"], changes)
            except (KeaError, ValueError) as err:
                st.error(f"Correction not saved: {fmt.md_escape(str(err))}")
                return
            st.session_state["st_flash"] = "Saved as human-verified: " + ", ".join(
                BY_NAME[f].title for f in done
            )
            st.rerun()


def _current(d: dict[str, Any], field: str) -> Any:
    v = d.get(field)
    lab = BY_NAME[field]
    if lab.is_set:
        return sorted(v or [])
    if lab.kind == "integer" and v is not None:
        return int(v)
    return v


@st.dialog("Study", width="large")
def study_dialog(pmid: str) -> None:
    """The study a title click opened, in a dialog (tabs keep it within one screen)."""
    show_detail(pmid, lazy=True)


@st.fragment
def table_and_study() -> None:
    """The table, the selection's export and the open study.

    A fragment: a title click or a ticked row reruns only this part of the page, not the
    sidebar's filters and counts (a filter change still reruns the whole page).
    """
    url_pmid, _ = url.read_pmid(st.query_params.get_all("pmid"))  # as of this rerun
    event = st.dataframe(
        search_ui.with_follow_columns(fmt.studies_frame(rows), rows),
        key="st_table",
        on_select="rerun",
        selection_mode=["multi-row", "single-cell"],
        hide_index=True,
        placeholder="",  # a missing value (N not stated, <NA>) is an empty cell
        width="stretch",
        height=min(38 + 35 * len(rows), 460),
        column_order=fmt.STUDY_COLUMNS,
        column_config={
            "pmid_url": st.column_config.LinkColumn(
                "PMID",
                display_text=r"https://pubmed\.ncbi\.nlm\.nih\.gov/(\d+)/",
                help="Open in PubMed",
                width="small",
            ),
            "title": st.column_config.TextColumn(
                "Title", width="large", help="click a title to open the study"
            ),
            "first_author": st.column_config.TextColumn("First author", width="small"),
            "year": st.column_config.NumberColumn("Year", format="%d", width="small"),
            "journal": st.column_config.TextColumn("Journal", width="small"),
            "design": st.column_config.TextColumn(
                "Design", width="medium", help="label and the confidence of it; ✔ = human-verified"
            ),
            "n": st.column_config.NumberColumn(
                "N", help="participants (empty: not stated)", format="%d", width="small"
            ),
            "outcome": st.column_config.TextColumn("Outcome", width="medium"),
            "conditions": st.column_config.TextColumn("Conditions", width="medium"),
            "comparator": st.column_config.TextColumn("Comparator", width="small"),
            "psychotherapy": st.column_config.TextColumn(
                "Psychotherapy", width="small", help="combined with a structured psychotherapy"
            ),
            "confidence": st.column_config.ProgressColumn(
                "Lowest confidence",
                min_value=0.0,
                max_value=1.0,
                format="percent",
                help="the least certain of the labels shown in this row",
                width="small",
            ),
            "status": st.column_config.TextColumn(
                "Marks",
                width="small",
                help="⚠ RETRACTED · ⚑ check = a label is under review · ✔ human",
            ),
            "doi_url": st.column_config.LinkColumn(
                "DOI", display_text=r"https://doi\.org/(.*)", help="Open at doi.org"
            ),
            **search_ui.COLUMN_CONFIG,
        },
    )
    search_ui.snippets(db, f, rows)
    if total > len(rows):
        st.caption(f"Showing {len(rows):,} of {total:,}; narrow the filter or turn the page.")

    selection = event.selection if event is not None else None
    ticked = [rows[i]["pmid"] for i in (selection.rows if selection else []) if 0 <= i < len(rows)]
    clicked = [
        rows[cell[0]]["pmid"]
        for cell in (getattr(selection, "cells", None) or [])
        if 0 <= cell[0] < len(rows) and cell[1] == "title"
    ]
    if ticked:
        st.markdown(f"**{fmt.plural(len(ticked), 'study', 'studies')} selected**: export them")
        cols = st.columns(len(FORMATS))
        for col, fmt_ in zip(cols, FORMATS.values(), strict=True):
            col.download_button(
                fmt_.title,
                data=partial(data.download_bytes, db, fmt_.name, f, list(ticked)),
                file_name=data.download_name(f, fmt_.name, selected=len(ticked)),
                on_click="ignore",
                key=f"sel_{fmt_.name}",
                icon=":material/download:",
            )

    # -- open one study: click its title, or pick it below ------------------------------------
    picked = clicked
    opened_now = None
    if picked and picked[0] != st.session_state.get("st_row_applied"):
        st.session_state["st_pmid"] = picked[0]  # a new title click opens that study
        st.query_params["pmid"] = picked[0]
        opened_now = picked[0]
    st.session_state["st_row_applied"] = picked[0] if picked else None
    options = [NONE] + [r["pmid"] for r in rows]
    names = {r["pmid"]: fmt.option_label(r) for r in rows}
    if "st_pmid" not in st.session_state or (
        url_pmid and url_pmid != st.session_state.get("st_pmid_url")
    ):
        st.session_state["st_pmid"] = url_pmid or NONE
    st.session_state["st_pmid_url"] = url_pmid
    if st.session_state["st_pmid"] not in options:
        options.insert(1, st.session_state["st_pmid"])
    pmid = st.selectbox(
        "Open a study",
        options,
        key="st_pmid",
        format_func=lambda p: names.get(p, f"PMID {p}") if p else "— choose —",
    )
    filters.write_url(f, pmid=pmid or None, **url_extra)
    st.session_state["st_pmid_url"] = pmid or None

    if opened_now:
        study_dialog(opened_now)
    elif pmid:
        st.divider()
        show_detail(pmid)


table_and_study()
