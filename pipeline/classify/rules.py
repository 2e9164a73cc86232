"""Exact rules: facts that a pattern states outright, and cue features for the models.

Every rule returns its value and the short piece of the record's own text that
drove it, so the dashboard can show *why* a label was given.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.classify.text import (
    CONCLUSION_LABELS,
    RESULT_LABELS,
    abstract_sentences,
    split_sentences,
)
from pipeline.records import Article

Hit = tuple[object, str | None]  # (value, evidence)
F = TypeVar("F", bound=Callable[..., Any])

# Rules are asked the same question several times per record (features for two
# heads, overrides, evidence); a small LRU keyed on the text they read makes each
# rule run once per record.
_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_MAX = 60_000


_BATCH_KEYS: dict[int, tuple[Any, ...]] = {}
_BATCH_TEXTS: dict[int, tuple[str, str, str]] = {}


def text_key(article: Article) -> tuple[Any, ...]:
    """What the rules read of a record (its cache key)."""
    key = _BATCH_KEYS.get(id(article))
    if key is not None:
        return key
    return (article.title, article.abstract, tuple(article.publication_types),
            tuple(article.mesh_terms))


@contextmanager
def batch(articles: Iterable[Article]) -> Iterator[None]:
    """Compute each record's cache key once for a batch (the records stay alive inside,
    so their ids are unique); nested batches keep the outer keys."""
    articles = list(articles)
    added = [id(a) for a in articles if id(a) not in _BATCH_KEYS]
    for a in articles:
        if id(a) not in _BATCH_KEYS:
            _BATCH_KEYS[id(a)] = (a.title, a.abstract, tuple(a.publication_types),
                                  tuple(a.mesh_terms))
            _BATCH_TEXTS[id(a)] = _make_texts(a)
    try:
        yield
    finally:
        for i in added:
            _BATCH_KEYS.pop(i, None)
            _BATCH_TEXTS.pop(i, None)


def _make_texts(article: Article) -> tuple[str, str, str]:
    title = article.title or ""
    abstract = article.abstract or ""
    return title, abstract, f"{title}\n{abstract}"


def _texts(article: Article) -> tuple[str, str, str]:
    """(title, abstract, title + newline + abstract), '' for missing parts: built once per
    record inside a batch, so every rule reads the same string objects (and `_lower`
    lowercases each once) instead of rebuilding `Article.abstract` per rule."""
    t = _BATCH_TEXTS.get(id(article))
    return t if t is not None else _make_texts(article)


_MISSING = object()


def _memo(fn: F) -> F:
    name = fn.__name__

    @wraps(fn)
    def wrapper(article: Article, *args: Any) -> Any:
        key = (name, text_key(article), args)
        value = _CACHE.get(key, _MISSING)
        if value is not _MISSING:
            _CACHE.move_to_end(key)
            return value
        value = fn(article, *args)
        _CACHE[key] = value
        if len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
        return value

    return wrapper  # type: ignore[return-value]

class CIPattern:
    """A case-insensitive pattern matched on lowercased text, several times faster in `re`
    than re.IGNORECASE (which disables literal-prefix scanning); matches report the
    original text's characters."""

    __slots__ = ("pattern", "anchors", "_low", "_slow")

    def __init__(self, pattern: str, anchors: tuple[str, ...] = ()):
        self.pattern = pattern
        # lowercase substrings of which every match contains one: a cheap `in` test
        # skips the regex on most texts (tests check anchored == unanchored on the corpus)
        self.anchors = anchors
        self._low = re.compile(re.sub(r"(?<!\\)[A-Z]", lambda m: m.group(0).lower(), pattern))
        self._slow = re.compile(pattern, re.I)

    def _pair(self, text: str) -> tuple[re.Pattern[str], str, str]:
        low = _lower(text)
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
        low = _lower(text)
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


def ci(pattern: str, anchors: tuple[str, ...] = ()) -> CIPattern:
    return CIPattern(pattern, anchors)


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
def _lower(text: str) -> str:
    return text.lower()


# --------------------------------------------------------------------------- numbers
_UNITS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_NUMWORD = "|".join(sorted([*_UNITS, *_TENS, "hundred", "thousand", "and"], key=len, reverse=True))
_NUMWORD_RE = re.compile(rf"\b(?:{_NUMWORD})(?:[\s\-]+(?:{_NUMWORD}))*\b")


def words_to_int(phrase: str) -> int | None:
    """'Two hundred forty' -> 240; 'sixty-eight' -> 68; None when it is not a number."""
    total, current, seen = 0, 0, False
    for w in re.split(r"[\s\-]+", phrase.lower()):
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w == "thousand":
            total += max(current, 1) * 1000
            current = 0
        elif w == "and":
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def normalise_numbers(text: str) -> str:
    """Spell-out numbers become digits ('Forty-two patients' -> '42 patients')."""
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)  # 1,234 -> 1234
    low = text.lower()
    if len(low) != len(text):
        low = text  # rare Unicode case: match only lowercase spellings
    out: list[str] = []
    last = 0
    for m in _NUMWORD_RE.finditer(low):
        n = words_to_int(m.group(0)) if m.group(0).strip() != "and" else None
        if n is None:
            continue
        out.append(text[last:m.start()])
        out.append(str(n))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


# --------------------------------------------------------------------------- sample size
_PEOPLE = (
    r"(?:patients?|participants?|subjects?|adults?|children|adolescents?|youths?|women|men|"
    r"individuals?|people|persons?|volunteers?|outpatients?|inpatients?|veterans?|users?|"
    r"abusers?|cases?|mothers?|parturients?|respondents?|soldiers?|service members?|"
    r"victims?|survivors?|responders?|completers?|infants?|girls?|boys?|pregnant women|"
    r"healthy controls?|workers?|employees?|nurses?|physicians?|clinicians?|students?|"
    r"residents?|athletes?|prisoners?|smokers?|drinkers?)"
)
_STOP = (r"(?:years?-old|months?-old|weeks?|days?|hours?|months?|years?|minutes?|min|mg|kg|"
         r"sessions?|times?|in|with|of|"
         r"who|that|were|was|had|have|to|for|on|at|after|before|from|by|per|doses?|"
         r"infusions?|treatments?|regarding|than|the)\b(?!-)")
_ADJ = rf"(?:(?!{_STOP})[A-Za-z][\w\-/]*,?\s+){{0,4}}?"
# '(?<![\d.,/±])\b(\d{1,6})' written so that `re` can skip to digits (a leading
# lookbehind or \b disables its first-character scan): the first digit is consumed, then
# the same two conditions are checked on the character before it.
_NOUN_RE = ci(rf"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{{0,5}}),?\s+(?:\([^)]*\)\s+)?{_ADJ}{_PEOPLE}\b")
_CONTROLS_RE = ci(r"[^.;]{0,30}?\band (\d{1,5}) (?:[\w\-]+ ){0,2}controls\b")
_NEQ_RE = Guarded(r"\b[nN]\s*=\s*(\d{1,6})\b", ("=",))
_SINGLE_RE = ci(
    r"\b(?:a|one|this|the)\s+(?:\d{1,3}[\s\-]+year[\s\-]+old|single|young|elderly|middle-aged)"
    r"[\s\w\-]{0,40}?\b(?:patient|man|woman|male|female|boy|girl|veteran|individual|mother)\b"
    r"|\bcase of a\b|\bwe (?:present|report|describe) (?:a|the|one) (?:case|patient)\b"
    r"|\b(?:a|one) patient\b")
