"""Exact rules: facts that a pattern states outright, and cue features for the models.

Every rule returns its value and the short piece of the record's own text that drove
it, so the dashboard can show *why* a label was given. Modules:

- `matching`: the pattern engine (anchored case-insensitive patterns) and the memo;
- `numbers`: numbers written as words;
- `facts`: sample size, drug, routes, comparator, psychotherapy, subgroups, retraction;
- `conditions`: target conditions and relevance cues;
- `design`: study design cues and the explicit-design rule;
- `outcome`: the direction of the finding (sentences, conclusions, titles);
- `features`: numeric rule cues for the models (`RuleFeatures`).

This package re-exports the public rules, so callers write `rules.sample_size(a)`.
"""

from pipeline.classify.rules import (
    conditions,
    design,
    facts,
    features,
    matching,
    numbers,
    outcome,
)
from pipeline.classify.rules.conditions import (
    CONDITION_PATTERNS,
    OFFTOPIC_RE,
    condition_mentions,
    condition_model_effect,
    names_no_target,
    offtopic_cue,
    only_procedural_anxiety,
)
from pipeline.classify.rules.design import (
    DESIGN_CUE_NAMES,
    design_cues,
    design_from_metadata,
    design_rule,
    is_animal_study,
)
from pipeline.classify.rules.facts import (
    COMPARATOR_PATTERNS,
    NOUN_COUNT_RE,
    ROUTE_PATTERNS,
    comparator,
    drug,
    psychotherapy,
    retraction,
    routes,
    sample_size,
    subgroups,
)
from pipeline.classify.rules.features import RULE_FEATURE_NAMES, RuleFeatures, rule_features
from pipeline.classify.rules.matching import (
    CIPattern,
    Guarded,
    Hit,
    batch,
    ci,
    clear_caches,
    text_key,
)
from pipeline.classify.rules.numbers import normalise_numbers, words_to_int
from pipeline.classify.rules.outcome import (
    OutcomeCues,
    direction_rule,
    outcome_cues,
    sentence_direction,
    title_claim,
)

MODULES = (matching, numbers, facts, conditions, design, outcome, features)

__all__ = [
    "CONDITION_PATTERNS",
    "COMPARATOR_PATTERNS",
    "DESIGN_CUE_NAMES",
    "MODULES",
    "NOUN_COUNT_RE",
    "OFFTOPIC_RE",
    "RULE_FEATURE_NAMES",
    "ROUTE_PATTERNS",
    "CIPattern",
    "Guarded",
    "Hit",
    "OutcomeCues",
    "RuleFeatures",
    "batch",
    "ci",
    "clear_caches",
    "comparator",
    "condition_mentions",
    "condition_model_effect",
    "design_cues",
    "design_from_metadata",
    "design_rule",
    "direction_rule",
    "drug",
    "is_animal_study",
    "names_no_target",
    "normalise_numbers",
    "offtopic_cue",
    "only_procedural_anxiety",
    "outcome_cues",
    "psychotherapy",
    "retraction",
    "routes",
    "rule_features",
    "sample_size",
    "sentence_direction",
    "subgroups",
    "text_key",
    "title_claim",
    "words_to_int",
]
