"""The dashboard's URL codec for ``StudyFilter``: short keys, so a shared link opens the same view.

Label filters use each label's ``Label.url_key`` (``pipeline.labels``); the other
fields have the fixed keys below. Writing leaves defaults out and joins sets with
commas (``st.query_params.to_dict()`` keeps only one value per key); reading is
tolerant: a hand-edited URL with bad values loses those values, it never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.labels import Label
from pipeline.query import FILTER_LABELS, POPULATIONS, SCOPES, StudyFilter

# StudyFilter fields that are not labels -> their URL key
OTHER_KEYS = {
    "year_from": "yf",
    "year_to": "yt",
    "search": "q",
    "needs_review": "nr",
    "retracted": "ret",
    "scope": "sc",
    "population": "pop",
    "include_deleted": "del",
}
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def label_key(lab: Label) -> str:
    """A label's URL key (its name when the registry gives none)."""
    return lab.url_key or lab.name


def url_keys() -> dict[str, str]:
    """Every StudyFilter field -> its URL key (a test checks they are unique)."""
    return {**{name: label_key(lab) for name, lab in FILTER_LABELS.items()}, **OTHER_KEYS}


def _as_list(value: object) -> list[str]:
    """Query params arrive as 'a,b', ['a', 'b'] or ['a,b']; give ['a', 'b']."""
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


def _last(value: object) -> str | None:
    """The last of repeated values (a URL edited by hand may repeat a key)."""
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    return None if value is None else str(value)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _bool_or_none(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


def _scalar(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def to_query_params(f: StudyFilter) -> dict[str, str]:
    """The filter as short URL keys, defaults left out, sets comma-joined."""
    out: dict[str, str] = {}
    for name, lab in FILTER_LABELS.items():
        value = getattr(f, name)
        if lab.has_vocabulary:
            if value:
                out[label_key(lab)] = ",".join(value)
        elif value is not None:
            out[label_key(lab)] = _scalar(value)
    for name in ("year_from", "year_to", "search", "needs_review", "retracted"):
        value = getattr(f, name)
        if value is not None:
            out[OTHER_KEYS[name]] = _scalar(value)
    if f.scope != "in_scope":
        out[OTHER_KEYS["scope"]] = f.scope
    if f.population != "all":
        out[OTHER_KEYS["population"]] = f.population
    if f.include_deleted:
        out[OTHER_KEYS["include_deleted"]] = "1"
    return out


def _label_value(lab: Label, raw: object) -> Any:
    """One label filter from the URL; values the label cannot take are dropped."""
    if lab.has_vocabulary:
        return tuple(v for v in dict.fromkeys(_as_list(raw)) if v in lab.values)
    if lab.kind == "integer":
        n = _int_or_none(_last(raw))
        return n if n is not None and n > 0 else None
    return _bool_or_none(_last(raw))


def from_query_params(params: Mapping[str, str | list[str]]) -> StudyFilter:
    """Tolerant reading of a (possibly hand-edited) URL: bad values are dropped, never raised."""
    kw: dict[str, Any] = {
        name: _label_value(lab, params.get(label_key(lab))) for name, lab in FILTER_LABELS.items()
    }
    k = OTHER_KEYS
    kw["needs_review"] = _bool_or_none(_last(params.get(k["needs_review"])))
    kw["retracted"] = _bool_or_none(_last(params.get(k["retracted"])))
    kw["year_from"] = _int_or_none(_last(params.get(k["year_from"])))
    kw["year_to"] = _int_or_none(_last(params.get(k["year_to"])))
    kw["search"] = (_last(params.get(k["search"])) or "").strip() or None
    scope = _last(params.get(k["scope"]))
    kw["scope"] = scope if scope in SCOPES else "in_scope"
    pop = _last(params.get(k["population"]))
    kw["population"] = pop if pop in POPULATIONS else "all"
    kw["include_deleted"] = _bool_or_none(_last(params.get(k["include_deleted"]))) is True
    return StudyFilter(**kw)