_NOT_HUMAN_RE = ci(r"\b(rats?|mice|mouse|rodents?|animals?|zebrafish|monkeys?|"
                           r"studies|trials|articles|papers|records|reports|sessions|infusions|"
                           r"treatments|days|weeks|months|years|hours|minutes|doses)\b")


def _sample_candidates(text: str) -> list[tuple[int, int, int, str]]:
    """(score, position, value, snippet) for every number that may count participants."""
    norm = normalise_numbers(text)
    cands: list[tuple[int, int, int, str]] = []
    for m in _NOUN_RE.finditer(norm):
        value = int(m.group(1))
        before = norm[max(0, m.start() - 25):m.start()].lower()
        score = 2
        lead = re.search(r"(total|enrol|recruit|randomi|sample (?:size )?of|includ|involv|were|"
                         r"consist|survey of|cohort of|series of|each of|reports? on|study of)",
                         before)
        if lead:
            score += 2
        elif re.search(r"(of the|of whom|among|and|of)\s*$", before):
            score -= 2
        if re.match(r"\s*\(\d+(?:\.\d+)?\s*%", norm[m.end():m.end() + 12]):
            score -= 2  # '7 cases (21%)': a subset, not the sample
        if re.search(r"\b(?:women|men|males?|females?)$", m.group(0), re.I) and not lead:
            score -= 1  # a sex breakdown of the sample
        if re.search(r"\bcontrols?\b", m.group(0), re.I) and "healthy" in m.group(0).lower():
            score -= 1
        if before.rstrip().endswith("(") or re.search(r"\([^)]*$", before):
            score -= 1
        ctrl = _CONTROLS_RE.match(norm, m.end())
        if ctrl and not re.search(r"control", m.group(0), re.I):
            value += int(ctrl.group(1))
        cands.append((score, m.start(), value, m.group(0)))
    for m in _NEQ_RE.finditer(norm):
        before = norm[max(0, m.start() - 30):m.start()]
        score = 3 if re.search(rf"{_PEOPLE}\s*\($", before, re.I) else 1
        cands.append((score, m.start(), int(m.group(1)), m.group(0)))
    cands = [c for c in cands if 0 < c[2] < 1_000_000]
    neqs = [c for c in cands if c[3].lower().startswith("n")]
    if len(neqs) >= 2 and max(c[0] for c in cands) <= 1:
        # only per-group 'n = X' counts: the sample is their sum
        cands.append((1, neqs[0][1], sum(c[2] for c in neqs), "+".join(c[3] for c in neqs)))
    return cands


@_memo
def sample_size(article: Article) -> Hit:
    """Number of human participants enrolled or randomised, when the text says it.

    Preference: a count next to 'total/enrolled/randomised'; then the first count of
    people; then the first 'n = X'. A single-patient case description gives 1.
    """
    text = _texts(article)[1]
    if not text:
        return None, None
    if is_animal_study(article)[0] and not re.search(r"\bpatients?\b", text, re.I):
        return None, None
    cands = _sample_candidates(text)
    if cands:
        best = max(cands, key=lambda c: (c[0], -c[1]))
        if best[0] >= 1:
            return best[2], best[3].strip()
    m = _SINGLE_RE.search(text)
    if m:
        return 1, m.group(0)
    return None, None


# --------------------------------------------------------------------------- drug, routes
_ESK_RE = ci(r"(?<!\w)(?:es-?ketamine|s-ketamine|\(s\)-ketamine|s\(\+\)-ketamine|spravato)\b",
             ("esk", "es-k", "s-ketamine", "(s)", "s(+)", "spravato"))
_ARK_RE = ci(r"(?<!\w)(?:ar-?ketamine|r-ketamine|\(r\)-ketamine|\(r\)-\(-\)-ketamine|"
             r"r\(-\)-ketamine)", ("ark", "ar-k", "r-ketamine", "(r)", "r(-)"))
_KET_RE = ci(r"(?<![\w\-()])(?:racemic\s+)?ketamine\b")


def _drug_counts(text: str) -> tuple[int, int, int]:
    esk = len(_ESK_RE.findall(text))
    ark = len(_ARK_RE.findall(text))
    ket = len(_KET_RE.findall(text))
    return esk, ark, ket


@_memo
def drug(article: Article) -> Hit:
    """ketamine / esketamine / arketamine, or multiple when the study compares or pools them."""
    title = _texts(article)[0]
    for text, where in ((title, "title"), (_texts(article)[1], "abstract")):
        esk, ark, ket = _drug_counts(text)
        named = [n for n, c in (("esketamine", esk), ("arketamine", ark), ("ketamine", ket)) if c]
        if not named:
            continue
        if where == "title":
            if len(named) > 1:
                return "multiple", f"title names {' and '.join(named)}"
            return named[0], f"title names {named[0]}"
        # abstract: the dominant form; a close second means a comparison of forms
        counts = sorted(((esk, "esketamine"), (ark, "arketamine"), (ket, "ketamine")),
                        reverse=True)
        (c1, n1), (c2, _n2) = counts[0], counts[1]
        if c2 and c2 >= 0.6 * c1 and c1 >= 3:
            return "multiple", "abstract names several forms"
        return n1, f"abstract names {n1} {c1}x"
    return None, None


_ROUTE_PATTERNS: dict[str, re.Pattern[str] | CIPattern | Guarded] = {
    "iv": Guarded(r"\b(?:intravenous(?:ly)?|i\.\s?v\.|IV)(?=\W|$)", ("intravenous", "i.", "IV")),
    "intranasal": ci(r"\b(?:intra-?nasal(?:ly)?|nasal(?:ly)?\s+(?:spray|administ\w*|"
                     r"ketamine|esketamine|route)|nasal spray|nasally|spravato)\b",
                     ("nasal", "spravato")),
    "oral": ci(r"\b(?:oral(?:ly)?\s+(?:\w+\s+)?(?:es)?ketamine|(?:es)?ketamine\s+"
                       r"(?:was\s+)?(?:given\s+|administered\s+|taken\s+)?orally|oral\s+"
                       r"(?:dose|doses|dosing|administration|solution|tablets?|route|"
                       r"formulation)|per os)\b", ("oral", "per os")),
    "im": Guarded(r"\b(?:intramuscular(?:ly)?|i\.\s?m\.|IM)(?=\W|$)",
                  ("intramuscular", "m.", "IM")),
    "sc": Guarded(r"\b(?:subcutaneous(?:ly)?|s\.\s?c\.|SC)(?=\W|$)",
                  ("subcutaneous", "c.", "SC")),
    "sublingual": ci(r"\b(?:sublingual(?:ly)?|troches?|lozenges?|buccal)\b",
                     ("sublingual", "troche", "lozenge", "buccal")),
}
_IV_CASE_RE = ci(r"\b(?:intravenous(?:ly)?|infusions?)\b")


@_memo
def routes(article: Article) -> Hit:
    """Routes of ketamine administration named in the title or abstract."""
    text = _texts(article)[2]
    found: list[str] = []
    ev: list[str] = []
    for route, pat in _ROUTE_PATTERNS.items():
        m = pat.search(text) or (_IV_CASE_RE.search(_texts(article)[0]) if route == "iv"
                                 else None)
        if m:
            found.append(route)
            ev.append(m.group(0))
    return sorted(found), (", ".join(ev) if ev else None)


