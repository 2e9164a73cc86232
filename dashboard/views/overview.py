"""Overview: what is the evidence, as of today? Headline figures, maps, flow."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import charts, data, fmt, search_ui, ui, url
from pipeline.labels import BY_NAME, DESIGN_RANK, VOCAB
from pipeline.query import StudyFilter

STUDIES_PAGE = "views/studies.py"
DESIGN_ORDER = sorted(DESIGN_RANK, key=DESIGN_RANK.get)
STRONG = ("rct", "systematic_review")
COND = BY_NAME["conditions"]
DESIGN = BY_NAME["design"]

db = ui.db()
head = data.headline(db)
st.title("Ketamine Evidence Atlas")
st.caption(
    "What PubMed holds on ketamine, esketamine and arketamine for depression, PTSD and "
    "anxiety, as classified by the atlas's model. Counts are of in-scope studies."
)

# the headline counts leave retracted studies out (query.headline): they never count
cols = st.columns(5)
cols[0].metric("Studies in scope", f"{head['in_scope']:,}")
cols[1].metric("RCTs", f"{head['rcts']:,}")
cols[2].metric("Systematic reviews", f"{head['systematic_reviews']:,}")
cols[3].metric("New in last 30 days", f"{head['new_last_30_days']:,}")
cols[4].metric("Retracted (not counted)", f"{head['retracted']:,}")
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
        f"{head['needs_review']:,} of {head['labelled']:,} classified records have a "
        "low-confidence evidence label (⚑): check them before relying on them."
    )

population = st.radio(
    "Population",
    ("all", "human", "animal"),
    horizontal=True,
    key="ov_population",
    format_func={"all": "all studies", "human": "human studies", "animal": "animal studies"}.get,
)
base = StudyFilter(population=population, retracted=False)
ui.retracted_note(data.retracted_count(db, base), data.retracted_filter(base))

# -- evidence map ----------------------------------------------------------------------
st.subheader("Evidence map: condition × design")
emap = pd.DataFrame(
    data.evidence_map(db, base), columns=["condition", "design", "outcome", "studies"]
)
if emap.empty:
    ui.no_rows("classified in-scope studies", sidebar=False)
else:
    emap["Condition"] = emap["condition"].map(lambda v: COND.values.get(v, fmt.pretty(v)))
    emap["Design"] = emap["design"].map(DESIGN.display)
    emap["Outcome"] = emap["outcome"].fillna("not_reported").map(fmt.pretty)
    cells = emap.groupby(["condition", "design", "Condition", "Design"], as_index=False)[
        "studies"
    ].sum()
    design_sort = [fmt.pretty(d) for d in DESIGN_ORDER]
    event = st.vega_lite_chart(
        cells,
        charts.evidence_map(design_sort, cells["condition"].nunique(), int(cells["studies"].max())),
        on_select="rerun",
        key="ov_map",
        width="stretch",
    )
    c, d = charts.selected_cell(event)
    if c and d:
        target = StudyFilter(conditions=(c,), designs=(d,), population=population, retracted=False)
        st.session_state.pop("kea_filter", None)
        st.switch_page(STUDIES_PAGE, query_params=url.to_query_params(target))

    # drawn on request: the largest chart of the page, below the fold
    if st.toggle("Show the outcome direction within each cell", key="ov_split"):
        outcomes = [fmt.pretty(o) for o in fmt.OUTCOME_ORDER]
        st.vega_lite_chart(emap, charts.outcome_split(design_sort, outcomes), width="stretch")

    st.caption("Click a cell, or pick one here, to open those studies:")
    c1, c2, c3 = st.columns([1, 1, 2])
    cond = c1.selectbox(
        "Condition", VOCAB["conditions"], format_func=COND.values.get, key="ov_cond"
    )
    design = c2.selectbox("Design", DESIGN_ORDER, format_func=DESIGN.display, key="ov_design")
    target = StudyFilter(
        conditions=(cond,), designs=(design,), population=population, retracted=False
    )
    with c3:
        st.write("")
        st.page_link(
            STUDIES_PAGE,
            query_params=url.to_query_params(target),
            icon=":material/search:",
            label=f"Open {fmt.plural(data.count_studies(db, target), DESIGN.display(design) + ' study')}"
            f" on {COND.values.get(cond, cond)}",
        )

# -- outcome summary -------------------------------------------------------------------
st.subheader("What RCTs and systematic reviews found")
summary = data.outcome_summary(db, base)
strong = replace(base, designs=STRONG)
ui.retracted_note(data.retracted_count(db, base, STRONG), data.retracted_filter(strong))
if not summary:
    ui.no_rows("RCTs or systematic reviews", sidebar=False)
else:
    st.table(fmt.outcome_table(summary), hide_index=True)
    st.caption(
        "Studies and participants per primary-outcome direction. Participants add up the "
        'sample sizes the abstracts state; "N not stated" counts the studies that give '
        "none. Reviews pool trials that may also be counted as RCTs. A study on two "
        "conditions counts in both rows. Retracted studies are not counted."
    )

# -- timeline and breakdowns -----------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    st.subheader("Studies per year")
    tl = pd.DataFrame(data.timeline(db, base), columns=["year", "design", "studies"])
    if tl.empty:
        ui.no_rows(sidebar=False)
    else:
        tl = tl[tl["design"].notna()]  # unclassified records have no design to colour
        tl["Design"] = tl["design"].map(DESIGN.display)
        st.vega_lite_chart(
            tl, charts.timeline([DESIGN.display(d) for d in DESIGN_ORDER]), width="stretch"
        )
with right:  # plain tables: nothing more to load in the browser for a few counts
    for field in ("drug", "routes"):
        lab = BY_NAME[field]
        st.subheader(lab.title)
        bd = data.breakdown(db, base, field)
        if not bd:
            ui.no_rows(sidebar=False)
            continue
        st.table(
            pd.DataFrame(
                {
                    lab.title: [
                        "not stated"
                        if r["value"] is None
                        else lab.values.get(r["value"], fmt.pretty(r["value"]))
                        for r in bd
                    ],
                    "Studies": [f"{r['studies']:,}" for r in bd],
                }
            ),
            hide_index=True,
        )

# -- PRISMA-style flow -----------------------------------------------------------------
st.subheader("From retrieval to evidence (PRISMA-style flow)")
flow = data.prisma_flow(db)
g, t = st.columns([3, 2])
with g:  # the diagram on request: its renderer is the heaviest script of the page
    if st.toggle("Show the flow as a diagram", key="ov_prisma"):
        st.graphviz_chart(fmt.prisma_dot(flow), width="stretch")
with t:
    rows_ = fmt.prisma_rows(flow)
    st.table(
        pd.DataFrame(
            {"Step": [r["step"] for r in rows_], "Records": [f"{r['records']:,}" for r in rows_]}
        ),
        hide_index=True,
    )
    if flow.get("duplicates_note"):
        st.caption(f"Duplicates: {flow['duplicates_note']}.")
