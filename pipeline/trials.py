"""Trial registration ids: found in a record's DataBankList and abstract, normalised, linked.

Pure functions. A registry id is recognised by its registry's own pattern; the text forms
seen in abstracts ("NCT 0123 4567", "ISRCTN: 12345678", "ChiCTR-IOR-17013445",
"EudraCT number 2004-000123-45") are normalised to the registry's canonical spelling, so
the same trial named twice is one id. Links go to the registry's record (or, where a
registry has no stable record URL, to the WHO ICTRP record of that id).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

ICTRP = "https://trialsearch.who.int/Trial2.aspx?TrialID={id}"


@dataclass(frozen=True)
class TrialId:
    registry: str  # display name of the registry
    id: str  # canonical id
    url: str


@dataclass(frozen=True)
class _Registry:
    name: str
    pattern: re.Pattern[str]
    url: str

    def normalise(self, m: re.Match[str]) -> str:
        return _NORMALISE[self.name](m)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


_SEP = r"[\s:#\-‐‑–]*"  # spaces, colons, hyphens and dashes people put between prefix and number
_NORMALISE: dict[str, Any] = {
    "ClinicalTrials.gov": lambda m: "NCT" + _digits(m.group(1)),
    "ISRCTN": lambda m: "ISRCTN" + _digits(m.group(1)),
    "EU CT": lambda m: m.group(1),
    "EudraCT": lambda m: m.group(1),
    "ChiCTR": lambda m: (
        "ChiCTR" + ("-" + m.group(1).upper() + "-" if m.group(1) else "") + m.group(2)
    ),
    "ANZCTR": lambda m: "ACTRN" + _digits(m.group(1)),
    "IRCT": lambda m: "IRCT" + m.group(1).upper(),
    "CTRI": lambda m: f"CTRI/{m.group(1)}/{m.group(2)}/{m.group(3)}",
    "DRKS": lambda m: "DRKS" + _digits(m.group(1)),
    "jRCT": lambda m: "jRCT" + m.group(1).lower() + m.group(2),
    "UMIN-CTR": lambda m: "UMIN" + m.group(1),
    "JapicCTI": lambda m: "JapicCTI-" + m.group(1),
    "NTR": lambda m: "NTR" + m.group(1),
}

REGISTRIES: tuple[_Registry, ...] = (
    _Registry(
        "ClinicalTrials.gov",
        re.compile(r"\bNCT" + _SEP + r"(\d{4}\s?\d{4})(?!\d)", re.IGNORECASE),
        "https://clinicaltrials.gov/study/{id}",
    ),
    _Registry(
        "ISRCTN",
        re.compile(r"\bISRCTN" + _SEP + r"(\d{8})(?!\d)", re.IGNORECASE),
        "https://www.isrctn.com/{id}",
    ),
    # EU CT (CTIS, since 2023): YYYY-NNNNNN-NN-NN; checked before EudraCT's shorter form
    _Registry(
        "EU CT",
        re.compile(r"(?<![\d-])((?:19|20)\d{2}-\d{6}-\d{2}-\d{2})(?![\d-])"),
        "https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={id}",
    ),
    _Registry(
        "EudraCT",
        re.compile(r"(?<![\d-])((?:19|20)\d{2}-\d{6}-\d{2})(?![\d-])"),
        "https://www.clinicaltrialsregister.eu/ctr-search/search?query={id}",
    ),
    _Registry(
        "ChiCTR",
        re.compile(r"\bChiCTR" + _SEP + r"(?:([A-Z]{2,4})-)?(\d{6,12})(?!\d)", re.IGNORECASE),
        ICTRP,
    ),
    _Registry(
        "ANZCTR",
        re.compile(r"\bACTRN" + _SEP + r"(\d{14})(?!\d)", re.IGNORECASE),
        "https://www.anzctr.org.au/{id}.aspx",
    ),
    _Registry(
        "IRCT",
        re.compile(r"\bIRCT" + _SEP + r"(\d{8,14}N\d{1,3})(?![\dN])", re.IGNORECASE),
        ICTRP,
    ),
    _Registry(
        "CTRI",
        re.compile(r"\bCTRI\s*/\s*((?:19|20)\d{2})\s*/\s*(\d{2,3})\s*/\s*(\d{5,6})(?!\d)", re.I),
        ICTRP,
    ),
    _Registry(
        "DRKS",
        re.compile(r"\bDRKS" + _SEP + r"(\d{8})(?!\d)", re.IGNORECASE),
        "https://drks.de/search/en/trial/{id}",
    ),
    _Registry(
        "jRCT",
        re.compile(r"\b(?:JPRN-)?jRCT([a-z]?)(\d{9,10})(?!\d)", re.IGNORECASE),
        "https://jrct.niph.go.jp/en-latest-detail/{id}",
    ),
    _Registry(
        "UMIN-CTR",
        re.compile(r"\b(?:JPRN-)?UMIN" + _SEP + r"(?:CTR" + _SEP + r")?(\d{9})(?!\d)", re.I),
        ICTRP,
    ),
    _Registry(
        "JapicCTI",
        re.compile(r"\b(?:JPRN-)?JapicCTI" + _SEP + r"(\d{6})(?!\d)", re.IGNORECASE),
        ICTRP,
    ),
    _Registry(  # the Netherlands Trial Register (closed 2022; ids still cited)
        "NTR", re.compile(r"\bNTR\s?(\d{3,5})(?!\d)"), ICTRP
    ),
)
_BY_NAME = {r.name: r for r in REGISTRIES}
# every pattern above starts with one of these, as registries and authors write them (a
# quick no for the ~90 % of texts naming none: substring tests cost microseconds, a regex ~70)
_PREFIXES = ("NCT", "ISRCTN", "ChiCTR", "CHICTR", "ACTRN", "IRCT", "CTRI", "DRKS", "jRCT",
             "JRCT", "UMIN", "JapicCTI", "nct0", "isrctn", "chictr", "actrn", "umin0",
             "drks0", "irct2", "irct1")  # fmt: skip
_NTR_QUICK = re.compile(r"\bNTR\s?\d")
_EU_WORDS = ("Eudra", "EUDRA", "eudra", "EU CT", "EU-CT", "CTIS", "EUCT", "EU Clinical")


def _may_hold_ids(text: str, strict_eu: bool) -> bool:
    if any(p in text for p in _PREFIXES):
        return True
    if "NTR" in text and _NTR_QUICK.search(text):  # not the NTR of INTRODUCTION
        return True
    if strict_eu:
        return any(w in text for w in _EU_WORDS)
    return "-" in text


_EUDRACT_HINT = re.compile(r"eudra\s*-?\s*ct|eu\s*ct|eu\s+clinical\s+trials|ctis", re.IGNORECASE)


def _link(reg: _Registry, trial_id: str) -> str:
    return reg.url.format(id=quote(trial_id, safe=""))


def find_ids(text: str | None, *, strict_eu: bool = False) -> list[TrialId]:
    """Every registry id in a text, canonical, in order of first appearance, once each.

    EudraCT / EU CT numbers are bare digit patterns (YYYY-NNNNNN-NN): in prose they count
    only when the text names EudraCT/EU CT (``strict_eu``, used for abstracts), so a
    hyphenated number elsewhere is not taken for a trial.
    """
    if not text or not _may_hold_ids(text, strict_eu):
        return []  # the common case
    found: list[tuple[int, TrialId]] = []
    taken: list[tuple[int, int]] = []
    eu_ok = not strict_eu or bool(_EUDRACT_HINT.search(text))
    for reg in REGISTRIES:
        if reg.name in ("EU CT", "EudraCT") and not eu_ok:
            continue
        for m in reg.pattern.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue  # inside an id already found (EudraCT inside an EU CT number)
            taken.append((m.start(), m.end()))
            tid = reg.normalise(m)
            found.append((m.start(), TrialId(reg.name, tid, _link(reg, tid))))
    out: dict[str, TrialId] = {}
    for _, t in sorted(found, key=lambda x: x[0]):
        out.setdefault(t.id, t)
    return list(out.values())


def trial_ids(accession_numbers: Iterable[str], abstract: str | None) -> list[TrialId]:
    """A record's registrations: DataBankList accession numbers first, then the abstract's."""
    out: dict[str, TrialId] = {}
    for acc in accession_numbers:
        for t in find_ids(acc):
            out.setdefault(t.id, t)
    for t in find_ids(abstract, strict_eu=True):
        out.setdefault(t.id, t)
    return list(out.values())


def from_id(trial_id: str) -> TrialId | None:
    """A stored canonical id back to its registry and link."""
    found = find_ids(trial_id)
    return found[0] if found else None


def article_trial_ids(article: Any) -> list[str]:
    """Canonical ids of an ``Article`` (its accession numbers and abstract)."""
    return [t.id for t in trial_ids(getattr(article, "accession_numbers", ()), article.abstract)]


def links(ids: Iterable[str]) -> list[dict[str, str]]:
    """[{"id", "registry", "url"}] for stored ids (unknown forms are kept, unlinked)."""
    out = []
    for i in ids:
        t = from_id(i)
        out.append({"id": i, "registry": t.registry if t else "", "url": t.url if t else ""})
    return out


def trial_note(article: Any) -> str | None:
    """ "Trial registration: NCT01234567 (ClinicalTrials.gov); ..." for citation notes."""
    ids = trial_ids(getattr(article, "accession_numbers", ()), article.abstract)
    if not ids:
        return None
    return "Trial registration: " + "; ".join(f"{t.id} ({t.registry})" for t in ids)


__all__ = [
    "trial_note",
    "REGISTRIES",
    "TrialId",
    "article_trial_ids",
    "find_ids",
    "from_id",
    "links",
    "trial_ids",
]
