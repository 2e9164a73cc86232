"""The model card: one metadata dict per trained model, read by the dashboard's About page
and rendered by ``kea train`` beside the model it wrote (``<stem>.md``; ``docs/model-card.md``
for the shipped model, retrained with ``--out pipeline/classify/shipped/kea-classifier.json``).

``model_card()`` returns the metadata (the ``metadata`` block of its JSON) of the model `kea
classify` uses: the user's trained one when there is one (``train.preferred_model_path``),
else the shipped one.
Besides the training record (``model_version``, ``training_hash``, ``n_records``, ``cv``,
``libraries``, ...) it holds:

- ``metrics``: per registry label (``pipeline.labels.LABELS``) one row per split::

      {"label": "design", "metric": "macro_f1", "value": 0.85, "ci_low": 0.78,
       "ci_high": 0.9, "n": 156, "split": "sealed"}

  ``split``: ``sealed`` (a model fitted on the development part, scored once on the sealed
  part of split.py) or ``dev_cv`` (pooled out-of-fold rows of k-fold CV on the development
  part); models trained before the protocol have ``cv`` rows. The label's kind decides the
  metric: single -> ``macro_f1`` (over the classes gold uses), set -> ``macro_f1``
  (per-value F1, averaged over values gold or the model uses), integer -> ``exact``
  (records whose abstract states it), boolean -> ``accuracy``. ``ci_low``/``ci_high``: 95%
  percentile bootstrap over records (None when n < 2).
- ``calibration``: per label and split (``dev_cv``, ``sealed``) the calibrated confidence's
  ``ece`` (+ ``ece_ci_low``/``ece_ci_high``), ``accuracy``, ``mean_confidence``,
  ``threshold`` (the review threshold in force), ``flagged_share``, ``precision_flagged``,
  ``precision_unflagged``, ``n`` and the reliability ``bins`` ({bin, confidence, accuracy, n}).
- ``review_thresholds``: the saved model's threshold per label (flag when confidence < it).
- ``review``: the review flag on the sealed part over all labels (``label_flagged_share``,
  ``label_precision_flagged``/``_unflagged``) and records (``flagged_share``: a record is
  flagged when one of ``record_labels`` (labels.RECORD_REVIEW_LABELS) is;
  ``accuracy_flagged``/``_unflagged``: all of those right; ``any_label_flagged_share``: records
  with any label flagged),
  ``thresholds`` (those the sealed evaluation used), ``threshold`` None (there is no single
  one any more), and ``by_split`` with the same block for ``dev_cv`` and ``sealed``.
- ``protocol``: ``n_dev``, ``n_sealed``, ``sealed_percent``, ``salt``, ``fits``.
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify import portable
from pipeline.classify.calibrate import bootstrap_interval
from pipeline.errors import ModelError
from pipeline.labels import LABELS, RECORD_REVIEW_LABELS, Label
from pipeline.records import Article

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs" / "model-card.md"
TEMPLATE = Path(__file__).resolve().parent / "templates" / "model-card.md"
BOOTSTRAP = 1000
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
    split: str = "dev_cv",
) -> list[dict[str, Any]]:
    """One metric row per registry label on these rows (``split`` says which: ``dev_cv``
    out-of-fold on the development part, ``sealed`` the sealed part), with a bootstrap 95%
    interval."""
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
            "split": split,
        }
        if n:
            row["value"] = round(fn(np.arange(n)), 3)
        if n >= 2:
            row["ci_low"], row["ci_high"] = bootstrap_interval(fn, n, rng, n_boot, 3)
        out.append(row)
    return out


# --------------------------------------------------------------------------- the document
RELIABILITY_SUFFIX = "-reliability.png"
# issue 10's goals for the sealed part
ECE_GOAL = 0.05
# a record flag on more records than this is reported as a failure mode
MAX_RECORD_FLAGGED = 0.5


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _ci(lo: Any, hi: Any) -> str:
    return "–" if lo is None or hi is None else f"{lo:.3f}–{hi:.3f}"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _by(rows: Sequence[dict[str, Any]], split: str) -> dict[str, dict[str, Any]]:
    return {r["label"]: r for r in rows if r.get("split") == split}


def _metrics_table(meta: dict[str, Any]) -> str:
    rows = meta.get("metrics") or []
    sealed, dev = _by(rows, "sealed"), _by(rows, "dev_cv")
    old = _by(rows, "cv")  # models trained before the sealed protocol
    table = [
        "| label | metric | sealed part | 95% CI | n | development CV | 95% CI | n |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for lab in LABELS:
        s, d = sealed.get(lab.name, {}), dev.get(lab.name) or old.get(lab.name, {})
        metric = s.get("metric") or d.get("metric") or METRIC_OF_KIND[lab.kind]
        table.append(
            f"| {lab.name} | {metric} | {_fmt(s.get('value'))} | "
            f"{_ci(s.get('ci_low'), s.get('ci_high'))} | {_fmt(s.get('n'))} | "
            f"{_fmt(d.get('value'))} | {_ci(d.get('ci_low'), d.get('ci_high'))} | "
            f"{_fmt(d.get('n'))} |"
        )
    return "\n".join(table)


def _calibration_table(meta: dict[str, Any]) -> str:
    rows = meta.get("calibration") or []
    sealed, dev = _by(rows, "sealed"), _by(rows, "dev_cv")
    if not sealed and not dev:
        return "(no calibration recorded for this model)"
    table = [
        "| label | ECE sealed | 95% CI | ECE dev CV | accuracy sealed | mean confidence "
        "sealed | review threshold | flagged (sealed) | unflagged right | flagged right |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lab in LABELS:
        s, d = sealed.get(lab.name, {}), dev.get(lab.name, {})
        table.append(
            f"| {lab.name} | {_fmt(s.get('ece'))} | {_ci(s.get('ece_ci_low'), s.get('ece_ci_high'))}"
            f" | {_fmt(d.get('ece'))} | {_fmt(s.get('accuracy'))} | "
            f"{_fmt(s.get('mean_confidence'))} | {_fmt(s.get('threshold'))} | "
            f"{_pct(s.get('flagged_share'))} | {_fmt(s.get('precision_unflagged'))} | "
            f"{_fmt(s.get('precision_flagged'))} |"
        )
    return "\n".join(table)


def _goal_lines(meta: dict[str, Any]) -> str:
    """Where the sealed part misses issue 10's calibration and review goals (generated)."""
    sealed = _by(meta.get("calibration") or [], "sealed")
    review = (meta.get("review") or {}).get("by_split", {}).get("sealed") or {}
    lines = []
    for lab in LABELS:
        r = sealed.get(lab.name)
        if not r:
            continue
        if r.get("ece") is not None and r["ece"] > ECE_GOAL:
            lines.append(
                f"- **{lab.name}**: ECE {r['ece']:.4f} on the sealed part (goal ≤ {ECE_GOAL}; "
                f"accuracy {_fmt(r.get('accuracy'))} vs mean confidence "
                f"{_fmt(r.get('mean_confidence'))})."
            )
        pu = r.get("precision_unflagged")
        if pu is not None and pu < 0.95:
            lines.append(
                f"- **{lab.name}**: unflagged labels right {pu:.3f} of the time on the sealed "
                "part (goal ≥ 0.95)."
            )
        if (r.get("flagged_share") or 0) > 0.4:
            lines.append(
                f"- **{lab.name}**: {_pct(r['flagged_share'])} flagged on the sealed part "
                "(its threshold asks 95 % right of what is not flagged; the label is weak)."
            )
    if (review.get("flagged_share") or 0) > MAX_RECORD_FLAGGED:
        lines.append(
            f"- **records**: {_pct(review['flagged_share'])} of sealed records are flagged "
            f"(one of {', '.join(review.get('record_labels') or [])} is): mostly the outcome "
            "flag; read the per-label flags to see which."
        )
    return "\n".join(lines) if lines else "- (none: every sealed-part goal is met)"


