"""Rule-derived numeric cue features for the models (and the transformer that emits them)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.classify.rules.conditions import OFFTOPIC_RE, condition_mentions
from pipeline.classify.rules.design import (
    DESIGN_CUE_NAMES,
    METADATA_DESIGNS,
    design_cues,
    design_from_metadata,
    is_animal_study,
)
from pipeline.classify.rules.matching import memo, texts
from pipeline.classify.rules.outcome import direction_rule, outcome_cues, title_claim
from pipeline.records import Article

RULE_FEATURE_NAMES = [
    "cond_depression_title",
    "cond_depression_abs",
    "cond_ptsd_title",
    "cond_ptsd_abs",
    "cond_anxiety_title",
    "cond_anxiety_abs",
    "offtopic_title",
    "offtopic_abs",
    "animal",
    "has_abstract",
    "is_indexed",
    *DESIGN_CUE_NAMES,
    *(f"pt_{d}" for d in METADATA_DESIGNS),
    "out_pos",
    "out_neg",
    "out_mixed",
    "out_topical",
    "title_pos",
    "title_neg",
    "dir_no_benefit",
    "dir_mixed",
    "res_pos",
    "res_neg",
    "res_mixed",
    "out_equivocal",
    "out_transient",
]


@memo
def rule_features(article: Article) -> list[float]:
    """The numeric rule-derived features, in RULE_FEATURE_NAMES order."""
    cm = condition_mentions(article)
    feats: list[float] = []
    for cond in ("depression", "ptsd", "anxiety"):
        t, a, _ = cm[cond]
        feats += [float(min(t, 3)), float(np.log1p(a))]
    feats.append(float(min(len(OFFTOPIC_RE.findall(texts(article)[0])), 3)))
    feats.append(float(np.log1p(len(OFFTOPIC_RE.findall(texts(article)[1])))))
    feats.append(float(is_animal_study(article)[0]))
    feats.append(float(bool(article.abstract_sections)))
    feats.append(float(bool(article.publication_types or article.mesh)))
    cues = design_cues(article)
    feats += [float(name in cues) for name in DESIGN_CUE_NAMES]
    pt, _ = design_from_metadata(article)
    feats += [float(pt == d) for d in METADATA_DESIGNS]
    oc = outcome_cues(article)
    feats += [
        float(min(oc.pos, 3)),
        float(min(oc.neg, 3)),
        float(min(oc.mixed, 3)),
        float(min(oc.topical, 3)),
    ]
    tc, _ = title_claim(article)
    feats += [float(tc == "beneficial"), float(tc == "no_benefit")]
    dr, _ = direction_rule(article)
    feats += [float(dr == "no_benefit"), float(dr == "mixed")]
    feats += [
        float(min(oc.r_pos, 3)),
        float(min(oc.r_neg, 3)),
        float(min(oc.r_mixed, 3)),
        float(min(oc.equivocal, 1)),
        float(min(oc.transient, 1)),
    ]
    return feats


class RuleFeatures(BaseEstimator, TransformerMixin):
    """Articles -> dense matrix of rule-derived cue features (scaled by `weight`).

    `exclude` drops the features whose names start with one of these prefixes, so a
    head does not read cues that describe another field.
    """

    def __init__(self, weight: float = 1.0, exclude: tuple[str, ...] = ()):
        self.weight = weight
        self.exclude = exclude

    def fit(self, X: Iterable[Article], y: object = None) -> RuleFeatures:
        self.columns_ = [
            i for i, n in enumerate(RULE_FEATURE_NAMES) if not n.startswith(tuple(self.exclude))
        ]
        self.n_features_out_ = len(self.columns_)
        return self

    def transform(self, X: Iterable[Article]) -> np.ndarray:
        rows = [rule_features(a) for a in X]
        mat = np.asarray(rows, dtype=float).reshape(-1, len(RULE_FEATURE_NAMES))
        return mat[:, self.columns_] * self.weight

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([RULE_FEATURE_NAMES[i] for i in self.columns_], dtype=object)
