"""Model probabilities + exact rules -> one label row per record.

Rows follow the Store.save_labels contract.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipeline.classify import rules
from pipeline.classify.calibrate import Basis, Calibration, logit
from pipeline.classify.registry import KeaModel
from pipeline.labels import LABEL_NAMES, VOCAB, record_needs_review
from pipeline.records import Article
from pipeline.store import content_hash

CONDITIONS = VOCAB["conditions"]
# Designs whose abstracts carry no efficacy result by definition.
NO_RESULT_DESIGNS = ("protocol",)
RESULT_DESIGNS = ("rct", "systematic_review", "nonrandomized_trial", "observational")
# The head probability a rule's decision is given before calibration (title, publication
# type): only an input of the calibrator, which learns how often such decisions are right.
RULE_CONFIDENCE = 0.9
# Conditions a subgroup belongs to: a subgroup is kept only when its condition is.
SUBGROUP_CONDITION = {
    "trd": "depression",
    "bipolar": "depression",
    "suicidality": "depression",
    "perinatal": "depression",
    "ocd": "anxiety",
    "anxious_depression": "depression",
}


def _top(d: dict[str, float]) -> tuple[str, float]:
    label = max(d, key=lambda k: d[k])
    return label, d[label]


def calibration_of(model: Any) -> Calibration | None:
    """The per-label calibration a model carries (a fitted KeaModel through its portable form)."""
    cal = getattr(model, "calibration_", None)
    if cal is None:
        cal = getattr(getattr(model, "portable_", None), "calibration_", None)
    return cal


def _abs(a: Article) -> str:
    return "abs=yes" if a.abstract_sections else "abs=no"


def _n_tok(name: str, values: Sequence[str]) -> tuple[str, ...]:
    n = len(values)
    return (f"{name}_n={min(n, 2)}", *(f"{name}={v}" for v in values))


def _size_bucket(n: int | None) -> str:
    if n is None:
        return "val=none"
    if n == 1:
        return "val=1"
    return "val=2-19" if n < 20 else "val=20-199" if n < 200 else "val=200+"


def label_record(
    a: Article, probs: dict[str, dict[str, float]], model: KeaModel, model_version: str | None
) -> dict[str, Any]:
    """Decide every TAXONOMY field for one record from head probabilities and rules."""
    return decide(a, probs, model, model_version)[0]


def decide(
    a: Article, probs: dict[str, dict[str, float]], model: KeaModel, model_version: str | None
) -> tuple[dict[str, Any], dict[str, Basis]]:
    """The label row and, per label, how its value was decided (the calibrator's input).

    With a calibrated model, ``confidence[label]`` is the calibrated probability that the
    shown value is right and ``review_fields`` the labels below their review threshold."""
    conf: dict[str, float] = {}
    basis: dict[str, Basis] = {}
    ev: dict[str, str] = {}
    review: list[str] = []
    thr = model.review_threshold
    use_rules = getattr(model, "overrides_", False)

    rel, p_rel = _top(probs["relevance"])
    rel_src = "src=head"
    if (
        use_rules
        and rel == "in_scope"
        and (rules.names_no_target(a) or rules.only_procedural_anxiety(a)[0])
    ):
        rel, p_rel = "off_topic", max(probs["relevance"].get("off_topic", 0.0), RULE_CONFIDENCE)
        rel_src = "src=rule_off"
    elif use_rules and rel == "off_topic" and rules.condition_model_effect(a)[0]:
        rel, p_rel = "in_scope", max(probs["relevance"].get("in_scope", 0.0), RULE_CONFIDENCE)
        rel_src = "src=rule_in"
    conf["relevance"] = round(p_rel, 3)
    basis["relevance"] = Basis(
        (logit(probs["relevance"].get(rel)),), (rel_src, f"val={rel}", _abs(a))
    )
    if p_rel < thr:
        review.append("relevance")
    cond_hits = rules.condition_mentions(a)
    if rel == "in_scope":
        first = [t for c in CONDITIONS if (t := cond_hits[c][2])]
        ev["relevance"] = f"ketamine + {', '.join(first[:3])}" if first else "model"
    else:
        ev["relevance"] = rules.offtopic_cue(a) or "no target condition named"

    # conditions: every condition above 0.5, at least the likeliest one when in scope
    conditions: list[str] = []
    uncertain_cond = False
    for c in CONDITIONS:
        p = probs["conditions"].get(c, 0.0)
        conf[f"conditions:{c}"] = round(p, 3)
        if p >= 0.5:
            conditions.append(c)
        if 1 - thr < p < thr and rel == "in_scope":
            uncertain_cond = True
    title_added = False
    if rel == "in_scope" and use_rules:
        # a condition the title names is a condition the study is about
        for c in CONDITIONS:
            if cond_hits[c][0] and c not in conditions:
                conditions.append(c)
                title_added = True
                conf[f"conditions:{c}"] = max(conf[f"conditions:{c}"], RULE_CONFIDENCE)
    if rel == "off_topic":
        conditions = []
    elif not conditions:
        conditions = [max(CONDITIONS, key=lambda c: probs["conditions"].get(c, 0.0))]
    if uncertain_cond:
        review.append("conditions")
    # the head's probability that every member decision is right, and its weakest one
    member_ok = [
        probs["conditions"].get(c, 0.0) if c in conditions else 1 - probs["conditions"].get(c, 0.0)
        for c in CONDITIONS
    ]
    p_set = 1.0
    for p in member_ok:
        p_set *= p
    conf["conditions"] = round(p_set, 3)
    basis["conditions"] = Basis(
        (logit(p_set), logit(min(member_ok))),
        (
            f"rel={rel}",
            "src=title_added" if title_added else "src=head",
            _abs(a),
            *_n_tok("cond", sorted(conditions)),
        ),
    )
    for c in conditions:
        if cond_hits[c][2]:
            ev[f"conditions:{c}"] = cond_hits[c][2]

    # design: an explicit statement wins over the model
    design, p_design = _top(probs["design"])
    p_design_top = p_design
    rule_design, rule_ev = rules.design_rule(a) if use_rules else (None, None)
    if rule_design is not None:
        design = rule_design
        p_design = max(probs["design"].get(rule_design, 0.0), RULE_CONFIDENCE)
        ev["design"] = str(rule_ev)
    else:
        cues = rules.design_cues(a)
        ev["design"] = next(iter(cues.values()), "model")
    conf["design"] = round(p_design, 3)
    if p_design < thr:
        review.append("design")
    basis["design"] = Basis(
        (logit(probs["design"].get(design)), logit(p_design_top)),
        (
            "src=rule" if rule_design is not None else "src=head",
            f"val={design}",
            _abs(a),
            f"rel={rel}",
        ),
    )

    # outcome: none for off-topic records and protocols; a title-only record says what its
    # title claims; otherwise the model judges whether a result is reported and the
    # negation-aware direction rule may turn it into no_benefit or mixed.
    if rel == "off_topic" or design in NO_RESULT_DESIGNS:
        outcome, p_out = "not_reported", p_rel if rel == "off_topic" else p_design
        ev["outcome"] = "off-topic record" if rel == "off_topic" else "protocol: no results"
    elif use_rules and not a.abstract_sections:
        claim, cev = rules.title_claim(a)
        outcome = claim or "not_reported"
        p_out = model.fact_accuracy_.get("outcome_title", 0.7)
        ev["outcome"] = f"title: {cev}" if cev else "title only: no finding stated"
    else:
        outcome, p_out = _top(probs["outcome"])
        cues = rules.outcome_cues(a)
        if cues.evidence:
            ev["outcome"] = cues.evidence
        # an explicit finding about the target condition in the conclusion is itself a
        # reported result, whatever the model thinks of the rest of the abstract
        if use_rules and (probs["outcome"].get("not_reported", 0.0) < 0.5 or cues.topical):
            direction, dev = rules.direction_rule(a)
            if direction and direction != outcome:
                outcome = direction
                p_out = max(probs["outcome"].get(direction, 0.0), 0.5)
                ev["outcome"] = str(dev)
            elif (
                direction is None
                and outcome == "not_reported"
                and cues.topical
                and cues.pos > cues.neg + cues.mixed
                and design in RESULT_DESIGNS
            ):
                # a trial or review whose conclusion states a benefit on the target
                # condition has reported a result, even when the model doubted it
                outcome = "beneficial"
                p_out = max(probs["outcome"].get("beneficial", 0.0), 0.5)
    conf["outcome"] = round(p_out, 3)
    if p_out < thr:
        review.append("outcome")

    # exact facts
    basis["outcome"] = _outcome_basis(a, probs, rel, design, outcome, p_out, use_rules)
    row_facts: dict[str, Any] = {}
    for fld, (val, fev) in (
        ("sample_size", rules.sample_size(a)),
        ("drug", rules.drug(a)),
        ("routes", rules.routes(a)),
        ("comparator", rules.comparator(a, design)),
        ("psychotherapy", rules.psychotherapy(a)),
    ):
        row_facts[fld] = val
        conf[fld] = model.fact_accuracy_.get(fld, 0.5)
        if fev:
            ev[fld] = str(fev)[:240]
        basis[fld] = _fact_basis(fld, val, fev, a, rel, design)
    if rel == "off_topic":
        row_facts["psychotherapy"] = False
    if not use_rules:
        # baselines extract no facts: their numbers must not borrow the rules'
        row_facts = {
            "sample_size": None,
            "drug": None,
            "routes": [],
            "comparator": None,
            "psychotherapy": False,
        }
        for fld in row_facts:
            conf.pop(fld, None)
            ev.pop(fld, None)
            basis.pop(fld, None)
    subs, sev = rules.subgroups(a) if rel == "in_scope" and use_rules else ([], None)
    subs = [
        s
        for s in subs
        if SUBGROUP_CONDITION.get(s, conditions[0] if conditions else "") in conditions
    ]
    if sev and subs:
        ev["subgroups"] = sev
    conf["subgroups"] = model.fact_accuracy_.get("subgroups", 0.5)
    basis["subgroups"] = Basis(
        (), (f"rel={rel}", _abs(a), "ev=yes" if sev else "ev=no", *_n_tok("sub", sorted(subs)))
    )

    cal = calibration_of(model)
    if cal is not None:
        # the calibrated probability that each shown value is right replaces the raw ones;
        # a label is flagged when it is below its own review threshold
        review = []
        for name in LABEL_NAMES:
            b = basis.get(name)
            p = cal.confidence(name, b) if b is not None else None
            if p is None:
                continue
            conf[name] = round(p, 3)
            if p < cal.review_thresholds.get(name, thr):
                review.append(name)

    retracted, rev = rules.retraction(a)
    if retracted:
        ev["retraction"] = str(rev)
        review.append("relevance") if "relevance" not in review else None

    row = {
        "pmid": a.pmid,
        "model_version": model_version,
        "content_hash": content_hash(a),
        "relevance": rel,
        "conditions": sorted(conditions),
        "subgroups": sorted(subs),
        "design": design,
        "outcome": outcome,
        **row_facts,
        "confidence": conf,
        "evidence": {k: _clip(v) for k, v in ev.items() if v},
        # per-label flags in review_fields; the record is flagged by its evidence labels
        "needs_review": record_needs_review(review),
        "review_fields": sorted(set(review)),
    }
    return row, basis


def _outcome_basis(
    a: Article,
    probs: dict[str, dict[str, float]],
    rel: str,
    design: str,
    outcome: str,
    p_out: float,
    use_rules: bool,
) -> Basis:
    """How the outcome was decided, read from the decision's result (not its code path)."""
    head = probs["outcome"]
    if rel == "off_topic":
        src = "src=off_topic"
    elif design in NO_RESULT_DESIGNS:
        src = "src=no_result_design"
    elif use_rules and not a.abstract_sections:
        src = "src=title"
    elif head and outcome == _top(head)[0]:
        src = "src=head"
    else:
        src = "src=rule"
    return Basis(
        (logit(head.get(outcome)), logit(p_out)),
        (src, f"val={outcome}", _abs(a), f"design={design}"),
    )


def _fact_basis(fld: str, val: Any, fev: Any, a: Article, rel: str, design: str) -> Basis:
    """Tokens of an exact rule's decision: its value (bucketed), whether it quoted evidence,
    the design it was read under and whether there was an abstract."""
    if fld == "sample_size":
        v = _size_bucket(val)
    elif fld == "routes":
        return Basis((), (f"rel={rel}", _abs(a), *_n_tok("route", sorted(val or []))))
    else:
        v = f"val={val}"
    return Basis((), (v, "ev=yes" if fev else "ev=no", _abs(a), f"design={design}", f"rel={rel}"))


_SPACES_RE = re.compile(r"\s+")


def _clip(s: str, n: int = 240) -> str:
    # printable with no double space: no whitespace but single ' ' (\s chars other than
    # ' ' are all non-printable), so the regex would change nothing
    s = (s if s.isprintable() and "  " not in s else _SPACES_RE.sub(" ", s)).strip()
    return s if len(s) <= n else s[: n - 1] + "…"


def predict_articles(
    articles: Sequence[Article], model: KeaModel, model_version: str | None = None
) -> list[dict[str, Any]]:
    """Label rows for these records (pure: no store, no files)."""
    return predict_with_basis(articles, model, model_version)[0]


def predict_with_basis(
    articles: Sequence[Article], model: KeaModel, model_version: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Basis]]]:
    """Label rows and each row's decision bases (what calibration is fitted on)."""
    articles = list(articles)
    with rules.batch(articles):
        probs = model.predict_fields(articles)
        version = model_version or getattr(model, "version_", None) or model.name
        pairs = [decide(a, p, model, version) for a, p in zip(articles, probs, strict=True)]
    return [r for r, _ in pairs], [b for _, b in pairs]
