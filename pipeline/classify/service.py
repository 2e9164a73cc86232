"""CLI entry points: `kea classify`, `kea train`, `kea evaluate` (thin wrappers live in cli.py)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.classify import calibrate, card
from pipeline.classify.evaluate import (
    check_folds,
    format_report,
    heldout,
    load_gold,
    oof_hash,
    protocol_report,
    rows_hash,
)
from pipeline.classify.portable import read_metadata
from pipeline.classify.predict import predict_articles
from pipeline.classify.registry import DEFAULT_MODEL, KeaModel
from pipeline.classify.split import SALT, SEALED_PERCENT, is_sealed
from pipeline.classify.train import (
    DEFAULT_MODEL_PATH,
    load_model,
    preferred_model_path,
    save_model,
    trained_model_path,
    training_set,
)
from pipeline.errors import KeaError
from pipeline.labels import LABEL_NAMES
from pipeline.records import Article
from pipeline.store import Store

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GOLD = ROOT.parent / "shared" / "corpus" / "dev.jsonl"
BATCH = 500
# Fields a record needs before it can be a training example.
REQUIRED = ("relevance", "conditions", "design", "outcome")


def classify_store(store: Store, model_path: str | None = None, relabel_all: bool = False) -> str:
    """Label every record that lacks labels from this model (or all), in batches.

    Without a model path: the model `kea train` wrote beside this store (or in
    $KEA_MODEL_DIR) when there is one, else the shipped model.
    """
    t0 = time.perf_counter()
    model = load_model(model_path or preferred_model_path(store.path))
    version = model.version_
    todo = list(store.iter_articles()) if relabel_all else list(store.unlabelled(version))
    n = review = 0
    for i in range(0, len(todo), BATCH):
        rows = predict_articles(todo[i : i + BATCH], model, model_version=version)
        store.save_labels(rows)
        n += len(rows)
        review += sum(bool(r["needs_review"]) for r in rows)
    secs = time.perf_counter() - t0
    rate = n / secs if secs > 0 else 0.0
    return (
        f"labelled {n} records ({review} need review) in {secs:.1f}s "
        f"({rate:.0f} records/s, model {version})"
    )


def corrected_examples(db: str) -> tuple[list[tuple[Article, dict[str, Any]]], int]:
    """(article, labels) for stored records a human corrected; labels = stored + corrections.

    Records whose labels are still incomplete after merging are skipped (counted).
    """
    out: list[tuple[Article, dict[str, Any]]] = []
    skipped = 0
    with Store(db, readonly=True) as store:
        for pmid, fix in store.all_corrections().items():
            article = store.get_article(pmid)
            if article is None:
                skipped += 1
                continue
            stored = store.get_labels(pmid) or {}
            labels = {f: stored.get(f) for f in LABEL_NAMES}
            labels.update(fix)
            if any(labels.get(f) is None for f in REQUIRED if f != "conditions"):
                skipped += 1
                continue
            labels["conditions"] = labels.get("conditions") or []
            out.append((article, labels))
    return out, skipped


def train_command(
    gold: list[str] | None, out: str | None, model_name: str | None, db: str | None
) -> str:
    """Train on gold files (+ corrections in --db), record CV metrics, save the model."""
    t0 = time.perf_counter()
    # never the shipped model unless --out names it: the user's models folder
    target = Path(out) if out else trained_model_path(db)
    if target.suffix not in ("", ".json", ".npz"):
        raise KeaError(f"--out {out}: a model is <name>.json (with <name>.npz beside it)")
    if target.exists() and not target.is_file():
        raise KeaError(f"--out {target} is not a file")
    _check_writable(target.parent)  # before minutes of training, not after
    gold_paths = [Path(g) for g in gold] if gold else [DEFAULT_GOLD]
    for p in gold_paths:
        if not p.exists():
            raise KeaError(
                f"gold file {p} does not exist; pass --gold PATH "
                f"(default is ../shared/corpus/dev.jsonl next to the repo)"
            )
    recs = load_gold(gold_paths)
    corrected, skipped = corrected_examples(db) if db else ([], 0)
    articles, labels, sealed = training_set(recs, corrected)
    name = model_name or DEFAULT_MODEL
    model, meta = fit_with_metadata(articles, labels, name, folds=5, sealed=sealed)
    meta["gold_files"] = [p.name for p in gold_paths]
    meta["n_corrected"] = len(corrected)
    path = save_model(model, target, meta)
    # the card: docs/model-card.md for the shipped model, <stem>.md beside any other
    card_path = (
        card.DOC_PATH if path.resolve() == DEFAULT_MODEL_PATH.resolve() else path.with_suffix(".md")
    )
    card.write_card(read_metadata(path), card_path)
    h = meta["cv"]["headline"]
    hs = (meta.get("sealed") or {}).get("headline") or {}
    extra = (
        f", {len(corrected)} corrected records" + (f" ({skipped} skipped)" if skipped else "")
        if db
        else ""
    )
    return (
        f"trained {name} on {len(articles)} records{extra} in "
        f"{time.perf_counter() - t0:.0f}s -> {path} (version {model.version_}); dev CV: "
        + ", ".join(f"{k} {v}" for k, v in h.items())
        + ("; sealed: " + ", ".join(f"{k} {v}" for k, v in hs.items()) if hs else "")
    )


def _check_writable(folder: Path) -> None:
    """The model folder (or the nearest existing parent, when it is still to be made) takes
    new files; access() alone says yes to root on read-only mounts, so a file is tried."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise KeaError(f"cannot write a model in {folder}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise KeaError(f"cannot write a model in {folder} ({err.strerror})") from None


