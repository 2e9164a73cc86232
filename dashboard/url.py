"""The dashboard's URL codec for ``StudyFilter``: short keys, so a shared link opens the same view.

Label filters use each label's ``Label.url_key`` (``pipeline.labels``); the other
fields have the fixed keys below. Writing leaves defaults out and joins sets with
commas (``st.query_params.to_dict()`` keeps only one value per key); reading is
tolerant: a hand-edited (or hostile) URL with bad values loses those values, it never
raises, and ``read_query_params`` says which keys it dropped so the page can tell the user.
Numbers are bounded: a 20-digit value would overflow SQLite's INTEGER, and Unicode digits
("٢٠٢٠") are not what the URL shows, so only ASCII digits within range are read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.errors import KeaError
from pipeline.labels import Label
from pipeline.query import FILTER_LABELS, POPULATIONS, SCOPES, StudyFilter
from pipeline.records import pmid_or_none
from pipeline.search import check as check_search
from pipeline.search import check_added_since

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
    "added_since": "added",
    "registered": "reg",
}
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
YEARS = (1900, 2100)  # what the sidebar's year widgets accept
MAX_COUNT = 999_999_999  # an integer label's minimum (as `kea label` accepts: 9 digits)
MAX_SEARCH = 500  # characters of a search phrase taken from a URL
MAX_PAGE = 100_000


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


def bounded_int(value: str | None, low: int, high: int) -> int | None:
    """ASCII digits (an optional '-') within [low, high], else None: never an overflow."""
    v = (value or "").strip()
    digits = v[1:] if v.startswith("-") else v
    if not digits or len(digits) > 12 or not (digits.isascii() and digits.isdigit()):
        return None
    n = int(v)
    return n if low <= n <= high else None


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
    for name in ("year_from", "year_to", "search", "needs_review", "retracted", "added_since"):
        value = getattr(f, name)
        if value is not None:
            out[OTHER_KEYS[name]] = _scalar(value)
    if f.scope != "in_scope":
        out[OTHER_KEYS["scope"]] = f.scope
    if f.population != "all":
        out[OTHER_KEYS["population"]] = f.population
    if f.include_deleted:
        out[OTHER_KEYS["include_deleted"]] = "1"
    if f.registered is not None:
        out[OTHER_KEYS["registered"]] = _scalar(f.registered)
    return out


def _label_value(lab: Label, raw: object) -> tuple[Any, bool]:
    """One label filter from the URL and whether all of it was usable (bad values dropped)."""
    if lab.has_vocabulary:
        given = list(dict.fromkeys(_as_list(raw)))
        kept = tuple(v for v in given if v in lab.values)
        return kept, len(kept) == len(given)
    text = _last(raw)
    if lab.kind == "integer":
        n = bounded_int(text, 1, MAX_COUNT)
        return n, n is not None or text is None
    b = _bool_or_none(text)
    return b, b is not None or text is None


def _choice(raw: str | None, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    return (raw, True) if raw in allowed else (default, raw is None)


def read_query_params(params: Mapping[str, Any]) -> tuple[StudyFilter, list[str]]:
    """The filter a URL asks for, and the URL keys whose values were dropped (for a notice).

    Never raises: every value is checked against its label's vocabulary or a range.
    """
    kw: dict[str, Any] = {}
    dropped: list[str] = []

    def keep(name: str, key: str, value: Any, ok: bool) -> None:
        kw[name] = value
        if not ok:
            dropped.append(key)

    for name, lab in FILTER_LABELS.items():
        keep(name, label_key(lab), *_label_value(lab, params.get(label_key(lab))))
    k = OTHER_KEYS
    for name in ("needs_review", "retracted", "include_deleted", "registered"):
        text = _last(params.get(k[name]))
        b = _bool_or_none(text)
        keep(name, k[name], b, b is not None or text is None)
    kw["include_deleted"] = kw["include_deleted"] is True
    for name in ("year_from", "year_to"):
        text = _last(params.get(k[name]))
        year = bounded_int(text, *YEARS)
        keep(name, k[name], year, year is not None or text is None)
    search = (_last(params.get(k["search"])) or "").strip()
    # a cut phrase would search for something else, an unreadable one raise: drop either
    fits = len(search) <= MAX_SEARCH and check_search(search) is None
    keep("search", k["search"], (search if fits else "") or None, fits)
    added = _last(params.get(k["added_since"]))
    try:
        since = check_added_since(added)
    except KeaError:
        since = None
    keep("added_since", k["added_since"], since, since is not None or not (added or "").strip())
    keep("scope", k["scope"], *_choice(_last(params.get(k["scope"])), SCOPES, "in_scope"))
    keep(
        "population",
        k["population"],
        *_choice(_last(params.get(k["population"])), POPULATIONS, "all"),
    )
    return StudyFilter(**kw), dropped


def from_query_params(params: Mapping[str, Any]) -> StudyFilter:
    """Tolerant reading of a (possibly hand-edited) URL: bad values are dropped, never raised."""
    return read_query_params(params)[0]


def read_pmid(value: object) -> tuple[str | None, bool]:
    """The ``pmid`` page parameter: a PubMed id or None, and whether the value was usable."""
    text = _last(value)
    pmid = pmid_or_none(text)
    return pmid, pmid is not None or not (text or "").strip()


def read_page(value: object) -> tuple[int | None, bool]:
    """The ``page`` page parameter (1-based), and whether the value was usable."""
    text = _last(value)
    n = bounded_int(text, 1, MAX_PAGE)
    return n, n is not None or not (text or "").strip()


def dropped_notice(keys: list[str]) -> str | None:
    """One plain line naming the URL keys that were ignored (never their values)."""
    if not keys:
        return None
    shown = ", ".join(f"`{k}`" for k in dict.fromkeys(keys))  # our own keys, never values
    return (
        f"Some of this link's settings were not valid and were ignored ({shown}); "
        "the page shows the rest."
    )
