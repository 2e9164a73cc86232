"""The matching engine of the rules: case-insensitive patterns with literal anchors,
and the per-record memo that makes each rule run once per record.
"""

from __future__ import annotations

import gc
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache, wraps
from typing import Any, TypeVar

from pipeline.records import Article

Hit = tuple[object, str | None]  # (value, evidence)
F = TypeVar("F", bound=Callable[..., Any])

# Rules are asked the same question several times per record (features for two
# heads, overrides, evidence); a small LRU keyed on the text they read makes each
# rule run once per record.
_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_MAX = 60_000


# Per-batch precomputed (record, cache key, texts, the record's own memo), looked up by the
# record's identity. Each entry holds the record itself and a lookup checks
# `entry[0] is article`, so an id reused by another object (after the batch) can never
# return this record's data. The record's memo ((rule, args) -> value) answers the repeated
# questions of a batch without hashing the text key again (a rule is asked ~3 times).
_BATCH: dict[
    int, tuple[Article, tuple[Any, ...], tuple[str, str, str], dict[tuple[Any, ...], Any]]
] = {}


def _key_of(article: Article) -> tuple[Any, ...]:
    return (
        article.title,
        article.abstract,
        tuple(article.publication_types),
        tuple(article.mesh_terms),
    )


def text_key(article: Article) -> tuple[Any, ...]:
    """What the rules read of a record (its cache key)."""
    entry = _BATCH.get(id(article))
    if entry is not None and entry[0] is article:
        return entry[1]
    return _key_of(article)


@contextmanager
def batch(articles: Iterable[Article]) -> Iterator[None]:
    """Compute each record's cache key and texts once for a batch; nested batches keep the
    outer entries.

    The cyclic garbage collector is paused for the batch: labelling allocates many small
    objects, which start full collections that walk the memo cache and the model again and
    again (~7% of the prediction time); reference counting still frees everything the
    rules drop, and the collector resumes (and catches up) when the batch ends."""
    articles = list(articles)
    added: list[int] = []
    for a in articles:
        entry = _BATCH.get(id(a))
        if entry is None or entry[0] is not a:
            key = _key_of(a)  # the abstract is assembled once, for the key and the texts
            title, abstract = key[0] or "", key[1] or ""
            _BATCH[id(a)] = (a, key, (title, abstract, f"{title}\n{abstract}"), {})
            added.append(id(a))
    was_enabled = gc.isenabled()  # a caller that paused it keeps it paused
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        for i in added:
            _BATCH.pop(i, None)


def clear_caches() -> None:
    """Forget every memoised rule result (benchmarks measure cold caches)."""
    _CACHE.clear()
    for entry in _BATCH.values():
        entry[3].clear()


def _make_texts(article: Article) -> tuple[str, str, str]:
    title = article.title or ""
    abstract = article.abstract or ""
    return title, abstract, f"{title}\n{abstract}"


def texts(article: Article) -> tuple[str, str, str]:
    """(title, abstract, title + newline + abstract), '' for missing parts: built once per
    record inside a batch, so every rule reads the same string objects (and `_lower`
    lowercases each once) instead of rebuilding `Article.abstract` per rule."""
    entry = _BATCH.get(id(article))
    return entry[2] if entry is not None and entry[0] is article else _make_texts(article)


_MISSING = object()


def memo(fn: F) -> F:
    name = fn.__name__

    @wraps(fn)
    def wrapper(article: Article, *args: Any) -> Any:
        entry = _BATCH.get(id(article))
        if entry is not None and entry[0] is article:
            own = entry[3]
            value = own.get((name, args), _MISSING)
            if value is not _MISSING:
                return value
            key = (name, entry[1], args)
        else:
            own = None
            key = (name, _key_of(article), args)
        value = _CACHE.get(key, _MISSING)
        if value is not _MISSING:
            _CACHE.move_to_end(key)
        else:
            value = fn(article, *args)
            _CACHE[key] = value
            if len(_CACHE) > _CACHE_MAX:
                _CACHE.popitem(last=False)
        if own is not None:
            own[(name, args)] = value
        return value

    return wrapper  # type: ignore[return-value]


