"""Facts a record states outright: sample size, drug, routes, comparator,
psychotherapy, subgroups, retraction. Each returns (value, the text that drove it)."""

from __future__ import annotations

import re

from pipeline.classify.rules.design import is_animal_study
from pipeline.classify.rules.matching import CIPattern, Guarded, Hit, ci, memo, texts
from pipeline.classify.rules.numbers import normalise_numbers
from pipeline.records import Article

# --------------------------------------------------------------------------- sample size
_PEOPLE = (
    r"(?:patients?|participants?|subjects?|adults?|children|adolescents?|youths?|women|men|"
    r"individuals?|people|persons?|volunteers?|outpatients?|inpatients?|veterans?|users?|"
    r"abusers?|cases?|mothers?|parturients?|respondents?|soldiers?|service members?|"
    r"victims?|survivors?|responders?|completers?|infants?|girls?|boys?|pregnant women|"
    r"healthy controls?|workers?|employees?|nurses?|physicians?|clinicians?|students?|"
    r"residents?|athletes?|prisoners?|smokers?|drinkers?)"
)
_STOP = (
    r"(?:years?-old|months?-old|weeks?|days?|hours?|months?|years?|minutes?|min|mg|kg|"
    r"sessions?|times?|in|with|of|"
    r"who|that|were|was|had|have|to|for|on|at|after|before|from|by|per|doses?|"
    r"infusions?|treatments?|regarding|than|the)\b(?!-)"
)
_ADJ = rf"(?:(?!{_STOP})[A-Za-z][\w\-/]*,?\s+){{0,4}}?"
# '(?<![\d.,/±])\b(\d{1,6})' written so that `re` can skip to digits (a leading
# lookbehind or \b disables its first-character scan): the first digit is consumed, then
# the same two conditions are checked on the character before it.
NOUN_COUNT_RE = ci(rf"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{{0,5}}),?\s+(?:\([^)]*\)\s+)?{_ADJ}{_PEOPLE}\b")
_CONTROLS_RE = ci(r"[^.;]{0,30}?\band (\d{1,5}) (?:[\w\-]+ ){0,2}controls\b")
_NEQ_RE = Guarded(r"\b[nN]\s*=\s*(\d{1,6})\b", ("=",))
_SINGLE_RE = ci(
    r"\b(?:a|one|this|the)\s+(?:\d{1,3}[\s\-]+year[\s\-]+old|single|young|elderly|middle-aged)"
    r"[\s\w\-]{0,40}?\b(?:patient|man|woman|male|female|boy|girl|veteran|individual|mother)\b"
    r"|\bcase of a\b|\bwe (?:present|report|describe) (?:a|the|one) (?:case|patient)\b"
    r"|\b(?:a|one) patient\b"
)


def _sample_candidates(text: str) -> list[tuple[int, int, int, str]]:
    """(score, position, value, snippet) for every number that may count participants."""
    norm = normalise_numbers(text)
    cands: list[tuple[int, int, int, str]] = []
    for m in NOUN_COUNT_RE.finditer(norm):
        value = int(m.group(1))
        before = norm[max(0, m.start() - 25) : m.start()].lower()
        score = 2
        lead = re.search(
            r"(total|enrol|recruit|randomi|sample (?:size )?of|includ|involv|were|"
            r"consist|survey of|cohort of|series of|each of|reports? on|study of)",
            before,
        )
        if lead:
            score += 2
        elif re.search(r"(of the|of whom|among|and|of)\s*$", before):
            score -= 2
        if re.match(r"\s*\(\d+(?:\.\d+)?\s*%", norm[m.end() : m.end() + 12]):
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
        before = norm[max(0, m.start() - 30) : m.start()]
        score = 3 if re.search(rf"{_PEOPLE}\s*\($", before, re.I) else 1
        cands.append((score, m.start(), int(m.group(1)), m.group(0)))
    cands = [c for c in cands if 0 < c[2] < 1_000_000]
    neqs = [c for c in cands if c[3].lower().startswith("n")]
    if len(neqs) >= 2 and max(c[0] for c in cands) <= 1:
        # only per-group 'n = X' counts: the sample is their sum
        cands.append((1, neqs[0][1], sum(c[2] for c in neqs), "+".join(c[3] for c in neqs)))
    return cands


