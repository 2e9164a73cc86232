"""The two baselines the model is reported beside.

- metadata: PubMed publication types and MeSH mapped to labels, nothing learnt.
  Most new records are not indexed yet, which is why it cannot be the answer.
- tfidf-lr: plain TF-IDF over title + abstract into a LogisticRegression.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from pipeline.classify import rules
from pipeline.classify.text import TextAssembler
from pipeline.labels import VOCAB
from pipeline.records import Article


def plain_tfidf_features() -> Pipeline:
    """Title + abstract as plain TF-IDF (the text baseline's only features)."""
    return Pipeline(
        [
            ("text", TextAssembler(("title", "abstract"), title_weight=1)),
            ("tfidf", TfidfVectorizer(sublinear_tf=True, dtype=np.float32)),
        ]
    )


def metadata_fields(a: Article) -> dict[str, dict[str, float]]:
    """Metadata-only baseline: publication types and MeSH mapped to labels, no learning."""
    mesh = " ".join(m.lower() for m in a.mesh_terms)
    conds = {
        "depression": float(any(k in mesh for k in ("depress", "suicid", "bipolar"))),
        "ptsd": float(
            "stress disorders, post-traumatic" in mesh or "stress disorders, traumatic" in mesh
        ),
        "anxiety": float(any(k in mesh for k in ("anxiety", "panic", "obsessive", "phobi"))),
    }
    in_scope = float(any(conds.values()))
    design, _ = rules.design_from_metadata(a)
    design = design or "rct"  # the commonest design when indexing says nothing
    return {
        "relevance": {"in_scope": in_scope, "off_topic": 1.0 - in_scope},
        "conditions": conds,
        "design": {d: float(d == design) for d in VOCAB["design"]},
        "outcome": {o: float(o == "not_reported") for o in VOCAB["outcome"]},
    }
