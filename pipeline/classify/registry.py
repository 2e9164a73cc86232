"""The model registry: named, untrained estimators that label Articles field by field.

A model is one `KeaModel` whose `name` picks a recipe from `REGISTRY`. All
recipes share the same output contract (`predict_fields`), so training,
evaluation, the CLI and the tests run over every registered name alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d

from pipeline.classify import rules
from pipeline.classify.baseline import plain_tfidf_features
from pipeline.classify.convert import convert
from pipeline.classify.portable import PortableModel
from pipeline.classify.text import TextAssembler
from pipeline.errors import ModelError
from pipeline.labels import VOCAB
from pipeline.records import Article

CONDITIONS = VOCAB["conditions"]

LabelDict = dict[str, Any]


class SafeCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """Sigmoid-calibrated wrapper that degrades gracefully on tiny classes.

    With fewer than `min_per_fold` examples of some class per fold, cross-fitted
    calibration is impossible; the wrapped estimator is then fitted as is.
    """

    def __init__(self, estimator: Any = None, cv: int = 3, method: str = "sigmoid"):
        self.estimator = estimator
        self.cv = cv
        self.method = method

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X: Any, y: Any) -> SafeCalibratedClassifier:
        base = self.estimator if self.estimator is not None else LogisticRegression()
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        y = column_or_1d(y, warn=True)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError("needs samples of at least 2 classes; got 1 class")
        counts = np.array([np.sum(y == c) for c in self.classes_])
        k = int(min(self.cv, counts.min()))
        if self.cv >= 2 and k >= 2:
            # ensemble=False: one estimator on all data, calibrated on its cross-fitted
            # predictions; a third of the size and prediction cost of the ensemble.
            self.fitted_ = CalibratedClassifierCV(
                clone(base), method=self.method, cv=k, ensemble=False
            ).fit(X, y)
            self.calibrated_ = True
        else:
            self.fitted_ = clone(base).fit(X, y)
            self.calibrated_ = False
        self.n_features_in_ = getattr(self.fitted_, "n_features_in_", None)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        return self.fitted_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "fitted_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


# --------------------------------------------------------------------------- recipes
def _lr(c: float = 4.0) -> LogisticRegression:
    # newton-cg: an order of magnitude faster than lbfgs on these small wide matrices
    return LogisticRegression(C=c, class_weight="balanced", solver="newton-cg", max_iter=500)


# Outcome cues that relevance, condition and design heads do not read.
DOC_EXCLUDE = ("res_", "out_equivocal", "out_transient")


def _tfidf_view(fields: tuple[str, ...], title_weight: int, **tfidf: Any) -> Pipeline:
    """Text of some record fields -> TF-IDF: every head's view is one of these."""
    vectorizer = TfidfVectorizer(
        min_df=2, sublinear_tf=True, max_features=20000, dtype=np.float32, **tfidf
    )
    return Pipeline(
        [("text", TextAssembler(fields, title_weight=title_weight)), ("tfidf", vectorizer)]
    )


def _doc_features(rules_on: bool, char: bool) -> FeatureUnion:
    parts: list[tuple[str, Any]] = [
        ("word", _tfidf_view(("title", "abstract", "meta", "keywords"), 2, ngram_range=(1, 2))),
    ]
    if char:
        parts.append(("char", _tfidf_view(("title",), 1, analyzer="char_wb", ngram_range=(3, 4))))
    if rules_on:
        parts.append(("rules", rules.RuleFeatures(weight=0.5, exclude=DOC_EXCLUDE)))
    return FeatureUnion(parts)


def _finding_features(rules_on: bool) -> FeatureUnion:
    parts: list[tuple[str, Any]] = [
        ("word", _tfidf_view(("title", "conclusion"), 1, ngram_range=(1, 2))),
    ]
    if rules_on:
        parts.append(("rules", rules.RuleFeatures(weight=1.0)))
    return FeatureUnion(parts)


Recipe = dict[str, Any]
REGISTRY: dict[str, Callable[[], Recipe]] = {
    # Rule cues + word/char TF-IDF into calibrated, class-weighted LR; exact rules override.
    "hybrid": lambda: {
        "doc": _doc_features(True, True),
        "finding": _finding_features(True),
        "head": SafeCalibratedClassifier(_lr(4.0), cv=3),
        "overrides": True,
    },
    # The same without character n-grams: smaller and faster.
    "hybrid-word": lambda: {
        "doc": _doc_features(True, False),
        "finding": _finding_features(True),
        "head": SafeCalibratedClassifier(_lr(4.0), cv=3),
        "overrides": True,
    },
    # Baseline: plain TF-IDF + LogisticRegression on title and abstract, nothing else.
    "tfidf-lr": lambda: {
        "doc": plain_tfidf_features(),
        "finding": None,
        "head": LogisticRegression(max_iter=1000),
        "overrides": False,
    },
    # Baseline: publication types and MeSH mapped to labels; learns nothing.
    "metadata": lambda: {"doc": None, "finding": None, "head": None, "overrides": False},
}
DEFAULT_MODEL = "hybrid"


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_model(name: str | None = None, **params: Any) -> KeaModel:
    """An unfitted model by registered name; an unknown name lists the valid ones."""
    name = name or DEFAULT_MODEL
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(model_names())}")
    return KeaModel(name=name, **params)


