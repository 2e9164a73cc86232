"""Facts a record states outright: sample size, drug, routes, comparator,
psychotherapy, subgroups, retraction. Each returns (value, the text that drove it)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pipeline.classify.rules.design import design_cues, design_rule, is_animal_study
from pipeline.classify.rules.matching import CIPattern, Guarded, Hit, ci, lower, memo, texts
from pipeline.classify.rules.numbers import normalise_numbers
from pipeline.records import Article

# --------------------------------------------------------------------------- sample size
_PEOPLE = (
    r"(?:patients?|participants?|subjects?|adults?|children|adolescents?|youths?|women|men|"
    r"individuals?|people|persons?|volunteers?|outpatients?|inpatients?|veterans?|users?|"
    r"abusers?|cases?(?!\s+(?:series|reports?|stud))|mothers?|parturients?|respondents?|soldiers?|service members?|"
    r"victims?|survivors?|responders?|completers?|infants?|girls?|boys?|pregnant women|"
    r"healthy controls?|workers?|employees?|nurses?|physicians?|clinicians?|students?|"
    r"residents?|athletes?|prisoners?|smokers?|drinkers?|elderly)"
)
_STOP = (
    r"(?:years?-old|months?-old|weeks?|days?|hours?|months?|years?|minutes?|min|mg|kg|"
    r"sessions?|times?|in|with|of|million|billion|"
    r"who|that|were|was|had|have|to|for|on|at|after|before|from|by|per|doses?|"
    r"infusions?|treatments?|regarding|than|the)\b(?!-)"
)
_ADJ = rf"(?:(?!{_STOP})[A-Za-z][\w\-/]*,?\s+){{0,4}}?"
# '(?<![\d.,/±])\b(\d{1,6})' written so that `re` can skip to digits (a leading
# lookbehind or \b disables its first-character scan): the first digit is consumed, then
# the same two conditions are checked on the character before it.
# a people noun used as an adjective ('51 outpatient centres') counts no people
_NOT_PEOPLE = (
    r"(?!\s+(?:cent(?:er|re)s?|clinics?|sites?|units?|settings?|hospitals?|services?|"
    r"visits?|records?|charts?|samples?|programs?|programmes?)\b)"
)
NOUN_COUNT_RE = ci(
    rf"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{{0,5}}),?\s+(?:\([^)]*\)\s+)?{_ADJ}(?:\([^)]*\)\s+)?"
    rf"{_PEOPLE}\b{_NOT_PEOPLE}"
)
# a further count of the same sentence joined to the previous one ('17 participants with
# X, 18 with Y and 8 with Z', '35 patients were compared with 35 controls'): the groups of
# one sample, added up
_MORE_RE = ci(
    rf"(?:\([^)]*\)|[^.;:\d(]){{0,60}}?(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|versus|vs\.?|"
    rf"compared (?:with|to))\s+)"
    rf"(\d{{1,5}})\s+(?:\([^)]*\)\s+)?{_ADJ}(?:\([^)]*\)\s+)?(?:{_PEOPLE}|others|controls)\b"
)
# the denominator of a share of the sample: '14.3% (109/764) of patients'
_DENOMINATOR_RE = ci(
    rf"\(\s*\d{{1,6}}\s*/\s*(\d{{2,6}})\s*\)\s+(?:of\s+)?(?:the\s+|all\s+)?{_PEOPLE}\b", ("/",)
)
_NEQ_RE = Guarded(r"\b[nN]\s*=\s*(\d{1,6})\b", ("=",))
# 'Of 42 who consented, 28 were randomized': a randomised count needs no noun
_RANDOMISED_RE = ci(
    r"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{0,5})\s+(?:[a-z\-]+\s+){0,2}?(?:were|was|had been|"
    r"being)\s+(?:subsequently\s+|then\s+|successfully\s+|eventually\s+)?"
    r"(?:randomi[sz]ed|randomly (?:assigned|allocated))",
    ("random",),
)
_LEAD_RE = re.compile(
    r"(total|enrol|recruit|randomi|randomly|sample (?:size )?of|includ|involv|were|"
    r"consist|survey of|cohort of|series of|each of|reports? on|study of|encompass|"
    r"compris|pooled|totall?ing)"
)
# 'we randomized 120 patients', 'randomly assigned 40 adults' (not 'randomized trials, ...')
_RANDOM_LEAD_RE = re.compile(r"\b(?:randomi[sz](?:ed|ing|ation)|randomly)\b[^,;()]{0,20}$")
# pooled participants of a review: 'k trials involving N participants'
_POOLED_LEAD_RE = re.compile(
    r"\b(?:stud(?:y|ies)|trials?|rcts?|articles?|reports?)\s*(?:\([^)]*\)\s*)?,?\s*"
    r"(?:involving|including|with|enrolling|comprising|encompassing|totall?ing|"
    r"and|of|covering)\s+(?:a total of\s+)?$"
)
_SUBSET_LEAD_RE = re.compile(r"(of the|of whom|of these|of those|among|and)\s*$")
_AFTER_RE = re.compile(
    r"(?:\([^)]*\)|[^.;\d(]){0,40}?\b(?:(?:were|was|had been)\s+(?:\w+\s+)?)?(?:(randomi[sz]ed|randomly)|enrol|recruit)"
)
# a per-group size: 'two groups of 23 subjects each'
_PER_GROUP_RE = re.compile(r"[^.;]{0,12}?\beach\b")
_GROUPS_OF_RE = re.compile(r"\bgroups? of\s*$")
# a further arm of a randomised count: '22 were randomised to ketamine, and 19 to placebo'
_ARM_MORE_RE = ci(
    r"[^.;:\d]{0,50}?(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|versus|vs\.?)\s+)(\d{1,5})\s+"
    r"(?:to|into|in|received|receiving)\b"
)
_PCT_AFTER_RE = re.compile(r"\s*[(\[]\d+(?:\.\d+)?\s*%(?!\s*(?:female|male|women|men|f\b|m\b))")
_SEX_END_RE = re.compile(r"\b(?:women|men|males?|females?)$", re.I)
_OPEN_PAREN_RE = re.compile(r"\([^)]*$")
_PEOPLE_PAREN_RE = re.compile(rf"{_PEOPLE}\s*\($", re.I)
_STUDIES_PAREN_RE = re.compile(r"\b(?:stud(?:y|ies)|trials|rcts)\s*\($", re.I)
_CLAUSE_RE = re.compile(r"[.;](?=\s)")
_SINGLE_RE = ci(
    r"\b(?:a|one|this|the)\s+(?:\d{1,3}[\s\-]+year[\s\-]+old|single|young|elderly|middle-aged)"
    r"[\s\w\-]{0,40}?\b(?:patient|man|woman|male|female|boy|girl|veteran|individual|mother)"
    r"\b(?!-)"
    r"|\bcase of an?\b|\bwe (?:present|report|describe) (?:a|the|one) (?:case|patient)\b"
    r"|\b(?:a|one) patient\b(?!-)"
)
# a report of one patient: a case-report statement, unless several cases are described
# (two patterns, each behind literals every one of its matches holds)
_CASE_REPORT_RE = ci(
    r"\b(?:case reports?|case study|we (?:present|report|describe)s? (?:a|the|one) case|"
    r"this (?:present|report|describe)s? (?:a|the|one) case|this case|the present case|"
    r"our case|case of an?)\b",
    ("case",),
).make_fast()
_PATIENT_REPORT_RE = ci(
    r"\b(?:we (?:present|report|describe)s? (?:a|the|one) patient|"
    r"this (?:present|report|describe)s? (?:a|the|one) patient)\b",
    ("we present", "we report", "we describe", "this present", "this report", "this describe"),
).make_fast()
_SEVERAL_CASES_RE = ci(
    r"\b(?:case series|series of|\d+ (?:cases|patients)|(?:two|three|four|five|six|seven|"
    r"eight|nine|ten|several|multiple) (?:cases|patients))\b",
    ("series", "cases", "patients"),
)
# '(?<![\d.,])(\d{1,3})' written digit-first (as NOUN_COUNT_RE) so that `re` skips to digits
_SPACED_THOUSANDS_RE = re.compile(
    r"(\d(?<![\d.,]\d)\d{0,2})[\u00a0\u2009\u202f ](\d{3})(?![\d.,]\d)"
)


def _clause_start(norm: str, pos: int, width: int) -> int:
    """Where the text `width` characters before `pos` starts, cut at the last sentence or
    clause end, so a lead word of the previous sentence does not count."""
    lo = max(0, pos - width)
    cut = lo
    for m in _CLAUSE_RE.finditer(norm, lo, pos):
        cut = m.end()
    return cut


def _sample_candidates(text: str) -> list[tuple[int, int, int, str]]:
    """(score, position, value, snippet) for every number that may count participants."""
    norm = normalise_numbers(text)
    low = norm.lower()
    cands: list[tuple[int, int, int, str]] = []
    taken_until = -1
    for m in NOUN_COUNT_RE.finditer(norm):
        start = m.start()
        if start and norm[start - 1] == "-":  # 'GAD-7', 'PHQ-9': a scale, not a count
            continue
        value = int(m.group(1))
        before = low[_clause_start(low, start, 40) : start]
        near = before[-25:]
        phrase = m.group(0)
        score = 2
        after = _AFTER_RE.match(low, m.end())
        lead = _LEAD_RE.search(near) or after
        if (after and after.group(1)) or _RANDOM_LEAD_RE.search(before):
            score += 3  # the randomised count wins over enrolled or analysed ones
        elif _POOLED_LEAD_RE.search(before):
            score += 3
        elif lead:
            score += 2
        elif _SUBSET_LEAD_RE.search(near):
            score -= 2
        if _PER_GROUP_RE.match(low, m.end()) or _GROUPS_OF_RE.search(near):
            score -= 2
        if _PCT_AFTER_RE.match(norm, m.end()):
            score -= 2  # '7 cases (21%)': a subset, not the sample
        if _SEX_END_RE.search(phrase) and not lead:
            score -= 1  # a sex breakdown of the sample
        plow = phrase.lower()
        if "control" in plow and "healthy" in plow:
            score -= 1
        if near.rstrip().endswith("(") or _OPEN_PAREN_RE.search(near):
            score -= 1
        if start > taken_until:
            # the further groups of the same sentence add to this count
            end, parts = m.end(), [phrase]
            arms = bool(after and after.group(1))  # '22 were randomised to X, and 19 to Y'
            while (
                more := _MORE_RE.match(norm, end)
                or (_ARM_MORE_RE.match(norm, end) if arms else None)
            ) is not None:
                value += int(more.group(1))
                parts.append(more.group(0).strip())
                end = more.end()
            if len(parts) > 1:
                taken_until = end
                phrase = " ".join(parts)
        cands.append((score, start, value, phrase))
    for m in _RANDOMISED_RE.finditer(norm):
        if m.start() and norm[m.start() - 1] == "-":
            continue
        value, end, parts = int(m.group(1)), m.end(), [m.group(0)]
        while (more := _ARM_MORE_RE.match(norm, end)) is not None:
            value += int(more.group(1))
            parts.append(more.group(0).strip())
            end = more.end()
        cands.append((5, m.start(), value, " ".join(parts)))
    for m in _DENOMINATOR_RE.finditer(norm):
        cands.append((2, m.start(), int(m.group(1)), m.group(0)))
    neqs: list[tuple[int, int, int, str]] = []
    for m in _NEQ_RE.finditer(norm):
        before = norm[max(0, m.start() - 30) : m.start()]
        score = 3 if _PEOPLE_PAREN_RE.search(before) or _STUDIES_PAREN_RE.search(before) else 1
        neqs.append((score, m.start(), int(m.group(1)), m.group(0)))
    cands += neqs
    cands = [c for c in cands if 0 < c[2] < 1_000_000]
    neqs = [c for c in neqs if 0 < c[2] < 1_000_000]
    if len(neqs) >= 2 and max(c[0] for c in cands) <= 1:
        # only per-group 'n = X' counts: the sample is their sum, those of the first
        # sentence naming several groups (later ones are subsamples or other phases),
        # or all of them when each sentence names one
        by_sentence: dict[int, list[tuple[int, int, int, str]]] = {}
        for c in neqs:
            by_sentence.setdefault(low.count(". ", 0, c[1]), []).append(c)
        groups = list(by_sentence.values())
        group = list(groups[0])
        if len(group) == 1:
            # one count per sentence ('the original sample (N = 50) ... the confirmatory
            # sample (N = 55)'): added up until a smaller one, a subsample, comes
            for g in groups[1:]:
                if len(g) > 1 or g[0][2] < group[0][2]:
                    break
                group += g
        # ranked above single counts of score 1: the sum is the better reading
        cands.append((1.5, group[0][1], sum(c[2] for c in group), "+".join(c[3] for c in group)))
    return cands


# the next sentence's comparison group: 'These children were compared with 62 others.'
_COMPARISON_GROUP_RE = ci(
    rf"\b(?:were compared (?:with|to)|for comparison,?)\s[^.;]{{0,80}}?\b(\d{{1,5}})\s+"
    rf"(?:[a-z\-]+\s+){{0,3}}?(?:{_PEOPLE}|others|controls)\b",
    ("compar",),
)


def _comparison_group(text: str, best: tuple[int, int, int, str]) -> tuple[int, str] | None:
    """(count, phrase) of a comparison group the sentence after the sample's names."""
    if "compar" not in lower(text):
        return None
    norm = normalise_numbers(text)
    end = norm.find(". ", best[1])
    if end < 0:
        return None
    nxt = norm.find(". ", end + 2)
    sentence = norm[end + 2 : nxt if nxt >= 0 else len(norm)]
    m = _COMPARISON_GROUP_RE.search(sentence)
    return (int(m.group(1)), m.group(0)) if m else None


