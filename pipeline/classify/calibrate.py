"""Per-label calibrated confidence: P(the value shown is correct), learnt on held-out rows.

The label heads give probabilities of classes, the rules give values without any; neither
says how often the *shown* value is right. A second stage does: for every label a small
logistic regression maps simple features of the decision (its `Basis`: the head's
probability of the shown value as a logit, and tokens saying how the value was decided —
which rule, which value, whether there was an abstract) to whether it matched gold, fitted on
out-of-fold label rows (so it learns how wrong the model is on records it did not see).

Stored in the portable model as plain JSON (``spec["calibration"]``)::

    {"labels": {"<label>": {"tokens": ["src=rule", ...], "w_tokens": [...],
                            "w_nums": [...], "bias": -0.3, "n": 318, "base_rate": 0.9}},
     "review_thresholds": {"<label>": 0.71, ...}}

Prediction is a few dictionary look-ups and one exp per label (no numpy per record).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.labels import BY_NAME, LABEL_NAMES

# unflagged labels should be right this often; no more than this share flagged (issue 10)
TARGET_PRECISION = 0.95
MAX_FLAGGED = 0.40
ECE_BINS = 10
_EPS = 1e-4
# tokens seen fewer times than this in training get no weight of their own
MIN_TOKEN_COUNT = 3


@dataclass(frozen=True)
class Basis:
    """How one label's value was decided: numbers (probabilities, as logits) and tokens."""

    nums: tuple[float, ...]
    tokens: tuple[str, ...]


def logit(p: float | None) -> float:
    """Log-odds of a probability, clipped so a rule's 0 or 1 stays finite; 0 for None."""
    if p is None:
        return 0.0
    p = min(max(float(p), _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def same_value(label: str, gold: Any, shown: Any) -> bool:
    """Whether a shown value equals gold (sets as sets, booleans as truth values)."""
    lab = BY_NAME[label]
    if lab.is_set:
        return sorted(gold or []) == sorted(shown or [])
    if lab.kind == "boolean":
        return bool(gold) == bool(shown)
    return gold == shown


def correctness(
    golds: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], label: str
) -> np.ndarray:
    return np.array(
        [same_value(label, g.get(label), r.get(label)) for g, r in zip(golds, rows, strict=True)],
        dtype=float,
    )


# --------------------------------------------------------------------------- one label
@dataclass
class LabelCalibrator:
    """Logistic regression over a Basis: tokens one-hot, numbers as they are."""

    tokens: list[str]
    w_tokens: list[float]
    w_nums: list[float]
    bias: float
    n: int
    base_rate: float

    def __post_init__(self) -> None:
        self._w = dict(zip(self.tokens, self.w_tokens, strict=True))

    def prob(self, basis: Basis) -> float:
        z = self.bias
        w = self._w
        for t in basis.tokens:
            z += w.get(t, 0.0)
        for x, wx in zip(basis.nums, self.w_nums, strict=False):
            z += wx * x
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)

    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "w_tokens": self.w_tokens,
            "w_nums": self.w_nums,
            "bias": self.bias,
            "n": self.n,
            "base_rate": self.base_rate,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabelCalibrator:
        return cls(
            tokens=[str(t) for t in d["tokens"]],
            w_tokens=[float(x) for x in d["w_tokens"]],
            w_nums=[float(x) for x in d["w_nums"]],
            bias=float(d["bias"]),
            n=int(d["n"]),
            base_rate=float(d["base_rate"]),
        )


def fit_label(bases: Sequence[Basis], hits: np.ndarray, c: float = 1.0) -> LabelCalibrator:
    """Fit one label's calibrator; with one outcome only (all right or all wrong) it is the
    smoothed rate, the only honest estimate such data allows."""
    from sklearn.linear_model import LogisticRegression  # training only

    n = len(bases)
    rate = float(hits.mean()) if n else 0.5
    counts: dict[str, int] = {}
    for b in bases:
        for t in set(b.tokens):
            counts[t] = counts.get(t, 0) + 1
    tokens = sorted(t for t, k in counts.items() if k >= MIN_TOKEN_COUNT)
    n_nums = max((len(b.nums) for b in bases), default=0)
    if n == 0 or hits.min() == hits.max():
        p = (hits.sum() + 1) / (n + 2)
        return LabelCalibrator(tokens, [0.0] * len(tokens), [0.0] * n_nums, logit(p), n, rate)
    index = {t: i for i, t in enumerate(tokens)}
    X = np.zeros((n, len(tokens) + n_nums))
    for i, b in enumerate(bases):
        for t in b.tokens:
            if t in index:
                X[i, index[t]] = 1.0
        X[i, len(tokens) : len(tokens) + len(b.nums)] = b.nums
    lr = LogisticRegression(C=c, max_iter=1000).fit(X, hits.astype(int))
    w = lr.coef_[0].tolist()
    return LabelCalibrator(
        tokens,
        [round(x, 6) for x in w[: len(tokens)]],
        [round(x, 6) for x in w[len(tokens) :]],
        round(float(lr.intercept_[0]), 6),
        n,
        round(rate, 4),
    )


