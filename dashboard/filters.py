"""The study filter widgets, kept in step with the URL so a shared link opens the same view.

One canonical ``StudyFilter`` lives in session state. The URL wins when it
carries filter parameters we did not write ourselves (a shared link, a link
from the Questions page or the evidence map); otherwise the widgets win and the
URL is rewritten from them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from dashboard import fmt, search_ui, url
from pipeline.labels import FILTERABLE, Label
from pipeline.query import StudyFilter

CANON = "kea_filter"
WRITTEN = "kea_filter_written"
DROPPED = "kea_url_dropped"  # URL keys whose values were ignored, for one notice
EXTRA_PARAMS = ("pmid", "sort", "page")  # page-level state kept next to the filter in the URL


def widget_key(lab: Label) -> str:
    """The session-state key of a label's sidebar widget ('f_' + its StudyFilter field)."""
    return f"f_{lab.filter}"


def value_name(lab: Label) -> Any:
    """One vocabulary id by its display name (``Label.display`` takes a whole set value)."""
    return lambda v: lab.values.get(v, str(v))


# One sidebar widget per filterable label of pipeline.labels, by kind.
MULTI: dict[str, Label] = {widget_key(lab): lab for lab in FILTERABLE if lab.has_vocabulary}
MINIMUM: dict[str, Label] = {widget_key(lab): lab for lab in FILTERABLE if lab.kind == "integer"}
YES_NO: dict[str, Label] = {widget_key(lab): lab for lab in FILTERABLE if lab.kind == "boolean"}
LABEL_WIDGETS: dict[str, Label] = {**MULTI, **MINIMUM, **YES_NO}
TRISTATE = {"any": None, "yes": True, "no": False}
_TRI_NAME = {v: k for k, v in TRISTATE.items()}
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
    f, dropped = url.read_query_params(_filter_params(_url_params()))
    if dropped:
        st.session_state[DROPPED] = dropped
    return f


def url_notice(*page_keys: str) -> None:
    """One plain line naming the URL keys (filter and ``page_keys``) that were ignored."""
    keys = [*st.session_state.pop(DROPPED, []), *page_keys]
    text = url.dropped_notice(keys)
    if text:
        st.warning(text, icon=":material/link_off:")


def current() -> StudyFilter:
    """The canonical filter (the URL's on a session's first run)."""
    if CANON not in st.session_state:
        st.session_state[CANON] = filter_from_url()
    return st.session_state[CANON]


def _widget_values(f: StudyFilter) -> dict[str, Any]:
    vals: dict[str, Any] = {k: list(getattr(f, lab.filter)) for k, lab in MULTI.items()}
    vals.update({k: getattr(f, lab.filter) for k, lab in MINIMUM.items()})
    vals.update({k: _TRI_NAME[getattr(f, lab.filter)] for k, lab in YES_NO.items()})
    vals["f_needs_review"] = _TRI_NAME[f.needs_review]
    vals["f_retracted"] = _TRI_NAME[f.retracted]
    vals["f_year_from"] = f.year_from
    vals["f_year_to"] = f.year_to
    vals["f_search"] = f.search or ""
    vals["f_added"] = search_ui.added_choice(f.added_since)
    vals["f_added_day"] = date.fromisoformat(f.added_since) if vals["f_added"] == "date" else None
    vals["f_registered"] = bool(f.registered)
    vals["f_scope"] = f.scope if f.scope in SCOPES else "in_scope"
    vals["f_population"] = f.population if f.population in POPULATIONS else "all"
    return vals


def _load_widgets(f: StudyFilter, *, force: bool) -> None:
    for key, value in _widget_values(f).items():
        if force or key not in st.session_state:
            st.session_state[key] = value


def _filter_from_widgets() -> StudyFilter:
    ss = st.session_state
    kwargs: dict[str, Any] = {lab.filter: tuple(ss[k]) for k, lab in MULTI.items()}
    kwargs.update({lab.filter: int(ss[k]) if ss[k] else None for k, lab in MINIMUM.items()})
    kwargs.update({lab.filter: TRISTATE[ss[k]] for k, lab in YES_NO.items()})
    search = (ss["f_search"] or "").strip()
    kwargs.update(
        needs_review=TRISTATE[ss["f_needs_review"]],
        retracted=TRISTATE[ss["f_retracted"]],
        year_from=int(ss["f_year_from"]) if ss["f_year_from"] else None,
        year_to=int(ss["f_year_to"]) if ss["f_year_to"] else None,
        search=search or None,
        added_since=search_ui.added_value(ss["f_added"], ss.get("f_added_day"), date.today()),
        registered=True if ss["f_registered"] else None,
        scope=ss["f_scope"],
        population=ss["f_population"],
    )
    return StudyFilter(**kwargs)


def sidebar() -> StudyFilter:
    """Render the filter widgets in the sidebar; return the filter and keep the URL in step."""
    canon = current()
    in_url = _norm(_filter_params(_url_params()))
    written = st.session_state.get(WRITTEN)
    url_wins = bool(in_url) and in_url != written
    if url_wins:
        canon = filter_from_url()
    _load_widgets(canon, force=url_wins)

    sb = st.sidebar
    sb.header("Filters")
    sb.text_input(
        "Search (PubMed syntax)",
        key="f_search",
        placeholder='e.g. ptsd[ti] AND "randomized controlled trial"[pt]',
        help=search_ui.SYNTAX_HELP,
    )
    sb.selectbox(
        "Added to PubMed",
        [*search_ui.ADDED, "date"],
        key="f_added",
        format_func=lambda v: search_ui.ADDED_NAMES.get(v, "since a date…"),
        help="by PubMed entry date; 'since my last crawl' = what the last crawl added",
    )
    if st.session_state.get("f_added") == "date":
        sb.date_input("Added since", key="f_added_day")
    sb.checkbox(
        "Registered trials only",
        key="f_registered",
        help="studies naming a trial registration (ClinicalTrials.gov, ISRCTN, EudraCT, ...)",
    )
    for key, lab in MULTI.items():
        sb.multiselect(
            lab.title, lab.vocabulary, key=key, format_func=value_name(lab), help=lab.help
        )
    c1, c2 = sb.columns(2)
    c1.number_input("Year from", min_value=1900, max_value=2100, step=1, key="f_year_from")
    c2.number_input("Year to", min_value=1900, max_value=2100, step=1, key="f_year_to")
    for key, lab in MINIMUM.items():
        sb.number_input(
            f"Minimum {lab.title.lower()}", min_value=0, step=10, key=key, help=lab.help
        )
    for key, lab in YES_NO.items():
        names = {"any": "any", "yes": "yes", "no": "no"}
        sb.selectbox(lab.title, list(TRISTATE), key=key, format_func=names.get, help=lab.help)
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
    sb.page_link(
        search_ui.FOLLOW_PAGE,
        label="Save this search / feeds",
        icon=":material/rss_feed:",
        query_params=url.to_query_params(f),
    )
    problem = search_ui.search_error(f.search)
    if problem:  # never run another search than the one typed: say why, and stop here
        st.error(f"Search not run: {fmt.md_escape(problem)}", icon=":material/error:")
        st.caption(search_ui.SYNTAX_HELP)
        st.stop()
    st.session_state[CANON] = f
    write_url(f)
    return f


def _clear() -> None:
    _load_widgets(StudyFilter(), force=True)


def write_url(f: StudyFilter, **extra: Any) -> None:
    """Put the filter (and page state such as the open study) into the URL."""
    params = {k: v for k, v in url.to_query_params(f).items() if v not in (None, "", [], ())}
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