@memo
def sample_size(article: Article) -> Hit:
    """Number of human participants enrolled or randomised, when the text says it.

    Preference: a count next to 'total/enrolled/randomised'; then the first count of
    people; then the first 'n = X'. A single-patient case description gives 1.
    """
    text = texts(article)[1]
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
_ESK_RE = ci(
    r"(?<!\w)(?:es-?ketamine|s-ketamine|\(s\)-ketamine|s\(\+\)-ketamine|spravato)\b",
    ("esk", "es-k", "s-ketamine", "(s)", "s(+)", "spravato"),
)
_ARK_RE = ci(
    r"(?<!\w)(?:ar-?ketamine|r-ketamine|\(r\)-ketamine|\(r\)-\(-\)-ketamine|"
    r"r\(-\)-ketamine)",
    ("ark", "ar-k", "r-ketamine", "(r)", "r(-)"),
)
_KET_RE = ci(r"(?<![\w\-()])(?:racemic\s+)?ketamine\b")


def _drug_counts(text: str) -> tuple[int, int, int]:
    esk = len(_ESK_RE.findall(text))
    ark = len(_ARK_RE.findall(text))
    ket = len(_KET_RE.findall(text))
    return esk, ark, ket


@memo
def drug(article: Article) -> Hit:
    """ketamine / esketamine / arketamine, or multiple when the study compares or pools them."""
    title = texts(article)[0]
    for text, where in ((title, "title"), (texts(article)[1], "abstract")):
        esk, ark, ket = _drug_counts(text)
        named = [n for n, c in (("esketamine", esk), ("arketamine", ark), ("ketamine", ket)) if c]
        if not named:
            continue
        if where == "title":
            if len(named) > 1:
                return "multiple", f"title names {' and '.join(named)}"
            return named[0], f"title names {named[0]}"
        # abstract: the dominant form; a close second means a comparison of forms
        counts = sorted(((esk, "esketamine"), (ark, "arketamine"), (ket, "ketamine")), reverse=True)
        (c1, n1), (c2, _n2) = counts[0], counts[1]
        if c2 and c2 >= 0.6 * c1 and c1 >= 3:
            return "multiple", "abstract names several forms"
        return n1, f"abstract names {n1} {c1}x"
    return None, None


ROUTE_PATTERNS: dict[str, re.Pattern[str] | CIPattern | Guarded] = {
    "iv": Guarded(r"\b(?:intravenous(?:ly)?|i\.\s?v\.|IV)(?=\W|$)", ("intravenous", "i.", "IV")),
    "intranasal": ci(
        r"\b(?:intra-?nasal(?:ly)?|nasal(?:ly)?\s+(?:spray|administ\w*|"
        r"ketamine|esketamine|route)|nasal spray|nasally|spravato)\b",
        ("nasal", "spravato"),
    ),
    "oral": ci(
        r"\b(?:oral(?:ly)?\s+(?:\w+\s+)?(?:es)?ketamine|(?:es)?ketamine\s+"
        r"(?:was\s+)?(?:given\s+|administered\s+|taken\s+)?orally|oral\s+"
        r"(?:dose|doses|dosing|administration|solution|tablets?|route|"
        r"formulation)|per os)\b",
        ("oral", "per os"),
    ),
    "im": Guarded(
        r"\b(?:intramuscular(?:ly)?|i\.\s?m\.|IM)(?=\W|$)", ("intramuscular", "m.", "IM")
    ),
    "sc": Guarded(r"\b(?:subcutaneous(?:ly)?|s\.\s?c\.|SC)(?=\W|$)", ("subcutaneous", "c.", "SC")),
    "sublingual": ci(
        r"\b(?:sublingual(?:ly)?|troches?|lozenges?|buccal)\b",
        ("sublingual", "troche", "lozenge", "buccal"),
    ),
}
_IV_CASE_RE = ci(r"\b(?:intravenous(?:ly)?|infusions?)\b")


@memo
def routes(article: Article) -> Hit:
    """Routes of ketamine administration named in the title or abstract."""
    text = texts(article)[2]
    found: list[str] = []
    ev: list[str] = []
    for route, pat in ROUTE_PATTERNS.items():
        m = pat.search(text) or (_IV_CASE_RE.search(texts(article)[0]) if route == "iv" else None)
        if m:
            found.append(route)
            ev.append(m.group(0))
    return sorted(found), (", ".join(ev) if ev else None)