def _one_patient(article: Article, text: str) -> str | None:
    """The evidence that a record describes one patient (a case report), else None."""
    title = texts(article)[0]
    pts = [p.lower() for p in article.publication_types]
    stated = "case reports" in pts or any(
        p.search(t) for p in (_CASE_REPORT_RE, _PATIENT_REPORT_RE) for t in (title, text)
    )
    if not stated:
        return None
    if _SEVERAL_CASES_RE.search(title) or _SEVERAL_CASES_RE.search(normalise_numbers(text)):
        return None
    single = _SINGLE_RE.search(text)
    return single.group(0) if single else None


@memo
def sample_size(article: Article) -> Hit:
    """Number of human participants enrolled or randomised, when the text says it.

    Preference: a randomised count; then a count next to 'total/enrolled/included' (for
    reviews: the participants of the pooled studies); then the first count of people; then
    the per-group 'n = X' counts added up. A case report of one patient gives 1, and so
    does a single-patient description when nothing is counted.
    """
    text = texts(article)[1]
    if not text:
        return None, None
    if is_animal_study(article)[0] and not re.search(r"\bpatients?\b", text, re.I):
        return None, None
    one = _one_patient(article, text)
    if one:
        return 1, one
    spaced = _SPACED_THOUSANDS_RE.sub(r"\1\2", text)
    cands = _sample_candidates(spaced)
    if cands:
        best = max(cands, key=lambda c: (c[0], -c[1]))
        if best[0] >= 1:
            more = _comparison_group(spaced, best) if best[0] < 5 else None
            if more is not None:
                return best[2] + more[0], f"{best[3].strip()} + {more[1]}"
            return best[2], best[3].strip()
    m = _SINGLE_RE.search(text)
    if m:
        return 1, m.group(0)
    return None, None