def render(meta: dict[str, Any], template: Path = TEMPLATE, png: str | None = None) -> str:
    """The model card as Markdown, from the template and the metadata dict (``png``: the
    reliability plot's file name beside the card)."""
    review = meta.get("review") or {}
    by_split = review.get("by_split") or {}
    sealed_review = by_split.get("sealed") or {}
    dev_review = by_split.get("dev_cv") or {}
    libs = meta.get("libraries") or {}
    cv = meta.get("cv") or {}
    proto = meta.get("protocol") or {}
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
        n_dev=proto.get("n_dev", "?"),
        n_sealed=proto.get("n_sealed", "?"),
        sealed_percent=proto.get("sealed_percent", "?"),
        metrics_table=_metrics_table(meta),
        calibration_table=_calibration_table(meta),
        reliability_png=png or DOC_PATH.stem + RELIABILITY_SUFFIX,
        label_flagged_share=_pct(sealed_review.get("label_flagged_share")),
        label_precision_unflagged=_fmt(sealed_review.get("label_precision_unflagged")),
        label_precision_flagged=_fmt(sealed_review.get("label_precision_flagged")),
        dev_label_flagged_share=_pct(dev_review.get("label_flagged_share")),
        dev_label_precision_unflagged=_fmt(dev_review.get("label_precision_unflagged")),
        record_flagged_share=_pct(sealed_review.get("flagged_share")),
        any_label_flagged_share=_pct(sealed_review.get("any_label_flagged_share")),
        dev_record_flagged_share=_pct(dev_review.get("flagged_share")),
        record_labels=", ".join(
            sealed_review.get("record_labels")
            or dev_review.get("record_labels")
            or RECORD_REVIEW_LABELS
        ),
        accuracy_flagged=_fmt(sealed_review.get("accuracy_flagged")),
        accuracy_unflagged=_fmt(sealed_review.get("accuracy_unflagged")),
        goal_lines=_goal_lines(meta),
        libraries=", ".join(f"{k} {v}" for k, v in sorted(libs.items())) or "?",
    )


