"""Cross-validated metrics per label, with both baselines beside the model.

Never scores a record with a model that saw it: every number here is out-of-fold
(k-fold, stratified on design and the rare outcome classes), or, in held-out
mode, a trained file scored on files it was not trained on.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from pipeline.classify import calibrate
from pipeline.classify.predict import calibration_of, predict_articles, predict_with_basis
from pipeline.classify.registry import KeaModel, get_model
from pipeline.classify.split import is_sealed
from pipeline.classify.text import article_from_record
from pipeline.errors import KeaError
from pipeline.labels import LABELS, Label, record_needs_review
from pipeline.records import Article

BASELINES = ("metadata", "tfidf-lr")
# the labels of the headline table (format_report); the others are reported as facts
NONE = "(none)"  # how a missing single value is scored
HEADLINE_LABELS = ("relevance", "conditions", "design", "outcome", "sample_size")


# the labels every gold record must state (training and the fold split read them)
GOLD_REQUIRED = ("relevance", "conditions", "design", "outcome")
_TEXT_FIELDS = ("title", "abstract", "journal")
_LIST_FIELDS = ("publication_types", "mesh_terms", "keywords")


def check_gold_record(rec: Any) -> None:
    """One gold record against the registry (``Label.check``); ValueError names the field."""
    if not isinstance(rec, dict):
        raise ValueError(f"a record is a JSON object, not {type(rec).__name__}")
    pmid = rec.get("pmid")
    if isinstance(pmid, bool) or not isinstance(pmid, str | int) or not str(pmid).isdecimal():
        raise ValueError(f"'pmid' must be a PubMed id (digits), not {pmid!r}")
    for key in _TEXT_FIELDS:
        if rec.get(key) is not None and not isinstance(rec[key], str):
            raise ValueError(f"PMID {pmid}: {key!r} must be text, not {rec[key]!r:.40}")
    for key in _LIST_FIELDS:
        value = rec.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ValueError(f"PMID {pmid}: {key!r} must be a list of text, not {value!r:.40}")
    year = rec.get("year")
    if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
        raise ValueError(f"PMID {pmid}: 'year' must be a whole number, not {year!r:.40}")
    labels = rec.get("labels")
    if not isinstance(labels, dict):
        what = "missing" if labels is None else f"{type(labels).__name__}, not an object"
        raise ValueError(f"PMID {pmid}: 'labels' is {what}")
    unknown = sorted(set(labels) - {lab.name for lab in LABELS})
    if unknown:
        raise ValueError(f"PMID {pmid}: unknown label(s) {', '.join(map(repr, unknown))}")
    for lab in LABELS:
        if lab.name in GOLD_REQUIRED and labels.get(lab.name) is None:
            raise ValueError(f"PMID {pmid}: label {lab.name!r} is missing")
        if lab.name in labels:
            try:
                lab.check(labels[lab.name])
            except ValueError as err:
                raise ValueError(f"PMID {pmid}: {err}") from None


def load_gold(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Gold JSONL records from one or more files, each checked against the label registry:
    any unreadable or malformed record is one KeaError naming file and line."""
    recs: list[dict[str, Any]] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise KeaError(f"gold file {path} does not exist")
        if not path.is_file():
            raise KeaError(f"gold file {path} is not a file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise KeaError(
                f"gold file {path} is not UTF-8 text ({err.reason} at byte {err.start})"
            ) from None
        except OSError as err:
            raise KeaError(f"cannot read gold file {path}: {err.strerror}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise KeaError(f"{path}:{n}: not a JSON line ({err.msg})") from None
            except RecursionError:
                raise KeaError(f"{path}:{n}: JSON nested too deeply") from None
            try:
                check_gold_record(rec)
            except ValueError as err:
                raise KeaError(f"{path}:{n}: {err}") from None
            recs.append(rec)
    if not recs:
        raise KeaError("no gold records in " + ", ".join(map(str, paths)))
    return recs


def check_folds(folds: int, n_records: int | None = None) -> None:
    """Cross-validation needs 2 or more folds, and no more folds than records."""
    if folds < 2:
        raise KeaError(f"--folds must be at least 2, not {folds}")
    if n_records is not None and folds > n_records:
        raise KeaError(f"--folds {folds} is more than the {n_records} gold records")


def gold_hash(recs: Sequence[dict[str, Any]]) -> str:
    """Stable hash of the training data (pmid, text and labels), recorded in model metadata."""
    h = hashlib.sha256()
    for r in sorted(recs, key=lambda r: str(r["pmid"])):
        h.update(
            json.dumps(
                [r["pmid"], r.get("title"), r.get("abstract"), r["labels"]],
                sort_keys=True,
                ensure_ascii=False,
            ).encode("utf-8")
        )
    return h.hexdigest()[:16]


def examples_hash(articles: Sequence[Article], labels: Sequence[dict[str, Any]]) -> str:
    """Stable hash of training examples (text the model reads + labels), order-independent."""
    h = hashlib.sha256()
    items = sorted(zip(articles, labels, strict=True), key=lambda p: str(p[0].pmid))
    for a, lab in items:
        h.update(
            json.dumps(
                [a.pmid, a.title, a.abstract, a.publication_types, a.mesh_terms, a.keywords, lab],
                sort_keys=True,
                ensure_ascii=False,
                default=str,
            ).encode("utf-8")
        )
    return h.hexdigest()[:16]


def strat_key(labels: dict[str, Any]) -> str:
    """Stratify folds on design, keeping the rare outcome classes spread across folds."""
    if labels["outcome"] in ("no_benefit", "mixed"):
        return labels["outcome"]
    return labels["design"]


def oof_predictions(
    articles: list[Article], labels: list[dict[str, Any]], name: str, folds: int = 5, seed: int = 0
) -> tuple[list[dict[str, Any]], list[int]]:
    """Out-of-fold label rows for every record, and each record's fold number."""
    rows, _, fold_of = oof_with_basis(articles, labels, name, folds=folds, seed=seed)
    return rows, fold_of


def fit_model(articles: list[Article], labels: list[dict[str, Any]], name: str, what: str) -> Any:
    """A fitted model, or one KeaError saying the records were too few for it."""
    try:
        return get_model(name).fit(articles, labels)
    except ValueError as err:
        raise KeaError(
            f"cannot train {what} on {len(articles)} gold records "
            f"({str(err).rstrip('.')}): give more gold records"
        ) from None


def oof_with_basis(
    articles: list[Article], labels: list[dict[str, Any]], name: str, folds: int = 5, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, calibrate.Basis]], list[int]]:
    """Out-of-fold label rows, their decision bases (calibration's input) and fold numbers."""
    check_folds(folds, len(articles))
    keys = [strat_key(lab) for lab in labels]
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rows: list[dict[str, Any] | None] = [None] * len(articles)
    bases: list[dict[str, calibrate.Basis]] = [{} for _ in articles]
    fold_of = [0] * len(articles)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            splits = list(skf.split(np.zeros(len(keys)), keys))
        except ValueError as err:
            raise KeaError(
                f"cannot split {len(keys)} gold records into {folds} folds "
                f"({str(err).rstrip('.')}): give more gold records"
            ) from None
        for k, (tr, te) in enumerate(splits):
            model = fit_model(
                [articles[i] for i in tr],
                [labels[i] for i in tr],
                name,
                f"fold {k + 1} of {folds}",
            )
            preds, bs = predict_with_basis([articles[i] for i in te], model, model_version=name)
            for i, row, b in zip(te, preds, bs, strict=True):
                rows[i] = row
                bases[i] = b
                fold_of[i] = k
    return [r for r in rows if r is not None], bases, fold_of


