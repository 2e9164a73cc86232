"""Target conditions and relevance cues: which of depression, PTSD and anxiety a record
names, and the signs that it is not about them (procedural anxiety, off-topic terms)."""

from __future__ import annotations

import re

from pipeline.classify.rules.matching import Hit, ci, memo, texts
from pipeline.records import Article

# --------------------------------------------------------------------------- conditions
CONDITION_PATTERNS: dict[str, re.Pattern[str]] = {
    "depression": ci(
        r"\b(?:depress\w*|antidepress\w*|MDD|TRD|suicid\w*|dysthymi\w*|"
        r"anhedoni\w*|mood disorders?|bipolar)",
        ("depress", "mdd", "trd", "suicid", "dysthymi", "anhedoni", "mood", "bipolar"),
    ),
    "ptsd": ci(
        r"\b(?:PTSD|post[\s\-]?traumatic|acute stress disorder|trauma\w*|"
        r"fear (?:memory|extinction|conditioning|generali[sz]ation))",
        ("ptsd", "traumat", "acute stress", "trauma", "fear"),
    ),
    "anxiety": ci(
        r"\b(?:anxi\w*|panic|obsessive|OCD|phobi\w*|GAD|SAD)\b",
        ("anxi", "panic", "obsessive", "ocd", "phobi", "gad", "sad"),
    ),
}


for _p in CONDITION_PATTERNS.values():
    _p.make_fast()  # type: ignore[attr-defined]  # literal-first: measured faster, same matches


_TARGET_RE = ci(
    r"\b(?:forced swim\w*|tail suspension|learned helplessness|despair|"
    r"psychiatr\w*|mental (?:health|disorders?|illness)|mood|rapid[\s\-]acting|"
    r"neuropsychiatric|emotion\w*|stress\w*|affective)"
)


_PROCEDURAL_ANXIETY = ci(
    r"\b(?:(?:pre|peri|post)[\s\-]?operative|procedural|separation|dental|"
    r"surgical|induction|pre[\s\-]?procedural) anxiety|\banxiety (?:before|"
    r"during) (?:surgery|induction|anaesthe\w*|anesthe\w*|the procedure)",
    ("anxiety",),
)


@memo
def only_procedural_anxiety(article: Article) -> Hit:
    """True when the only target condition is anxiety around a procedure (off-topic by
    TAXONOMY: preoperative or procedural anxiety handled by sedation)."""
    text = texts(article)[2]
    m = _PROCEDURAL_ANXIETY.search(text)
    if not m:
        return False, None
    if CONDITION_PATTERNS["depression"].search(text) or CONDITION_PATTERNS["ptsd"].search(text):
        return False, None
    return True, m.group(0)


_CONDITION_MODEL = ci(
    r"\b(?:anxiety|depressi\w*|ocd|fear)[\s\-]like\b|\banxiolytic\w*|"
    r"\bantidepressant[\s\-]like\b",
    ("like", "anxiolytic"),
)


# the behavioural assays of animal models of depression and anxiety ...
_MODEL_ASSAY = ci(
    r"\b(?:forced[\s\-]swim\w*|tail[\s\-]suspension|learned helplessness|sucrose preference|"
    r"novelty[\s\-]suppressed feeding|chronic (?:mild|unpredictable|variable) stress|"
    r"social defeat)",
    (
        "swim",
        "suspension",
        "helplessness",
        "sucrose",
        "novelty",
        "chronic mild",
        "chronic unpredictable",
        "chronic variable",
        "defeat",
    ),
)
# ... unless the record uses them to model another condition or abuse
_OTHER_MODEL = ci(
    r"\b(?:schizophreni\w*|psychos[ie]s|psychotic|negative symptoms|self-administ\w*|"
    r"abuse\w*|addict\w*|dependence)",
    (
        "schizophren",
        "psychos",
        "psychotic",
        "negative symptoms",
        "self-admin",
        "abuse",
        "addict",
        "dependence",
    ),
)
_OTHER_MODEL.make_fast()  # literal-first: measured faster, same matches


@memo
def condition_model_effect(article: Article) -> Hit:
    """An effect on depression-/anxiety-like behaviour, or a behavioural assay of such a
    model (forced swim, sucrose preference, ...): an animal model of a target condition,
    in scope by TAXONOMY."""
    text = texts(article)[2]
    m = _CONDITION_MODEL.search(text)
    if m:
        return True, m.group(0)
    m = _MODEL_ASSAY.search(text)
    if m and not _OTHER_MODEL.search(text):
        return True, m.group(0)
    return False, None


@memo
def names_no_target(article: Article) -> bool:
    """True when neither title nor abstract names depression, PTSD, anxiety or a near term:
    such a record cannot be about ketamine for them."""
    text = texts(article)[2]
    if any(p.search(text) for p in CONDITION_PATTERNS.values()):
        return False
    return _TARGET_RE.search(text) is None


@memo
def condition_mentions(article: Article) -> dict[str, tuple[int, int, str | None]]:
    """Per condition: (title hits, abstract hits, first matched term)."""
    out: dict[str, tuple[int, int, str | None]] = {}
    title, abstract, _ = texts(article)
    for cond, pat in CONDITION_PATTERNS.items():
        t = pat.findall(title)
        a = pat.findall(abstract)
        first = (t or a or [None])[0]
        out[cond] = (len(t), len(a), first)
    return out


# --------------------------------------------------------------------------- off-topic cues
OFFTOPIC_RE = ci(
    r"\b(?:anaesthe\w*|anesthe\w*|analges\w*|pain\w*|sedat\w*|intubation|premedicat\w*|"
    r"postoperative|emergence|delirium|agitation|sore throat|shivering|cystitis|bladder|"
    r"abuse\w*|recreational|misuse|self-administration|seizure\w*|epilept\w*|opioid\w*|"
    r"surgery|surgical|mucositis|propofol|schizophreni\w*|psychosis|locomot\w*|neurotox\w*|"
    r"alcohol use|cocaine|heroin|eating disorders?)"
)


def offtopic_cue(article: Article) -> str | None:
    """The first off-topic term of title + abstract (anaesthesia, pain, abuse, ...), if any:
    the evidence shown for an off-topic record."""
    # title and abstract as the other rules read them (a newline instead of a space
    # between them: no match spans it, and the lowercased text is shared)
    m = OFFTOPIC_RE.search(texts(article)[2])
    return m.group(0) if m else None