def fit_with_metadata(
    articles: list[Article],
    labels: list[dict[str, Any]],
    name: str,
    folds: int = 5,
    sealed: list[bool] | None = None,
) -> tuple[KeaModel, dict[str, Any]]:
    """The honest protocol, then the model to ship; metadata records both.

    Fits: ``folds`` on the development part (out-of-fold rows: dev-CV metrics and the
    calibration data), one on the development part (scored once on the sealed part), one on
    everything (the model saved). The saved model's calibrators are fitted on the held-out
    rows of both parts (every one predicted by a model that did not see it)."""
    from pipeline.classify.evaluate import (
        confidences,
        examples_hash,
        fit_model,
        headline,
        run_protocol,
        score,
    )

    if sealed is None:
        sealed = [is_sealed({"pmid": str(a.pmid)}) for a in articles]
    data_hash = examples_hash(articles, labels)
    run = run_protocol(articles, labels, sealed, name, folds=folds)
    dev, held = run["dev"], run["sealed"]
    a_dev = [articles[i] for i in dev]
    l_dev = [labels[i] for i in dev]
    a_sea = [articles[i] for i in held]
    l_sea = [labels[i] for i in held]
    cal_dev = run["calibration"]
    thr_dev = cal_dev.review_thresholds
    dev_cv = score(l_dev, run["dev_rows"], a_dev)

    # the shipped model: fitted on all records, calibrated on every held-out row
    order = dev + held
    bases = run["dev_bases"] + run["sealed_bases"]
    h_rows = run["dev_rows"] + run["sealed_rows"]
    h_gold = [labels[i] for i in order]
    fold_of = run["dev_fold"] + [folds] * len(held)
    confs = calibrate.cross_fitted(bases, h_gold, h_rows, fold_of)
    thresholds = calibrate.choose_thresholds(confs, h_gold, h_rows)
    cal_all = calibrate.fit(bases, h_gold, h_rows, thresholds)
    model = fit_model(articles, labels, name, "the model")
    model.portable_.set_calibration(cal_all)
    fit_rows = predict_articles(articles, model, model_version="-")
    # the version changes when the training data or the learned parameters change (and
    # `kea classify` then relabels stored records); an edit that leaves both alone keeps it
    params = model.portable_.parameters_hash()
    model.version_ = model_version(name, data_hash, params)

    dev_conf = confidences(run["dev_rows"])
    metrics = card.metrics_rows(l_dev, run["dev_rows"], a_dev, split="dev_cv")
    calib = calibrate.calibration_rows(dev_conf, l_dev, run["dev_rows"], thr_dev, "dev_cv")
    review = {"dev_cv": calibrate.review_block(dev_conf, l_dev, run["dev_rows"], thr_dev, "dev_cv")}
    sealed_meta: dict[str, Any] | None = None
    if held:
        s_rows = run["sealed_rows"]
        s_conf = confidences(s_rows)
        sealed_score = score(l_sea, s_rows, a_sea)
        metrics += card.metrics_rows(l_sea, s_rows, a_sea, split="sealed")
        calib += calibrate.calibration_rows(s_conf, l_sea, s_rows, thr_dev, "sealed")
        review["sealed"] = calibrate.review_block(s_conf, l_sea, s_rows, thr_dev, "sealed")
        sealed_meta = {
            "n": len(held),
            "headline": headline(sealed_score),
            "outcome_per_class": sealed_score["outcome"]["per_class"],
            "design_per_class": sealed_score["design"]["per_class"],
            "predictions_hash": oof_hash(s_rows),
        }
    main_review = review.get("sealed") or review["dev_cv"]
    meta = {
        "training_hash": data_hash,
        "training_pmids": sorted({str(a.pmid) for a in articles}),
        "parameters_hash": params[:16],
        "n_records": len(articles),
        "review_threshold": model.review_threshold,
        "review_thresholds": cal_all.review_thresholds,
        "protocol": {
            "split": "pipeline/classify/split.py: sha256 of salt + record id (PMID for "
            "records only a human labelled)",
            "salt": SALT,
            "sealed_percent": SEALED_PERCENT,
            "n_dev": len(dev),
            "n_sealed": len(held),
            "fits": f"{folds} on the development part (out-of-fold: dev CV, calibration), 1 on "
            "the development part (scored on the sealed part), 1 on all records (saved)",
            "review_thresholds_dev": thr_dev,
        },
        "cv": {
            "part": "development",
            "n": len(dev),
            "folds": folds,
            "seed": 0,
            "headline": headline(dev_cv),
            "oof_hash": oof_hash(run["dev_rows"]),
            "outcome_per_class": dev_cv["outcome"]["per_class"],
            "design_per_class": dev_cv["design"]["per_class"],
        },
        "sealed": sealed_meta,
        "metrics": metrics,
        "calibration": calib,
        "review": {**main_review, "threshold": None, "by_split": review},
        "fit_predictions_hash": oof_hash(fit_rows),
        "predictions_hash": rows_hash(fit_rows),
    }
    return model, meta


def model_version(name: str, data_hash: str, parameters_hash: str) -> str:
    """`<recipe>-<10 hex>` from the training data hash and the parameters hash."""
    return f"{name}-{hashlib.sha256((data_hash + parameters_hash).encode()).hexdigest()[:10]}"


def evaluate_command(
    gold: list[str], as_json: bool, folds: int, model_name: str | None, model_path: str | None
) -> str:
    """Development-part CV and sealed-part scores (both baselines beside the model), or
    held-out scoring of a trained file on gold files."""
    if not model_path:
        check_folds(folds)
    recs = load_gold(gold)
    if model_path:
        report = heldout(recs, load_model(model_path))
    else:
        report = protocol_report(recs, model_name=model_name, folds=folds)
    return json.dumps(report, sort_keys=True) if as_json else format_report(report)
