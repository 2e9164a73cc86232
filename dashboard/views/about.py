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
    cols = {  # column -> header people read
        "id": "Run",
        "mode": "Mode",
        "status": "Status",
        "started": "Started (UTC)",
        "finished": "Finished (UTC)",
        "total": "Listed",
        "fetched": "Fetched",
        "new": "New",
        "updated": "Updated",
        "deleted": "Deleted",
        "missing": "Missing",
        "requests": "Requests",
        "error": "Error",
    }
    frame = pd.DataFrame(runs)[[c for c in cols if c in runs[0]]]
    for c in ("started", "finished"):
        if c in frame:
            frame[c] = frame[c].fillna("").str.replace("T", " ").str.replace("Z", "")
    shown = frame.astype(object).where(frame.notna(), "").rename(columns=cols)
    st.dataframe(shown.astype(str), hide_index=True, width="stretch")
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
        "Sealed rows are scored on gold records nobody looked at while building the model "
        "(the honest figure); cross-validated rows on the gold-labelled records the model "
        "learnt from (each record predicted by a model that did not see it). The interval is "
        "a 95% confidence interval; n is the number of records scored."
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
    f"**What ⚑ means.** {fmt.REVIEW_MARK} marks a label under review: the model is not sure "
    "enough that the value shown is right. Each label is shown with the calibrated "
    "probability that its value is right; a study with a flagged label needs a look at its "
    "abstract before you rely on it, and a correction if the label is wrong. A label a "
    "person corrected is shown as ✔ human-verified, with who and when, instead of a "
    "probability."
)
review_block = card.get("review") if card else None
review = fmt.review_text(review_block)
if review:
    st.markdown(review)
review_table = fmt.review_rows(review_block)
if review_table:
    st.dataframe(pd.DataFrame(review_table), hide_index=True)
label_table = fmt.label_review_rows(review_block)
if label_table:
    st.dataframe(pd.DataFrame(label_table), hide_index=True)
calibration = fmt.calibration_rows(card) if card else []
if calibration:
    st.markdown("**Calibration per label**: is a shown 80% right 80% of the time?")
    st.dataframe(pd.DataFrame(calibration), hide_index=True, width="stretch")
figure = (card or {}).get("reliability_png") or "docs/model-card-reliability.png"
if isinstance(figure, str) and card:
    from pathlib import Path

    png = Path(__file__).resolve().parents[2] / figure
    if png.suffix == ".png" and png.is_file():
        st.image(str(png), caption="Reliability: predicted confidence against how often right")
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
