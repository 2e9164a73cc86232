"""The honest protocol (development-part CV, a sealed part scored once) and the calibrated
confidences of real predictions (../shared, read at test time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.classify import card, evaluate
from pipeline.classify.calibrate import Calibration
from pipeline.classify.predict import predict_with_basis
from pipeline.classify.service import evaluate_command, train_command
from pipeline.classify.split import is_sealed, split_gold
from pipeline.classify.text import article_from_record
from pipeline.classify.train import DEFAULT_MODEL_PATH, load_model, training_set
from pipeline.errors import KeaError
from pipeline.labels import LABEL_NAMES, RECORD_REVIEW_LABELS


@pytest.fixture(scope="module")
def protocol_run(corpus: list[dict]) -> dict:
    """The protocol on half the corpus with the small recipe, every fit's training PMIDs
    recorded."""
    recs = corpus[::2]
    arts, labels, sealed = training_set(recs)
    fits: list[set[str]] = []
    real_fit = evaluate.fit_model

    def spy(articles, labels_, name, what):  # noqa: ANN001, ANN202
        fits.append({str(a.pmid) for a in articles})
        return real_fit(articles, labels_, name, what)

    mp = pytest.MonkeyPatch()
    mp.setattr(evaluate, "fit_model", spy)
    try:
        run = evaluate.run_protocol(arts, labels, sealed, "hybrid-word", folds=3)
    finally:
        mp.undo()
    return {"run": run, "fits": fits, "arts": arts, "labels": labels, "sealed": sealed}


def test_sealed_records_never_train_any_model_that_scores_them(protocol_run: dict) -> None:
    run, arts = protocol_run["run"], protocol_run["arts"]
    sealed_pmids = {str(arts[i].pmid) for i in run["sealed"]}
    dev_pmids = {str(arts[i].pmid) for i in run["dev"]}
    assert sealed_pmids and dev_pmids and not sealed_pmids & dev_pmids
    assert len(protocol_run["fits"]) == 3 + 1  # the folds, then the development part
    for trained_on in protocol_run["fits"]:
        assert not trained_on & sealed_pmids
    assert protocol_run["fits"][-1] == dev_pmids
    assert [r["pmid"] for r in run["sealed_rows"]] == [arts[i].pmid for i in run["sealed"]]


def test_the_split_is_the_one_of_split_py(corpus: list[dict], protocol_run: dict) -> None:
    dev, sealed = split_gold(corpus[::2])
    run, arts = protocol_run["run"], protocol_run["arts"]
    assert [arts[i].pmid for i in run["sealed"]] == [str(r["pmid"]) for r in sealed]
    assert len(run["dev"]) == len(dev)


def test_sealed_rows_carry_the_calibrators_fitted_on_dev_out_of_fold_rows(
    protocol_run: dict,
) -> None:
    run = protocol_run["run"]
    cal = run["calibration"]
    assert isinstance(cal, Calibration)
    assert set(cal.labels) == set(LABEL_NAMES)
    for name in LABEL_NAMES:
        assert cal.labels[name].n == len(run["dev"]), name
        assert 0.0 <= cal.review_thresholds[name] <= 1.0
    for row, basis in zip(run["sealed_rows"], run["sealed_bases"], strict=True):
        for name in LABEL_NAMES:
            assert row["confidence"][name] == round(cal.confidence(name, basis[name]), 3)


def test_corrections_are_split_by_the_record_they_correct_else_by_pmid(
    corpus: list[dict],
) -> None:
    gold = corpus[:20]
    a0 = article_from_record(gold[0])
    new = article_from_record({**gold[1], "pmid": "99999001", "id": None})
    arts, _, sealed = training_set(gold, [(a0, dict(gold[0]["labels"])), (new, {})])
    assert sealed[0] == is_sealed(gold[0])  # by its corpus id, not moved by the correction
    assert arts[-1].pmid == "99999001" and sealed[-1] == is_sealed({"pmid": "99999001"})


# --------------------------------------------------------------------------- shipped model
@pytest.fixture(scope="module")
def shipped_dev_rows(corpus: list[dict]) -> tuple[list[dict], list[dict]]:
    dev, _ = split_gold(corpus)
    rows, _ = predict_with_basis([article_from_record(r) for r in dev], load_model())
    return dev, rows


def test_every_label_has_a_calibrated_confidence_that_varies(
    shipped_dev_rows: tuple[list[dict], list[dict]],
) -> None:
    _, rows = shipped_dev_rows
    for name in LABEL_NAMES:
        values = [r["confidence"][name] for r in rows]
        assert all(0.0 <= v <= 1.0 for v in values), name
        # no constant per label (release 0.1 gave sample size 0.915 on every record)
        assert len(set(values)) >= 3, (name, sorted(set(values)))


def test_review_fields_are_the_labels_below_their_own_threshold(
    shipped_dev_rows: tuple[list[dict], list[dict]],
) -> None:
    _, rows = shipped_dev_rows
    model = load_model()
    thr = model.calibration_.review_thresholds
    assert thr == model.metadata_["review_thresholds"]
    assert set(thr) == set(LABEL_NAMES)
    assert len(set(thr.values())) > 1  # per label, not one number
    for r in rows:
        below = {n for n in LABEL_NAMES if r["confidence"][n] < thr[n]}
        if "retraction" in r["evidence"]:
            below.add("relevance")
        # confidences are stored rounded to 3 places; the flag uses the exact value
        edge = {n for n in LABEL_NAMES if abs(r["confidence"][n] - thr[n]) < 6e-4}
        assert set(r["review_fields"]) - edge == below - edge, r["pmid"]
        # the record is flagged by its evidence labels' flags only (labels.py)
        assert r["needs_review"] == any(f in RECORD_REVIEW_LABELS for f in r["review_fields"])
    # a comparator flag alone no longer flags a record: fewer records than "any label"
    assert sum(r["needs_review"] for r in rows) < sum(bool(r["review_fields"]) for r in rows)


def test_evidence_is_kept_beside_the_calibrated_confidence(
    shipped_dev_rows: tuple[list[dict], list[dict]],
) -> None:
    dev, rows = shipped_dev_rows
    for rec, r in zip(dev, rows, strict=True):
        assert r["evidence"].get("relevance") and r["evidence"].get("design"), rec["pmid"]
        if r["sample_size"] is not None:
            assert r["evidence"].get("sample_size"), rec["pmid"]


def test_shipped_metadata_has_sealed_and_dev_rows_for_every_label() -> None:
    meta = card.model_card(DEFAULT_MODEL_PATH)
    assert meta is not None
    for split in ("dev_cv", "sealed"):
        metrics = {r["label"] for r in meta["metrics"] if r["split"] == split}
        calib = {r["label"]: r for r in meta["calibration"] if r["split"] == split}
        assert metrics == set(LABEL_NAMES) == set(calib), split
        for r in calib.values():
            # (a bootstrap ECE is biased upward: the interval may sit above the point)
            assert 0.0 <= r["ece"] <= 1.0 and 0.0 <= r["ece_ci_low"] <= r["ece_ci_high"] <= 1.0, r
    proto = meta["protocol"]
    assert proto["n_dev"] + proto["n_sealed"] == meta["n_records"]
    sealed_review = meta["review"]["by_split"]["sealed"]
    # the flag means something on records nobody tuned on
    assert sealed_review["label_precision_flagged"] < sealed_review["label_precision_unflagged"]


def test_the_card_shows_sealed_rows_and_the_reliability_plot() -> None:
    meta = card.model_card(DEFAULT_MODEL_PATH)
    text = card.render(meta)
    sealed = next(r for r in meta["metrics"] if r["split"] == "sealed" and r["label"] == "outcome")
    line = next(ln for ln in text.splitlines() if ln.startswith("| outcome | macro_f1 |"))
    assert f"| {sealed['value']:.3f} | {sealed['ci_low']:.3f}–{sealed['ci_high']:.3f} |" in line
    assert "![Reliability on the sealed part](model-card-reliability.png)" in text
    png = card.DOC_PATH.with_name("model-card-reliability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_development_records_is_one_clear_error(corpus: list[dict], tmp_path: Path) -> None:
    gold = tmp_path / "tiny.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in corpus[:3]))
    n_dev = sum(not is_sealed(r) for r in corpus[:3])
    for run in (
        lambda: train_command([str(gold)], str(tmp_path / "m.json"), None, None),
        lambda: evaluate_command([str(gold)], True, 5, None, None),
    ):
        with pytest.raises(
            KeaError, match=f"needs at least 5 records in the development part; it has {n_dev}"
        ):
            run()
    assert not (tmp_path / "m.json").exists()


def test_the_card_says_which_labels_flag_a_record() -> None:
    meta = card.model_card(DEFAULT_MODEL_PATH)
    text = card.render(meta)
    para = next(p for p in text.split("\n\n") if p.startswith("**Record-level flag**"))
    assert ", ".join(RECORD_REVIEW_LABELS) in para.replace("\n", " ")
    assert "comparator" in para and "?" not in para