def _class_end(text: str, i: int) -> int:
    """Index just past the character class that opens at text[i] ('['), or -1."""
    j = i + 1
    if text[j : j + 1] == "^":
        j += 1
    if text[j : j + 1] == "]":
        j += 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "]":
            return j + 1
        j += 1
    return -1


def _split_alternatives(body: str) -> list[str] | None:
    """The top-level alternatives of a group body, or None when a class or escape makes the
    split uncertain."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            cur.append(body[i : i + 2])
            i += 2
            continue
        if ch == "[":  # a character class: copied whole, its '|' and ')' are literal
            j = _class_end(body, i)
            if j < 0:
                return None
            cur.append(body[i:j])
            i = j
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def literal_first(pattern: str) -> str:
    """'\\b(?:this|our)...' rewritten as 't(?<!\\wt)his|o(?<!\\wo)ur)...': the same matches,
    but every alternative starts with a literal, so `re` scans for its first characters
    instead of trying the group at every position (several times faster on long text).
    Patterns of another shape are returned unchanged."""
    if not pattern.startswith("\\b(?:"):
        return pattern
    i = _group_end(pattern, 5)
    if i < 0:
        return pattern
    if pattern[i + 1 : i + 2] in ("?", "*", "+", "{"):
        return pattern  # the group may match nothing: its \b guards what follows
    alts = _split_alternatives(pattern[5:i])
    if not alts:
        return pattern
    out = []
    for alt in alts:
        first, rest = alt[:1], alt[1:]
        if not (first.isascii() and first.isalnum()) or rest[:1] in ("?", "*", "+", "{", ""):
            return pattern
        out.append(f"{first}(?<!\\w{first}){rest}")
    return "(?:" + "|".join(out) + ")" + pattern[i + 1 :]


def _group_end(pattern: str, i: int) -> int:
    """Index of the ')' closing the group whose inside starts at pattern[i], or -1."""
    depth = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = _class_end(pattern, i)
            if j < 0:
                return -1
            i = j
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def first_letter_grouped(pattern: str) -> str:
    """'\\b(?:this|that|our)...' rewritten as '\\b(?:t(?:his|hat)|o(?:ur))...': the same
    matches (alternatives of different first letters cannot both match at one place, and
    each letter's alternatives keep their order), but `re` reads one letter per place
    instead of trying every alternative (~30% faster scans of long alternations). Patterns
    of another shape, or with capturing groups in the alternatives, are returned unchanged."""
    if not pattern.startswith("\\b(?:"):
        return pattern
    end = _group_end(pattern, 5)
    if end < 0:
        return pattern
    body = pattern[5:end]
    if re.search(r"(?<!\\)\((?!\?)|\(\?P<", body):
        return pattern  # a capturing group: reordering would renumber it
    alts = _split_alternatives(body)
    if not alts or len(alts) < 3:
        return pattern
    # an alternative that does not start with a letter ('\\w+-like') may match where any
    # other does: it stays in its place, and only the runs between such ones are grouped
    out: list[str] = []
    groups: dict[str, list[str]] = {}
    for alt in alts:
        first, rest = alt[:1], alt[1:]
        if first.isascii() and first.isalnum() and rest[:1] not in ("?", "*", "+", "{"):
            groups.setdefault(first, []).append(rest)
            continue
        out += [f"{c}(?:{'|'.join(rests)})" for c, rests in groups.items()]
        out.append(alt)
        groups = {}
    out += [f"{c}(?:{'|'.join(rests)})" for c, rests in groups.items()]
    if len(out) == len(alts):
        return pattern  # nothing to group
    return f"\\b(?:{'|'.join(out)}){pattern[end + 1 :]}"


class CIPattern:
    """A case-insensitive pattern matched on lowercased text, several times faster in `re`
    than re.IGNORECASE (which disables literal-prefix scanning); matches report the
    original text's characters."""

    __slots__ = ("pattern", "anchors", "_lowsrc", "_low", "_slow")

    def __init__(self, pattern: str, anchors: tuple[str, ...] = (), fast: bool = False):
        self.pattern = pattern
        # lowercase substrings of which every match contains one: a cheap `in` test
        # skips the regex on most texts (tests check anchored == unanchored on the corpus)
        self.anchors = anchors
        low = re.sub(r"(?<!\\)[A-Z]", lambda m: m.group(0).lower(), pattern)
        # `fast`: the leading '\\b(?:a|b)' group rewritten literal-first (same matches)
        self._lowsrc = low
        grouped = first_letter_grouped(low)
        self._low = re.compile(literal_first(grouped) if fast else grouped)
        self._slow = re.compile(pattern, re.I)

    def make_fast(self) -> CIPattern:
        """Rewrite the leading '\\b(?:a|b)' group literal-first (`literal_first`, after
        `first_letter_grouped`): the same matches, found faster where its alternatives
        start with few distinct letters (measured per pattern; tests compare both forms
        on the corpus)."""
        self._low = re.compile(literal_first(first_letter_grouped(self._lowsrc)))
        return self

    def _pair(self, text: str) -> tuple[re.Pattern[str], str, str]:
        low = lower(text)
        if len(low) != len(text):  # a few Unicode letters change length when lowercased
            return self._slow, text, text
        return self._low, low, text

    def _absent(self, low: str) -> bool:
        """True when no anchor occurs in the text (a plain loop: no generator per call)."""
        for a in self.anchors:
            if a in low:
                return False
        return bool(self.anchors)

    def search(self, text: str, pos: int = 0) -> _Match | None:
        # _pair and _absent inlined: this runs ~60 times per record
        low = lower(text)
        # a few Unicode letters change length when lowercased: then the re.I pattern
        # reads the original text (and so do the anchors, as `_pair`/`_absent` do)
        slow = len(low) != len(text)
        if slow:
            low = text
        if self.anchors:
            for a in self.anchors:
                if a in low:
                    break
            else:
                return None
        m = (self._slow if slow else self._low).search(low, pos)
        return _Match(m, text) if m else None

    def match(self, text: str, pos: int = 0) -> _Match | None:
        pat, low, orig = self._pair(text)
        if self._absent(low):
            return None
        m = pat.match(low, pos)
        return _Match(m, orig) if m else None

    def finditer(self, text: str) -> Iterable[_Match]:
        pat, low, orig = self._pair(text)
        return (_Match(m, orig) for m in pat.finditer(low))

    def findall(self, text: str) -> list[str]:
        """Whole matches, lowercased (only used where no capturing groups are)."""
        pat, low, _ = self._pair(text)
        if self._absent(low):
            return []
        return pat.findall(low)


class _Match:
    __slots__ = ("_m", "_text")

    def __init__(self, m: re.Match[str], text: str):
        self._m = m
        self._text = text

    def group(self, n: int = 0) -> str:
        a, b = self._m.span(n)
        return self._text[a:b]

    def start(self, n: int = 0) -> int:
        return self._m.start(n)

    def end(self, n: int = 0) -> int:
        return self._m.end(n)


def ci(pattern: str, anchors: tuple[str, ...] = (), fast: bool = False) -> CIPattern:
    return CIPattern(pattern, anchors, fast)


class Guarded:
    """A case-sensitive pattern behind a cheap `in` test: every match contains one of the
    `anchors` (exact substrings), so a text with none of them cannot match."""

    __slots__ = ("pattern", "anchors", "_re")

    def __init__(self, pattern: str, anchors: tuple[str, ...]):
        self.pattern = pattern
        self.anchors = anchors
        self._re = re.compile(pattern)

    def search(self, text: str) -> re.Match[str] | None:
        for a in self.anchors:
            if a in text:
                return self._re.search(text)
        return None

    def finditer(self, text: str) -> Iterable[re.Match[str]]:
        for a in self.anchors:
            if a in text:
                return self._re.finditer(text)
        return ()


@lru_cache(maxsize=256)
def lower(text: str) -> str:
    return text.lower()
