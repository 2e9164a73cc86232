"""Per-label calibrated confidence (pipeline/classify/calibrate.py): fitting, applying,
thresholds and the calibration error, on synthetic cases whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline import labels
from pipeline.classify import calibrate
from pipeline.classify.calibrate import Basis, Calibration, LabelCalibrator
from pipeline.labels import LABEL_NAMES


def test_ece_of_a_known_case() -> None:
    # bin 0.8-0.9: 10 records at 0.85, 6 right -> gap 0.25; bin 0.3-0.4: 10 at 0.35,
    # 5 right -> gap 0.15; ECE = 0.5 * 0.25 + 0.5 * 0.15 = 0.20
    conf = np.array([0.85] * 10 + [0.35] * 10)
    hits = np.array([1] * 6 + [0] * 4 + [1] * 5 + [0] * 5, dtype=float)
    assert calibrate.ece(conf, hits) == pytest.approx(0.20)


def test_ece_is_zero_when_confidence_matches_accuracy_and_one_counts_in_the_last_bin() -> None:
    conf = np.array([1.0] * 4 + [0.25] * 4)
    hits = np.array([1, 1, 1, 1, 1, 0, 0, 0], dtype=float)
    assert calibrate.ece(conf, hits) == pytest.approx(0.0)
    bins = calibrate.reliability(conf, hits)
    assert [b["bin"] for b in bins] == [2, 9] and [b["n"] for b in bins] == [4, 4]


def test_an_overconfident_label_has_a_large_ece() -> None:
    conf = np.full(100, 0.95)
    hits = np.array([1] * 60 + [0] * 40, dtype=float)
    assert calibrate.ece(conf, hits) == pytest.approx(0.35)


def _synthetic(n: int, seed: int = 0) -> tuple[list[Basis], np.ndarray, np.ndarray]:
    """Bases whose true P(right) is known: a rule token that is right 90 % of the time,
    and a head whose logit is the true log-odds."""
    rng = np.random.default_rng(seed)
    bases, truth = [], []
    for _ in range(n):
        if rng.random() < 0.3:
            bases.append(Basis((0.0,), ("src=rule",)))
            truth.append(0.9)
        else:
            z = rng.normal(0.5, 1.5)
            bases.append(Basis((z,), ("src=head",)))
            truth.append(1 / (1 + np.exp(-z)))
    p = np.array(truth)
    hits = (rng.random(n) < p).astype(float)
    return bases, hits, p


def test_a_fitted_calibrator_recovers_the_true_probabilities() -> None:
    bases, hits, _ = _synthetic(3000)
    cal = calibrate.fit_label(bases, hits)
    test, test_hits, truth = _synthetic(2000, seed=1)
    pred = np.array([cal.prob(b) for b in test])
    assert np.abs(pred - truth).mean() < 0.04
    assert calibrate.ece(pred, test_hits) < 0.04
    rule = [cal.prob(b) for b in test if b.tokens == ("src=rule",)]
    assert min(rule) == max(rule) == pytest.approx(0.9, abs=0.04)


def test_calibrator_round_trips_through_json() -> None:
    bases, hits, _ = _synthetic(500)
    cal = Calibration({"design": calibrate.fit_label(bases, hits)}, {"design": 0.7})
    again = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again is not None and again.review_thresholds == {"design": 0.7}
    for b in bases[:50]:
        assert again.confidence("design", b) == pytest.approx(cal.confidence("design", b))
    assert again.confidence("outcome", bases[0]) is None  # a label it has no calibrator for


def test_one_outcome_only_gives_the_smoothed_rate() -> None:
    bases = [Basis((), ("val=x",))] * 8
    cal = calibrate.fit_label(bases, np.ones(8))
    assert cal.prob(bases[0]) == pytest.approx(9 / 10)


def test_unseen_and_rare_tokens_weigh_nothing() -> None:
    cal = LabelCalibrator(["a"], [2.0], [], 0.0, 10, 0.5)
    assert cal.prob(Basis((), ("a",))) == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert cal.prob(Basis((), ("never-seen",))) == pytest.approx(0.5)
    rare = calibrate.fit_label(
        [Basis((), ("once",))] + [Basis((), ("common",))] * 20,
        np.array([1.0] + [0.0, 1.0] * 10),
    )
    assert "once" not in rare.tokens


def test_threshold_is_the_lowest_that_keeps_unflagged_precise() -> None:
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    hits = np.array([1, 1, 1, 1, 0, 1, 0, 0], dtype=float)
    # keep top 4 -> 4/4 right; top 5 -> 4/5; so the threshold is 0.8
    t = calibrate.choose_threshold(conf, hits, target=0.95)
    assert t == 0.8
    assert (hits[conf >= t]).mean() >= 0.95
    assert calibrate.choose_threshold(conf, hits, target=0.6) == 0.4  # all: 5/8 right
    assert calibrate.choose_threshold(conf, hits, target=0.7) == 0.5  # 5/7 right
    assert calibrate.choose_threshold(np.array([0.5, 0.4]), np.zeros(2), 0.95) == 1.0


def test_threshold_never_splits_equal_confidences() -> None:
    conf = np.array([0.9, 0.9, 0.9, 0.5])
    hits = np.array([1, 1, 0, 0], dtype=float)
    # the three 0.9s stand or fall together: 2/3 right is below 0.95, so all are flagged
    assert calibrate.choose_threshold(conf, hits, target=0.95) == 1.0


def test_review_block_counts_label_values_and_records() -> None:
    golds = [{"design": "rct", "outcome": "beneficial"}, {"design": "rct", "outcome": "mixed"}]
    rows = [{"design": "rct", "outcome": "beneficial"}, {"design": "review", "outcome": "mixed"}]
    confs = [{"design": 0.9, "outcome": 0.4}, {"design": 0.6, "outcome": 0.95}]
    rv = calibrate.review_block(confs, golds, rows, {"design": 0.7, "outcome": 0.5}, "sealed")
    # flagged: outcome of record 1 (right), design of record 2 (wrong)
    assert rv["n_labels"] == 4 and rv["label_flagged_share"] == 0.5
    assert rv["label_precision_flagged"] == 0.5 and rv["label_precision_unflagged"] == 1.0
    assert rv["flagged_share"] == 1.0 and rv["accuracy_flagged"] == 0.5


def test_calibration_rows_cover_every_label_with_intervals() -> None:
    rng = np.random.default_rng(3)
    golds, rows, confs = [], [], []
    for _ in range(60):
        right = rng.random() < 0.8
        golds.append({n: None for n in LABEL_NAMES} | {"design": "rct"})
        rows.append({n: None for n in LABEL_NAMES} | {"design": "rct" if right else "review"})
        confs.append({n: 0.8 for n in LABEL_NAMES})
    out = calibrate.calibration_rows(confs, golds, rows, {"design": 0.5}, "sealed", n_boot=50)
    assert [r["label"] for r in out] == list(LABEL_NAMES)
    d = next(r for r in out if r["label"] == "design")
    assert 0.0 <= d["ece_ci_low"] <= d["ece_ci_high"] <= 1.0
    assert d["flagged_share"] == 0.0 and d["n"] == 60


# --------------------------------------------------------------------------- the guard
def test_the_guard_pulls_a_rarely_seen_decision_towards_the_base_rate() -> None:
    cal = LabelCalibrator(["a", "b"], [0.0, 3.0], [], 0.0, 200, 0.6, [190, 2], 5.0)
    raw = 1 / (1 + np.exp(-3.0))
    lam = 5.0 / (5.0 + 2)  # "b" was seen on 2 records
    assert cal.prob(Basis((), ("a", "b"))) == pytest.approx(lam * 0.6 + (1 - lam) * raw)
    # a common decision is barely moved, an unseen token gives the base rate itself
    assert cal.prob(Basis((), ("a",))) == pytest.approx(5 / 195 * 0.6 + 190 / 195 * 0.5)
    assert cal.prob(Basis((), ("a", "never-seen"))) == pytest.approx(0.6)
    # without counts (a calibrator saved before the guard) nothing is pulled
    old = LabelCalibrator(["a", "b"], [0.0, 3.0], [], 0.0, 200, 0.6)
    assert old.prob(Basis((), ("a", "b"))) == pytest.approx(raw)


def test_guard_regularisation_and_counts_round_trip_and_old_json_reads() -> None:
    bases, hits, _ = _synthetic(400)
    cal = calibrate.fit_label(bases, hits)
    d = json.loads(json.dumps(cal.to_json()))
    assert d["counts"] == cal.counts and d["c"] in calibrate.Recipe().c_grid
    again = LabelCalibrator.from_json(d)
    assert (again.shrink, again.c, again.counts) == (cal.shrink, cal.c, cal.counts)
    for b in bases[:30]:
        assert again.prob(b) == pytest.approx(cal.prob(b))
    legacy = {k: d[k] for k in ("tokens", "w_tokens", "w_nums", "bias", "n", "base_rate")}
    old = LabelCalibrator.from_json(legacy)
    assert old.shrink == 0.0 and old.counts is None


def _rare_noise(n: int, seed: int) -> tuple[list[Basis], np.ndarray]:
    """Right 80 % of the time whatever the basis says: every token is a rare, meaningless
    cell (seen 3-6 times), where an unguarded calibrator fits noise."""
    rng = np.random.default_rng(seed)
    bases = [Basis((), (f"val={rng.integers(0, n // 4)}", "abs=yes")) for _ in range(n)]
    return bases, (rng.random(n) < 0.8).astype(float)


def test_inner_cross_validation_guards_rare_cells_and_is_better_held_out() -> None:
    bases, hits = _rare_noise(400, 0)
    test, test_hits = _rare_noise(4000, 1)
    chosen = calibrate.fit_label(bases, hits)
    plain = calibrate.fit_label(bases, hits, c=1.0)  # one C, no guard: the old calibrator
    assert chosen.shrink > 0 or chosen.c < 1.0

    def logloss(cal: LabelCalibrator) -> float:
        p = np.clip([cal.prob(b) for b in test], 1e-4, 1 - 1e-4)
        return float(-np.mean(test_hits * np.log(p) + (1 - test_hits) * np.log(1 - p)))

    assert logloss(chosen) < logloss(plain)
    spread = [chosen.prob(b) for b in test]
    assert max(spread) - min(spread) < 0.2  # no cell is trusted far from the 80 % it is


def test_one_c_and_no_guard_when_the_recipe_says_so() -> None:
    bases, hits = _rare_noise(200, 2)
    fixed = calibrate.Recipe(c_grid=(1.0,), shrink_grid=(0.0,))
    cal = calibrate.fit_label(bases, hits, recipe=fixed)
    assert (cal.c, cal.shrink) == (1.0, 0.0)


# --------------------------------------------------------------------------- record flag
def test_a_record_needs_review_only_for_its_evidence_labels() -> None:
    assert labels.record_needs_review(["outcome", "comparator"])
    assert labels.record_needs_review(["sample_size"])
    assert not labels.record_needs_review(["comparator", "routes", "subgroups", "psychotherapy"])
    assert not labels.record_needs_review([])
    assert set(labels.RECORD_REVIEW_LABELS) <= set(LABEL_NAMES)
    golds = [{"design": "rct", "comparator": "placebo"}] * 2
    rows = [{"design": "rct", "comparator": "none"}] * 2
    confs = [{"design": 0.9, "comparator": 0.2}, {"design": 0.5, "comparator": 0.9}]
    rv = calibrate.review_block(confs, golds, rows, {"design": 0.7, "comparator": 0.5}, "dev_cv")
    # record 1: only the comparator is flagged (a per-label flag); record 2: its design
    assert rv["flagged_share"] == 0.5 and rv["any_label_flagged_share"] == 1.0
    assert rv["record_labels"] == list(labels.RECORD_REVIEW_LABELS)
    assert rv["accuracy_unflagged"] == 1.0  # its record labels (design) are right


def test_the_store_keeps_the_record_flag_to_the_evidence_labels(tmp_path: Path) -> None:
    from pipeline.records import Article
    from pipeline.store import Store

    with Store(tmp_path / "kea.sqlite") as s:
        s.upsert_batch([Article(pmid="1", title="t"), Article(pmid="2", title="u")])
        s.save_labels(
            [
                {"pmid": "1", "review_fields": ["comparator", "routes"], "needs_review": True},
                {"pmid": "2", "review_fields": ["comparator", "outcome"], "needs_review": True},
            ]
        )
        one, two = s.get_labels("1"), s.get_labels("2")
        assert one["review"] == ["comparator", "routes"] and one["needs_review"] is False
        assert two["needs_review"] is True
        s.add_correction("2", "outcome", "beneficial")  # a human settles the evidence label
        two = s.get_labels("2")
        assert two["review"] == ["comparator"] and two["needs_review"] is False


def test_the_newton_solver_finds_scikit_learns_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = np.hstack([rng.random((300, 6)) < 0.3, rng.normal(0, 2, (300, 2))]).astype(float)
    y = (rng.random(300) < 1 / (1 + np.exp(-(X @ rng.normal(0, 1, 8) - 0.5)))).astype(float)
    for c in (0.3, 1.0, 10.0):
        w, b = calibrate.logreg(X, y, c)
        ref = LogisticRegression(C=c, max_iter=5000, tol=1e-10).fit(X, y.astype(int))
        assert np.abs(w - ref.coef_[0]).max() < 1e-4 and abs(b - ref.intercept_[0]) < 1e-4