# --------------------------------------------------------------------------- the protocol
def confidences(rows: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Each row's per-label confidence (the label names only, not members)."""
    from pipeline.labels import LABEL_NAMES

    return [
        {k: float(v) for k, v in (r.get("confidence") or {}).items() if k in LABEL_NAMES}
        for r in rows
    ]


def recalibrated(
    rows: Sequence[dict[str, Any]], confs: Sequence[dict[str, float]], thresholds: dict[str, float]
) -> list[dict[str, Any]]:
    """Copies of rows carrying these calibrated confidences and the review flags they give
    (a retraction keeps relevance flagged, as predict.py does)."""
    out = []
    for r, c in zip(rows, confs, strict=True):
        conf = {**r["confidence"], **{k: round(v, 3) for k, v in c.items()}}
        review = [k for k, v in c.items() if v < thresholds.get(k, 0.0)]
        if "retraction" in (r.get("evidence") or {}) and "relevance" not in review:
            review.append("relevance")
        out.append(
            {
                **r,
                "confidence": conf,
                "needs_review": record_needs_review(review),
                "review_fields": sorted(review),
            }
        )
    return out


def run_protocol(
    articles: list[Article],
    labels: list[dict[str, Any]],
    sealed: Sequence[bool],
    name: str,
    folds: int = 5,
    seed: int = 0,
    calibrated: bool = True,
) -> dict[str, Any]:
    """The honest protocol, for one recipe, on one split of the gold records:

    - k-fold cross-validation on the development part (out-of-fold rows: the dev-CV
      figures, and the data the calibrators and review thresholds are fitted on);
    - one model fitted on the whole development part, calibrated on those out-of-fold
      rows, scored once on the sealed part (records no rule, feature or threshold saw).

    Returns the rows, bases and calibration of both parts (indices into the inputs)."""
    dev = [i for i, s in enumerate(sealed) if not s]
    held = [i for i, s in enumerate(sealed) if s]
    check_dev_folds(folds, len(dev), len(held))
    a_dev, l_dev = _subset(dev, articles, labels)
    rows, bases, fold_of = oof_with_basis(a_dev, l_dev, name, folds=folds, seed=seed)
    out: dict[str, Any] = {
        "dev": dev,
        "sealed": held,
        "dev_rows": rows,
        "dev_bases": bases,
        "dev_fold": fold_of,
        "calibration": None,
        "sealed_rows": [],
        "sealed_bases": [],
    }
    if calibrated:
        # confidences on dev rows come from calibrators that did not see the row's fold
        confs = calibrate.cross_fitted(bases, l_dev, rows, fold_of)
        thresholds = calibrate.choose_thresholds(confs, l_dev, rows)
        cal = calibrate.fit(bases, l_dev, rows, thresholds)
        out["dev_rows"] = recalibrated(rows, confs, thresholds)
        out["calibration"] = cal
    if held:
        model = fit_model(a_dev, l_dev, name, "the development part")
        if calibrated:
            model.portable_.set_calibration(out["calibration"])
        a_held = [articles[i] for i in held]
        out["sealed_rows"], out["sealed_bases"] = predict_with_basis(
            a_held, model, model_version=name
        )
    return out


def check_dev_folds(folds: int, n_dev: int, n_sealed: int) -> None:
    """Cross-validation runs on the development part: it needs at least `folds` records."""
    check_folds(folds)
    if folds > n_dev:
        raise KeaError(
            f"{folds}-fold cross-validation needs at least {folds} records in the development "
            f"part; it has {n_dev} ({n_sealed} more are in the sealed part, see "
            "pipeline/classify/split.py): give more gold records"
        )


def sealed_flags_of(recs: Sequence[dict[str, Any]]) -> list[bool]:
    return [is_sealed(r) for r in recs]


# --------------------------------------------------------------------------- metrics
def _single(gold: list[str], pred: list[str], classes: Sequence[str]) -> dict[str, Any]:
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(classes), zero_division=0)
    present = [i for i, c in enumerate(classes) if s[i] > 0]
    return {
        "per_class": {
            c: {
                "precision": round(float(p[i]), 3),
                "recall": round(float(r[i]), 3),
                "f1": round(float(f[i]), 3),
                "support": int(s[i]),
            }
            for i, c in enumerate(classes)
        },
        "macro_f1": round(float(np.mean([f[i] for i in present])) if present else 0.0, 3),
        "accuracy": round(float(np.mean([g == q for g, q in zip(gold, pred, strict=True)])), 3),
        "confusion": {
            "labels": list(classes),
            "matrix": confusion_matrix(gold, pred, labels=list(classes)).tolist(),
        },
    }