def reliability_png(meta: dict[str, Any], path: str | Path, split: str = "sealed") -> Path | None:
    """The reliability plot (accuracy against confidence per bin, each label) as a PNG;
    None when the metadata has no calibration rows of that split."""
    rows = [r for r in meta.get("calibration") or [] if r.get("split") == split]
    if not rows:
        return None
    import matplotlib  # lazy: only `kea train` draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(15, 6.4), sharex=True, sharey=True)
    for ax, r in zip(axes.flat, rows, strict=False):
        ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
        bins = r.get("bins") or []
        xs = [b["confidence"] for b in bins]
        ys = [b["accuracy"] for b in bins]
        sizes = [12 + 3 * b["n"] for b in bins]
        ax.plot(xs, ys, color="#1f77b4", lw=1)
        ax.scatter(xs, ys, s=sizes, color="#1f77b4", alpha=0.7, zorder=3)
        ax.set_title(f"{r['label']}  ECE {_fmt(r.get('ece'))}  n={r['n']}", fontsize=10)
        thr = r.get("threshold")
        if thr is not None:
            ax.axvline(thr, color="#d62728", lw=1, ls=":")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
    for ax in axes[-1]:
        ax.set_xlabel("calibrated confidence")
    for ax in axes[:, 0]:
        ax.set_ylabel("share right")
    fig.suptitle(
        f"Reliability on the {split.replace('_', ' ')} part (dot area: records in the bin; "
        "red: review threshold)",
        fontsize=11,
    )
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=80, metadata={"Software": None})
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write reliability plot {path}: {err.strerror or err}") from err
    finally:
        plt.close(fig)
    return path


def write_card(meta: dict[str, Any], path: str | Path = DOC_PATH) -> Path:
    """Render the card to a temporary file beside ``path``, then rename it into place; the
    reliability plot goes beside it (``<stem>-reliability.png``)."""
    path = Path(path)
    png = path.stem + RELIABILITY_SUFFIX
    text = render(meta, png=png)
    path.parent.mkdir(parents=True, exist_ok=True)
    reliability_png(meta, path.with_name(png))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"cannot write model card {path}: {err.strerror or err}") from err
    return path
