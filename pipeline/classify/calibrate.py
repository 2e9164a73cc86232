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

from pipeline.labels import BY_NAME, LABEL_NAMES, RECORD_REVIEW_LABELS

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
    """Logistic regression over a Basis (tokens one-hot, numbers as they are), then a
    small-sample guard: the probability is pulled towards the label's base accuracy by
    ``shrink / (shrink + m)``, ``m`` the training count of the rarest token the basis holds
    (0 for a token seen fewer than MIN_TOKEN_COUNT times), so a rare way of deciding is
    trusted no more than the few records it was seen on allow."""

    tokens: list[str]
    w_tokens: list[float]
    w_nums: list[float]
    bias: float
    n: int
    base_rate: float
    counts: list[int] | None = None
    shrink: float = 0.0
    c: float | None = None

    def __post_init__(self) -> None:
        self._w = dict(zip(self.tokens, self.w_tokens, strict=True))
        self._n = dict(zip(self.tokens, self.counts or [], strict=True)) if self.counts else {}

    def prob(self, basis: Basis) -> float:
        z = self.bias
        w = self._w
        for t in basis.tokens:
            z += w.get(t, 0.0)
        for x, wx in zip(basis.nums, self.w_nums, strict=False):
            z += wx * x
        if z >= 0:
            p = 1.0 / (1.0 + math.exp(-z))
        else:
            e = math.exp(z)
            p = e / (1.0 + e)
        if self.shrink > 0 and basis.tokens:
            m = min(self._n.get(t, 0) for t in basis.tokens)
            lam = self.shrink / (self.shrink + m)
            p = lam * self.base_rate + (1 - lam) * p
        return p

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tokens": self.tokens,
            "w_tokens": self.w_tokens,
            "w_nums": self.w_nums,
            "bias": self.bias,
            "n": self.n,
            "base_rate": self.base_rate,
        }
        if self.counts is not None:
            out["counts"] = self.counts
        if self.shrink:
            out["shrink"] = self.shrink
        if self.c is not None:
            out["c"] = self.c
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabelCalibrator:
        """Also reads calibrators saved before the guard existed (no counts: no guard)."""
        counts = d.get("counts")
        return cls(
            tokens=[str(t) for t in d["tokens"]],
            w_tokens=[float(x) for x in d["w_tokens"]],
            w_nums=[float(x) for x in d["w_nums"]],
            bias=float(d["bias"]),
            n=int(d["n"]),
            base_rate=float(d["base_rate"]),
            counts=None if counts is None else [int(x) for x in counts],
            shrink=float(d.get("shrink", 0.0)),
            c=None if d.get("c") is None else float(d["c"]),
        )


@dataclass(frozen=True)
class Recipe:
    """How one label's calibrator is fitted: the grids its regularisation C and its guard's
    strength are chosen from (jointly, by inner cross-validated log-loss on the fitting
    rows), and how often a token must be seen to get a weight."""

    c_grid: tuple[float, ...] = (0.3, 1.0)
    shrink_grid: tuple[float, ...] = (0.0, 3.0, 10.0)
    min_count: int = MIN_TOKEN_COUNT


def _design(
    bases: Sequence[Basis], tokens: list[str], n_nums: int
) -> tuple[np.ndarray, np.ndarray]:
    """The one-hot/number matrix, and per row whether it holds a token without a weight."""
    index = {t: i for i, t in enumerate(tokens)}
    X = np.zeros((len(bases), len(tokens) + n_nums))
    unknown = np.zeros(len(bases), dtype=bool)
    for i, b in enumerate(bases):
        for t in b.tokens:
            j = index.get(t)
            if j is None:
                unknown[i] = True
            else:
                X[i, j] = 1.0
        X[i, len(tokens) : len(tokens) + len(b.nums)] = b.nums
    return X, unknown