# --------------------------------------------------------------------------- drug, routes
# Drugs a ketamine study is compared with: names common in psychiatric and anaesthetic
# trials, and International Nonproprietary Name stems (WHO) that only drug names end in.
# Found by word lookup (a set and a suffix tuple), not one large pattern: a regex
# alternation of ~70 names and stems would scan every abstract at every position.
_DRUG_NAMES = frozenset(
    (
        "propofol etomidate thiopental methohexital dexmedetomidine haloperidol droperidol "
        "morphine tramadol pethidine meperidine nalbuphine butorphanol buprenorphine "
        "oxycodone hydromorphone lithium magnesium clonidine sevoflurane isoflurane "
        "desflurane nitrous acetaminophen paracetamol ketorolac ibuprofen diclofenac "
        "gabapentin pregabalin ondansetron dexamethasone metoclopramide promethazine "
        "diphenhydramine hydroxyzine chloral psilocybin mdma scopolamine memantine "
        "dextromethorphan riluzole lanicemine rapastinel brexanolone zuranolone bupropion "
        "mirtazapine trazodone agomelatine lamotrigine valproate atropine"
    ).split()
)
_DRUG_STEMS = (
    "azepam",
    "azolam",
    "oxetine",
    "pramine",
    "triptyline",
    "faxine",
    "apine",
    "peridol",
    "idone",
    "piprazole",
    "caine",
    "fentanyl",
    "fentanil",
    "italopram",
    "traline",
    "medetomidine",
)
_WORD_RE = re.compile(r"[a-z]{4,}")