# --------------------------------------------------------------------------- comparator
_COMPARATORS: list[tuple[str, re.Pattern[str] | CIPattern | Guarded]] = [
    ("midazolam", ci(r"\bmidazolam\b", ("midazolam",))),
    ("ect", Guarded(r"\b(?:ECT|electroconvulsive)\b", ("ECT", "electroconvulsive"))),
    ("placebo", ci(r"\b(?:placebo|saline|sham)\b", ("placebo", "saline", "sham"))),
    ("active_drug", ci(
        r"\b(?:versus|vs\.?|compared (?:with|to)|or)\s+(?:intravenous\s+|oral\s+|nebuli[sz]ed\s+)?"
        r"(?:propofol|etomidate|haloperidol|dexmedetomidine|morphine|fentanyl|lidocaine|"
        r"metoclopramide|magnesium|tramadol|bupivacaine|sevoflurane|ketorolac|remifentanil|"
        r"lanicemine|riluzole|electroconvulsive|sertraline|escitalopram|fluoxetine|quetiapine|"
        r"lithium|psilocybin|MDMA|nitrous oxide|diazepam|lorazepam|clonidine|\w+ine\b|\w+am\b)")),
]
_SINGLE_ARM_RE = ci(r"\b(?:open[\s\-]label|single[\s\-]arm|uncontrolled|naturalistic|"
                            r"retrospective|chart review|real[\s\-]world|pre[\s\-]post)\b")


@_memo
def comparator(article: Article, design: str | None) -> Hit:
    """The control arm of an interventional study; None where the design has none."""
    if design not in ("rct", "nonrandomized_trial", "observational", "protocol", "preclinical"):
        return None, None
    text = _texts(article)[2]
    for name, pat in _COMPARATORS:
        m = pat.search(text)
        if m:
            if name == "active_drug" and re.search(r"ketamine", m.group(0), re.I):
                continue
            return name, m.group(0)
    if design in ("nonrandomized_trial", "observational"):
        m = _SINGLE_ARM_RE.search(text)
        if m or design == "nonrandomized_trial":
            return "none", m.group(0) if m else "single-arm design"
    return None, None


# --------------------------------------------------------------------------- psychotherapy
_PSYCHO_RE = ci(
    r"\b(?:ketamine[\s\-]assisted\s+(?:group\s+)?psychotherapy|KAP|KAGP|psychotherapy|"
    r"cognitive[\s\-]behaviou?ral\s+therapy|CBT|exposure[\s\-](?:based\s+)?(?:therapy|CBT)|"
    r"written exposure|mindfulness[\s\-]based|psychedelic[\s\-]assisted|"
    r"(?:prolonged|cognitive processing) (?:exposure|therapy)|motivational enhancement)\b",
    ("psychotherapy", "kap", "kagp", "cognitive", "cbt", "exposure", "mindfulness",
     "psychedelic", "motivational", "prolonged"))


@_memo
def psychotherapy(article: Article) -> Hit:
    """True when ketamine is paired with a structured psychotherapy."""
    text = _texts(article)[2]
    m = _PSYCHO_RE.search(text)
    return (True, m.group(0)) if m else (False, None)


# --------------------------------------------------------------------------- subgroups
_SUBGROUPS: dict[str, re.Pattern[str]] = {
    "trd": ci(r"\b(?:treatment[\s\-](?:resistant|refractory)\s+(?:\w+\s+){0,2}"
                      r"depress\w*|TRD|refractory depress\w*|treatment resistance)\b",
              ("resist", "refract", "trd")),
    "bipolar": ci(r"\bbipolar\b", ("bipolar",)),
    "suicidality": ci(r"\bsuicid\w*", ("suicid",)),
    "perinatal": ci(r"\b(?:postpartum|post-partum|perinatal|peripartum|antenatal|"
                            r"prenatal depress\w*|puerper\w*|caesarean|cesarean|pregnan\w*)",
                    ("partum", "natal", "puerper", "sarean", "pregnan")),
    "ocd": ci(r"\b(?:obsessive[\s\-]compulsive|OCD)\b", ("obsessive", "ocd")),
    "anxious_depression": ci(r"\banxious depress\w*|\bdepression with (?:high )?anxi",
                             ("anxious", "depression with")),
    "adolescents": ci(r"\b(?:adolescen\w*|teenage\w*|youths?|pediatric depress\w*)",
                      ("adolescen", "teenage", "youth", "pediatric")),
    "older_adults": ci(r"\b(?:older adults?|elderly|geriatric|late[\s\-]life)\b",
                       ("older", "elderly", "geriatric", "late")),
    "veterans": ci(r"\b(?:veterans?|military|service members?|soldiers?)\b",
                   ("veteran", "military", "service member", "soldier")),
}


@_memo
def subgroups(article: Article) -> Hit:
    """Subgroups named in the title or abstract (only meaningful for in-scope records)."""
    text = _texts(article)[2]
    found, ev = [], []
    for name, pat in _SUBGROUPS.items():
        m = pat.search(text)
        if m:
            found.append(name)
            ev.append(m.group(0))
    return found, (", ".join(ev) if ev else None)


# --------------------------------------------------------------------------- conditions
CONDITION_PATTERNS: dict[str, re.Pattern[str]] = {
    "depression": ci(r"\b(?:depress\w*|antidepress\w*|MDD|TRD|suicid\w*|dysthymi\w*|"
                     r"anhedoni\w*|mood disorders?|bipolar)",
                     ("depress", "mdd", "trd", "suicid", "dysthymi", "anhedoni", "mood",
                      "bipolar")),
    "ptsd": ci(r"\b(?:PTSD|post[\s\-]?traumatic|acute stress disorder|trauma\w*|"
                       r"fear (?:memory|extinction|conditioning|generali[sz]ation))",
               ("ptsd", "traumat", "acute stress", "trauma", "fear")),
    "anxiety": ci(r"\b(?:anxi\w*|panic|obsessive|OCD|phobi\w*|GAD|SAD)\b",
                  ("anxi", "panic", "obsessive", "ocd", "phobi", "gad", "sad")),
}


_TARGET_RE = ci(r"\b(?:forced swim\w*|tail suspension|learned helplessness|despair|"
               r"psychiatr\w*|mental (?:health|disorders?|illness)|mood|rapid[\s\-]acting|"
               r"neuropsychiatric|emotion\w*|stress\w*|affective)")


_PROCEDURAL_ANXIETY = ci(r"\b(?:(?:pre|peri|post)[\s\-]?operative|procedural|separation|dental|"
                        r"surgical|induction|pre[\s\-]?procedural) anxiety|\banxiety (?:before|"
                        r"during) (?:surgery|induction|anaesthe\w*|anesthe\w*|the procedure)",
                        ("anxiety",))


@_memo
def only_procedural_anxiety(article: Article) -> Hit:
    """True when the only target condition is anxiety around a procedure (off-topic by
    TAXONOMY: preoperative or procedural anxiety handled by sedation)."""
    text = _texts(article)[2]
    m = _PROCEDURAL_ANXIETY.search(text)
    if not m:
        return False, None
    if CONDITION_PATTERNS["depression"].search(text) or CONDITION_PATTERNS["ptsd"].search(text):
        return False, None
    return True, m.group(0)


