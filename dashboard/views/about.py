"""About: can I trust this? Search strategy, crawl history, model metrics, limits."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, ui

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


def metrics_frame(card: dict[str, Any]) -> pd.DataFrame | None:
    """Per-label metrics from the model card, whatever nesting the trainer chose.

    Looks for a dict of label -> metrics under 'metrics' (or 'per_label'/'labels'),
    descending one level when that dict itself holds 'per_label' or 'labels'; nested
    numbers are flattened to dotted column names.
    """
    metrics = card.get("metrics") or card.get("per_label") or card.get("labels")
    if isinstance(metrics, dict):
        metrics = metrics.get("per_label") or metrics.get("labels") or metrics
    if not isinstance(metrics, dict) or not metrics:
        return None
    rows = []
    for label, m in metrics.items():
        if isinstance(m, dict):
            flat = pd.json_normalize(m, sep=".").iloc[0].to_dict() if m else {}
            keep = {k: v for k, v in flat.items() if isinstance(v, int | float | str)}
            if keep:
                rows.append({"label": label, **keep})
        elif isinstance(m, int | float):
            rows.append({"label": label, "value": m})
    return pd.DataFrame(rows) if rows else None


st.subheader("How good are the labels?")
card = data.model_card()
if card is None:
    st.info(
        "Classifier metrics: not available (no model card at "
        "`pipeline/models/kea-classifier.json`)."
    )
else:
    version = card.get("model_version") or card.get("version") or info.get("model_version")
    st.caption(
        f"Model {version or '(unnamed)'}; metrics from its model card "
        "(cross-validated on the gold-labelled corpus)."
    )
    frame = metrics_frame(card)
    if frame is not None:
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        with st.expander("Model card"):
            st.json(card)
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