def _is_drug(word: str) -> bool:
    """A drug name (lowercase word) other than ketamine's forms."""
    return word in _DRUG_NAMES or (len(word) > 7 and word.endswith(_DRUG_STEMS))


# the last four letters of every stem: a set lookup before the endswith test
_STEM_TAILS = frozenset(s[-4:] for s in _DRUG_STEMS)


def _drug_spans(low: str) -> list[tuple[int, int]]:
    """(start, end) of every drug name in a lowercased text, in order."""
    all_words = set(_WORD_RE.findall(low))
    words = all_words & _DRUG_NAMES
    words.update(
        w for w in all_words if w[-4:] in _STEM_TAILS and len(w) > 7 and w.endswith(_DRUG_STEMS)
    )
    spans: list[tuple[int, int]] = []
    for w in words:
        i = low.find(w)
        while i >= 0:
            j = i + len(w)
            if (i == 0 or not low[i - 1].isalpha()) and (j == len(low) or not low[j].isalpha()):
                spans.append((i, j))
            i = low.find(w, j)
    return sorted(spans)


_ESK_RE = ci(
    r"(?<!\w)(?:es-?ketamine|s-ketamine|\(s\)-ketamine|s\(\+\)-ketamine|spravato)\b",
    ("esk", "es-k", "s-ketamine", "(s)", "s(+)", "spravato"),
)
_ARK_RE = ci(
    r"(?<!\w)(?:ar-?ketamine|r-ketamine|\(r\)-ketamine|\(r\)-\(-\)-ketamine|"
    r"r\(-\)-ketamine)",
    ("ark", "ar-k", "r-ketamine", "(r)", "r(-)"),
)
# racemic ketamine: not an enantiomer's 'S-'/'es-' prefix, but a combination's second
# drug counts ('propofol-ketamine')
_KET_RE = ci(r"(?:(?<![\w\-()])|(?<=[a-z]{4}-))(?:racemic\s+)?ketamine\b")


# _KET_RE's matches counted fast: every one holds one 'ketamine' not preceded by a word
# character, '-', '(' or ')' unless four letters and '-' precede it (a 'racemic ' before it
# is whitespace-led), so the count of such 'ketamine's, found from the literal, is the
# count of _KET_RE's matches
_KET_COUNT_RE = ci(r"ketamine(?:(?<![\w\-()]ketamine)|(?<=[a-z]{4}-ketamine))\b", ("ketamine",))


def _drug_counts(text: str) -> tuple[int, int, int]:
    esk = len(_ESK_RE.findall(text))
    ark = len(_ARK_RE.findall(text))
    ket = len(_KET_COUNT_RE.findall(text))
    return esk, ark, ket


_FORMS = ("esketamine", "arketamine", "ketamine")


def _is_review(article: Article) -> bool:
    """A review or meta-analysis: a record that pools or surveys studies, and so may cover
    several forms of the drug."""
    if design_rule(article)[0] in ("review", "systematic_review"):
        return True
    cues = design_cues(article)
    return "abs_systematic_review" in cues or "abs_review" in cues


