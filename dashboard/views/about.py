"""About: can I trust this? Search strategy, crawl history, model metrics, limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, fmt, ui

NCBI_POLICY = "https://www.ncbi.nlm.nih.gov/home/about/policies/"

db = ui.db()
st.title("About this atlas")
info = data.meta(db)
runs = data.crawl_history(db)

st.subheader("What was searched")
st.code(
    info.get("query") or (runs[0]["query"] if runs else "(no crawl recorded yet)"),
    language=None,
    wrap_lines=True,
)
st.caption(
    "The PubMed query every crawl runs; `kea crawl` fetches new and revised records "
    "after the first run."
)

st.subheader("Crawl history")
if runs:
    cols = [
        "id",
        "mode",
        "status",
        "started",
        "finished",
        "total",
        "fetched",
        "new",
        "updated",
        "deleted",
        "missing",
        "requests",
        "error",
    ]
    st.dataframe(
        pd.DataFrame(runs)[[c for c in cols if c in runs[0]]], hide_index=True, width="stretch"
    )
else:
    st.info("No crawl yet: run `kea crawl`.")


st.subheader("How good are the labels?")
card = data.model_card()
rows = fmt.metric_rows(card) if card else []
if not rows:
    st.info("Classifier metrics: not available (the classifier has no model card yet).")
else:
    version = card.get("model_version") if card else None
    st.caption(
        f"Model {version or '(unnamed)'}: how often its labels agree with people's, per label. "
        "Cross-validated rows are scored on the gold-labelled corpus the model learnt from "
        "(each record predicted by a model that did not see it); sealed rows on records kept "
        "out of training. The interval is a 95% confidence interval; n is the number of "
        "records scored."
    )
    st.dataframe(
        pd.DataFrame(rows, columns=list(fmt.METRIC_COLUMNS)),
        hide_index=True,
        width="stretch",
        column_config={
            "label": "Label",
            "metric": "Metric",
            "value": "Value",
            "interval": "95% interval",
            "n": "n",
            "split": "Scored on",
        },
    )
st.markdown(
    f"**{fmt.REVIEW_MARK}** marks a study with at least one low-confidence label: read the "
    "abstract before relying on it, and correct the label if it is wrong."
)
review = fmt.review_text(card.get("review") if card else None)
if review:
    st.markdown(review)
if info.get("model_version"):
    st.caption(f"Labels in this store were made by model `{info['model_version']}`.")

st.subheader("How labels are made, and their limits")
st.markdown(
    """
- A machine-learning classifier reads each record's **title, abstract, publication types and
  MeSH terms** and predicts relevance, conditions, subgroups, design, outcome direction and
  facts (sample size, drug, route, comparator, psychotherapy), each with a **probability**.
- Labels whose probability is low are marked **⚑ check** (needs review). A person can correct
  any label on the study's page; corrections are marked **✔ human-verified** and win over the
  model, also after re-classification.
- **Limits:** labels describe what the *abstract* reports, not the full paper; the outcome is
  the direction on the primary outcome, not the size of the effect or the quality of the
  study; sample sizes of reviews can overlap with the trials they pool; a classifier makes
  mistakes, most often on short or unusual abstracts. Retracted articles stay listed, marked
  **⚠ RETRACTED**, so you can see what was withdrawn.
- This atlas is a research aid, **not medical advice**.
"""
)

st.subheader("Data source")
st.markdown(
    "Records come from PubMed through NCBI's E-utilities. NCBI does not endorse this tool; "
    f"see NCBI's [policies and disclaimers]({NCBI_POLICY}). Abstracts may be protected by "
    "copyright of their publishers."
)