def _present(label: Label, gold: dict[str, Any], article: Article) -> bool:
    """Whether a record's gold value of an integer label is scored: stated, and readable
    (sample sizes are only in abstracts)."""
    return gold.get(label.name) is not None and bool(article.abstract_sections)


def _set_block(
    label: Label, golds: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    block: dict[str, Any] = {"per_class": {}}
    for v in label.vocabulary:
        g = [v in (x.get(label.name) or []) for x in golds]
        p = [v in (x.get(label.name) or []) for x in rows]
        pr, rc, f, _ = precision_recall_fscore_support(g, p, average="binary", zero_division=0)
        block["per_class"][v] = {
            "precision": round(float(pr), 3),
            "recall": round(float(rc), 3),
            "f1": round(float(f), 3),
            "support": int(sum(g)),
            "predicted": int(sum(p)),
        }
    # a value absent from gold and never predicted says nothing: leave it out of the mean
    seen = [v for v, c in block["per_class"].items() if c["support"] or c["predicted"]]
    block["macro_f1"] = round(
        float(np.mean([block["per_class"][v]["f1"] for v in seen])) if seen else 0.0, 3
    )
    return block


def score(
    golds: list[dict[str, Any]], rows: list[dict[str, Any]], articles: list[Article]
) -> dict[str, Any]:
    """Every metric for one set of predictions against gold labels, one block per registry
    label; the label's kind decides the metric (single: per-class + macro-F1 + accuracy,
    set: per-value F1 + macro, integer: exact match, boolean: accuracy)."""
    out: dict[str, Any] = {"n": len(golds)}
    for label in LABELS:
        name = label.name
        if label.kind == "single":
            # None (not applicable, e.g. no drug named) is a value of its own here
            out[name] = _single(
                [_or_none(g.get(name)) for g in golds],
                [_or_none(r.get(name)) for r in rows],
                label.vocabulary,
            )
        elif label.kind == "set":
            out[name] = _set_block(label, golds, rows)
        elif label.kind == "integer":
            stated = [
                (g[name], r.get(name))
                for g, r, a in zip(golds, rows, articles, strict=True)
                if _present(label, g, a)
            ]
            out[name] = {
                "exact": round(float(np.mean([g == p for g, p in stated])), 3) if stated else None,
                "n_stated": len(stated),
            }
        else:  # boolean
            out[name] = {
                "accuracy": round(
                    float(
                        np.mean(
                            [
                                bool(g.get(name)) == bool(r.get(name))
                                for g, r in zip(golds, rows, strict=True)
                            ]
                        )
                    ),
                    3,
                )
            }
    out["relevance"]["f1"] = out["relevance"]["per_class"]["in_scope"]["f1"]
    # exact agreement of the whole value, every label (sets compared as sets)
    out["facts_accuracy"] = {
        label.name: round(
            float(
                np.mean(
                    [
                        _same_value(label, g.get(label.name), r.get(label.name))
                        for g, r in zip(golds, rows, strict=True)
                    ]
                )
            ),
            3,
        )
        for label in LABELS
        if label.name not in HEADLINE_LABELS
    }
    out["calibration"] = _calibration(golds, rows)
    out["needs_review_rate"] = round(float(np.mean([r["needs_review"] for r in rows])), 3)
    return out


def _or_none(value: Any) -> str:
    return NONE if value is None else str(value)


def _same_value(label: Label, gold: Any, pred: Any) -> bool:
    if label.is_set:
        return sorted(gold or []) == sorted(pred or [])
    if label.kind == "boolean":
        return bool(gold) == bool(pred)
    return gold == pred


def _calibration(golds: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected calibration error (calibrate.ece, 10 bins) of each label's confidence that
    its shown value is right (rows without a label's confidence are left out)."""
    res: dict[str, Any] = {}
    for lab in LABELS:
        idx = [i for i, r in enumerate(rows) if lab.name in (r.get("confidence") or {})]
        if not idx:
            continue
        conf = np.array([rows[i]["confidence"][lab.name] for i in idx], dtype=float)
        hit = calibrate.correctness([golds[i] for i in idx], [rows[i] for i in idx], lab.name)
        res[lab.name] = {
            "ece": round(calibrate.ece(conf, hit), 3),
            "mean_confidence": round(float(conf.mean()), 3),
            "accuracy": round(float(hit.mean()), 3),
        }
    return res


def headline(s: dict[str, Any]) -> dict[str, Any]:
    """The target numbers of one score block."""
    return {
        "relevance_f1": s["relevance"]["f1"],
        "conditions_macro_f1": s["conditions"]["macro_f1"],
        "design_macro_f1": s["design"]["macro_f1"],
        "outcome_macro_f1": s["outcome"]["macro_f1"],
        "sample_size_exact": s["sample_size"]["exact"],
    }


def _subset(idx: list[int], *lists: list[Any]) -> list[list[Any]]:
    return [[lst[i] for i in idx] for lst in lists]


def cross_validate(
    recs: list[dict[str, Any]],
    model_name: str | None = None,
    folds: int = 5,
    baselines: Sequence[str] = BASELINES,
    seed: int = 0,
) -> dict[str, Any]:
    """The full CV report: model + baselines, pooled OOF, mean over folds, unindexed subset."""
    name = model_name or "hybrid"
    get_model(name)  # fail early on an unknown name
    check_folds(folds, len(recs))
    articles = [article_from_record(r) for r in recs]
    labels = [r["labels"] for r in recs]
    unindexed = [i for i, a in enumerate(articles) if not a.publication_types and not a.mesh]
    report: dict[str, Any] = {
        "n_records": len(recs),
        "folds": folds,
        "gold_hash": gold_hash(recs),
        "n_unindexed": len(unindexed),
        "n_with_abstract": sum(bool(a.abstract_sections) for a in articles),
        "models": {},
    }
    for m in (name, *[b for b in baselines if b != name]):
        rows, fold_of = oof_predictions(articles, labels, m, folds=folds, seed=seed)
        report["models"][m] = _cv_block(labels, rows, articles, fold_of, folds)
    return report


def _cv_block(
    labels: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    articles: list[Article],
    fold_of: list[int],
    folds: int,
) -> dict[str, Any]:
    """Out-of-fold rows scored pooled, as the mean over folds, and on the unindexed records."""
    per_fold = []
    for k in range(folds):
        idx = [i for i, f in enumerate(fold_of) if f == k]
        g, r, a = _subset(idx, labels, rows, articles)
        per_fold.append(headline(score(g, r, a)))
    mean = {
        key: round(float(np.mean(v)), 3)
        if (v := [pf[key] for pf in per_fold if pf[key] is not None])
        else None
        for key in per_fold[0]
    }
    unindexed = [i for i, a in enumerate(articles) if not a.publication_types and not a.mesh]
    g, r, a = _subset(unindexed, labels, rows, articles)
    return {
        "pooled": score(labels, rows, articles),
        "fold_mean": mean,
        "unindexed": score(g, r, a),
        "oof_hash": oof_hash(rows),
    }


def protocol_report(
    recs: list[dict[str, Any]],
    model_name: str | None = None,
    folds: int = 5,
    baselines: Sequence[str] = BASELINES,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """`kea evaluate`: development-part CV and the sealed-part score of every model, with
    95% bootstrap intervals; for the model also calibration and review-flag figures."""
    from pipeline.classify import card
    from pipeline.classify.split import SALT, SEALED_PERCENT

    name = model_name or "hybrid"
    get_model(name)  # fail early on an unknown name
    articles = [article_from_record(r) for r in recs]
    labels = [r["labels"] for r in recs]
    sealed = sealed_flags_of(recs)
    n_dev = len(recs) - sum(sealed)
    check_dev_folds(folds, n_dev, sum(sealed))
    report: dict[str, Any] = {
        "n_records": len(recs),
        "folds": folds,
        "gold_hash": gold_hash(recs),
        "n_unindexed": sum(1 for a in articles if not a.publication_types and not a.mesh),
        "protocol": {
            "n_dev": n_dev,
            "n_sealed": sum(sealed),
            "sealed_percent": SEALED_PERCENT,
            "salt": SALT,
        },
        "models": {},
    }
    for m in (name, *[b for b in baselines if b != name]):
        run = run_protocol(
            articles, labels, sealed, m, folds=folds, seed=seed, calibrated=m == name
        )
        a_dev, l_dev = _subset(run["dev"], articles, labels)
        a_sea, l_sea = _subset(run["sealed"], articles, labels)
        rows = run["dev_rows"]
        block = _cv_block(l_dev, rows, a_dev, run["dev_fold"], folds)
        block["metrics"] = card.metrics_rows(l_dev, rows, a_dev, n_boot=n_boot, split="dev_cv")
        if run["sealed"]:
            srows = run["sealed_rows"]
            block["sealed"] = score(l_sea, srows, a_sea)
            block["metrics"] += card.metrics_rows(
                l_sea, srows, a_sea, n_boot=n_boot, split="sealed"
            )
        cal = run["calibration"]
        if cal is not None:
            thr = cal.review_thresholds
            block["calibration"] = calibrate.calibration_rows(
                confidences(rows), l_dev, rows, thr, "dev_cv", n_boot=n_boot
            )
            block["review"] = {
                "dev_cv": calibrate.review_block(confidences(rows), l_dev, rows, thr, "dev_cv")
            }
            if run["sealed"]:
                sc = confidences(run["sealed_rows"])
                block["calibration"] += calibrate.calibration_rows(
                    sc, l_sea, run["sealed_rows"], thr, "sealed", n_boot=n_boot
                )
                block["review"]["sealed"] = calibrate.review_block(
                    sc, l_sea, run["sealed_rows"], thr, "sealed"
                )
        report["models"][m] = block
    return report


def oof_hash(rows: list[dict[str, Any]]) -> str:
    """Hash of the out-of-fold label decisions, so a re-run can be compared exactly."""
    keep = ("pmid", "relevance", "conditions", "design", "outcome", "sample_size", "drug")
    payload = json.dumps([[r.get(k) for k in keep] for r in rows], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def rows_hash(rows: list[dict[str, Any]]) -> str:
    """Hash of whole label rows (every label, confidence, evidence and review flag), the
    model version left out: equal hashes mean identical predictions."""
    payload = json.dumps(
        [{k: v for k, v in r.items() if k != "model_version"} for r in rows],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def heldout(recs: list[dict[str, Any]], model: KeaModel) -> dict[str, Any]:
    """Score an already-trained model on gold records (only honest if it never saw them)."""
    articles = [article_from_record(r) for r in recs]
    labels = [r["labels"] for r in recs]
    rows = predict_articles(articles, model)
    unindexed = [i for i, a in enumerate(articles) if not a.publication_types and not a.mesh]
    g, r, a = _subset(unindexed, labels, rows, articles)
    rep: dict[str, Any] = {
        "n_records": len(recs),
        "gold_hash": gold_hash(recs),
        "n_unindexed": len(unindexed),
        "models": {
            getattr(model, "version_", model.name): {
                "pooled": score(labels, rows, articles),
                "unindexed": score(g, r, a),
            }
        },
    }
    cal = calibration_of(model)
    if cal is not None:
        # the calibrated confidences and the model's own review thresholds on these records
        (block,) = rep["models"].values()
        block["calibration"] = calibrate.calibration_rows(
            confidences(rows), labels, rows, cal.review_thresholds, "heldout"
        )
        block["review"] = {
            "heldout": calibrate.review_block(
                confidences(rows), labels, rows, cal.review_thresholds, "heldout"
            )
        }
    meta = getattr(model, "metadata_", None) or {}
    seen = set(meta.get("training_pmids") or [])
    n_seen = sum(str(a.pmid) in seen for a in articles)
    if not seen and meta.get("training_hash") == examples_hash(articles, labels):
        n_seen = len(articles)  # an older model that recorded only the whole set's hash
    rep["n_in_training"] = n_seen
    if n_seen:
        rep["warning"] = (
            f"{n_seen} of {len(articles)} evaluated records were in the model's "
            "training data: in-sample numbers, not a held-out score"
        )
    return rep


# --------------------------------------------------------------------------- text report
def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_report(rep: dict[str, Any]) -> str:
    """A plain-text table: headline numbers per model, then per-class detail for each."""
    lines = [
        f"records: {rep['n_records']}  unindexed (no MeSH/publication types): "
        f"{rep['n_unindexed']}  folds: {rep.get('folds', 'none (held-out mode)')}"
    ]
    if rep.get("warning"):
        lines.insert(0, f"WARNING: {rep['warning']}")
    keys = [
        "relevance_f1",
        "conditions_macro_f1",
        "design_macro_f1",
        "outcome_macro_f1",
        "sample_size_exact",
    ]
    if rep.get("protocol"):
        pr = rep["protocol"]
        lines.append(
            f"protocol: development part {pr['n_dev']} records ({rep['folds']}-fold CV), "
            f"sealed part {pr['n_sealed']} (a model fitted on the development part, scored "
            "once); 95% bootstrap intervals"
        )
        lines.append(
            f"{'model':<14}{'label':<15}{'metric':<10}{'sealed (95% CI)':>26}"
            f"{'dev CV (95% CI)':>26}"
        )
        for m, block in rep["models"].items():
            by = {(r["label"], r["split"]): r for r in block.get("metrics", [])}
            for lab in LABELS:
                cells = []
                for split in ("sealed", "dev_cv"):
                    r = by.get((lab.name, split))
                    if r is None or r["value"] is None:
                        cells.append(f"{'-':>26}")
                        continue
                    ci = "" if r["ci_low"] is None else f" ({r['ci_low']:.3f}-{r['ci_high']:.3f})"
                    cells.append(f"{r['value']:.3f}{ci} n={r['n']}".rjust(26))
                metric = by.get((lab.name, "dev_cv"), {}).get("metric", "")
                lines.append(f"{m:<14}{lab.name:<15}{metric:<10}" + "".join(cells))
        for m, block in rep["models"].items():
            if not block.get("calibration"):
                continue
            lines.append(f"\n== {m}: calibrated confidence (P(shown value right)), review flags")
            lines.append(
                f"   {'label':<15}{'split':<8}{'ECE (95% CI)':>22}{'accuracy':>10}"
                f"{'threshold':>11}{'flagged':>9}{'unflagged right':>17}{'flagged right':>15}"
            )
            for r in block["calibration"]:
                ci = (
                    ""
                    if r["ece_ci_low"] is None
                    else (f" ({r['ece_ci_low']:.3f}-{r['ece_ci_high']:.3f})")
                )
                lines.append(
                    f"   {r['label']:<15}{r['split']:<8}{_f(r['ece']) + ci:>22}"
                    f"{_f(r['accuracy']):>10}{_f(r['threshold']):>11}"
                    f"{_f(r['flagged_share']):>9}{_f(r['precision_unflagged']):>17}"
                    f"{_f(r['precision_flagged']):>15}"
                )
            for split, rv in block.get("review", {}).items():
                lines.append(
                    f"   all labels, {split}: {_f(rv['label_flagged_share'])} of label values "
                    f"flagged, unflagged right {_f(rv['label_precision_unflagged'])}, flagged "
                    f"right {_f(rv['label_precision_flagged'])}; records flagged "
                    f"{_f(rv['flagged_share'])} (by {', '.join(rv.get('record_labels') or [])}; "
                    f"any label: {_f(rv.get('any_label_flagged_share'))}), their labels all "
                    f"right: unflagged {_f(rv.get('accuracy_unflagged'))}, flagged "
                    f"{_f(rv.get('accuracy_flagged'))}"
                )
    else:
        lines.append(f"{'model':<22}" + "".join(f"{k:>21}" for k in keys))
        for m, block in rep["models"].items():
            for view in ("pooled", "fold_mean", "unindexed"):
                if view not in block:
                    continue
                h = block[view] if view == "fold_mean" else headline(block[view])
                cells = "".join(f"{'-' if h[k] is None else h[k]:>21}" for k in keys)
                lines.append(f"{m + ' (' + view + ')':<22}{cells}")
    for m, block in rep["models"].items():
        pooled = block["pooled"]
        what = "development-part CV, pooled out-of-fold" if rep.get("protocol") else "pooled"
        lines.append(f"\n== {m}: per class ({what})")
        for fld in [lab.name for lab in LABELS if lab.has_vocabulary]:
            lines.append(f"{fld}  macro-F1 {pooled[fld]['macro_f1']}")
            for c, v in pooled[fld]["per_class"].items():
                lines.append(
                    f"   {c:<20} P {v['precision']:.2f}  R {v['recall']:.2f}  "
                    f"F1 {v['f1']:.2f}  n={v['support']}"
                )
            if "confusion" in pooled[fld]:
                conf = pooled[fld]["confusion"]
                lines.append(
                    "   confusion (rows gold, cols predicted): "
                    + " ".join(x[:6] for x in conf["labels"])
                )
                for lab, row in zip(conf["labels"], conf["matrix"], strict=True):
                    lines.append(f"   {lab:<20}" + "".join(f"{x:>5}" for x in row))
        lines.append(f"facts accuracy: {pooled['facts_accuracy']}")
        lines.append(f"sample size exact: {pooled['sample_size']}")
        lines.append(f"calibration: {pooled['calibration']}")
    return "\n".join(lines)