@memo
def drug(article: Article) -> Hit:
    """ketamine / esketamine / arketamine, or multiple when the study compares or pools them.

    The title names the studied form; a review whose abstract names several forms covers
    them all (a racemic 'ketamine' in the title of a review that only speaks of esketamine
    is the drug family's name, not a second form); a study titled with one form whose
    abstract is mostly about another compares them.
    """
    title, abstract, _ = texts(article)
    t_counts = dict(zip(_FORMS, _drug_counts(title), strict=True))
    t_named = [n for n in _FORMS if t_counts[n]]
    if len(t_named) > 1:
        return "multiple", f"title names {' and '.join(t_named)}"
    low = lower(abstract)
    has = {
        n: any(a in low for a in p.anchors)
        for n, p in zip(_FORMS, (_ESK_RE, _ARK_RE, _KET_COUNT_RE), strict=True)
    }
    a_counts: dict[str, int] | None = None
    if has["esketamine"] and has["arketamine"]:
        a_counts = dict(zip(_FORMS, _drug_counts(abstract), strict=True))
        if min(a_counts.values()) >= 2:
            # the racemate and both enantiomers discussed at length: a record on chirality
            return "multiple", "abstract names esketamine, arketamine and ketamine"
    if t_named and t_named[0] != "ketamine" and has["ketamine"] and _is_review(article):
        a_counts = a_counts or dict(zip(_FORMS, _drug_counts(abstract), strict=True))
        if a_counts["ketamine"] >= max(2, a_counts[t_named[0]] / 2):
            # a review titled with an enantiomer that also surveys racemic ketamine's studies
            return "multiple", f"review naming {t_named[0]} and ketamine"
    if t_named and not _is_review(article):
        # a study titled with one form compares forms only if its abstract names another
        if not any(has[n] for n in _FORMS if n != t_named[0]):
            return t_named[0], f"title names {t_named[0]}"
    a_counts = a_counts or dict(zip(_FORMS, _drug_counts(abstract), strict=True))
    a_named = [n for n in _FORMS if a_counts[n]]
    ranked = sorted(((a_counts[n], n) for n in _FORMS), reverse=True)
    (c1, n1), (c2, _n2) = ranked[0], ranked[1]
    if t_named and t_named[0] != "ketamine" and (not a_named or n1 == t_named[0]):
        # an enantiomer in the title that the abstract is mostly about is the studied drug
        return t_named[0], f"title names {t_named[0]}"
    if (t_named or a_named) and _is_review(article):
        forms = set(a_named) | {n for n in t_named if n != "ketamine" or not a_named}
        if len(forms) > 1:
            return "multiple", f"review naming {' and '.join(n for n in _FORMS if n in forms)}"
        if forms:
            (only,) = forms
            return only, f"review naming {only}"
    # a close second form in the abstract means a comparison of forms
    compared = c2 and c2 >= 0.6 * c1 and c1 >= 3
    if t_named:
        if compared and n1 != t_named[0]:
            return "multiple", "abstract names several forms"
        return t_named[0], f"title names {t_named[0]}"
    if not a_named:
        # the record came from a ketamine query and names no form: the drug family
        return "ketamine", None
    if compared:
        return "multiple", "abstract names several forms"
    return n1, f"abstract names {n1} {c1}x"


# The case-sensitive route patterns are written letter-first: '[Ii](?<!\w[Ii])ntra...' is
# '\b[Ii]ntra...' (the letter is a word character), but `re` can skip to the letter instead
# of trying every alternative at every word boundary (2-3x faster scans). The 'iv'
# alternatives after the 'I'/'i' are grouped: their second characters ('n', '.', 'N', 'V')
# differ, so at most one can match at a place and their order does not matter.
ROUTE_PATTERNS: dict[str, re.Pattern[str] | CIPattern | Guarded] = {
    # = \b(?:[Ii]ntravenous(?:ly)?|INTRAVENOUS|[Ii]\.\s?[vV]\.|(?<!DSM )...(?<!type )IV)(?=\W|$)
    "iv": Guarded(
        r"(?:[Ii](?<!\w[Ii])(?:ntravenous(?:ly)?|\.\s?[vV]\.)|I(?<!\wI)(?:NTRAVENOUS|"
        r"(?<!DSM I)(?<!DSM-I)(?<!Phase I)(?<!phase I)(?<!Stage I)(?<!stage I)(?<!Grade I)"
        r"(?<!grade I)(?<!Type I)(?<!type I)V))(?=\W|$)",
        ("ntravenous", "INTRAVENOUS", "i.", "I.", "IV"),
    ),
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
    # = \b(?:[Ii]ntramuscular(?:ly)?|i\.\s?m\.|IM)(?=\W|$)
    "im": Guarded(
        r"(?:[Ii](?<!\w[Ii])ntramuscular(?:ly)?|i(?<!\wi)\.\s?m\.|I(?<!\wI)M)(?=\W|$)",
        ("ntramuscular", "m.", "IM"),
    ),
    # = \b(?:[Ss]ubcutaneous(?:ly)?|s\.\s?c\.|SC)(?=\W|$)
    "sc": Guarded(
        r"(?:[Ss](?<!\w[Ss])ubcutaneous(?:ly)?|s(?<!\ws)\.\s?c\.|S(?<!\wS)C)(?=\W|$)",
        ("ubcutaneous", "c.", "SC"),
    ),
    "sublingual": ci(
        r"\b(?:sublingual(?:ly)?|troches?|lozenges?|buccal)\b",
        ("sublingual", "troche", "lozenge", "buccal"),
    ),
}
_IV_CASE_RE = ci(r"\b(?:intravenous(?:ly)?|infusions?)\b")
# a ketamine infusion is intravenous unless another route is named with it
_INFUSION_RE = ci(
    r"(?:ketamine[\s\-]+infusions?|infusions? of (?:\S+\s+){0,4}?(?:es|ar)?ketamine|"
    r"ketamine (?:was |were )?infused)\b",
    ("infus",),
)
# a route named only to contrast with the one studied, as background or as another drug's
_ROUTE_ASIDE_RE = ci(
    r"\b(?:than|unlike|rather than|instead of|preferred over|equivalen\w*|previously|"
    r"most studies|ha(?:s|ve) been shown|not an ideal|impractical|alternative to)\b"
)
_GIVEN_END_RE = re.compile(r"\b(?:given|administered)\s*$")


