"""The study filter widgets, kept in step with the URL so a shared link opens the same view.

One canonical ``StudyFilter`` lives in session state. The URL wins when it
carries filter parameters we did not write ourselves (a shared link, a link
from the Questions page or the evidence map); otherwise the widgets win and the
URL is rewritten from them.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.fmt import pretty
from pipeline.query import StudyFilter
from pipeline.taxonomy import COMPARATORS, CONDITIONS, DESIGNS, DRUGS, OUTCOMES, ROUTES, SUBGROUPS

CANON = "kea_filter"
WRITTEN = "kea_filter_written"
EXTRA_PARAMS = ("pmid", "sort", "page")  # page-level state kept next to the filter in the URL

MULTI = {
    "f_conditions": ("conditions", "Condition", CONDITIONS),
    "f_subgroups": ("subgroups", "Subgroup", SUBGROUPS),
    "f_designs": ("designs", "Design", DESIGNS),
    "f_outcomes": ("outcomes", "Outcome", OUTCOMES),
    "f_drugs": ("drugs", "Drug", DRUGS),
    "f_routes": ("routes", "Route", ROUTES),
    "f_comparators": ("comparators", "Comparator", COMPARATORS),
}
TRISTATE = {"any": None, "yes": True, "no": False}
SCOPES = ("in_scope", "all", "off_topic")
POPULATIONS = ("all", "human", "animal")


def _url_params() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params.keys()}


def _filter_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in EXTRA_PARAMS}


def _norm(params: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Query params in one comparable shape: every value a tuple of strings."""
    out = {}
    for k, v in params.items():
        vals = v if isinstance(v, list | tuple) else [v]
        vals = tuple(str(x) for x in vals if x is not None)
        if vals:
            out[k] = vals
    return out


def filter_from_url() -> StudyFilter:
    return StudyFilter.from_query_params(_filter_params(_url_params()))


def current() -> StudyFilter:
    """The canonical filter (the URL's on a session's first run)."""
    if CANON not in st.session_state:
        st.session_state[CANON] = filter_from_url()
    return st.session_state[CANON]


def _widget_values(f: StudyFilter) -> dict[str, Any]:
    vals: dict[str, Any] = {k: list(getattr(f, field)) for k, (field, _, _) in MULTI.items()}
    vals["f_psychotherapy"] = {None: "any", True: "yes", False: "no"}[f.psychotherapy]
    vals["f_needs_review"] = {None: "any", True: "yes", False: "no"}[f.needs_review]
    vals["f_retracted"] = {None: "any", True: "yes", False: "no"}[f.retracted]
    vals["f_min_n"] = f.min_n
    vals["f_year_from"] = f.year_from
    vals["f_year_to"] = f.year_to
    vals["f_search"] = f.search or ""
    vals["f_scope"] = f.scope if f.scope in SCOPES else "in_scope"
    vals["f_population"] = f.population if f.population in POPULATIONS else "all"
    return vals


def _load_widgets(f: StudyFilter, *, force: bool) -> None:
    for key, value in _widget_values(f).items():
        if force or key not in st.session_state:
            st.session_state[key] = value


def _filter_from_widgets() -> StudyFilter:
    ss = st.session_state
    kwargs: dict[str, Any] = {field: tuple(ss[k]) for k, (field, _, _) in MULTI.items()}
    search = (ss["f_search"] or "").strip()
    kwargs.update(
        psychotherapy=TRISTATE[ss["f_psychotherapy"]],
        needs_review=TRISTATE[ss["f_needs_review"]],
        retracted=TRISTATE[ss["f_retracted"]],
        min_n=int(ss["f_min_n"]) if ss["f_min_n"] else None,
        year_from=int(ss["f_year_from"]) if ss["f_year_from"] else None,
        year_to=int(ss["f_year_to"]) if ss["f_year_to"] else None,
        search=search or None,
        scope=ss["f_scope"],
        population=ss["f_population"],
    )
    return StudyFilter(**kwargs)


def sidebar() -> StudyFilter:
    """Render the filter widgets in the sidebar; return the filter and keep the URL in step."""
    canon = current()
    url = _norm(_filter_params(_url_params()))
    written = st.session_state.get(WRITTEN)
    url_wins = bool(url) and url != written
    if url_wins:
        canon = filter_from_url()
    _load_widgets(canon, force=url_wins)

    sb = st.sidebar
    sb.header("Filters")
    sb.text_input("Search title and abstract", key="f_search", placeholder="e.g. suicidal ideation")
    for key, (_, label, options) in MULTI.items():
        sb.multiselect(label, options, key=key, format_func=pretty)
    c1, c2 = sb.columns(2)
    c1.number_input("Year from", min_value=1900, max_value=2100, step=1, key="f_year_from")
    c2.number_input("Year to", min_value=1900, max_value=2100, step=1, key="f_year_to")
    sb.number_input("Minimum sample size", min_value=0, step=10, key="f_min_n")
    sb.selectbox(
        "Psychotherapy combined",
        list(TRISTATE),
        key="f_psychotherapy",
        format_func=lambda v: {
            "any": "any",
            "yes": "with psychotherapy",
            "no": "without psychotherapy",
        }[v],
    )
    sb.radio(
        "Population",
        POPULATIONS,
        key="f_population",
        horizontal=True,
        format_func=lambda v: {"all": "all", "human": "human", "animal": "animal"}[v],
    )
    sb.selectbox(
        "Records",
        SCOPES,
        key="f_scope",
        format_func=lambda v: {
            "in_scope": "in scope",
            "all": "all stored",
            "off_topic": "off-topic only",
        }[v],
    )
    sb.selectbox(
        "Needs review",
        list(TRISTATE),
        key="f_needs_review",
        format_func=lambda v: {
            "any": "any",
            "yes": "only low-confidence labels",
            "no": "only confident or verified",
        }[v],
    )
    sb.selectbox(
        "Retracted",
        list(TRISTATE),
        key="f_retracted",
        format_func=lambda v: {
            "any": "show (marked)",
            "yes": "only retracted",
            "no": "hide retracted",
        }[v],
    )
    sb.button("Clear filters", on_click=_clear)

    f = _filter_from_widgets()
    st.session_state[CANON] = f
    write_url(f)
    return f


def _clear() -> None:
    _load_widgets(StudyFilter(), force=True)


def write_url(f: StudyFilter, **extra: Any) -> None:
    """Put the filter (and page state such as the open study) into the URL."""
    params = {k: v for k, v in f.to_query_params().items() if v not in (None, "", [], ())}
    keep = {k: st.query_params.get_all(k) for k in EXTRA_PARAMS if k in st.query_params}
    for k, v in extra.items():
        if v is None:
            keep.pop(k, None)
        else:
            keep[k] = [str(v)]
    st.session_state[WRITTEN] = _norm(params)
    merged = {**params, **{k: (v[0] if len(v) == 1 else v) for k, v in keep.items()}}
    if _norm(merged) != _norm(_url_params()):
        st.query_params.from_dict(merged)