# --------------------------------------------------------------------------- the model
class KeaModel(BaseEstimator):
    """All TAXONOMY label heads of one recipe: fit on Articles + gold label dicts.

    `predict_fields` returns, per record, probabilities for relevance, each
    condition, design and outcome; `pipeline.classify.predict` turns these into
    stored label rows (facts, overrides, evidence, review flags).
    """

    def __init__(self, name: str = DEFAULT_MODEL, review_threshold: float = 0.6):
        self.name = name
        self.review_threshold = review_threshold

    # -- fitting ------------------------------------------------------------
    def fit(self, X: Sequence[Article], y: Sequence[LabelDict]) -> KeaModel:
        if self.name not in REGISTRY:
            raise ModelError(f"unknown model {self.name!r}; valid: {', '.join(model_names())}")
        if len(X) != len(y):
            raise ValueError(f"{len(X)} records but {len(y)} label sets")
        recipe = REGISTRY[self.name]()
        self.overrides_ = bool(recipe["overrides"])
        self.heads_: dict[str, Any] = {}
        self.doc_ = None
        self.finding_ = None
        X = list(X)
        if recipe["doc"] is not None:
            self.doc_ = recipe["doc"].fit(X)
            D = self.doc_.transform(X)
            self.finding_ = recipe["finding"].fit(X) if recipe["finding"] is not None else None
            F = self.finding_.transform(X) if self.finding_ is not None else D
            head = recipe["head"]
            rel = np.array([lab["relevance"] for lab in y])
            self.heads_["relevance"] = clone(head).fit(D, rel)
            ins = np.flatnonzero(rel == "in_scope")
            for cond in CONDITIONS:
                yc = np.array([cond in (y[i]["conditions"] or []) for i in ins])
                if 0 < yc.sum() < len(yc):
                    self.heads_[f"conditions:{cond}"] = clone(head).fit(D[ins], yc)
            des = np.array([lab["design"] for lab in y])
            self.heads_["design"] = clone(head).fit(D, des)
            out = np.array([y[i]["outcome"] for i in ins])
            self.heads_["outcome"] = clone(head).fit(F[ins], out)
        self.fact_accuracy_ = _fact_accuracy(X, y)
        # predictions always go through the portable form, so a saved and reloaded model
        # and the model cross-validation scored are one and the same computation
        self.portable_ = PortableModel(*convert(self))
        return self

    # -- predicting ---------------------------------------------------------
    def predict_fields(self, X: Sequence[Article]) -> list[dict[str, dict[str, float]]]:
        """Per record: {'relevance': {label: p}, 'design': {...}, 'outcome': {...},
        'conditions': {cond: p}} (see `portable.PortableModel.predict_fields`)."""
        check_is_fitted(self, "portable_")
        return self.portable_.predict_fields(X)


def _fact_accuracy(X: Sequence[Article], y: Sequence[LabelDict]) -> dict[str, float]:
    """How often each exact rule agrees with gold on the training records (its confidence)."""
    hits: dict[str, list[bool]] = {
        k: []
        for k in (
            "sample_size",
            "drug",
            "routes",
            "comparator",
            "psychotherapy",
            "subgroups",
            "outcome_title",
        )
    }
    for a, lab in zip(X, y, strict=True):
        if a.abstract_sections and lab.get("sample_size") is not None:
            hits["sample_size"].append(rules.sample_size(a)[0] == lab["sample_size"])
        hits["drug"].append(rules.drug(a)[0] == lab.get("drug"))
        hits["routes"].append(sorted(rules.routes(a)[0]) == sorted(lab.get("routes") or []))
        hits["comparator"].append(
            rules.comparator(a, lab.get("design"))[0] == lab.get("comparator")
        )
        hits["psychotherapy"].append(rules.psychotherapy(a)[0] == bool(lab.get("psychotherapy")))
        if lab.get("relevance") == "in_scope" and not a.abstract_sections:
            claim = rules.title_claim(a)[0] or "not_reported"
            hits["outcome_title"].append(claim == lab.get("outcome"))
        if lab.get("relevance") == "in_scope":
            hits["subgroups"].append(
                sorted(rules.subgroups(a)[0]) == sorted(lab.get("subgroups") or [])
            )
    return {k: round(float(np.mean(v)), 3) if v else 0.5 for k, v in hits.items()}