def _other_drugs_route(low: str, start: int, end: int, before: str) -> bool:
    """Another drug given by a route: 'intramuscular meperidine', 'diazepam was given
    intravenously' (read only where the sentence does not name ketamine)."""
    after = _WORD_RE.findall(low, end, end + 30)[:2]
    if any(_is_drug(w) for w in after):
        return True
    if _GIVEN_END_RE.search(before.lower()):
        return any(_is_drug(w) for w in _WORD_RE.findall(before.lower()[-60:]))
    return False


def _mentions(pat: re.Pattern[str] | CIPattern | Guarded, text: str) -> Iterable[Any]:
    """Every match of a pattern, behind its anchors' cheap `in` test (CIPattern.finditer
    scans without it)."""
    anchors = getattr(pat, "anchors", ())
    if anchors:
        low = lower(text) if isinstance(pat, CIPattern) else text
        for a in anchors:
            if a in low:
                break
        else:
            return ()
    return pat.finditer(text)


def _route_mention(
    pat: re.Pattern[str] | CIPattern | Guarded, text: str, aside_ok: bool
) -> str | None:
    """The first mention of a route that is not an aside (see _ROUTE_ASIDE_RE)."""
    for m in _mentions(pat, text):
        if aside_ok:
            return m.group(0)
        before, sent = _sentence(text, m.start(), m.end())
        if _ROUTE_ASIDE_RE.search(sent):
            continue
        if "ketamine" not in lower(sent) and _other_drugs_route(
            lower(text), m.start(), m.end(), before
        ):
            continue
        return m.group(0)
    return None


@memo
def routes(article: Article) -> Hit:
    """Routes of ketamine administration named in the title or abstract.

    A route the title names counts; one named in the abstract only counts outside a
    contrast or another drug's administration ('preferred over intravenous ketamine',
    'diazepam was given intravenously'); a ketamine infusion is intravenous unless a
    subcutaneous infusion is named."""
    title, abstract, text = texts(article)
    low = lower(text)
    found: list[str] = []
    ev: list[str] = []
    for route, pat in ROUTE_PATTERNS.items():
        where = low if isinstance(pat, CIPattern) else text
        for a in pat.anchors:  # one anchor test for title and abstract together
            if a in where:
                hit = _route_mention(pat, title, True) or _route_mention(pat, abstract, False)
                break
        else:
            hit = None
        if hit is None and route == "iv":
            m = _IV_CASE_RE.search(title) or _INFUSION_RE.search(abstract)
            hit = m.group(0) if m else None
        if hit:
            found.append(route)
            ev.append(hit)
    if "iv" in found and "sc" in found and not ROUTE_PATTERNS["iv"].search(title):
        # 'subcutaneous ketamine infusion': the infusion is not a second route
        iv_direct = _route_mention(ROUTE_PATTERNS["iv"], abstract, False)
        if iv_direct is None:
            i = found.index("iv")
            del found[i], ev[i]
    return sorted(found), (", ".join(ev) if ev else None)


# --------------------------------------------------------------------------- comparator
# two arms named side by side ('ketamine versus propofol', 'propofol or ketamine'), the
# arms patients 'received' ('received propofol, ...'), a title pairing ketamine with
# another drug: the context of each drug name found by _drug_spans
_VS_BEFORE_RE = re.compile(
    r"(?:versus|vs\.?|compared (?:with|to)|in comparison (?:with|to)|\bor)\s+"
    r"(?:(?:intravenous|oral|nebuli[sz]ed|intranasal|standard|an?)\s+)?$"
)
_VS_AFTER_RE = re.compile(r"\s*(?:\([^)]*\)\s*)?(?:versus|vs\.?|or|compared (?:with|to))\s")
_RECEIVED_BEFORE_RE = re.compile(
    r"\b(?:receiv(?:ed|ing)|given|randomi[sz]ed to)\s+(?:either\s+)?(?:\w+\s+){0,2}?$"
)
_COMMA_AFTER_RE = re.compile(r"\s*(?:\([^)]*\)\s*)?,")
_PAIR_AFTER_RE = re.compile(r"\s*(?:,|and|or|plus|with)\s+(?:\w+\s+){0,2}?(?:es|ar)?ketamine\b")
_PAIR_BEFORE_RE = re.compile(
    r"ketamine\s*(?:,?\s*(?:and|or|plus|with|but not)|,)\s+(?:\w+\s+){0,3}?$"
)
_ACTIVE_CONTROL_RE = ci(
    r"\b(?:psycho)?active[\s\-]+(?:controlled|control|comparator)\b", ("active",)
)


