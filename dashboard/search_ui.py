"""Search, follow and trial pieces the pages share: tiles that open their studies, matched
terms and abstract snippets, entry dates and registry links, saved searches and feeds.

Kept out of the page files so each page gains one call. Record text is third-party: it is
escaped before the matched terms are marked (pipeline.search's marks are control
characters no record holds).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlencode

import pandas as pd
import streamlit as st

from dashboard import data, fmt, url
from pipeline.errors import KeaError
from pipeline.query import StudyFilter
from pipeline.search import LAST_CRAWL, split_marks

STUDIES_PAGE = "views/studies.py"
FOLLOW_PAGE = "views/follow.py"
SNIPPETS_SHOWN = 20
SYNTAX_HELP = (
    'PubMed-style: `AND`, `OR`, `NOT` (or `-word`), parentheses, "quoted phrases", `ketam*`, '
    "field tags `[ti]` `[tiab]` `[au]` `[ta]` `[mh]` `[pt]` `[pmid]` `[doi]` `[dp]` "
    "(`2018:2024[dp]`), `[si]` (trial id). A PMID, DOI or author name alone finds those "
    'studies. Example: `ptsd[ti] AND "randomized controlled trial"[pt]`'
)


# -- Overview tiles ------------------------------------------------------------------------
def tile_targets(head: dict[str, Any]) -> dict[str, StudyFilter]:
    """What each headline tile counts, as the filter that lists those studies."""
    counted = {"retracted": False}  # a retracted study is in no count but its own tile
    return {
        "rcts": StudyFilter(designs=("rct",), **counted),
        "systematic_reviews": StudyFilter(designs=("systematic_review",), **counted),
        "new_last_30_days": StudyFilter(added_since=head["new_since"], **counted),
        "retracted": StudyFilter(retracted=True),
        "rcts_registered": StudyFilter(designs=("rct",), registered=True, **counted),
    }


def tile_links(head: dict[str, Any], cols: list[Any]) -> None:
    """A link under each headline tile (columns 1-4: RCTs, reviews, new, retracted) to the
    studies it counts, the share of RCTs naming a registration, newly retracted news."""
    targets = tile_targets(head)
    names = (
        ("rcts", "RCTs"),
        ("systematic_reviews", "reviews"),
        ("new_last_30_days", "new studies"),
        ("retracted", "retracted"),
    )
    for col, (key, what) in zip(cols[1:5], names, strict=True):
        col.page_link(
            STUDIES_PAGE,
            label=f"Open the {head[key]:,} {what}",
            icon=":material/list:",
            query_params=url.to_query_params(targets[key]),
        )
    rcts, reg = head["rcts"], head.get("rcts_registered", 0)
    if rcts:
        share = f"{reg:,} of {rcts:,} RCTs ({reg / rcts:.0%}) name a trial registration"
        st.page_link(
            STUDIES_PAGE,
            label=share,
            icon=":material/verified:",
            query_params=url.to_query_params(targets["rcts_registered"]),
        )
    if head.get("newly_retracted"):
        st.error(
            f"⚠ {head['newly_retracted']:,} stored record(s) became RETRACTED in the last crawl.",
            icon=":material/block:",
        )
        st.page_link(
            STUDIES_PAGE,
            label="Open the retracted studies",
            query_params=url.to_query_params(StudyFilter(retracted=True, scope="all")),
        )


# -- Studies table and detail -----------------------------------------------------------------
COLUMN_CONFIG = {
    "entered": st.column_config.TextColumn(
        "Entered", help="date the record entered PubMed", width="small"
    ),
    "trial_url": st.column_config.LinkColumn(
        "Trial", help="the first trial registration it names", display_text=r".*[=/]([^=/]+)$"
    ),
}


def with_follow_columns(frame: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The Studies table plus the PubMed entry date and the first registry link."""
    out = frame.copy()
    out.insert(min(4, len(out.columns)), "entered", [r.get("entrez_date") for r in rows])
    out["trial_url"] = [(r.get("trials") or [{}])[0].get("url") or None for r in rows]
    return out


def _marked(text: str | None) -> str:
    """Record text as HTML: every piece escaped, matched terms in <mark>."""
    return "".join(
        f"<mark>{html.escape(p)}</mark>" if hit else html.escape(p) for p, hit in split_marks(text)
    )


def snippets(db: str, f: StudyFilter, rows: list[dict[str, Any]]) -> None:
    """The matched terms in the first rows' titles and abstracts (FTS5 highlight/snippet)."""
    if not f.search or not rows:
        return
    shown = rows[:SNIPPETS_SHOWN]
    found = _snippets(db, f.search, tuple(r["pmid"] for r in shown))
    if not found:
        return
    with st.expander(f"Matches in titles and abstracts (first {len(shown)})", expanded=True):
        for r in shown:
            s = found.get(r["pmid"])
            if not s:
                continue
            mark = "⚠ RETRACTED · " if r.get("retracted") else ""
            snippet = _marked(s["snippet"]) if s.get("snippet") else ""
            st.html(
                f"<div class='kea-snippet'><b>{mark}PMID {html.escape(r['pmid'])}</b> · "
                f"{_marked(s['title'])}<br><small>{snippet}</small></div>"
            )


