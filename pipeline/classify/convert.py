"""Fitted scikit-learn estimators -> the portable artefact's structure and arrays.

The one module that reads fitted scikit-learn objects (their documented attributes:
``vocabulary_``/``get_feature_names_out``, ``idf_``, ``coef_``, ``intercept_``, ``classes_``,
``calibrated_classifiers_``; and the fitted sigmoid calibrators' ``a_``/``b_``, the only
way to read Platt parameters). Nothing here runs at prediction time, and tests check that
the converted model predicts exactly what scikit-learn's own ``predict_proba`` predicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from pipeline.classify.rules.features import RULE_FEATURE_NAMES, RuleFeatures
from pipeline.classify.text import TextAssembler
from pipeline.errors import ModelError

Arrays = dict[str, np.ndarray]


def _tfidf(
    name: str, assembler: TextAssembler, vec: TfidfVectorizer, arrays: Arrays
) -> dict[str, Any]:
    plain = (
        type(vec) is TfidfVectorizer
        and vec.input == "content"
        and vec.preprocessor is None
        and vec.tokenizer is None
        and vec.stop_words is None
        and vec.strip_accents is None
        and not vec.binary
        and vec.use_idf
        and vec.analyzer in ("word", "char_wb")
    )
    if not plain:
        raise ModelError(f"{name}: a TF-IDF configuration the portable format does not cover")
    arrays[f"{name}.vocabulary"] = np.asarray(vec.get_feature_names_out().tolist(), dtype=str)
    arrays[f"{name}.idf"] = np.asarray(vec.idf_)
    return {
        "type": "tfidf",
        "array": name,
        "parts": list(assembler.parts),
        "title_weight": int(assembler.title_weight),
        "analyzer": vec.analyzer,
        "ngram_range": [int(n) for n in vec.ngram_range],
        "lowercase": bool(vec.lowercase),
        "token_pattern": vec.token_pattern,
        "sublinear_tf": bool(vec.sublinear_tf),
        "norm": vec.norm,
        "dtype": np.dtype(vec.dtype).name,
    }


def _block(name: str, est: Any, arrays: Arrays) -> dict[str, Any]:
    if isinstance(est, RuleFeatures):
        return {
            "type": "rules",
            "weight": float(est.weight),
            "columns": [RULE_FEATURE_NAMES[i] for i in est.columns_],
        }
    if (
        isinstance(est, Pipeline)
        and len(est.steps) == 2
        and isinstance(est.steps[0][1], TextAssembler)
    ):
        return _tfidf(name, est.steps[0][1], est.steps[1][1], arrays)
    raise ModelError(f"{name}: {type(est).__name__} has no portable form")


def features(group: str, est: Any, arrays: Arrays) -> dict[str, Any] | None:
    """A fitted FeatureUnion (or single Pipeline) as a FEATURES spec."""
    if est is None:
        return None
    if isinstance(est, FeatureUnion):
        if est.transformer_weights is not None:
            raise ModelError(f"{group}: weighted unions have no portable form")
        return {
            "union": True,
            "blocks": [
                _block(f"{group}.{i}", t, arrays) for i, (_, t) in enumerate(est.transformer_list)
            ],
        }
    return {"union": False, "blocks": [_block(f"{group}.0", est, arrays)]}


def _linear(lr: LogisticRegression, name: str, arrays: Arrays) -> str:
    if not isinstance(lr, LogisticRegression) or getattr(lr, "multi_class", "auto") not in (
        "auto",
        "deprecated",
        "multinomial",
    ):
        raise ModelError(f"{name}: only multinomial/binary LogisticRegression is portable")
    arrays[f"{name}.coef"] = np.asarray(lr.coef_)  # its own dtype: float32 data, float32 fit
    arrays[f"{name}.intercept"] = np.asarray(lr.intercept_)
    return "binary" if len(lr.classes_) <= 2 else "multinomial"


def head(key: str, features_of: str, est: Any, name: str, arrays: Arrays) -> dict[str, Any]:
    """A fitted head (SafeCalibratedClassifier or LogisticRegression) as a HEAD spec."""
    classes = np.asarray(est.classes_).tolist()
    inner = getattr(est, "fitted_", est)
    spec = {
        "key": key,
        "features": features_of,
        "array": name,
        "classes": classes,
        "calibrated": isinstance(inner, CalibratedClassifierCV),
    }
    if isinstance(inner, CalibratedClassifierCV):
        if inner.method != "sigmoid" or len(inner.calibrated_classifiers_) != 1:
            raise ModelError(f"{key}: only one sigmoid-calibrated classifier is portable")
        if np.asarray(inner.classes_).tolist() != classes:
            raise ModelError(f"{key}: calibrated classes differ from the head's")
        pair = inner.calibrated_classifiers_[0]
        spec["link"] = _linear(pair.estimator, name, arrays)
        cals = list(pair.calibrators)
        pos = np.searchsorted(inner.classes_, pair.estimator.classes_)[: len(cals)]
        arrays[f"{name}.calib_a"] = np.asarray([c.a_ for c in cals], dtype=np.float64)
        arrays[f"{name}.calib_b"] = np.asarray([c.b_ for c in cals], dtype=np.float64)
        arrays[f"{name}.calib_class"] = np.asarray(pos, dtype=np.int64)
    else:
        spec["link"] = _linear(inner, name, arrays)
    return spec


def convert(model: Any) -> tuple[dict[str, Any], Arrays]:
    """A fitted KeaModel -> (MODEL spec, arrays) of the portable format."""
    arrays: Arrays = {}
    doc = features("doc", model.doc_, arrays)
    spec: dict[str, Any] = {
        "name": model.name,
        "review_threshold": float(model.review_threshold),
        "overrides": bool(model.overrides_),
        "fact_accuracy": {k: float(v) for k, v in model.fact_accuracy_.items()},
        "features": None
        if doc is None
        else {"doc": doc, "finding": features("finding", model.finding_, arrays)},
        "heads": [],
    }
    for i, (key, h) in enumerate(model.heads_.items()):
        on = "finding" if key == "outcome" and model.finding_ is not None else "doc"
        spec["heads"].append(head(key, on, h, f"head.{i}", arrays))
    return spec, arrays