def _active_mention(text: str, title: bool) -> str | None:
    """The first drug named as a compared arm (see above), as the text writes it."""
    low = lower(text)
    if len(low) != len(text):
        return None
    for i, j in _drug_spans(low):
        before = low[max(0, i - 50) : i]
        hit = (
            (m := _VS_BEFORE_RE.search(before)) is not None
            or _VS_AFTER_RE.match(low, j) is not None
            or (_RECEIVED_BEFORE_RE.search(before) is not None and _COMMA_AFTER_RE.match(low, j))
            or (
                title
                and (_PAIR_AFTER_RE.match(low, j) is not None or _PAIR_BEFORE_RE.search(before))
            )
        )
        if not hit:
            continue
        lo = i - len(before) + m.start() if m is not None else i
        sent_before, sent = _sentence(text, i, j)
        if not title and (
            _NEGATED_BEFORE_RE.search(sent_before.lower()[-60:]) or _NOT_THIS_STUDY_RE.search(sent)
        ):
            continue
        return text[lo:j]
    return None


COMPARATOR_PATTERNS: list[tuple[str, re.Pattern[str] | CIPattern | Guarded]] = [
    ("midazolam", ci(r"\bmidazolam\b", ("midazolam",))),
    ("ect", Guarded(r"\b(?:ECT|electroconvulsive)\b", ("ECT", "electroconvulsive"))),
    (
        "placebo",
        ci(
            # not a 'motor vehicle accident', nor a sham operation inducing an animal model
            r"\b(?:placebo|saline|sham|vehicle)(?<!motor vehicle)"
            r"(?![\s\-]+(?:accident|crash|collision|operat|surg|lesion))",
            ("placebo", "saline", "sham", "vehicle"),
        ),
    ),
]
_SINGLE_ARM_RE = ci(
    r"\b(?:open[\s\-]label|single[\s\-]arm|uncontrolled|naturalistic|"
    r"retrospective|chart review|real[\s\-]world|pre[\s\-]post)\b"
)
# a mention that names no arm of this study: negated ('lack of a placebo group', 'not
# placebo-controlled'), earlier evidence ('phase III studies have shown ... placebo'), a
# limitation or a call for future trials, a list of alternatives ('drugs such as ...'),
# a premedication or a treatment the patients had failed before
_NEGATED_BEFORE_RE = re.compile(
    r"(?:\black(?:ed|s|ing)?(?: of)?|\bno|\bwithout|\bnot|\babsence of|\bnon|\bnor|"
    r"\bsuch as|\blike|\bincluding|\bresistant to|\brefractory to|\bfailed|"
    r"\bfailure (?:of|to respond to)|\bhistory of|\bprior|\bprevious)"
    r"(?:\s+|-)(?:\S+\s+){0,3}(?:an?\s+|the\s+)?$"
    # a list of alternatives, a diluent ('in 5 ml saline'), a combination ('ketamine/X')
    r"|\b(?:such as|like|including|e\.g\.,?)\s+(?:[\w\-]+,?\s+(?:and\s+|or\s+)?){0,6}$"
    r"|\b(?:(?:in|with)\s+\d+(?:\.\d+)?\s*(?:ml|cc)|diluted (?:in|with))\s+(?:of\s+)?"
    r"(?:normal\s+)?$|ketamine\s*[/+]\s*$"
)
_COMBINED_AFTER_RE = re.compile(r"\s*[/+]\s*(?:es|ar)?ketamine")
_NOT_THIS_STUDY_RE = ci(
    r"\b(?:future|further|needed|warranted|larger|should be|preparation for|subsequent|"
    r"have (?:shown|demonstrated|reported|established)|has been (?:shown|demonstrated|"
    r"established)|(?:was|were) demonstrated|previous(?:ly)?|pivotal|limitations?|"
    r"(?:a|one|the) prior stud(?:y|ies)|prior (?:studies|trials)|earlier (?:studies|trials)|"
    r"premedicat\w*|premedication)\b"
)
# an inactive placebo arm beside a midazolam one: the study (or pool) has both, placebo
_INACTIVE_RE = ci(
    r"\b(?:saline|inactive placebo|placebo (?:or|and) midazolam|midazolam (?:or|and) placebo)\b",
    ("saline", "inactive", "midazolam"),
)
# a review's midazolam is its comparison only when compared with: 'versus midazolam'
_REVIEW_VS_RE = re.compile(
    r"(?:versus|vs\.?|compared (?:with|to)|than|with|or|and)\s+(?:\w+\s+){0,2}$"
)
_FORM_VS_RE = ci(
    r"\b(?:versus|vs\.?|compared (?:with|to)|comparing|comparison|comparative|head-to-head)\b",
    ("versus", "vs", "compar", "head-to-head"),
)
# dose or schedule comparisons of ketamine alone: another kind of control arm
_DOSE_ARMS_RE = ci(
    r"\b(?:high|low|single|repeated|fixed|flexible|standard|different)[\s\-]+"
    r"(?:dose|doses|dosing|sessions?|infusions?)?\s*(?:versus|vs\.?|compared (?:with|to))\s+"
    r"(?:a\s+)?(?:high|low|single|repeated|multiple|fixed|flexible|standard)\b",
    ("versus", "vs", "compared"),
)
_COMPARATOR_DESIGNS = (
    "rct",
    "nonrandomized_trial",
    "observational",
    "protocol",
    "preclinical",
    "systematic_review",
)