_CONDITION_MODEL = ci(r"\b(?:anxiety|depressi\w*|ocd|fear)[\s\-]like\b|\banxiolytic\w*|"
                     r"\bantidepressant[\s\-]like\b", ("like", "anxiolytic"))


@_memo
def condition_model_effect(article: Article) -> Hit:
    """An effect on depression-/anxiety-like behaviour: an animal model of a target
    condition, in scope by TAXONOMY."""
    m = _CONDITION_MODEL.search(_texts(article)[2])
    return (True, m.group(0)) if m else (False, None)


@_memo
def names_no_target(article: Article) -> bool:
    """True when neither title nor abstract names depression, PTSD, anxiety or a near term:
    such a record cannot be about ketamine for them."""
    text = _texts(article)[2]
    if any(p.search(text) for p in CONDITION_PATTERNS.values()):
        return False
    return _TARGET_RE.search(text) is None


@_memo
def condition_mentions(article: Article) -> dict[str, tuple[int, int, str | None]]:
    """Per condition: (title hits, abstract hits, first matched term)."""
    out: dict[str, tuple[int, int, str | None]] = {}
    title, abstract, _ = _texts(article)
    for cond, pat in CONDITION_PATTERNS.items():
        t = pat.findall(title)
        a = pat.findall(abstract)
        first = (t or a or [None])[0]
        out[cond] = (len(t), len(a), first)
    return out


# --------------------------------------------------------------------------- design cues
_ANIMAL_RE = ci(
    r"\b(?:rats?|mice|mouse|murine|rodents?|zebrafish|monkeys?|marmosets?|primates?|"
    r"C57BL\S*|BALB/c|Sprague|Wistar|in vitro|cultured (?:neurons|cells)|cell cultures?|"
    r"animal models?|forced swim(?:ming)? test|tail suspension|chronic (?:mild|unpredictable|"
    r"variable|social defeat) stress|\w+-like behaviou?rs?|hippocampal slices?)\b")


_HUMAN_RE = re.compile(r"\b(?:patients?|participants?|subjects with|veterans?)\b", re.I)


@_memo
def is_animal_study(article: Article) -> Hit:
    """Animal or in-vitro markers in the title, or repeatedly in the abstract."""
    t = _ANIMAL_RE.search(_texts(article)[0])
    if t:
        return True, t.group(0)
    abstract = _texts(article)[1]
    hits = _ANIMAL_RE.findall(abstract)
    if len(hits) < 2:  # the human count only matters against two or more animal hits
        return False, None
    human = _HUMAN_RE.findall(abstract)
    if len(hits) > len(human):
        return True, hits[0]
    return False, None


_PT = {
    "systematic_review": ("systematic review", "meta-analysis", "network meta-analysis"),
    "rct": ("randomized controlled trial", "controlled clinical trial", "pragmatic clinical trial",
            "equivalence trial", "clinical trial, phase iii", "clinical trial, phase ii"),
    "case_report": ("case reports", "case report"),
    "review": ("review", "editorial", "letter", "comment", "perspective", "guideline",
               "practice guideline", "consensus development conference", "mini review",
               "review article", "news", "short survey"),
    "protocol": ("clinical trial protocol", "protocol"),
    "observational": ("observational study", "multicenter study"),
}


@_memo
def design_from_metadata(article: Article) -> Hit:
    """The publication-type mapping PubMed indexing gives (the metadata baseline)."""
    pts = [p.lower() for p in article.publication_types]
    for design in ("protocol", "systematic_review", "case_report", "rct", "review",
                   "observational"):
        for p in pts:
            if p in _PT[design]:
                return design, p
    mesh = [m.lower() for m in article.mesh_terms]
    if any(m in ("animals", "rats", "mice", "disease models, animal") for m in mesh):
        return "preclinical", "MeSH animals"
    if "clinical trial" in pts or any("clinical trial" in p for p in pts):
        return "nonrandomized_trial", "clinical trial"
    return None, None


_DESIGN_TITLE: list[tuple[str, re.Pattern[str]]] = [
    ("protocol", ci(r"\b(?:study|trial) protocol\b|\bprotocol (?:for|of) an?\b|"
                            r"\bprotocol\s*$|:\s*(?:a\s+)?(?:study\s+)?protocol\b|\bdesign and "
                            r"rationale\b|\brationale and design\b")),
    ("systematic_review", ci(r"\b(?:systematic(?:al)? review|meta[\s\-]?analy\w*|"
                                     r"umbrella review|pooled analysis|scoping review)\b")),
    ("case_report", ci(r"\b(?:case reports?|case series|case study|a case\b|"
                               r"cases?\b(?! ?-? ?control)|vignettes?)")),
    ("review", ci(r"\b(?<!chart )(?:review|overview|perspective|commentary|editorial|update on|"
                          r"an update|consensus|guidelines?|expert opinion|narrative|"
                          r"lessons|a primer|viewpoint|letter|reply)\b")),
    ("rct", ci(r"\b(?:randomi[sz]ed|randomly|placebo[\s\-]controlled|double[\s\-]blind\w*|"
                       r"crossover|cross-over|controlled (?:clinical )?trial)\b")),
    ("nonrandomized_trial", ci(r"\b(?:open[\s\-]label|single[\s\-]arm|non[\s\-]?"
                                       r"randomi[sz]ed|pilot (?:study|trial)|open trial|"
                                       r"uncontrolled|proof[\s\-]of[\s\-]concept)\b")),
    ("observational", ci(r"\b(?:retrospective|cohort|chart review|cross[\s\-]sectional|"
                                 r"case[\s\-]control|registry|survey|real[\s\-]world|"
                                 r"naturalistic|qualitative|interviews?|claims|database|"
                                 r"longitudinal study|prospective (?:observational )?study|"
                                 r"cost[\s\-]\w+ analysis|bibliometric)\b")),
]
_OPEN_LABEL_TITLE = ci(r"\b(?:open[\s\-]label|single[\s\-]arm|non[\s\-]?randomi[sz]ed|"
                       r"open trial|uncontrolled)\b")
# the abstract describing itself as non-randomised ('this open-label study', 'this was an
# uncontrolled trial'); the match runs to the end of its sentence so that 'this open-label
# extension of a randomised trial' is recognised and left to the model
_OPEN_LABEL_SELF = ci(r"\b(?:this|our|the present|the current)\s+(?:was an?\s+|is an?\s+)?"
                      r"(?:[\w\-]+\s+){0,3}?(?:open[\s\-]label|single[\s\-]arm|"
                      r"non[\s\-]?randomi[sz]ed|uncontrolled)\b[^.]*",
                      ("open", "arm", "random", "uncontrolled"))
_RANDOM_NEAR = re.compile(r"(?<!non-)(?<!non)\brandomi[sz]", re.I)
_FUTURE = ci(r"\b(?:will be (?:randomi[sz]ed|enrolled|recruited|assessed|allocated|assigned|"
             r"measured|included|conducted)|we will|will receive|are being recruited)\b",
             ("will", "are being recruited"))
