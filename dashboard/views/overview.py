"""Overview: what is the evidence, as of today? Headline figures, maps, flow."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, fmt, search_ui, ui, url
from pipeline.labels import BY_NAME, DESIGN_RANK, VOCAB
from pipeline.query import StudyFilter

STUDIES_PAGE = "views/studies.py"
DESIGN_ORDER = sorted(DESIGN_RANK, key=DESIGN_RANK.get)
OUTCOME_COLOURS = alt.Scale(
    domain=[fmt.pretty(o) for o in fmt.OUTCOME_ORDER],
    range=["#2e7d32", "#c62828", "#f9a825", "#9e9e9e"],
)

db = ui.db()
head = data.headline(db)
st.title("Ketamine Evidence Atlas")
st.caption(
    "What PubMed holds on ketamine, esketamine and arketamine for depression, PTSD and "
    "anxiety, as classified by the atlas's model. Counts are of in-scope studies."
)

cols = st.columns(5)
cols[0].metric("Studies in scope", f"{head['in_scope']:,}")
cols[1].metric("RCTs", f"{head['rcts']:,}")
cols[2].metric("Systematic reviews", f"{head['systematic_reviews']:,}")
cols[3].metric("New in last 30 days", f"{head['new_last_30_days']:,}")
cols[4].metric("Retracted (marked)", f"{head['retracted']:,}")
search_ui.tile_links(head, cols)
st.caption(
    "Last update: "
    + (
        head["last_update"].replace("T", " ").replace("Z", " UTC")
        if head["last_update"]
        else "no completed crawl yet"
    )
    + f" · {head['total_records']:,} records stored"
)
if head["needs_review"]:
    st.caption(
        f"{head['needs_review']:,} of {head['labelled']:,} classified records have at least one "
        "low-confidence label (⚑): check them before relying on them."
    )

population = st.radio(
    "Population",
    ("all", "human", "animal"),
    horizontal=True,
    key="ov_population",
    format_func={"all": "all studies", "human": "human studies", "animal": "animal studies"}.get,
)
base = StudyFilter(population=population)

# -- evidence map ----------------------------------------------------------------------
st.subheader("Evidence map: condition × design")
emap = pd.DataFrame(
    data.evidence_map(db, base), columns=["condition", "design", "outcome", "studies"]
)
if emap.empty:
    ui.no_rows("classified in-scope studies")
else:
    emap["Condition"] = emap["condition"].map(fmt.pretty)
    emap["Design"] = emap["design"].map(fmt.pretty)
    emap["Outcome"] = emap["outcome"].map(fmt.pretty)
    cells = emap.groupby(["condition", "design", "Condition", "Design"], as_index=False)[
        "studies"
    ].sum()
    design_sort = [fmt.pretty(d) for d in DESIGN_ORDER]
    pick = alt.selection_point(fields=["condition", "design"], name="cell")
    heat = (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X(
                "Design:N",
                sort=design_sort,
                title=None,
                axis=alt.Axis(labelAngle=-30, labelLimit=200, labelOverlap=False),
            ),
            y=alt.Y("Condition:N", title=None),
            color=alt.Color("studies:Q", scale=alt.Scale(scheme="blues"), title="Studies"),
            tooltip=["Condition", "Design", "studies"],
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.6)),
        )
        .add_params(pick)
    )
    labels = (
        alt.Chart(cells)
        .mark_text(fontSize=13)
        .encode(
            x=alt.X("Design:N", sort=design_sort),
            y=alt.Y("Condition:N"),
            text="studies:Q",
            color=alt.condition(
                alt.datum.studies > cells["studies"].max() / 2,
                alt.value("white"),
                alt.value("black"),
            ),
        )
    )
    event = st.altair_chart(
        (heat + labels).properties(height=70 * cells["condition"].nunique()),
        on_select="rerun",
        key="ov_map",
        width="stretch",
    )
    chosen = (
        event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    ).get("cell") or []
    if chosen:
        c, d = chosen[0].get("condition"), chosen[0].get("design")
        if c and d:
            target = StudyFilter(conditions=(c,), designs=(d,), population=population)
            st.session_state.pop("kea_filter", None)
            st.switch_page(STUDIES_PAGE, query_params=url.to_query_params(target))

    split = (
        alt.Chart(emap)
        .mark_bar()
        .encode(
            x=alt.X(
                "sum(studies):Q",
                stack="normalize",
                title="Share of studies",
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y("Design:N", sort=design_sort, title=None),
            row=alt.Row(
                "Condition:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")
            ),
            color=alt.Color("Outcome:N", scale=OUTCOME_COLOURS),
            tooltip=["Condition", "Design", "Outcome", "studies"],
        )
        .properties(height=110)
    )
    with st.expander("Outcome direction within each cell"):
        st.altair_chart(split, width="stretch")

    st.caption("Click a cell, or pick one here, to open those studies:")
    c1, c2, c3 = st.columns([1, 1, 2])
    cond = c1.selectbox("Condition", VOCAB["conditions"], format_func=fmt.pretty, key="ov_cond")
    design = c2.selectbox("Design", DESIGN_ORDER, format_func=fmt.pretty, key="ov_design")
    target = StudyFilter(conditions=(cond,), designs=(design,), population=population)
    with c3:
        st.write("")
        st.page_link(
            STUDIES_PAGE,
            query_params=url.to_query_params(target),
            icon=":material/search:",
            label=f"Open {data.count_studies(db, target):,} {fmt.pretty(design)} "
            f"studies on {fmt.pretty(cond)}",
        )

# -- outcome summary -------------------------------------------------------------------
st.subheader("What RCTs and systematic reviews found")
summary = data.outcome_summary(db, base)
if not summary:
    ui.no_rows("RCTs or systematic reviews")
else:
    st.dataframe(fmt.outcome_table(summary), hide_index=True, width="stretch")
    st.caption(
        "Studies (participants) per primary-outcome direction. Participants add up reported "
        "sample sizes; reviews pool trials that may also be counted as RCTs. A study on two "
        "conditions counts in both rows."
    )

# -- timeline and breakdowns -----------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    st.subheader("Studies per year")
    tl = pd.DataFrame(data.timeline(db, base), columns=["year", "design", "studies"])
    if tl.empty:
        ui.no_rows()
    else:
        tl["Design"] = tl["design"].map(fmt.pretty)
        st.altair_chart(
            alt.Chart(tl)
            .mark_bar()
            .encode(
                x=alt.X("year:O", title=None),
                y=alt.Y("studies:Q", title="Studies"),
                color=alt.Color("Design:N", sort=[fmt.pretty(d) for d in DESIGN_ORDER]),
                tooltip=["year", "Design", "studies"],
            )
            .properties(height=260),
            width="stretch",
        )
with right:
    for field in ("drug", "routes"):
        st.subheader(BY_NAME[field].title)
        bd = pd.DataFrame(data.breakdown(db, base, field), columns=["value", "studies"])
        if bd.empty:
            ui.no_rows()
            continue
        bd["label"] = [("not stated" if pd.isna(v) else fmt.pretty(v)) for v in bd["value"]]
        st.altair_chart(
            alt.Chart(bd)
            .mark_bar()
            .encode(
                x=alt.X("studies:Q", title="Studies"),
                y=alt.Y("label:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
                tooltip=["label", "studies"],
            )
            .properties(height=alt.Step(26)),
            width="stretch",
        )

# -- PRISMA-style flow -----------------------------------------------------------------
st.subheader("From retrieval to evidence (PRISMA-style flow)")
flow = data.prisma_flow(db)
g, t = st.columns([3, 2])
with g:
    st.graphviz_chart(fmt.prisma_dot(flow), width="stretch")
with t:
    st.dataframe(pd.DataFrame(fmt.prisma_rows(flow)), hide_index=True, width="stretch")
    if flow.get("duplicates_note"):
        st.caption(f"Duplicates: {flow['duplicates_note']}.")