def _sentence(text: str, start: int, end: int) -> tuple[str, str]:
    """The part of the sentence before a mention, and the whole sentence."""
    lo = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("; ", 0, start))
    hi = min((i for i in (text.find(". ", end), text.find("\n", end)) if i >= 0), default=len(text))
    return text[lo + 1 : start], text[lo + 1 : hi]


def _arm_mention(
    pat: re.Pattern[str] | CIPattern | Guarded, text: str, compared: bool = False
) -> str | None:
    """The first mention of `pat` that names an arm of this study, else None (`compared`:
    only one that follows a comparison word)."""
    for m in _mentions(pat, text):
        before, sent = _sentence(text, m.start(), m.end())
        near = before.lower()[-60:]
        if _NEGATED_BEFORE_RE.search(near) or _NOT_THIS_STUDY_RE.search(sent):
            continue
        if _COMBINED_AFTER_RE.match(text, m.end()) or (compared and not _REVIEW_VS_RE.search(near)):
            continue
        if "ketamine" in m.group(0).lower():
            continue
        return m.group(0)
    return None


def _forms_compared(title: str, text: str) -> str | None:
    """Racemic ketamine compared with esketamine or arketamine (one is the other's active
    comparator): both forms named around a comparison word of one sentence."""
    low = lower(text)
    if "ketamine" not in low or not any(a in low for p in (_ESK_RE, _ARK_RE) for a in p.anchors):
        return None
    for m in _mentions(_FORM_VS_RE, text):
        _before, part = _sentence(text, m.start(), m.end())
        esk, ark, ket = _drug_counts(part)
        if (esk or ark) and ket:
            return m.group(0)
    return None


@memo
def comparator(article: Article, design: str | None) -> Hit:
    """The control arm of an interventional study (or the comparison a review pools); None
    where the design has none or the text names no arm.

    A mention counts only when it names an arm of this study (not a negation, an earlier
    trial, a limitation or a premedication); midazolam beside an inactive saline arm means
    both were used (placebo); a racemic/enantiomer comparison is an active comparator."""
    if design not in _COMPARATOR_DESIGNS:
        return None, None
    title, _abstract, text = texts(article)
    review = design == "systematic_review"
    found: dict[str, str] = {}
    for name, pat in COMPARATOR_PATTERNS:
        if name in found:
            continue
        if name == "ect" and review:
            hit = _arm_mention(pat, title)  # a review's ECT is a comparison only if titled
        else:
            hit = _arm_mention(pat, text, compared=review and name == "midazolam")
        if hit:
            found[name] = hit
    # the title's own comparison of two treatments names the study's arms
    titled = None if review else _active_mention(title, True)
    if titled and "midazolam" not in found:
        return "active_drug", titled
    if titled:
        found.setdefault("active_drug", titled)
    if "midazolam" in found and not ("placebo" in found and _INACTIVE_RE.search(text)):
        return "midazolam", found["midazolam"]
    if "ect" in found:
        return "ect", found["ect"]
    if "placebo" in found:
        return "placebo", found["placebo"]
    forms = _forms_compared(title, text)
    if forms:
        return "active_drug", f"forms compared: {forms}"
    if "active_drug" not in found and (
        hit := _arm_mention(_ACTIVE_CONTROL_RE, text) or _active_mention(text, False)
    ):
        found["active_drug"] = hit
    if "active_drug" in found and (not review or "active" in found["active_drug"].lower()):
        return "active_drug", found["active_drug"]
    if not review:
        m = _DOSE_ARMS_RE.search(text)
        if m:
            return "other", m.group(0)
    if design in ("nonrandomized_trial", "observational"):
        m = _SINGLE_ARM_RE.search(text)
        if m or design == "nonrandomized_trial":
            # without a stated cue the design alone implies it: no quote to show
            return "none", m.group(0) if m else None
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


# patterns whose literal-first form measured faster (same matches: tests/test_facts.py)
for _p in (
    ROUTE_PATTERNS["intranasal"],
    ROUTE_PATTERNS["sublingual"],
    _IV_CASE_RE,
    *(p for name, p in COMPARATOR_PATTERNS if name == "placebo"),
    _DOSE_ARMS_RE,
    _ROUTE_ASIDE_RE,
    _NOT_THIS_STUDY_RE,
    _FORM_VS_RE,
    _COMPARISON_GROUP_RE,
    _INACTIVE_RE,
    *(
        _SUBGROUPS[n]
        for n in ("trd", "perinatal", "ocd", "adolescents", "older_adults", "veterans")
    ),
):
    _p.make_fast()  # type: ignore[union-attr]