# --------------------------------------------------------------------------- all labels
@dataclass
class Calibration:
    """Every label's calibrator and review threshold (what a model carries)."""

    labels: dict[str, LabelCalibrator]
    review_thresholds: dict[str, float]

    def confidence(self, label: str, basis: Basis) -> float | None:
        cal = self.labels.get(label)
        return None if cal is None else cal.prob(basis)

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": {k: v.to_json() for k, v in sorted(self.labels.items())},
            "review_thresholds": dict(sorted(self.review_thresholds.items())),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Calibration | None:
        if not d:
            return None
        return cls(
            {k: LabelCalibrator.from_json(v) for k, v in d["labels"].items()},
            {k: float(v) for k, v in d.get("review_thresholds", {}).items()},
        )


def fit(
    bases: Sequence[dict[str, Basis]],
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    thresholds: dict[str, float] | None = None,
) -> Calibration:
    """Calibrators for every label from held-out rows, their bases and gold."""
    labels = {}
    for name in LABEL_NAMES:
        idx = [i for i, b in enumerate(bases) if name in b]
        hits = correctness([golds[i] for i in idx], [rows[i] for i in idx], name)
        labels[name] = fit_label([bases[i][name] for i in idx], hits)
    return Calibration(labels, dict(thresholds or {}))


def apply(cal: Calibration, bases: Sequence[dict[str, Basis]]) -> list[dict[str, float]]:
    """Calibrated confidence per label for each record's bases."""
    out = []
    for b in bases:
        out.append({k: p for k, v in b.items() if (p := cal.confidence(k, v)) is not None})
    return out


def cross_fitted(
    bases: Sequence[dict[str, Basis]],
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    fold_of: Sequence[int],
) -> list[dict[str, float]]:
    """Calibrated confidences where each record's calibrator never saw it (by fold): the
    rows thresholds are chosen on and dev-CV calibration is scored on."""
    out: list[dict[str, float]] = [{} for _ in bases]
    for k in sorted(set(fold_of)):
        train = [i for i, f in enumerate(fold_of) if f != k]
        test = [i for i, f in enumerate(fold_of) if f == k]
        cal = fit([bases[i] for i in train], [golds[i] for i in train], [rows[i] for i in train])
        for i, conf in zip(test, apply(cal, [bases[i] for i in test]), strict=True):
            out[i] = conf
    return out


# --------------------------------------------------------------------------- thresholds
def choose_threshold(conf: np.ndarray, hits: np.ndarray, target: float = TARGET_PRECISION) -> float:
    """The lowest review threshold whose unflagged labels (confidence >= it) are right at
    least `target` of the time: as few flags as that precision allows. 1.0 (flag all)
    when no threshold reaches it."""
    order = np.argsort(-conf, kind="stable")
    c, h = conf[order], hits[order]
    prec = np.cumsum(h) / np.arange(1, len(h) + 1)
    best = 1.0
    # keep the top-k; only cut between distinct confidences
    for k in range(len(c), 0, -1):
        if k < len(c) and c[k] == c[k - 1]:
            continue
        if prec[k - 1] >= target:
            best = float(c[k - 1])
            break
    return round(best, 4)


def choose_thresholds(
    confs: Sequence[dict[str, float]],
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    target: float = TARGET_PRECISION,
) -> dict[str, float]:
    out = {}
    for name in LABEL_NAMES:
        idx = [i for i, c in enumerate(confs) if name in c]
        if not idx:
            continue
        conf = np.array([confs[i][name] for i in idx])
        hits = correctness([golds[i] for i in idx], [rows[i] for i in idx], name)
        out[name] = choose_threshold(conf, hits, target)
    return out


