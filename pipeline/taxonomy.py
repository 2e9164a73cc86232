"""The label vocabulary of ../shared/TAXONOMY.md, in one place for code."""

from __future__ import annotations

from typing import Any

from pipeline.errors import KeaError

RELEVANCE = ("in_scope", "off_topic")
CONDITIONS = ("depression", "ptsd", "anxiety")
SUBGROUPS = (
    "trd", "bipolar", "suicidality", "perinatal", "ocd", "anxious_depression",
    "adolescents", "older_adults", "veterans",
)
DESIGNS = (
    "rct", "systematic_review", "nonrandomized_trial", "observational", "case_report",
    "review", "preclinical", "protocol",
)
OUTCOMES = ("beneficial", "no_benefit", "mixed", "not_reported")
DRUGS = ("ketamine", "esketamine", "arketamine", "multiple")
ROUTES = ("iv", "intranasal", "oral", "im", "sc", "sublingual")
COMPARATORS = ("placebo", "midazolam", "active_drug", "ect", "none", "other")

VOCAB: dict[str, tuple[str, ...]] = {
    "relevance": RELEVANCE,
    "conditions": CONDITIONS,
    "subgroups": SUBGROUPS,
    "design": DESIGNS,
    "outcome": OUTCOMES,
    "drug": DRUGS,
    "routes": ROUTES,
    "comparator": COMPARATORS,
}
SET_FIELDS = ("conditions", "subgroups", "routes")

# Evidence strength for list ordering: systematic reviews and RCTs first.
DESIGN_RANK = {d: i for i, d in enumerate(
    ("systematic_review", "rct", "nonrandomized_trial", "observational", "case_report",
     "protocol", "review", "preclinical"))}


def validate_label(field: str, raw: str) -> Any:
    """Turn a CLI/dashboard string into a label value, or say what is wrong with it."""
    raw = raw.strip()
    if field == "sample_size":
        if raw.lower() in ("", "none", "null"):
            return None
        try:
            n = int(raw)
        except ValueError:
            raise KeaError(f"--sample-size must be a whole number or 'none', not {raw!r}") from None
        if n <= 0:
            raise KeaError(f"--sample-size must be positive, not {n}")
        return n
    if field == "psychotherapy":
        if raw.lower() in ("true", "yes", "1"):
            return True
        if raw.lower() in ("false", "no", "0"):
            return False
        raise KeaError(f"--psychotherapy must be true or false, not {raw!r}")
    valid = VOCAB.get(field)
    if valid is None:
        raise KeaError(f"unknown label field {field!r}")
    if field in SET_FIELDS:
        values = sorted({v.strip() for v in raw.split(",") if v.strip()})
        bad = [v for v in values if v not in valid]
        if bad:
            raise KeaError(f"--{field}: {', '.join(bad)} not in {', '.join(valid)}")
        return values
    if field == "comparator" and raw.lower() in ("null",):
        return None
    if raw not in valid:
        raise KeaError(f"--{field}: {raw!r} is not one of {', '.join(valid)}")
    return raw
