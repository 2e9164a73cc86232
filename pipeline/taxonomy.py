"""Deprecated: the vocabulary now lives in ``pipeline.labels`` (kept until its users move)."""

from __future__ import annotations

from typing import Any

from pipeline.labels import DESIGN_RANK, SET_LABELS, VOCAB, get

RELEVANCE = VOCAB["relevance"]
CONDITIONS = VOCAB["conditions"]
SUBGROUPS = VOCAB["subgroups"]
DESIGNS = VOCAB["design"]
OUTCOMES = VOCAB["outcome"]
DRUGS = VOCAB["drug"]
ROUTES = VOCAB["routes"]
COMPARATORS = VOCAB["comparator"]
SET_FIELDS = SET_LABELS

__all__ = ["COMPARATORS", "CONDITIONS", "DESIGN_RANK", "DESIGNS", "DRUGS", "OUTCOMES",
           "RELEVANCE", "ROUTES", "SET_FIELDS", "SUBGROUPS", "VOCAB", "validate_label"]


def validate_label(field: str, raw: str) -> Any:
    return get(field).parse(raw)