_DESIGN_ABSTRACT: list[tuple[str, re.Pattern[str]]] = [
    ("protocol", ci(r"\b(?:will be (?:randomi[sz]ed|enrolled|recruited|assessed|"
                            r"allocated)|we will (?:enrol|recruit|randomi|conduct|assess)|"
                            r"this protocol|study protocol)\b", ("will", "protocol"))),
    ("systematic_review", ci(r"\b(?:systematic(?:ally)? (?:review|search)\w*|"
                                     r"meta[\s\-]?analy\w*|PRISMA|databases? (?:were|was) "
                                     r"searched|searched (?:PubMed|MEDLINE|Embase))",
                                     ("systematic", "meta", "prisma", "searched"))),
    ("case_report", ci(r"\b(?:case report|case series|we (?:present|report|describe) "
                               r"(?:a|the|two|three|four|five|\d+) (?:case|patient)|"
                               r"\d{1,2}[\s\-]year[\s\-]old (?:wo)?man|this case|"
                               r"in an? (?:[\w\-]+ ){0,4}(?:patient|man|woman|boy|girl|child)\b)",
                               ("case", "patient", "year", "man", "boy", "girl", "child"))),
    ("review", ci(r"\b(?:this (?:narrative )?review|we review|in this review|"
                          r"this article (?:reviews|discusses|summari[sz]es)|we discuss|"
                          r"literature review|review (?:of )?the (?:literature|evidence))\b",
                          ("review", "discuss", "summari"))),
    ("rct", ci(r"\b(?:randomi[sz]ed|randomly (?:assigned|allocated|divided)|"
                       r"placebo[\s\-]controlled|double[\s\-]blind\w*|crossover)\b",
                       ("random", "controlled", "blind", "crossover"))),
    ("nonrandomized_trial", ci(r"\b(?:open[\s\-]label|single[\s\-]arm|"
                                       r"non[\s\-]?randomi[sz]ed|open trial|uncontrolled)\b",
                                       ("open", "arm", "random", "uncontrolled"))),
    ("observational", ci(r"\b(?:retrospective(?:ly)?|cohort|chart review|"
                                 r"cross[\s\-]sectional|case[\s\-]control|registry|survey|"
                                 r"real[\s\-]world|naturalistic|questionnaires?|interviews?)\b",
                                 ("retrospective", "cohort", "chart", "sectional", "control",
                                  "registry", "survey", "world", "naturalistic", "questionnaire",
                                  "interview"))),
]
DESIGN_CUE_NAMES = [f"title_{d}" for d, _ in _DESIGN_TITLE] + \
    [f"abs_{d}" for d, _ in _DESIGN_ABSTRACT]


@_memo
def design_cues(article: Article) -> dict[str, str]:
    """Every design cue that fires, cue name -> matched text."""
    out: dict[str, str] = {}
    title, abstract, _ = _texts(article)
    for d, pat in _DESIGN_TITLE:
        m = pat.search(title)
        if m:
            out[f"title_{d}"] = m.group(0)
    for d, pat in _DESIGN_ABSTRACT:
        m = pat.search(abstract)
        if m:
            out[f"abs_{d}"] = m.group(0)
    return out


@_memo
def design_rule(article: Article) -> Hit:
    """A design the record states outright (title, publication type, animal markers).

    Returns (None, None) when nothing is explicit; the model decides then.
    """
    cues = design_cues(article)
    pt, pt_ev = design_from_metadata(article)
    if "title_protocol" in cues or pt == "protocol":
        return "protocol", cues.get("title_protocol") or pt_ev
    if "title_systematic_review" in cues or pt == "systematic_review":
        return "systematic_review", cues.get("title_systematic_review") or pt_ev
    if "title_case_report" in cues or pt == "case_report":
        return "case_report", cues.get("title_case_report") or pt_ev
    if "title_review" in cues and "title_rct" not in cues:
        return "review", cues["title_review"]
    m = _OPEN_LABEL_TITLE.search(_texts(article)[0]) or _OPEN_LABEL_SELF.search(
        _texts(article)[1])
    if m and not _RANDOM_NEAR.search(m.group(0)):
        return "nonrandomized_trial", m.group(0)
    if len(_FUTURE.findall(_texts(article)[1])) >= 2:
        return "protocol", "future tense: " + _FUTURE.findall(_texts(article)[1])[0]
    if pt == "review":
        return "review", pt_ev
    animal, animal_ev = is_animal_study(article)
    if animal and "abs_review" not in cues:
        return "preclinical", animal_ev
    if "title_rct" in cues and not re.search(r"non[\s\-]?randomi", _texts(article)[0], re.I):
        return "rct", cues["title_rct"]
    if pt == "rct":
        return "rct", pt_ev
    return None, None


# --------------------------------------------------------------------------- outcome cues
# How abstracts state a result, read sentence by sentence. A sentence is
#   'pos'   a benefit on the target condition ('reduced depressive symptoms'),
#   'neg'   no benefit or harm, negation-aware ('did not differ', 'no significant',
#           'failed to separate', 'comparable to placebo', 'worsened', 'induced an
#           anxiety-like state'); a negated benefit word is never a benefit,
#   'mixed' both at once, joined by a contrast ('reduced A but not B', 'significant in
#           cohort 2 whereas not in cohort 1', 'failed its endpoint but post hoc ...').
# Negated harm ('no patient worsened', 'did not relapse') and 'not only' are not negative.
_NEG = (
    r"(?:did not|does not|do not|didn't|doesn't|was not|were not|is not|are not|not|no|"
    r"failed to|fail to|fails to|without|neither|nor|lack of|lacked|absence of|unable to|"
    r"no (?:statistically )?significant|non[\s\-]?significant|insufficient|inconclusive)"
)
_POS_TERMS = ci(
    r"\b(?:reduc\w*|decreas\w*|improv\w*|allevia\w*|attenuat\w*|relie\w*|effective\w*|"
    r"efficac\w*|benefi\w*|superior|remission|respon\w*|antidepressant[\s\-]like|"
    r"anxiolytic[\s\-]like|anxiolytic|antidepressant effects?|rapid\w* (?:and sustained )?"
    r"(?:antidepressant|anti-suicidal)|reversed?|revers\w*|rescued?|ameliorat\w*|"
    r"promising|well[\s\-]tolerated and effective|greater|lower (?:depress|scores)|"
    r"significant(?:ly)? (?:lower|higher|greater|fewer)|resolution|protect\w*|prevent\w*)\b")
_NEG_RESULT = ci(
    rf"\b(?:{_NEG})\b[^.;()]{{0,60}}?\b(?:differ\w*|improv\w*|reduc\w*|effect\w*|benefi\w*|"
    r"superior\w*|change\w*|efficac\w*|signific\w*|associat\w*|evidence|support\w*|better|"
    r"alter\w*|persist\w*|respon\w*|sustain\w*|maintain\w*|separat\w*|outperform\w*|"
    r"establish\w*|reach\w*|demonstrat\w*|show\w*|relie\w*|decreas\w*|meet|met|achiev\w*)"
    r"|\b(?:similar|comparable|equivalent) (?:to|with) (?:th(?:at|ose) (?:of|in|on|with) )?(?:the )?"
    r"(?:[\w\-]+ )?"
    r"(?:placebo|saline|midazolam|controls?|sham|vehicle|usual care|waitlist)\b"
    r"|\b(?:similar|comparable|equivalent) (?:between|across|in (?:both|all|the two)) (?:the )?"
    r"(?:\w+ )?(?:groups|arms|conditions)\b|\bineffective\b|"
    r"\bnull (?:effect|finding|result)s?\b|\bno (?:clear|consistent|robust) (?:evidence|effect)",
    ("no", "n't", "fail", "without", "neither", "lack", "absence", "unable", "insufficient",
     "inconclusive", "similar", "comparable", "equivalent", "ineffective", "null"))