# --------------------------------------------------------------------------- comparator
COMPARATOR_PATTERNS: list[tuple[str, re.Pattern[str] | CIPattern | Guarded]] = [
    ("midazolam", ci(r"\bmidazolam\b", ("midazolam",))),
    ("ect", Guarded(r"\b(?:ECT|electroconvulsive)\b", ("ECT", "electroconvulsive"))),
    ("placebo", ci(r"\b(?:placebo|saline|sham)\b", ("placebo", "saline", "sham"))),
    (
        "active_drug",
        ci(
            r"\b(?:versus|vs\.?|compared (?:with|to)|or)\s+(?:intravenous\s+|oral\s+|nebuli[sz]ed\s+)?"
            r"(?:propofol|etomidate|haloperidol|dexmedetomidine|morphine|fentanyl|lidocaine|"
            r"metoclopramide|magnesium|tramadol|bupivacaine|sevoflurane|ketorolac|remifentanil|"
            r"lanicemine|riluzole|electroconvulsive|sertraline|escitalopram|fluoxetine|quetiapine|"
            r"lithium|psilocybin|MDMA|nitrous oxide|diazepam|lorazepam|clonidine|\w+ine\b|\w+am\b)"
        ),
    ),
]
_SINGLE_ARM_RE = ci(
    r"\b(?:open[\s\-]label|single[\s\-]arm|uncontrolled|naturalistic|"
    r"retrospective|chart review|real[\s\-]world|pre[\s\-]post)\b"
)


@memo
def comparator(article: Article, design: str | None) -> Hit:
    """The control arm of an interventional study; None where the design has none."""
    if design not in ("rct", "nonrandomized_trial", "observational", "protocol", "preclinical"):
        return None, None
    text = texts(article)[2]
    for name, pat in COMPARATOR_PATTERNS:
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
    (
        "psychotherapy",
        "kap",
        "kagp",
        "cognitive",
        "cbt",
        "exposure",
        "mindfulness",
        "psychedelic",
        "motivational",
        "prolonged",
    ),
)


@memo
def psychotherapy(article: Article) -> Hit:
    """True when ketamine is paired with a structured psychotherapy."""
    text = texts(article)[2]
    m = _PSYCHO_RE.search(text)
    return (True, m.group(0)) if m else (False, None)


# --------------------------------------------------------------------------- subgroups
_SUBGROUPS: dict[str, re.Pattern[str]] = {
    "trd": ci(
        r"\b(?:treatment[\s\-](?:resistant|refractory)\s+(?:\w+\s+){0,2}"
        r"depress\w*|TRD|refractory depress\w*|treatment resistance)\b",
        ("resist", "refract", "trd"),
    ),
    "bipolar": ci(r"\bbipolar\b", ("bipolar",)),
    "suicidality": ci(r"\bsuicid\w*", ("suicid",)),
    "perinatal": ci(
        r"\b(?:postpartum|post-partum|perinatal|peripartum|antenatal|"
        r"prenatal depress\w*|puerper\w*|caesarean|cesarean|pregnan\w*)",
        ("partum", "natal", "puerper", "sarean", "pregnan"),
    ),
    "ocd": ci(r"\b(?:obsessive[\s\-]compulsive|OCD)\b", ("obsessive", "ocd")),
    "anxious_depression": ci(
        r"\banxious depress\w*|\bdepression with (?:high )?anxi", ("anxious", "depression with")
    ),
    "adolescents": ci(
        r"\b(?:adolescen\w*|teenage\w*|youths?|pediatric depress\w*)",
        ("adolescen", "teenage", "youth", "pediatric"),
    ),
    "older_adults": ci(
        r"\b(?:older adults?|elderly|geriatric|late[\s\-]life)\b",
        ("older", "elderly", "geriatric", "late"),
    ),
    "veterans": ci(
        r"\b(?:veterans?|military|service members?|soldiers?)\b",
        ("veteran", "military", "service member", "soldier"),
    ),
}


@memo
def subgroups(article: Article) -> Hit:
    """Subgroups named in the title or abstract (only meaningful for in-scope records)."""
    text = texts(article)[2]
    found, ev = [], []
    for name, pat in _SUBGROUPS.items():
        m = pat.search(text)
        if m:
            found.append(name)
            ev.append(m.group(0))
    return found, (", ".join(ev) if ev else None)


def retraction(article: Article) -> Hit:
    """Retracted records and retraction notices are flagged for a human."""
    if article.is_retraction_notice:
        return True, "retraction notice"
    if article.retracted:
        notes = ", ".join(article.retraction_notices) or "notice"
        return True, f"retracted (see {notes})"
    if re.match(r"^\s*(?:retracted|retraction)\b", texts(article)[0], re.I):
        return True, article.title
    return False, None