# --------------------------------------------------------------------------- metrics
def bootstrap_interval(
    stat: Any, n: int, rng: np.random.Generator, n_boot: int, digits: int
) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``stat(indices)`` over ``n`` records resampled
    with replacement (the model card's metrics and calibration rows share it)."""
    boots = [stat(rng.integers(0, n, n)) for _ in range(n_boot)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return round(float(lo), digits), round(float(hi), digits)


def ece(conf: np.ndarray, hits: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the record-weighted mean |accuracy - confidence| over
    equal-width confidence bins (a confidence of 1.0 falls in the last bin)."""
    conf = np.asarray(conf, dtype=float)
    hits = np.asarray(hits, dtype=float)
    if not len(conf):
        return 0.0
    b = np.clip((conf * bins).astype(int), 0, bins - 1)
    total = 0.0
    for k in range(bins):
        m = b == k
        if m.any():
            total += abs(hits[m].mean() - conf[m].mean()) * m.mean()
    return float(total)


def reliability(conf: np.ndarray, hits: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Per bin: mean confidence, accuracy and count (the reliability plot's points)."""
    conf = np.asarray(conf, dtype=float)
    hits = np.asarray(hits, dtype=float)
    b = np.clip((conf * bins).astype(int), 0, bins - 1)
    out = []
    for k in range(bins):
        m = b == k
        if m.any():
            out.append(
                {
                    "bin": k,
                    "confidence": round(float(conf[m].mean()), 4),
                    "accuracy": round(float(hits[m].mean()), 4),
                    "n": int(m.sum()),
                }
            )
    return out


def _share(x: np.ndarray) -> float | None:
    return round(float(x.mean()), 4) if len(x) else None


def calibration_rows(
    confs: Sequence[dict[str, float]],
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    thresholds: dict[str, float],
    split: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per label: ECE (with a bootstrap 95% interval), accuracy, mean confidence,
    and how the review threshold splits right from wrong (flagged share, precision of the
    flagged and of the unflagged labels)."""
    rng = np.random.default_rng(seed)
    out = []
    for name in LABEL_NAMES:
        idx = [i for i, c in enumerate(confs) if name in c]
        conf = np.array([confs[i][name] for i in idx])
        hits = correctness([golds[i] for i in idx], [rows[i] for i in idx], name)
        thr = thresholds.get(name)
        flagged = conf < thr if thr is not None else np.zeros(len(conf), dtype=bool)
        row: dict[str, Any] = {
            "label": name,
            "split": split,
            "n": len(idx),
            "ece": round(ece(conf, hits), 4) if len(idx) else None,
            "ece_ci_low": None,
            "ece_ci_high": None,
            "accuracy": _share(hits),
            "mean_confidence": _share(conf),
            "threshold": thr,
            "flagged_share": _share(flagged),
            "precision_flagged": _share(hits[flagged]),
            "precision_unflagged": _share(hits[~flagged]),
            "bins": reliability(conf, hits),
        }
        if len(idx) >= 2:
            row["ece_ci_low"], row["ece_ci_high"] = bootstrap_interval(
                lambda s, conf=conf, hits=hits: ece(conf[s], hits[s]), len(idx), rng, n_boot, 4
            )
        out.append(row)
    return out


def review_block(
    confs: Sequence[dict[str, float]],
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    thresholds: dict[str, float],
    split: str,
) -> dict[str, Any]:
    """The review flag over all labels together (label slots) and over records."""
    flags: list[bool] = []
    hits: list[bool] = []
    rec_flag: list[bool] = []
    rec_right: list[bool] = []
    for c, g, r in zip(confs, golds, rows, strict=True):
        any_flag = False
        all_right = True
        for name in LABEL_NAMES:
            if name not in c:
                continue
            f = c[name] < thresholds.get(name, 0.0)
            h = same_value(name, g.get(name), r.get(name))
            flags.append(f)
            hits.append(h)
            any_flag |= f
            all_right &= h
        rec_flag.append(any_flag)
        rec_right.append(all_right)
    fl, hi = np.array(flags, dtype=bool), np.array(hits, dtype=float)
    rf, rr = np.array(rec_flag, dtype=bool), np.array(rec_right, dtype=float)
    return {
        "split": split,
        "thresholds": dict(sorted(thresholds.items())),
        "target_precision": TARGET_PRECISION,
        "max_flagged": MAX_FLAGGED,
        "n_labels": len(flags),
        "label_flagged_share": _share(fl),
        "label_precision_flagged": _share(hi[fl]),
        "label_precision_unflagged": _share(hi[~fl]),
        "n_records": len(rec_flag),
        "flagged_share": _share(rf),
        "accuracy_flagged": _share(rr[rf]),
        "accuracy_unflagged": _share(rr[~rf]),
    }