# Harm: the condition got worse ('worsened', 'exacerbated', 'increased freezing',
# 'induces an anxiety-like state', 'symptoms were elevated').
_HARM = ci(
    r"\b(?:worsen\w*|aggravat\w*|exacerbat\w*|anxiogenic|depressogenic|pro-?depressant)\b"
    r"|\b(?<!-)(?:increas\w*|elevat\w*|heighten\w*|promot\w*|induc\w*|enhanc\w*)\s+(?:[\w\-]+\s+)"
    r"{0,3}?(?:freezing|immobility|despair|anxiety[\s\-]like|depressi\w*[\s\-]like|"
    r"(?:depressive|anxiety|ptsd|posttraumatic stress|suicidal) (?:symptoms?|severity|state))"
    r"|\bworse (?:than|outcomes?|scores?|symptoms?)\b"
    r"|\b(?:symptom\w*|severity|suicidal ideation)\s+(?:[\w\-]+\s+){0,3}?(?:was|were)\s+"
    r"(?:\w+\s+)?(?:increased|elevated|heightened|worse)\b",
    ("worse", "aggravat", "exacerbat", "anxiogenic", "depressogenic", "depressant", "freezing",
     "immobility", "despair", "like", "symptom", "severity", "state"))
# 'a small percentage of patients worsened' reports a minority, not the study's direction.
_MINORITY = ci(r"\b(?:small|minority|few|subset|some|one|two)\b[^.;]{0,30}$")
# a negator within reach before a word ('did not significantly *reduce*')
_NEG_BEFORE = ci(rf"\b{_NEG}\b[^.;()]{{0,60}}$")
# Phrases with a negator that report no result of the study: 'not only', 'no longer met
# criteria', negated harm ('did not relapse'), the population ('patients who did not
# respond to two antidepressants'), mechanism ('is not required for'), 'risks and benefits'.
_NOT_A_RESULT = re.compile(  # applied to lowercased text
    r"\bnot only\b|\bno longer (?:met|meets|meet|fulfil\w*|had|has)\b"
    r"|\b(?:no|not|without|did not|never) (?:\w+ )?(?:relaps\w*|worsen\w*|recurr\w*|"
    r"deteriorat\w*)"
    r"|\b(?:who|that|whose [\w\-]+) (?:do|does|did|have|has|had) not (?:\w+ )?(?:respond\w*|"
    r"benefit\w*|improv\w*)|\b(?:has|have|had) not (?:\w+ )?responded to\b|\bnon[\s\-]?respon\w*"
    r"|\b(?:is|are|was|were) not (?:\w+ )?(?:required|necessary|needed|essential)\b"
    r"|\bnot (?:completely|entirely|solely|fully|exclusively|necessarily) (?:driven|explained|"
    r"accounted|mediated|due|attributable)\b"
    r"|\b(?:risks? and benefits?|benefits? and risks?|risk[\s\-]benefit|benefit[\s\-]risk)\b"
)
_NOT_A_RESULT_ANCHORS = re.compile(r"\bno|\bnot|without|never|\brisk|\bbenefit")
# recommendations for further research state no result of their own
_FUTURE_WORK = ci(
    r"\b(?:further|more|future|larger|additional|longer)\b[^.;]{0,80}?\b(?:stud(?:y|ies)|"
    r"trials?|research|investigations?|work)\b[^.;]{0,60}?\b(?:needed|warranted|required|"
    r"necessary|should|must|are needed|is needed)\b"
    r"|\b(?:should|must|need to) be (?:performed|conducted|undertaken|carried out)\b",
    ("need", "warrant", "requir", "necessar", "should", "must"))
_CLAUSE_END = re.compile(r"[,;:]\s|\s(?:but|whereas|while|although)\s")
_SECONDARY = ci(r"\b(?:other|secondary|exploratory|remaining)\s+(?:[\w\-]+\s+)?(?:measures?|"
                r"outcomes?|end ?points?|parameters?|variables?|scales?)\b",
                ("other", "secondary", "exploratory", "remaining"))
# moderator and predictor analyses: 'did not differ by sex', 'was not associated with response'
_PREDICTOR = ci(r"\b(?:by|according to|across) (?:sex|gender|age|race|ethnicity|sites?|"
                r"diagnos\w*|baseline)\b|\bnot (?:\w+ )?(?:associated|correlated|predict\w*)\b",
                ("by", "according", "across", "associated", "correlated", "predict"))
_FUTURE_SPLIT = re.compile(r"([,;:]\s|\s(?:but|whereas|while|although|and)\s)")
_CONTRAST = ci(r"\b(?:but|whereas|while|although|however|in contrast|yet)\b",
               ("but", "whereas", "while", "although", "however", "contrast", "yet"))
# 'A but not B', 'only at the higher dose', 'not at week 4', 'post hoc ... revealed'
_PARTIAL = ci(
    r"\bbut not\b(?! (?:completely|entirely|solely|only|exclusively|fully|necessarily|all|"
    r"at (?:the )?\d|\d))|\b(?<!not )only (?:at|in|on|for|during|among|after|with|when|the)\b|"
    r"\bnot (?:at|on|in) (?:all|other|later|the (?:primary|end))\b|\bpost[\s\-]hoc\b",
    ("but not", "only", "not ", "post"))
# a finding that did not last: benefit at some time points, not at others
_TRANSIENT = ci(
    r"\b(?:not|no longer) (?:be )?(?:maintained|sustained|persist\w*)\b|\bdid not (?:last|"
    r"persist)\b|\btransient(?:ly)?\b|\bshort[\s\-]lived\b|\bwore off\b|\breturned to baseline\b")
# an explicitly equivocal conclusion
_EQUIVOCAL = ci(
    r"\b(?:mixed|inconsistent|equivocal|conflicting|inconclusive|contradictory)\s+(?:[\w\-]+ )?"
    r"(?:results?|findings?|evidence|effects?|outcomes?|data)\b"
    r"|\b(?:results?|findings?|evidence|effects?|efficacy|data)\s+(?:[\w\-]+ ){0,6}?"
    r"(?:(?:was|were|is|are|remains?|remained)\s+)(?:\w+\s+)?(?:mixed|inconsistent|"
    r"equivocal|conflicting|inconclusive|unclear|uncertain)\b",
    ("mixed", "inconsistent", "equivocal", "conflicting", "inconclusive", "contradictory",
     "unclear", "uncertain"))
# negatives about safety or side effects are not the efficacy direction
_SAFETY_TOPIC = ci(
    r"\b(?:dissociat\w*|psychotomimetic|adverse|side[\s\-]effects?|safety|tolerab\w*|"
    r"blood pressure|heart rate|h(?:a)?emodynamic\w*|BPRS|CADSS|demographic\w*|"
    r"baseline characteristics|sedation|abuse|withdrawal|drop[\s\-]?outs?|cost\w*)")
_EFFICACY_TOPIC = ci(
    r"\b(?:depress\w*|antidepress\w*|anxi\w*|PTSD|symptom\w*|suicid\w*|mood|MADRS|HAM-?D|"
    r"HAM-?A|CAPS|remission|response|anhedoni\w*|fear|despair|immobility|OCD|obsess\w*|"
    r"-like behaviou?r\w*|efficac\w*|primary (?:outcome|end ?point))")


