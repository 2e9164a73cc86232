"""The portable model artefact: learned parameters as plain data, and the one prediction path.

A trained model is two files with one stem:

``<stem>.json`` (UTF-8 JSON, the only file people read)::

    {"format": "kea-linear", "format_version": 1,
     "metadata": {...},          # model_version, training data hash, CV metrics, ... (card)
     "model": {
       "name": "hybrid",                 # registry recipe it was trained from
       "review_threshold": 0.6,          # below this probability a field needs review
       "overrides": true,                # exact rules may override the heads (predict.py)
       "fact_accuracy": {"drug": 0.97, ...},   # each exact rule's agreement with gold
       "calibration": CALIBRATION | absent,    # per-label confidence (calibrate.py)
       "features": {"doc": FEATURES, "finding": FEATURES | null} | null,  # null: metadata
       "heads": [HEAD, ...]}}

    FEATURES = {"union": bool, "blocks": [BLOCK, ...]}   # union: blocks side by side
    BLOCK = {"type": "tfidf", "array": "doc.0", "parts": ["title", ...], "title_weight": 2,
             "analyzer": "word" | "char_wb", "ngram_range": [1, 2], "lowercase": true,
             "token_pattern": "(?u)\\b\\w\\w+\\b", "sublinear_tf": true, "norm": "l2" | null,
             "dtype": "float32"}
          | {"type": "rules", "weight": 0.5, "columns": ["cond_depression_title", ...]}
    HEAD = {"key": "relevance" | "conditions:<c>" | "design" | "outcome",
            "features": "doc" | "finding", "array": "head.0",
            "classes": [...],                       # the class labels, in column order
            "link": "binary" | "multinomial",       # logistic (1 score) or softmax (k scores)
            "calibrated": bool}                     # sigmoid (Platt) calibration per score

``<stem>.npz`` (numpy arrays, read with ``allow_pickle=False``):

- ``<block>.vocabulary`` (unicode strings): term of each TF-IDF column, by column index;
- ``<block>.idf`` (float): inverse document frequency of each column;
- ``<head>.coef`` (float, scores x features) and ``<head>.intercept`` (float, scores):
  linear scores ``X @ coef.T + intercept``;
- ``<head>.calib_a``, ``<head>.calib_b`` (float64, one per score) and ``<head>.calib_class``
  (int64): calibrated probability of class ``calib_class[k]`` is
  ``1 / (1 + exp(a[k] * score_k + b[k]))``; binary heads: the other class gets 1 - p;
  multiclass: normalised to sum 1 (uniform when all are 0).

``CALIBRATION`` (see ``calibrate.py``): per label a logistic regression over the decision's
basis (token weights, number weights, bias) giving P(shown value correct), and
``review_thresholds`` per label. Without it (old files, cross-validation's fold models) the
raw head probabilities and ``review_threshold`` are used.

TF-IDF is computed as scikit-learn defines it (counts of the record's terms in the
vocabulary; ``1 + log(count)`` when sublinear; times idf; rows scaled to unit L2 norm), in
the same floating-point operations, so a converted model predicts exactly what the fitted
scikit-learn pipeline predicts (tests compare both on the corpus). Only public numpy, scipy
and scikit-learn functions are used, so any release in the declared ranges loads the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.preprocessing import normalize
from sklearn.utils.extmath import softmax

from pipeline.classify.baseline import metadata_fields
from pipeline.classify.calibrate import Calibration
from pipeline.classify.rules.features import RULE_FEATURE_NAMES, rule_features
from pipeline.classify.text import TextAssembler
from pipeline.errors import ModelError
from pipeline.labels import VOCAB
from pipeline.records import Article

FORMAT = "kea-linear"
FORMAT_VERSION = 1
CONDITIONS = VOCAB["conditions"]
DESIGNS = VOCAB["design"]
OUTCOMES = VOCAB["outcome"]
_WHITE_SPACES = re.compile(r"\s\s+")  # how scikit-learn's char_wb analyzer collapses spaces


# --------------------------------------------------------------------------- TF-IDF
def _word_ngrams(tokens: list[str], min_n: int, max_n: int) -> list[str]:
    if max_n == 1:
        return tokens
    out = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n, len(tokens)) + 1):
        if n == 2:  # map/join run in C: no Python frame per bigram
            out.extend(map(" ".join, zip(tokens, tokens[1:], strict=False)))
        else:
            out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def _char_wb_grams(w: str, min_n: int, max_n: int) -> list[str]:
    """Character n-grams of one word padded with spaces (scikit-learn's char_wb)."""
    grams: list[str] = []
    w = " " + w + " "
    w_len = len(w)
    for n in range(min_n, max_n + 1):
        offset = 0
        grams.append(w[offset : offset + n])
        while offset + n < w_len:
            offset += 1
            grams.append(w[offset : offset + n])
        if offset == 0:  # a short word (w_len < n) is counted once
            break
    return grams


class Tfidf:
    """A fitted TF-IDF block from its stored vocabulary and idf."""

    def __init__(self, spec: dict[str, Any], vocabulary: np.ndarray, idf: np.ndarray):
        self.spec = spec
        self.vocab = {str(t): i for i, t in enumerate(vocabulary.tolist())}
        if len(self.vocab) != len(idf):
            raise ModelError(
                f"TF-IDF block {spec.get('array')}: {len(self.vocab)} terms but "
                f"{len(idf)} idf values"
            )
        self.idf = idf
        self.dtype = np.dtype(spec["dtype"])
        self.assembler = TextAssembler(tuple(spec["parts"]), spec["title_weight"])
        self.min_n, self.max_n = (int(n) for n in spec["ngram_range"])
        self.lower = bool(spec["lowercase"])
        if spec["analyzer"] not in ("word", "char_wb"):
            raise ModelError(f"unsupported analyzer {spec['analyzer']!r}")
        self.token_re = re.compile(spec.get("token_pattern") or r"(?u)\b\w\w+\b")

    def _analyzer(self) -> Callable[[str], list[str]]:
        lower, min_n, max_n = self.lower, self.min_n, self.max_n
        if self.spec["analyzer"] == "word":
            findall = self.token_re.findall

            def words(doc: str) -> list[str]:
                return _word_ngrams(findall(doc.lower() if lower else doc), min_n, max_n)

            return words
        seen: dict[str, list[str]] = {}  # words repeat across records: n-grams once per call

        def chars(doc: str) -> list[str]:
            out: list[str] = []
            for w in _WHITE_SPACES.sub(" ", doc.lower() if lower else doc).split():
                grams = seen.get(w)
                if grams is None:
                    grams = seen[w] = _char_wb_grams(w, min_n, max_n)
                out.extend(grams)
            return out

        return chars

    def counts(self, docs: Sequence[str]) -> sp.csr_array:
        """Term counts over the vocabulary (out-of-vocabulary terms dropped), sorted indices."""
        analyze = self._analyzer()
        vocab = self.vocab
        known = vocab.__contains__
        get = vocab.__getitem__
        cols: list[int] = []
        values: list[int] = []
        indptr = [0]
        for doc in docs:
            c = Counter(filter(known, analyze(doc)))
            cols.extend(map(get, c))
            values.extend(c.values())
            indptr.append(len(cols))
        idx = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
        X = sp.csr_array(
            (
                np.asarray(values, dtype=np.intc),
                np.asarray(cols, dtype=idx),
                np.asarray(indptr, dtype=idx),
            ),
            shape=(len(indptr) - 1, len(vocab)),
            dtype=self.dtype,
        )
        X.sort_indices()
        return X

    def transform(self, articles: Sequence[Any]) -> sp.csr_array:
        X = self.counts(self.assembler.transform(articles))
        if self.spec["sublinear_tf"]:
            np.log(X.data, X.data)
            X.data += 1.0
        X.data *= self.idf[X.indices]
        if self.spec["norm"] is not None:
            X = normalize(X, norm=self.spec["norm"], copy=False)
        return X


class Rules:
    """The rule-cue block: `features.rule_features` columns, scaled by a weight."""

    def __init__(self, spec: dict[str, Any]):
        unknown = [c for c in spec["columns"] if c not in RULE_FEATURE_NAMES]
        if unknown:
            raise ModelError(f"model reads rule features this code lacks: {', '.join(unknown)}")
        self.columns = [RULE_FEATURE_NAMES.index(c) for c in spec["columns"]]
        self.weight = float(spec["weight"])

    def transform(self, articles: Sequence[Article]) -> np.ndarray:
        rows = [rule_features(a) for a in articles]
        mat = np.asarray(rows, dtype=float).reshape(-1, len(RULE_FEATURE_NAMES))
        return mat[:, self.columns] * self.weight


class Features:
    def __init__(self, spec: dict[str, Any], arrays: Any):
        self.union = bool(spec["union"])
        self.blocks: list[Tfidf | Rules] = []
        for b in spec["blocks"]:
            if b["type"] == "tfidf":
                self.blocks.append(
                    Tfidf(b, arrays[f"{b['array']}.vocabulary"], arrays[f"{b['array']}.idf"])
                )
            elif b["type"] == "rules":
                self.blocks.append(Rules(b))
            else:
                raise ModelError(f"unknown feature block type {b['type']!r}")

    def transform(self, articles: Sequence[Article]) -> Any:
        parts = [b.transform(articles) for b in self.blocks]
        if not self.union:
            return parts[0]
        if not any(sp.issparse(p) for p in parts):
            return np.concatenate(parts, axis=1)
        # all blocks CSR: scipy stacks them row by row (the same matrix as through COO)
        return sp.hstack([p if sp.issparse(p) else sp.csr_array(p) for p in parts], format="csr")


class Head:
    """Linear scores, then logistic/softmax or sigmoid calibration: class probabilities."""

    def __init__(self, spec: dict[str, Any], arrays: Any):
        a = spec["array"]
        self.key = spec["key"]
        self.features = spec["features"]
        self.classes = list(spec["classes"])
        self.link = spec["link"]
        self.coef = arrays[f"{a}.coef"]
        self.intercept = arrays[f"{a}.intercept"]
        self.calibrated = bool(spec["calibrated"])
        if self.calibrated:
            self.calib_a = arrays[f"{a}.calib_a"].tolist()
            self.calib_b = arrays[f"{a}.calib_b"].tolist()
            self.calib_class = arrays[f"{a}.calib_class"].tolist()

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = X @ self.coef.T
        if sp.issparse(scores):
            scores = scores.toarray()
        scores = np.asarray(scores) + self.intercept
        if scores.shape[1] == 1:
            scores = scores.reshape(-1)
        if not self.calibrated:
            if self.link == "binary":
                p = expit(scores)
                return np.stack([1 - p, p], axis=1)
            return softmax(scores, copy=False)
        if scores.ndim == 1:
            scores = scores.reshape(-1, 1)
        n = len(self.classes)
        proba = np.zeros((scores.shape[0], n))
        for k, (cls, a, b) in enumerate(
            zip(self.calib_class, self.calib_a, self.calib_b, strict=True)
        ):
            proba[:, cls + 1 if n == 2 else cls] = expit(-(a * scores[:, k] + b))
        if n == 2:
            proba[:, 0] = 1.0 - proba[:, 1]
            return proba
        denominator = np.sum(proba, axis=1)[:, np.newaxis]
        return np.divide(proba, denominator, out=np.full_like(proba, 1 / n), where=denominator != 0)


# --------------------------------------------------------------------------- the model
class PortableModel:
    """A trained model as loaded from its artefact: `predict_fields` as `KeaModel` gives."""

    def __init__(
        self,
        spec: dict[str, Any],
        arrays: dict[str, np.ndarray],
        metadata: dict[str, Any] | None = None,
    ):
        self.spec = spec
        self.arrays = arrays
        self.name = spec["name"]
        self.review_threshold = float(spec["review_threshold"])
        self.overrides_ = bool(spec["overrides"])
        self.fact_accuracy_ = dict(spec["fact_accuracy"])
        # per-label calibrators and review thresholds (calibrate.py); absent in models
        # trained before them and in the fold models cross-validation fits
        self.calibration_ = Calibration.from_json(spec.get("calibration"))
        self.metadata_ = metadata or {}
        self.version_ = self.metadata_.get("model_version")
        feats = spec["features"]
        self.doc = Features(feats["doc"], arrays) if feats else None
        self.finding = (
            Features(feats["finding"], arrays) if feats and feats.get("finding") else None
        )
        self.heads = [Head(h, arrays) for h in spec["heads"]]

    def set_calibration(self, cal: Calibration | None) -> None:
        """Carry these calibrators (they become part of the spec, so of the hash/version)."""
        self.calibration_ = cal
        if cal is None:
            self.spec.pop("calibration", None)
        else:
            self.spec["calibration"] = cal.to_json()

    def parameters_hash(self) -> str:
        """Hash of everything the model decides with: structure and every array's bytes."""
        h = hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode())
        for key in sorted(self.arrays):
            arr = np.ascontiguousarray(self.arrays[key])
            h.update(f"{key}|{arr.dtype.str}|{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def predict_fields(self, X: Sequence[Article]) -> list[dict[str, dict[str, float]]]:
        """Per record: {'relevance': {label: p}, 'design': {...}, 'outcome': {...},
        'conditions': {cond: p}}."""
        X = list(X)
        if not X:
            return []
        if self.doc is None:
            return [metadata_fields(a) for a in X]
        D = self.doc.transform(X)
        F = self.finding.transform(X) if self.finding is not None else D
        out: list[dict[str, dict[str, float]]] = [
            {"relevance": {}, "conditions": {}, "design": {}, "outcome": {}} for _ in X
        ]
        for head in self.heads:
            mat = F if head.features == "finding" else D
            # tolist(): the same Python floats as float(proba[i, j]), without per-cell indexing
            proba = np.asarray(head.predict_proba(mat), dtype=np.float64).tolist()
            if head.key.startswith("conditions:"):
                cond = head.key.split(":", 1)[1]
                col = head.classes.index(True)
                for i in range(len(X)):
                    out[i]["conditions"][cond] = proba[i][col]
            else:
                names = [str(c) for c in head.classes]
                for i in range(len(X)):
                    out[i][head.key] = dict(zip(names, proba[i], strict=True))
        for rec in out:
            for cond in CONDITIONS:
                rec["conditions"].setdefault(cond, 0.0)
            for fld, vocab in (("design", DESIGNS), ("outcome", OUTCOMES)):
                for v in vocab:
                    rec[fld].setdefault(v, 0.0)
        return out


# --------------------------------------------------------------------------- files
def artefact_paths(path: str | Path) -> tuple[Path, Path]:
    """(<stem>.json, <stem>.npz) for a model path given with either suffix (or none)."""
    p = Path(path)
    return p.with_suffix(".json"), p.with_suffix(".npz")


def write(
    path: str | Path, spec: dict[str, Any], arrays: dict[str, np.ndarray], metadata: dict[str, Any]
) -> Path:
    """Write the JSON and the npz; returns the JSON path."""
    js, npz = artefact_paths(path)
    js.parent.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        if arr.dtype == object:
            raise ModelError(f"array {key} holds Python objects: not portable")
    with npz.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "metadata": metadata, "model": spec}
    js.write_text(
        json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return js


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata block of a model's JSON (what the model card shows)."""
    return _read_json(artefact_paths(path)[0])["metadata"]


def _read_json(js: Path) -> dict[str, Any]:
    if not js.exists():
        raise ModelError(f"model file {js} does not exist (run `kea train`)")
    try:
        doc = json.loads(js.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(f"model file {js} is not JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"model file {js} is not a {FORMAT} model")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"model file {js} has format version {doc.get('format_version')}; "
            f"this code reads version {FORMAT_VERSION}: retrain with `kea train`"
        )
    return doc


def load(path: str | Path) -> PortableModel:
    """Load a model artefact: JSON + arrays, never unpickling anything."""
    js, npz = artefact_paths(path)
    doc = _read_json(js)
    if not npz.exists():
        raise ModelError(f"model arrays {npz} are missing (the JSON alone is not a model)")
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as err:
        raise ModelError(f"model arrays {npz} are not a plain numpy archive: {err}") from err
    try:
        return PortableModel(doc["model"], arrays, doc.get("metadata") or {})
    except KeyError as err:
        raise ModelError(f"model file {js} lacks {err}") from err
