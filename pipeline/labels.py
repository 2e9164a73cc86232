"""The label registry: every label of ../shared/TAXONOMY.md, declared once.

Everything that knows about labels derives from ``LABELS``: the store's columns and
their encoding, ``StudyFilter``'s fields, the CLI flags and their help, the dashboard's
widgets, correction form and display names, the export columns and the evaluation.
Adding a label is one ``Label(...)`` entry here, the code that predicts it, and its
tests (see the README, "Adding a label").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.errors import KeaError

Kind = Literal["single", "set", "integer", "boolean"]

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_NONE = ("", "none", "null")


@dataclass(frozen=True)
class Label:
    """One label: what values it takes, how it is stored, filtered, flagged and shown.

    ``name`` is the TAXONOMY name, the store column, the export column and the
    ``kea label --NAME`` flag. ``filter`` names the ``StudyFilter`` field that narrows
    by it (None: not filterable, like relevance, which is the filter's ``scope``):
    single and set labels filter any-of, an integer label by a minimum, a boolean one
    by yes/no. ``cli_flag`` is the repeatable filter flag of ``kea export``; ``url_key``
    is the dashboard's short URL key. ``flags_record``: a low-confidence value of this
    label puts the whole record under review (``needs_review``); the others' flags stay
    per label (``review_fields``).
    """

    name: str
    kind: Kind
    title: str
    help: str
    values: Mapping[str, str] = field(default_factory=dict)  # id -> display name, TAXONOMY order
    filter: str | None = None
    cli_flag: str | None = None
    url_key: str | None = None
    flags_record: bool = False

    # -- vocabulary -------------------------------------------------------------------
    @property
    def vocabulary(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def is_set(self) -> bool:
        return self.kind == "set"

    @property
    def has_vocabulary(self) -> bool:
        return self.kind in ("single", "set")

    def display(self, value: Any) -> str:
        """A value as people read it; a set as its values joined; None as an em dash."""
        if value is None or (self.is_set and not value):
            return "—"
        if self.is_set:
            return ", ".join(self.values.get(v, str(v)) for v in value)
        if self.kind == "boolean":
            return "yes" if value else "no"
        return self.values.get(value, str(value)) if self.has_vocabulary else str(value)

    # -- store encoding ---------------------------------------------------------------
    @property
    def sql_type(self) -> str:
        return "INTEGER" if self.kind in ("integer", "boolean") else "TEXT"

    def encode(self, value: Any) -> Any:
        """Python value -> SQLite value (sets as a sorted JSON array, booleans as 0/1)."""
        if self.is_set:
            return json.dumps(sorted(value or []))
        if value is None:
            return None
        if self.kind == "boolean":
            return int(bool(value))
        return value

    def decode(self, raw: Any) -> Any:
        """SQLite value -> Python value (the inverse of ``encode``)."""
        if self.is_set:
            return json.loads(raw) if raw else []
        if raw is None:
            return None
        if self.kind == "boolean":
            return bool(raw)
        return raw

    # -- human input ------------------------------------------------------------------
    def parse(self, raw: str) -> Any:
        """A correction typed by a person (``kea label``) -> a value, or one clear error."""
        raw = raw.strip()
        flag = f"--{self.name.replace('_', '-')}"
        if self.kind == "integer":
            if raw.lower() in _NONE:
                return None
            if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
                raise KeaError(f"{flag} must be a whole number or 'none', not {raw!r}")
            n = int(raw)
            if n <= 0:
                raise KeaError(f"{flag} must be positive, not {n}")
            return n
        if self.kind == "boolean":
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            if raw.lower() in _NONE:
                return None
            raise KeaError(f"{flag} must be true, false or none, not {raw!r}")
        if self.is_set:
            values = sorted({v.strip() for v in raw.split(",") if v.strip()})
            bad = [v for v in values if v not in self.values]
            if bad:
                raise KeaError(f"{flag}: {', '.join(bad)} not in {', '.join(self.values)}")
            return values
        if raw in self.values:
            return raw
        if raw.lower() in ("none", "null"):  # after the vocabulary: comparator has a "none"
            return None
        if raw not in self.values:
            raise KeaError(f"{flag}: {raw!r} is not one of {', '.join(self.values)}")
        return raw

    def check(self, value: Any) -> Any:
        """A value from code or a gold file: return it if valid, else raise ValueError."""
        if self.is_set:
            if not isinstance(value, list | tuple) or any(v not in self.values for v in value):
                raise ValueError(f"{self.name}: {value!r} is not a list of {list(self.values)}")
            return sorted(value)
        if value is None:
            return None
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{self.name}: {value!r} is not a positive whole number")
        elif self.kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: {value!r} is not true or false")
        elif value not in self.values:
            raise ValueError(f"{self.name}: {value!r} is not one of {list(self.values)}")
        return value


LABELS: tuple[Label, ...] = (
    Label(
        "relevance",
        "single",
        "Relevance",
        "is the record about ketamine for depression, PTSD or anxiety",
        {"in_scope": "In scope", "off_topic": "Off-topic"},
        flags_record=True,
    ),
    Label(
        "conditions",
        "set",
        "Conditions",
        "target conditions",
        {"depression": "Depression", "ptsd": "PTSD", "anxiety": "Anxiety"},
        filter="conditions",
        cli_flag="condition",
        url_key="c",
        flags_record=True,
    ),
    Label(
        "subgroups",
        "set",
        "Subgroups",
        "populations within the conditions",
        {
            "trd": "TRD",
            "bipolar": "Bipolar",
            "suicidality": "Suicidality",
            "perinatal": "Perinatal",
            "ocd": "OCD",
            "anxious_depression": "Anxious depression",
            "adolescents": "Adolescents",
            "older_adults": "Older adults",
            "veterans": "Veterans",
        },
        filter="subgroups",
        cli_flag="subgroup",
        url_key="sg",
    ),
    Label(
        "design",
        "single",
        "Design",
        "study design",
        {
            "rct": "RCT",
            "systematic_review": "Systematic review",
            "nonrandomized_trial": "Non-randomised trial",
            "observational": "Observational",
            "case_report": "Case report",
            "review": "Review / commentary",
            "preclinical": "Preclinical",
            "protocol": "Protocol",
        },
        filter="designs",
        cli_flag="design",
        url_key="d",
        flags_record=True,
    ),
    Label(
        "outcome",
        "single",
        "Outcome",
        "direction of the effect on the target condition",
        {
            "beneficial": "Beneficial",
            "no_benefit": "No benefit",
            "mixed": "Mixed",
            "not_reported": "Not reported",
        },
        filter="outcomes",
        cli_flag="outcome",
        url_key="o",
        flags_record=True,
    ),
    Label(
        "sample_size",
        "integer",
        "Sample size",
        "human participants randomised or enrolled (pooled, for reviews)",
        filter="min_n",
        cli_flag="min-n",
        url_key="n",
        flags_record=True,
    ),
    Label(
        "drug",
        "single",
        "Drug",
        "which ketamine",
        {
            "ketamine": "Ketamine",
            "esketamine": "Esketamine",
            "arketamine": "Arketamine",
            "multiple": "Multiple",
        },
        filter="drugs",
        cli_flag="drug",
        url_key="dr",
        flags_record=True,
    ),
    Label(
        "routes",
        "set",
        "Routes",
        "routes of administration",
        {
            "iv": "IV",
            "intranasal": "Intranasal",
            "oral": "Oral",
            "im": "IM",
            "sc": "SC",
            "sublingual": "Sublingual",
        },
        filter="routes",
        cli_flag="route",
        url_key="r",
    ),
    Label(
        "comparator",
        "single",
        "Comparator",
        "what ketamine was compared with",
        {
            "placebo": "Placebo",
            "midazolam": "Midazolam",
            "active_drug": "Active drug",
            "ect": "ECT",
            "none": "No comparator",
            "other": "Other",
        },
        filter="comparators",
        cli_flag="comparator",
        url_key="cmp",
    ),
    Label(
        "psychotherapy",
        "boolean",
        "Psychotherapy",
        "ketamine combined with a structured psychotherapy",
        filter="psychotherapy",
        cli_flag="psychotherapy",
        url_key="pt",
    ),
)

BY_NAME: dict[str, Label] = {lab.name: lab for lab in LABELS}
LABEL_NAMES: tuple[str, ...] = tuple(BY_NAME)
SET_LABELS: tuple[str, ...] = tuple(lab.name for lab in LABELS if lab.is_set)
FILTERABLE: tuple[Label, ...] = tuple(lab for lab in LABELS if lab.filter)
VOCAB: dict[str, tuple[str, ...]] = {lab.name: lab.vocabulary for lab in LABELS if lab.values}

# The labels whose review flag puts the whole record under review (`needs_review`): what
# the evidence summaries count (in scope, condition, design, direction, participants) and
# the drug form a clinician acts on. The other labels' flags stay per label
# (`review_fields`): a weak comparator flags most of its values and would flag every record.
RECORD_REVIEW_LABELS: tuple[str, ...] = tuple(lab.name for lab in LABELS if lab.flags_record)


def record_needs_review(review_fields: Iterable[str]) -> bool:
    """Whether these flagged labels put the record under review (RECORD_REVIEW_LABELS)."""
    return any(f in RECORD_REVIEW_LABELS for f in review_fields)


# Evidence strength for list ordering: systematic reviews and RCTs first.
DESIGN_RANK = {
    d: i
    for i, d in enumerate(
        (
            "systematic_review",
            "rct",
            "nonrandomized_trial",
            "observational",
            "case_report",
            "protocol",
            "review",
            "preclinical",
        )
    )
}


def get(name: str) -> Label:
    """The label called ``name``; an unknown name lists the valid ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeaError(f"unknown label {name!r}; valid: {', '.join(BY_NAME)}") from None


def display(value: Any) -> str:
    """Any label value by its display name, whichever label it belongs to."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _DISPLAY.get(str(value), str(value).replace("_", " ").capitalize())


_DISPLAY: dict[str, str] = {v: name for lab in LABELS for v, name in lab.values.items()}