@dataclass(frozen=True)
class OutcomeCues:
    """Counts of direction cues in the finding sentences of a record.

    pos/neg/mixed/topical/evidence read the conclusion (or last) sentences; the r_*
    counts read the results sentences; equivocal and transient are conclusion-level
    statements that the result is uncertain or did not last.
    """

    pos: int = 0
    neg: int = 0
    mixed: int = 0
    topical: int = 0
    evidence: str | None = None
    r_pos: int = 0
    r_neg: int = 0
    r_mixed: int = 0
    equivocal: int = 0
    transient: int = 0
    r_evidence: str | None = None


# harm counts only when the sentence attributes it to the drug ('ketamine worsened ...'),
# not to the model or the comparison ('stress increased immobility')
_DRUG_MENTION = ci(r"ketamine|\b(?:spravato|the drug|infusions?|treatment|administration)\b",
                   ("ketamine", "spravato", "drug", "infusion", "treatment", "administration"))


def _harm(sentence: str) -> bool:
    """True when the sentence reports that the drug made the condition worse (not negated,
    not a minority of patients)."""
    if not _DRUG_MENTION.search(sentence) or not _HARM.search(sentence):
        return False
    for m in _HARM.finditer(sentence):
        before = sentence[max(0, m.start() - 60):m.start()]
        if _NEG_BEFORE.search(before) or _MINORITY.search(before):
            continue
        return True
    return False


_SCOPE_END = re.compile(r"\b(?:but|whereas|however|although|while|yet)\b|[,;]\s")


def _scope(before: str) -> str:
    """The part of the text before a word that a negator there can reach: a negation
    does not cross 'but', 'whereas' or a clause break."""
    return _SCOPE_END.split(before)[-1]


def sentence_direction(sentence: str) -> str | None:
    """'neg' when a sentence reports no effect or harm (negation-aware), 'pos' for a benefit,
    'mixed' for both joined by a contrast, else None.

    Negated benefit words ('did not reduce', 'no significant improvement',
    'failed to separate') are read as no benefit, never as benefit.
    """
    low = _lower(sentence)
    if _FUTURE_WORK.search(low):
        # drop the clauses that call for more research, keep what the study found
        parts = _FUTURE_SPLIT.split(low)
        low = "".join(p for i, p in enumerate(parts) if i % 2 or not _FUTURE_WORK.search(p))
    clean = _NOT_A_RESULT.sub(" ", low) if _NOT_A_RESULT_ANCHORS.search(low) else low
    neg_m = _NEG_RESULT.search(clean)
    harm = _harm(clean)
    neg = bool(neg_m) or harm
    skip = (0, 0)  # the span of a null finding that is not about the primary outcome
    if neg_m and not harm:
        head = _CLAUSE_END.split(clean[:neg_m.start()])[-1]
        tail = _CLAUSE_END.split(clean[neg_m.start():], maxsplit=1)[0]
        clause = head + tail
        if (_SAFETY_TOPIC.search(clause) and not _EFFICACY_TOPIC.search(clause)) \
                or _SECONDARY.search(clause) \
                or (_PREDICTOR.search(clause) and not _DRUG_MENTION.search(clause)):
            # 'no difference in dissociation' is a safety finding, 'did not differ on other
            # measures' a secondary one, 'did not differ by sex' or 'BDNF was not associated
            # with response' a moderator or predictor: none is the direction on the
            # primary outcome
            neg = False
            skip = (neg_m.start() - len(head), neg_m.start() + len(tail))
    pos_unneg = [m for m in _POS_TERMS.finditer(clean)
                 if not skip[0] <= m.start() < skip[1]
                 and not _NEG_BEFORE.search(_scope(clean[max(0, m.start() - 70):m.start()]))]
    if neg:
        # 'X reduced A but did not change B' carries both; the caller sees it as mixed.
        if pos_unneg and _CONTRAST.search(clean):
            return "mixed"
        if pos_unneg and harm and not neg_m:
            return "pos"  # 'reversed the stress-induced increase in immobility'
        return "neg"
    if pos_unneg:
        if _PARTIAL.search(clean):
            return "mixed"
        return "pos"
    return None


