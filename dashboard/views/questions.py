"""Questions: is that claim backed by evidence? Each claim is data in questions.json."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, fmt, ui, url
from pipeline.labels import BY_NAME
from pipeline.query import StudyFilter

QUESTIONS = Path(__file__).resolve().parent.parent / "questions.json"
STUDIES_PAGE = "views/studies.py"
STRONG = ("rct", "systematic_review")
TRIALS = ("rct", "nonrandomized_trial")
MAX_ROWS = 5000  # a claim's RCTs + reviews; more than this and the summary says so


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["questions"]


def question_filters(spec: dict[str, Any]) -> list[tuple[str | None, StudyFilter]]:
    """One filter per alternative search term (or one filter when the claim has none)."""
    base = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("filter", {}).items()}
    searches = spec.get("any_search") or [None]
    return [(s, StudyFilter(**base, search=s)) for s in searches]


def strong_rows(
    db: str, filters_: list[tuple[str | None, StudyFilter]], designs: tuple[str, ...] = STRONG
) -> list[dict[str, Any]]:
    """Studies of ``designs`` matching any of the filters, each study once."""
    seen: dict[str, dict[str, Any]] = {}
    for _, f in filters_:
        strong = replace(f, designs=designs)
        for r in data.list_studies(db, strong, "strength", MAX_ROWS, 0):
            seen.setdefault(r["pmid"], r)
    return list(seen.values())


def trial_table(db: str, filters_: list[tuple[str | None, StudyFilter]]) -> None:
    """The trials behind a claim with their comparator and outcome (e.g. ketamine plus
    therapy against ketamine alone: the comparator says what the combination was tested
    against)."""
    rows = [r for r in strong_rows(db, filters_, TRIALS) if not r.get("retracted")]
    st.markdown(f"**The trials** ({fmt.plural(len(rows), 'trial')}), with what they compared:")
    if not rows:
        st.caption("No trial in the store matches.")
        return
    frame = pd.DataFrame(
        [
            {
                "Study": r.get("pubmed_url"),
                "Title": r.get("title") or "(no title)",
                "Year": r.get("year"),
                "Design": BY_NAME["design"].display(r.get("design")),
                "Comparator": BY_NAME["comparator"].display(r.get("comparator"))
                if r.get("comparator")
                else "not stated",
                "Outcome": BY_NAME["outcome"].display(r.get("outcome")),
                "N": r.get("sample_size"),
            }
            for r in rows
        ]
    )
    frame["Year"] = frame["Year"].astype("Int64")
    frame["N"] = frame["N"].astype("Int64")
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "Study": st.column_config.LinkColumn(
                "PMID", display_text=r"https://pubmed\.ncbi\.nlm\.nih\.gov/(\d+)/"
            ),
            "N": st.column_config.NumberColumn("N", help="participants (empty: not stated)"),
        },
    )


db = ui.db()
st.title("Questions")
st.caption(
    "Common claims about ketamine, answered from the store: the matching filter, what the "
    "RCTs and systematic reviews found on their primary outcome, and the people behind them. "
    "Labels come from a classifier (see About): read the studies before you rely on a count."
)

for q in load_questions():
    flist = question_filters(q)
    rows = strong_rows(db, flist)
    s = fmt.answer_summary(rows)
    with st.container(border=True):
        st.subheader(q["claim"])
        st.caption(q["how"])
        if not rows:
            st.info("No RCT or systematic review in the store matches this claim's filter.")
        else:
            t = s["totals"]
            st.markdown(
                f"**{fmt.plural(s['studies'], 'RCT or systematic review', 'RCTs and systematic reviews')}**: "
                f"**{t['beneficial']}** found benefit, **{t['no_benefit']}** no benefit, "
                f"**{t['mixed']}** mixed results"
                + (
                    f", {fmt.plural(t['not_reported'], 'study', 'studies')} report no efficacy result"
                    if t["not_reported"]
                    else ""
                )
                + "."
            )
            retracted = s["retracted"]
            if retracted:
                listing = replace(flist[0][1], designs=STRONG, retracted=True)
                ui.retracted_note(len(retracted), listing)
            st.table(pd.DataFrame(s["table"]), hide_index=True)
            c1, c2 = st.columns(2)
            for col, key, title in ((c1, "newest", "Newest"), (c2, "largest", "Largest")):
                with col:
                    st.markdown(f"**{title}**")
                    for r in s[key]:
                        n = f" · N={r['sample_size']:,}" if r.get("sample_size") else ""
                        st.page_link(
                            STUDIES_PAGE,
                            label=fmt.md_escape(fmt.option_label(r, 70) + n),
                            query_params={
                                **url.to_query_params(StudyFilter(designs=STRONG)),
                                "pmid": r["pmid"],
                            },
                        )
            with st.expander("Citations (Vancouver) of the newest and largest"):
                picked = {r["pmid"]: r for r in [*s["newest"], *s["largest"]]}
                for pmid in picked:
                    d = data.study_detail(db, pmid)
                    if d is not None:
                        st.code(data.citation(d, "vancouver"), language=None, wrap_lines=True)
        if q.get("list_trials"):
            trial_table(db, flist)
        for term, f in flist:
            n_all = data.count_studies(db, f)
            label = (
                f"All {fmt.plural(n_all, 'matching study')}"
                if term is None
                else f"All {fmt.plural(n_all, 'matching study')} that mention “{term}”"
            )
            st.page_link(
                STUDIES_PAGE,
                label=label,
                query_params=url.to_query_params(f),
                icon=":material/search:",
            )