def _rarest(T: np.ndarray, counts: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Per row, the count of its rarest token (0 with a token without a weight; inf with no
    tokens at all: nothing to guard)."""
    m = (
        np.where(T > 0, counts[None, :], np.inf).min(axis=1)
        if T.shape[1]
        else np.full(len(T), np.inf)
    )
    return np.where(unknown, 0.0, m)


def _guarded(p: np.ndarray, m: np.ndarray, rate: float, k: float) -> np.ndarray:
    if k <= 0:
        return p
    lam = np.where(np.isinf(m), 0.0, k / (k + np.where(np.isinf(m), 1.0, m)))
    return lam * rate + (1 - lam) * p


def logreg(X: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression, scikit-learn's objective (``C`` times the summed
    log-loss plus half the squared weights; the intercept not penalised) solved by Newton's
    method with step halving: a calibrator has a few dozen columns, so this is exact and
    ~20x quicker than a general solver (inner cross-validation fits hundreds)."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    pen = np.ones(d + 1)
    pen[-1] = 0.0
    theta = np.zeros(d + 1)

    def objective(t: np.ndarray) -> float:
        z = A @ t
        return float(c * np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(pen * t * t))

    f = objective(theta)
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (A @ theta)))  # the logistic function, overflow-free
        grad = c * (A.T @ (p - y)) + pen * theta
        hess = c * (A.T * (p * (1 - p))) @ A + np.diag(pen + 1e-10)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            new = theta - t * step
            f_new = objective(new)
            if f_new <= f:
                break
            t *= 0.5
        else:
            break
        theta, f_old, f = new, f, f_new
        if f_old - f < 1e-12 * max(1.0, abs(f)):
            break
    return theta[:-1], float(theta[-1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _choose(
    X: np.ndarray, y: np.ndarray, unknown: np.ndarray, n_tok: int, recipe: Recipe, folds: int = 5
) -> tuple[float, float]:
    """(C, guard strength) of the recipe's grids with the lowest inner cross-validated
    log-loss; ties go to the stronger regularisation and the stronger guard (the
    conservative choice); the grids' first C and last guard when the rows cannot be split."""
    from sklearn.model_selection import StratifiedKFold  # training only

    cs, ks = list(recipe.c_grid), sorted(recipe.shrink_grid)
    if (len(cs), len(ks)) == (1, 1) or min(int(y.sum()), int(len(y) - y.sum())) < folds:
        return float(cs[0]), float(ks[-1])
    loss = np.zeros((len(cs), len(ks)))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for tr, te in skf.split(X, y):
        T = X[tr, :n_tok]
        counts = T.sum(axis=0)
        # a token too rare in the inner training rows gets no weight there either
        thin = counts < recipe.min_count
        counts_w = np.where(thin, 0.0, counts)
        unk = unknown[te] | (X[te, :n_tok][:, thin] > 0).any(axis=1)
        m = _rarest(X[te, :n_tok], counts_w, unk)
        rate = float(y[tr].mean())
        for i, c in enumerate(cs):
            w, b = logreg(X[tr], y[tr], c)
            p0 = _sigmoid(X[te] @ w + b)
            for j, k in enumerate(ks):
                p = np.clip(_guarded(p0, m, rate, k), _EPS, 1 - _EPS)
                loss[i, j] -= np.sum(y[te] * np.log(p) + (1 - y[te]) * np.log(1 - p))
    best = loss.min() + 1e-9
    i, j = min(
        ((i, j) for i in range(len(cs)) for j in range(len(ks)) if loss[i, j] <= best),
        key=lambda ij: (cs[ij[0]], -ks[ij[1]]),
    )
    return float(cs[i]), float(ks[j])


def fit_label(
    bases: Sequence[Basis], hits: np.ndarray, c: float | None = None, recipe: Recipe | None = None
) -> LabelCalibrator:
    """Fit one label's calibrator (``c``: that C and no guard, instead of choosing them);
    with one outcome only (all right or all wrong) it is the smoothed rate, the only honest
    estimate such data allows."""
    if c is not None:
        recipe = Recipe(c_grid=(c,), shrink_grid=(0.0,))
    recipe = recipe or Recipe()
    n = len(bases)
    rate = round(float(hits.mean()), 4) if n else 0.5
    counts: dict[str, int] = {}
    for b in bases:
        for t in set(b.tokens):
            counts[t] = counts.get(t, 0) + 1
    tokens = sorted(t for t, k in counts.items() if k >= recipe.min_count)
    n_tok = [counts[t] for t in tokens]
    n_nums = max((len(b.nums) for b in bases), default=0)
    if n == 0 or hits.min() == hits.max():
        p = (hits.sum() + 1) / (n + 2)
        zeros = [0.0] * len(tokens)
        return LabelCalibrator(tokens, zeros, [0.0] * n_nums, logit(p), n, rate, n_tok)
    X, unknown = _design(bases, tokens, n_nums)
    y = hits.astype(float)
    c_best, k_best = _choose(X, y, unknown, len(tokens), recipe)
    coef, bias = logreg(X, y.astype(float), c_best)
    w = coef.tolist()
    return LabelCalibrator(
        tokens,
        [round(x, 6) for x in w[: len(tokens)]],
        [round(x, 6) for x in w[len(tokens) :]],
        round(bias, 6),
        n,
        rate,
        n_tok,
        k_best,
        c_best,
    )


# how each label's calibrator is fitted (a label not named here: Recipe()). Routes keeps
# one C and no guard: on development CV the chosen (C, guard) pair was 0.002 worse for it
# (0.018 -> 0.020), within noise but not an improvement.
RECIPES: dict[str, Recipe] = {"routes": Recipe(c_grid=(1.0,), shrink_grid=(0.0,))}


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
    recipes: dict[str, Recipe] | None = None,
) -> Calibration:
    """Calibrators for every label from held-out rows, their bases and gold."""
    recipes = RECIPES if recipes is None else recipes
    labels = {}
    for name in LABEL_NAMES:
        idx = [i for i, b in enumerate(bases) if name in b]
        hits = correctness([golds[i] for i in idx], [rows[i] for i in idx], name)
        labels[name] = fit_label([bases[i][name] for i in idx], hits, recipe=recipes.get(name))
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
    recipes: dict[str, Recipe] | None = None,
) -> list[dict[str, float]]:
    """Calibrated confidences where each record's calibrator never saw it (by fold): the
    rows thresholds are chosen on and dev-CV calibration is scored on."""
    out: list[dict[str, float]] = [{} for _ in bases]
    for k in sorted(set(fold_of)):
        train = [i for i, f in enumerate(fold_of) if f != k]
        test = [i for i, f in enumerate(fold_of) if f == k]
        cal = fit(
            [bases[i] for i in train],
            [golds[i] for i in train],
            [rows[i] for i in train],
            recipes=recipes,
        )
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
    """The review flag over all labels together (label slots) and over records: a record is
    flagged when one of its record-level labels (labels.RECORD_REVIEW_LABELS) is, and is
    right when all of those are; ``any_label_flagged_share`` is the share of records with
    any label flagged (what the record flag was before)."""
    flags: list[bool] = []
    hits: list[bool] = []
    rec_flag: list[bool] = []
    rec_any: list[bool] = []
    rec_right: list[bool] = []
    for c, g, r in zip(confs, golds, rows, strict=True):
        any_flag = rec = False
        all_right = True
        for name in LABEL_NAMES:
            if name not in c:
                continue
            f = c[name] < thresholds.get(name, 0.0)
            h = same_value(name, g.get(name), r.get(name))
            flags.append(f)
            hits.append(h)
            any_flag |= f
            if name in RECORD_REVIEW_LABELS:
                rec |= f
                all_right &= h
        rec_flag.append(rec)
        rec_any.append(any_flag)
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
        "record_labels": list(RECORD_REVIEW_LABELS),
        "flagged_share": _share(rf),
        "any_label_flagged_share": _share(np.array(rec_any, dtype=float)),
        "accuracy_flagged": _share(rr[rf]),
        "accuracy_unflagged": _share(rr[~rf]),
    }