def _finding_split(article: Article) -> tuple[list[str], list[str]]:
    """(conclusion sentences, results sentences): labelled sections when present, else the
    last three sentences and the sentences of the second half before them."""
    sents = abstract_sentences(article)
    concl = [s for lab, s in sents if any(k in lab for k in CONCLUSION_LABELS)]
    res = [s for lab, s in sents if any(k in lab for k in RESULT_LABELS)]
    if concl:
        return concl, res
    plain = [s for _, s in sents]
    tail = plain[-3:]
    if not res:
        res = plain[len(plain) // 2:-3]
    return tail, res


@_memo
def outcome_cues(article: Article) -> OutcomeCues:
    """Direction cues in the conclusion (or last) sentences and the results sentences, or in
    the title when there is no abstract."""
    if article.abstract_sections:
        concl, res = _finding_split(article)
    else:
        concl, res = split_sentences(article.title), []
    c = {"pos": 0, "neg": 0, "mixed": 0}
    r = {"pos": 0, "neg": 0, "mixed": 0}
    topical = equivocal = transient = 0
    ev: str | None = None
    rev: str | None = None
    for s in concl:
        if _EFFICACY_TOPIC.search(s):
            topical += 1
        d = sentence_direction(s)
        if d:
            c[d] += 1
            ev = ev or s
        if _EQUIVOCAL.search(s):
            equivocal += 1
        if _TRANSIENT.search(s):
            transient += 1
    for s in res:
        d = sentence_direction(s)
        if d:
            r[d] += 1
            if d != "pos":
                rev = rev or s
    return OutcomeCues(c["pos"], c["neg"], c["mixed"], topical, _short(ev), r["pos"], r["neg"],
                       r["mixed"], equivocal, transient, _short(rev))


def _short(s: str | None, n: int = 240) -> str | None:
    if s is None:
        return None
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


# --------------------------------------------------------------------------- off-topic cues
_OFFTOPIC_RE = ci(
    r"\b(?:anaesthe\w*|anesthe\w*|analges\w*|pain\w*|sedat\w*|intubation|premedicat\w*|"
    r"postoperative|emergence|delirium|agitation|sore throat|shivering|cystitis|bladder|"
    r"abuse\w*|recreational|misuse|self-administration|seizure\w*|epilept\w*|opioid\w*|"
    r"surgery|surgical|mucositis|propofol|schizophreni\w*|psychosis|locomot\w*|neurotox\w*|"
    r"alcohol use|cocaine|heroin|eating disorders?)")

RULE_FEATURE_NAMES = [
    "cond_depression_title", "cond_depression_abs", "cond_ptsd_title", "cond_ptsd_abs",
    "cond_anxiety_title", "cond_anxiety_abs", "offtopic_title", "offtopic_abs", "animal",
    "has_abstract", "is_indexed", *DESIGN_CUE_NAMES,
    *(f"pt_{d}" for d in ("protocol", "systematic_review", "case_report", "rct", "review",
                          "observational", "preclinical", "nonrandomized_trial")),
    "out_pos", "out_neg", "out_mixed", "out_topical", "title_pos", "title_neg",
    "dir_no_benefit", "dir_mixed", "res_pos", "res_neg", "res_mixed", "out_equivocal",
    "out_transient",
]


@_memo
def rule_features(article: Article) -> list[float]:
    """The numeric rule-derived features, in RULE_FEATURE_NAMES order."""
    cm = condition_mentions(article)
    feats: list[float] = []
    for cond in ("depression", "ptsd", "anxiety"):
        t, a, _ = cm[cond]
        feats += [float(min(t, 3)), float(np.log1p(a))]
    feats.append(float(min(len(_OFFTOPIC_RE.findall(_texts(article)[0])), 3)))
    feats.append(float(np.log1p(len(_OFFTOPIC_RE.findall(_texts(article)[1])))))
    feats.append(float(is_animal_study(article)[0]))
    feats.append(float(bool(article.abstract_sections)))
    feats.append(float(bool(article.publication_types or article.mesh)))
    cues = design_cues(article)
    feats += [float(name in cues) for name in DESIGN_CUE_NAMES]
    pt, _ = design_from_metadata(article)
    feats += [float(pt == d) for d in ("protocol", "systematic_review", "case_report", "rct",
                                       "review", "observational", "preclinical",
                                       "nonrandomized_trial")]
    oc = outcome_cues(article)
    feats += [float(min(oc.pos, 3)), float(min(oc.neg, 3)), float(min(oc.mixed, 3)),
              float(min(oc.topical, 3))]
    tc, _ = title_claim(article)
    feats += [float(tc == "beneficial"), float(tc == "no_benefit")]
    dr, _ = direction_rule(article)
    feats += [float(dr == "no_benefit"), float(dr == "mixed")]
    feats += [float(min(oc.r_pos, 3)), float(min(oc.r_neg, 3)), float(min(oc.r_mixed, 3)),
              float(min(oc.equivocal, 1)), float(min(oc.transient, 1))]
    return feats


class RuleFeatures(BaseEstimator, TransformerMixin):
    """Articles -> dense matrix of rule-derived cue features (scaled by `weight`).

    `exclude` drops the features whose names start with one of these prefixes, so a
    head does not read cues that describe another field.
    """

    def __init__(self, weight: float = 1.0, exclude: tuple[str, ...] = ()):
        self.weight = weight
        self.exclude = exclude

    def fit(self, X: Iterable[Article], y: object = None) -> RuleFeatures:
        self.columns_ = [i for i, n in enumerate(RULE_FEATURE_NAMES)
                         if not n.startswith(tuple(self.exclude))]
        self.n_features_out_ = len(self.columns_)
        return self

    def transform(self, X: Iterable[Article]) -> np.ndarray:
        rows = [rule_features(a) for a in X]
        mat = np.asarray(rows, dtype=float).reshape(-1, len(RULE_FEATURE_NAMES))
        return mat[:, self.columns_] * self.weight

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray([RULE_FEATURE_NAMES[i] for i in self.columns_], dtype=object)


def retraction(article: Article) -> Hit:
    """Retracted records and retraction notices are flagged for a human."""
    if article.is_retraction_notice:
        return True, "retraction notice"
    if article.retracted:
        notes = ", ".join(article.retraction_notices) or "notice"
        return True, f"retracted (see {notes})"
    if re.match(r"^\s*(?:retracted|retraction)\b", _texts(article)[0], re.I):
        return True, article.title
    return False, None


def first_sentence_with(article: Article, pattern: re.Pattern[str]) -> str | None:
    """The first abstract sentence (or the title) that matches, shortened, for evidence."""
    if article.title and pattern.search(article.title):
        return _short(article.title)
    for _, s in abstract_sentences(article):
        if pattern.search(s):
            return _short(s)
    return None


# --------------------------------------------------------------------------- title claims
_DRUG_WORD = (r"(?:\(?[rs]\)?-?ketamine|es-?ketamine|ar-?ketamine|ketamine|nmda (?:receptor )?"
              r"antagonists?)(?:'s|’s)?")
_CLAIM_VERB = (r"(?:reduc|reliev|elicit|revers|alleviat|improv|attenuat|rescu|prevent|decreas|"
               r"amelior|restor|normali[sz]|mitigat|protect|produc|provid|enhanc)(?:es|s|ed)\b")
_TITLE_POS = [
    ci(rf"\b{_DRUG_WORD}\s+(?:[\w\-]+\s+){{0,3}}?{_CLAIM_VERB}"),
    ci(r"\b(?:rapid|sustained|long-lasting|robust|lasting)\w*(?: and \w+)? (?:antidepressant|"
       r"anxiolytic|anti-?suicidal)[\w\-]* (?:effects?|action|activity|response)\b"),
    ci(r"\bantidepressant-like (?:effects?|activity|action)\b"
       r"|\banxiolytic(?:-like)? effects? of\b"),
    ci(r"\b(?:amelioration|improvement|remission)s? (?:of|in|from)\b"),
    ci(r"\bsafe and effective\b|\bis (?:an )?effective\b|\band effective results\b"),
]
_TITLE_NEG = [
    ci(r"\b(?:aggravat|exacerbat|worsen)\w*"),
    ci(r"\black of (?:\w+ )?(?:effects?|efficacy|benefit)"),
    ci(r"\b(?:fails?|failed) to\b|\bno (?:effect|benefit|improvement)\b"),
    ci(r"\b(?:does|did|do) not (?:improve|reduce|alter|change|differ)|\bnot superior\b"),
]


@_memo
def title_claim(article: Article) -> Hit:
    """The finding a title states ('ketamine reduces ...' -> beneficial), or None.

    Aims ('for the reduction of', 'to prevent') are not findings: only finite
    verbs and result nouns count.
    """
    title = _texts(article)[0]
    for pat in _TITLE_NEG:
        m = pat.search(title)
        if m:
            return "no_benefit", m.group(0)
    for pat in _TITLE_POS:
        m = pat.search(title)
        if m:
            return "beneficial", m.group(0)
    if _harm(title):  # 'ketamine increases freezing in ...', unless the harm is negated
        m = _HARM.search(title)
        return "no_benefit", m.group(0) if m else title
    return None, None


@_memo
def direction_rule(article: Article) -> Hit:
    """no_benefit or mixed when the finding sentences say so, else None.

    Used only once the model has judged that the record reports an efficacy result.
    The conclusion decides first (an equivocal statement, a benefit joined to a
    non-benefit, or a majority of negative findings); results sentences decide only
    when the conclusion states no direction, or turn a stated benefit into mixed
    when they report benefit on some outcomes, groups or time points and not others.
    """
    oc = outcome_cues(article)
    tc, tev = title_claim(article)
    pos = oc.pos + (tc == "beneficial")
    neg = oc.neg + (tc == "no_benefit")
    ev = oc.evidence or tev
    if oc.equivocal and neg - oc.equivocal <= pos:
        return "mixed", ev
    if neg > pos + oc.mixed:
        return "no_benefit", ev
    if oc.mixed and oc.mixed + neg >= pos:
        return "mixed", ev
    if neg and pos:
        return "mixed", ev
    if pos:
        if oc.r_mixed and oc.r_mixed + oc.r_neg >= oc.r_pos:
            return "mixed", oc.r_evidence or ev
        return None, None
    # the conclusion states no direction: the results decide
    if oc.r_neg > oc.r_pos + oc.r_mixed:
        return "no_benefit", oc.r_evidence
    if oc.r_mixed or (oc.r_pos and oc.r_neg):
        return "mixed", oc.r_evidence
    return None, None
