"""The model card: one metadata dict per trained model, read by the dashboard's About page
and rendered by ``kea train`` beside the model it wrote (``<stem>.md``; ``docs/model-card.md``
for the shipped model, retrained with ``--out pipeline/classify/shipped/kea-classifier.json``).

``model_card()`` returns the metadata (the ``metadata`` block of its JSON) of the model `kea
classify` uses: the user's trained one when there is one (``train.preferred_model_path``),
else the shipped one.
Besides the training record (``model_version``, ``training_hash``, ``n_records``, ``cv``,
``libraries``, ...) it holds:

- ``metrics``: one row per registry label (``pipeline.labels.LABELS``), cross-validated::

      {"label": "design", "metric": "macro_f1", "value": 0.87, "ci_low": 0.83,
       "ci_high": 0.9, "n": 474, "split": "cv"}

  The label's kind decides the metric: single -> ``macro_f1`` (over the classes gold
  uses), set -> ``macro_f1`` (per-value F1, averaged over values gold or the model uses),
  integer -> ``exact`` (records whose abstract states it), boolean -> ``accuracy``.
  ``ci_low``/``ci_high``: 95% percentile bootstrap over records (None when n < 2).
- ``review``: the review flag on the out-of-fold predictions: ``threshold`` (probability
  below which a field is flagged), ``flagged_share`` (records flagged),
  ``accuracy_flagged`` / ``accuracy_unflagged`` (share of those records whose relevance,
  conditions, design and outcome all match gold; None when there are none).
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify import portable
from pipeline.errors import ModelError
from pipeline.labels import LABELS, Label
from pipeline.records import Article

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "model-card.md"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "model-card.md"
BOOTSTRAP = 1000
# the labels whose joint correctness the review block reports
REVIEWED = ("relevance", "conditions", "design", "outcome")
METRIC_OF_KIND = {
    "single": "macro_f1",
    "set": "macro_f1",
    "integer": "exact",
    "boolean": "accuracy",
}


def model_card(path: str | Path | None = None) -> dict[str, Any] | None:
    """The metadata of the model `kea classify` uses (the user's trained model when there
    is one, else the shipped one) or of the given file; None when it is unreadable."""
    from pipeline.classify.train import preferred_model_path

    try:
        return portable.read_metadata(path or preferred_model_path())
    except (ModelError, KeyError, TypeError, OSError):
        return None


# --------------------------------------------------------------------------- metrics
def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros(len(tp)), where=den > 0)


def _metric_fn(
    label: Label,
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    articles: Sequence[Article],
) -> tuple[Any, int]:
    """(metric of a record-index array, number of scored records) for one label."""
    name = label.name
    if label.kind == "single":
        vocab = list(label.vocabulary)
        g = np.array([vocab.index(x[name]) if x.get(name) in vocab else -1 for x in golds])
        p = np.array([vocab.index(x[name]) if x.get(name) in vocab else -1 for x in rows])
        hit_g = np.stack([g == k for k in range(len(vocab))])  # classes x records
        hit_p = np.stack([p == k for k in range(len(vocab))])

        def single(idx: np.ndarray) -> float:
            gi, pi = hit_g[:, idx], hit_p[:, idx]
            tp = (gi & pi).sum(1)
            f1 = _f1(tp, pi.sum(1) - tp, gi.sum(1) - tp)
            present = gi.sum(1) > 0
            return float(f1[present].mean()) if present.any() else 0.0

        return single, len(golds)
    if label.kind == "set":
        vocab = list(label.vocabulary)
        gs = np.array([[v in (x.get(name) or []) for x in golds] for v in vocab])
        ps = np.array([[v in (x.get(name) or []) for x in rows] for v in vocab])

        def multi(idx: np.ndarray) -> float:
            gi, pi = gs[:, idx], ps[:, idx]
            tp = (gi & pi).sum(1)
            f1 = _f1(tp, pi.sum(1) - tp, gi.sum(1) - tp)
            seen = (gi.sum(1) > 0) | (pi.sum(1) > 0)
            return float(f1[seen].mean()) if seen.any() else 0.0

        return multi, len(golds)
    if label.kind == "integer":
        ok = np.array(
            [
                g[name] == r.get(name)
                for g, r, a in zip(golds, rows, articles, strict=True)
                if g.get(name) is not None and a.abstract_sections
            ],
            dtype=float,
        )
        return (lambda idx: float(ok[idx].mean())), len(ok)
    ok = np.array(
        [bool(g.get(name)) == bool(r.get(name)) for g, r in zip(golds, rows, strict=True)],
        dtype=float,
    )
    return (lambda idx: float(ok[idx].mean())), len(ok)


def metrics_rows(
    golds: Sequence[dict[str, Any]],
    rows: Sequence[dict[str, Any]],
    articles: Sequence[Article],
    n_boot: int = BOOTSTRAP,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One cross-validated metric row per registry label, with a bootstrap 95% interval."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for label in LABELS:
        fn, n = _metric_fn(label, golds, rows, articles)
        row: dict[str, Any] = {
            "label": label.name,
            "metric": METRIC_OF_KIND[label.kind],
            "value": None,
            "ci_low": None,
            "ci_high": None,
            "n": n,
            "split": "cv",
        }
        if n:
            row["value"] = round(fn(np.arange(n)), 3)
        if n >= 2:
            boots = [fn(rng.integers(0, n, n)) for _ in range(n_boot)]
            lo, hi = np.percentile(boots, [2.5, 97.5])
            row["ci_low"], row["ci_high"] = round(float(lo), 3), round(float(hi), 3)
        out.append(row)
    return out


def _all_correct(g: dict[str, Any], r: dict[str, Any]) -> bool:
    return all(
        sorted(g.get(f) or []) == sorted(r.get(f) or [])
        if f == "conditions"
        else g.get(f) == r.get(f)
        for f in REVIEWED
    )


def review_summary(
    golds: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], threshold: float
) -> dict[str, Any]:
    """How the review flag separates wrong from right predictions (out-of-fold rows)."""
    flagged = np.array([bool(r["needs_review"]) for r in rows])
    right = np.array([_all_correct(g, r) for g, r in zip(golds, rows, strict=True)])

    def acc(mask: np.ndarray) -> float | None:
        return round(float(right[mask].mean()), 3) if mask.any() else None

    return {
        "threshold": threshold,
        "flagged_share": round(float(flagged.mean()), 3) if len(rows) else None,
        "accuracy_flagged": acc(flagged),
        "accuracy_unflagged": acc(~flagged),
    }


# --------------------------------------------------------------------------- the document
def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def render(meta: dict[str, Any], template: Path = TEMPLATE) -> str:
    """The model card as Markdown, from the template and the metadata dict."""
    table = ["| label | metric | value | 95% CI | n |", "|---|---|---|---|---|"]
    for r in meta.get("metrics", []):
        ci = "–" if r["ci_low"] is None else f"{r['ci_low']:.3f}–{r['ci_high']:.3f}"
        table.append(f"| {r['label']} | {r['metric']} | {_fmt(r['value'])} | {ci} | {r['n']} |")
    review = meta.get("review") or {}
    libs = meta.get("libraries") or {}
    cv = meta.get("cv") or {}
    return string.Template(template.read_text(encoding="utf-8")).substitute(
        model_version=meta.get("model_version", "(unnamed)"),
        model_name=meta.get("model_name", "?"),
        saved_at=meta.get("saved_at", "?"),
        n_records=meta.get("n_records", "?"),
        n_corrected=meta.get("n_corrected", 0),
        gold_files=", ".join(meta.get("gold_files") or []) or "?",
        training_hash=meta.get("training_hash", "?"),
        parameters_hash=meta.get("parameters_hash", "?"),
        folds=cv.get("folds", "?"),
        metrics_table="\n".join(table),
        review_threshold=_fmt(review.get("threshold")),
        flagged_share=_fmt(review.get("flagged_share")),
        accuracy_flagged=_fmt(review.get("accuracy_flagged")),
        accuracy_unflagged=_fmt(review.get("accuracy_unflagged")),
        libraries=", ".join(f"{k} {v}" for k, v in sorted(libs.items())) or "?",
    )


def write_card(meta: dict[str, Any], path: str | Path = DOC_PATH) -> Path:
    """Render the card to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    text = render(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write model card {path}: {err.strerror or err}") from err
    return path
