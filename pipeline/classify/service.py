"""CLI entry points: `kea classify`, `kea train`, `kea evaluate` (thin wrappers live in cli.py)."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.classify import card
from pipeline.classify.evaluate import (
    check_folds,
    cross_validate,
    format_report,
    heldout,
    load_gold,
    oof_hash,
    rows_hash,
)
from pipeline.classify.portable import read_metadata
from pipeline.classify.predict import predict_articles
from pipeline.classify.registry import DEFAULT_MODEL, KeaModel, get_model
from pipeline.classify.train import (
    DEFAULT_MODEL_PATH,
    load_model,
    preferred_model_path,
    save_model,
    trained_model_path,
    training_examples,
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
    articles, labels = training_examples(recs, corrected)
    name = model_name or DEFAULT_MODEL
    model, meta = fit_with_metadata(articles, labels, name, folds=5)
    meta["gold_files"] = [p.name for p in gold_paths]
    meta["n_corrected"] = len(corrected)
    path = save_model(model, target, meta)
    # the card: docs/model-card.md for the shipped model, <stem>.md beside any other
    card_path = (
        card.DOC_PATH if path.resolve() == DEFAULT_MODEL_PATH.resolve() else path.with_suffix(".md")
    )
    card.write_card(read_metadata(path), card_path)
    h = meta["cv"]["headline"]
    extra = (
        f", {len(corrected)} corrected records" + (f" ({skipped} skipped)" if skipped else "")
        if db
        else ""
    )
    return (
        f"trained {name} on {len(articles)} records{extra} in "
        f"{time.perf_counter() - t0:.0f}s -> {path} (version {model.version_}); CV: "
        + ", ".join(f"{k} {v}" for k, v in h.items())
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
    articles: list[Article], labels: list[dict[str, Any]], name: str, folds: int = 5
) -> tuple[KeaModel, dict[str, Any]]:
    """Cross-validate, then fit on everything; metadata records what a reload must reproduce."""
    from pipeline.classify.evaluate import examples_hash, headline, oof_predictions, score

    data_hash = examples_hash(articles, labels)
    rows, _ = oof_predictions(articles, labels, name, folds=folds)
    cv = score(labels, rows, articles)
    threshold = get_model(name).review_threshold
    try:
        model = get_model(name).fit(articles, labels)
    except ValueError as err:
        raise KeaError(
            f"cannot train on {len(articles)} records ({str(err).rstrip('.')}): "
            "give more gold records"
        ) from None
    fit_rows = predict_articles(articles, model, model_version="-")
    # the version changes when the training data or the learned parameters change (and
    # `kea classify` then relabels stored records); an edit that leaves both alone keeps it
    params = model.portable_.parameters_hash()
    model.version_ = model_version(name, data_hash, params)
    meta = {
        "training_hash": data_hash,
        "training_pmids": sorted({str(a.pmid) for a in articles}),
        "parameters_hash": params[:16],
        "n_records": len(articles),
        "review_threshold": model.review_threshold,
        "cv": {
            "folds": folds,
            "seed": 0,
            "headline": headline(cv),
            "oof_hash": oof_hash(rows),
            "outcome_per_class": cv["outcome"]["per_class"],
            "design_per_class": cv["design"]["per_class"],
        },
        "metrics": card.metrics_rows(labels, rows, articles),
        "review": card.review_summary(labels, rows, threshold),
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
    """CV report with both baselines, or held-out scoring of a trained file on gold files."""
    if not model_path:
        check_folds(folds)
    recs = load_gold(gold)
    if model_path:
        report = heldout(recs, load_model(model_path))
    else:
        report = cross_validate(recs, model_name=model_name, folds=folds)
    return json.dumps(report, sort_keys=True) if as_json else format_report(report)