@st.cache_data(ttl=300, show_spinner=False)
def _snippets(db: str, search: str, pmids: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    from pipeline.query import snippets as query_snippets

    return query_snippets(data.conn(db), search, pmids)


def relevance_when_searching(f: StudyFilter) -> None:
    """A new search orders by relevance (unless another order was picked); no search, no
    relevance. Runs before the page's order widget ("st_sort") is drawn."""
    ss = st.session_state
    if f.search != ss.get("st_last_search"):
        if f.search and ss.get("st_sort") == "strength":
            ss["st_sort"] = "relevance"
        elif not f.search and ss.get("st_sort") == "relevance":
            ss["st_sort"] = "strength"
    ss["st_last_search"] = f.search


def detail_follow(d: dict[str, Any]) -> None:
    """Entry date and registry links under a study's byline."""
    bits = [f"Entered PubMed {d['entrez_date']}"] if d.get("entrez_date") else []
    trials = d.get("trials") or []
    if trials:
        links = ", ".join(
            f"[{fmt.md_escape(t['id'])}]({t['url']})" if t.get("url") else fmt.md_escape(t["id"])
            for t in trials
        )
        bits.append(f"Trial registration: {links}")
    else:
        bits.append("No trial registration named")
    st.markdown(" · ".join(bits))


# -- sidebar: search syntax, added since, registered, saved searches, feeds -------------------
def search_error(text: str | None) -> str | None:
    from pipeline.search import check

    return check(text)


ADDED = {"any": None, "30": 30, "90": 90, "365": 365, "last": LAST_CRAWL}
ADDED_NAMES = {
    "any": "any time",
    "30": "last 30 days",
    "90": "last 90 days",
    "365": "last year",
    "last": "since my last crawl",
}


def added_choice(value: str | None) -> str:
    """The 'added since' widget option for a filter value (a date shows as 'a date')."""
    if value is None:
        return "any"
    if value == LAST_CRAWL:
        return "last"
    return "date"


def added_value(choice: str, day: Any, today: Any) -> str | None:
    from datetime import timedelta

    if choice == "date":
        return day.isoformat() if day else None
    v = ADDED.get(choice)
    if v is None or v == LAST_CRAWL:
        return v
    return (today - timedelta(days=int(v))).isoformat()


def follow_page(db: str, f: StudyFilter) -> None:
    """Save the filter this page was opened with; open, download or remove saved searches."""
    st.markdown("#### Save this search")
    shown = urlencode(url.to_query_params(f))
    st.caption("Filter: " + (fmt.md_escape(shown) if shown else "every in-scope study"))
    name = st.text_input("Name", key="fs_name", placeholder="e.g. PTSD trials")
    if st.button("Save this search", key="fs_save", icon=":material/bookmark_add:"):
        from pipeline.saved import add_saved

        try:
            s = add_saved(db, name, shown, replace=True)
            st.success(f"Saved {fmt.md_escape(s.name)}; its feed is below.")
            _saved.clear()
        except KeaError as err:
            st.error(fmt.md_escape(str(err)))

    st.markdown("#### Feeds (Atom)")
    st.caption(
        "Studies newly added or newly retracted in the last 90 days, with title, authors, "
        "journal, date, design, outcome and a PubMed link. `kea crawl` rewrites these files "
        "next to the database after every crawl, so a feed reader can follow them."
    )
    st.download_button(
        "Whole atlas feed",
        data=_feed(db, None, ""),
        file_name="kea-atlas.atom",
        mime="application/atom+xml",
        key="fs_atlas",
        icon=":material/rss_feed:",
    )
    saved = _saved(db)
    if not saved:
        st.info("No saved searches yet.")
    for s in saved:
        c1, c2, c3 = st.columns([3, 2, 1])
        c1.markdown(f"**{fmt.md_escape(s['name'])}**  \n`{fmt.md_escape(s['params']) or 'all'}`")
        c1.page_link(
            STUDIES_PAGE,
            label="Open its studies",
            icon=":material/search:",
            query_params={k: v[-1] for k, v in parse_qs(s["params"]).items()},
        )
        c2.download_button(
            "Feed",
            data=_feed(db, s["name"], s["params"]),
            file_name=f"kea-{s['slug']}.atom",
            mime="application/atom+xml",
            key=f"fs_feed_{s['slug']}",
            icon=":material/rss_feed:",
        )
        if c3.button("Remove", key=f"fs_rm_{s['slug']}"):
            from pipeline.saved import remove_saved

            remove_saved(db, s["name"])
            _saved.clear()
            st.rerun()


@st.cache_data(ttl=30, show_spinner=False)
def _saved(db: str) -> list[dict[str, str]]:
    from pipeline.saved import list_saved

    return [{"name": s.name, "params": s.params, "slug": s.slug} for s in list_saved(data.conn(db))]


@st.cache_data(ttl=60, show_spinner=False)
def _feed(db: str, name: str | None, params: str) -> bytes:
    from pipeline.feeds import feed_bytes

    f = url.from_query_params(parse_qs(params)) if name is not None else None
    return feed_bytes(data.conn(db), name, f)
