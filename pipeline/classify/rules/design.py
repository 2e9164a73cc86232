"""Study design cues: publication types, title and abstract statements, animal markers."""

from __future__ import annotations

import re

from pipeline.classify.rules.matching import Hit, ci, memo, texts
from pipeline.records import Article

# --------------------------------------------------------------------------- design cues
_ANIMAL_RE = ci(
    r"\b(?:rats?|mice|mouse|murine|rodents?|zebrafish|monkeys?|marmosets?|primates?|"
    r"C57BL\S*|BALB/c|Sprague|Wistar|in vitro|cultured (?:neurons|cells)|cell cultures?|"
    r"animal models?|forced swim(?:ming)? test|tail suspension|chronic (?:mild|unpredictable|"
    r"variable|social defeat) stress|\w+-like behaviou?rs?|hippocampal slices?)\b"
)
# a title reporting an antidepressant- or anxiolytic-like effect reports an animal study
_LIKE_EFFECT_RE = ci(
    r"\b(?:antidepressant|anxiolytic|depressive|depression|anxiety|anhedonia)[\s\-]like\b",
    ("like",),
)


_HUMAN_RE = re.compile(r"\b(?:patients?|participants?|subjects with|veterans?)\b", re.I)


@memo
def is_animal_study(article: Article) -> Hit:
    """Animal or in-vitro markers in the title, or repeatedly in the abstract."""
    title = texts(article)[0]
    t = _ANIMAL_RE.search(title) or _LIKE_EFFECT_RE.search(title)
    if t:
        return True, t.group(0)
    abstract = texts(article)[1]
    hits = _ANIMAL_RE.findall(abstract)
    if len(hits) < 2:  # the human count only matters against two or more animal hits
        return False, None
    human = _HUMAN_RE.findall(abstract)
    if len(hits) > len(human):
        return True, hits[0]
    return False, None


_PT = {
    "systematic_review": ("systematic review", "meta-analysis", "network meta-analysis"),
    "rct": (
        "randomized controlled trial",
        "controlled clinical trial",
        "pragmatic clinical trial",
        "equivalence trial",
        "clinical trial, phase iii",
        "clinical trial, phase ii",
    ),
    "case_report": ("case reports", "case report"),
    "review": (
        "review",
        "editorial",
        "letter",
        "comment",
        "perspective",
        "guideline",
        "practice guideline",
        "consensus development conference",
        "mini review",
        "review article",
        "news",
        "short survey",
    ),
    "protocol": ("clinical trial protocol", "protocol"),
    "observational": ("observational study", "multicenter study"),
}


# The designs indexing can state, in the order they win: publication types first, then MeSH
# animal terms (preclinical), then a bare "clinical trial" type (non-randomised).
METADATA_DESIGNS = (
    "protocol",
    "systematic_review",
    "case_report",
    "rct",
    "review",
    "observational",
    "preclinical",
    "nonrandomized_trial",
)


@memo
def design_from_metadata(article: Article) -> Hit:
    """The publication-type mapping PubMed indexing gives (the metadata baseline)."""
    pts = [p.lower() for p in article.publication_types]
    for design in (d for d in METADATA_DESIGNS if d in _PT):
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
    (
        "protocol",
        ci(
            r"\b(?:study|trial) protocol\b|\bprotocol (?:for|of) an?\b|"
            r"\bprotocol\s*$|:\s*(?:a\s+)?(?:study\s+)?protocol\b|\bdesign and "
            r"rationale\b|\brationale and design\b"
        ),
    ),
    (
        "systematic_review",
        ci(
            r"\b(?:systematic(?:al)? review|meta[\s\-]?analy\w*|"
            r"umbrella review|pooled analysis|scoping review)\b"
        ),
    ),
    (
        "case_report",
        ci(
            r"\b(?:case reports?|case series|case study|a case\b|"
            r"cases?\b(?! ?-? ?control)|vignettes?|"
            r"(?:in|of) an? (?:\d{1,3}[\s\-]year[\s\-]old\s+)?(?:patient|man|woman|boy|girl|"
            r"child|adolescent|veteran)\b)"
        ),
    ),
    (
        "review",
        ci(
            r"\b(?<!chart )(?:review|overview|perspective|commentary|editorial|update on|"
            r"an update|consensus|guidelines?|expert opinion|narrative|"
            r"lessons|a primer|viewpoint|letter|reply)\b"
        ),
    ),
    (
        "rct",
        ci(
            r"\b(?:randomi[sz]ed|randomly|placebo[\s\-]controlled|double[\s\-]blind\w*|"
            r"crossover|cross-over|controlled (?:clinical )?trial)\b"
        ),
    ),
    (
        "nonrandomized_trial",
        ci(
            r"\b(?:open[\s\-]label|single[\s\-]arm|non[\s\-]?"
            r"randomi[sz]ed|pilot (?:study|trial)|open trial|"
            r"uncontrolled|proof[\s\-]of[\s\-]concept)\b"
        ),
    ),
    (
        "observational",
        ci(
            r"\b(?:retrospective|cohort|chart review|cross[\s\-]sectional|"
            r"case[\s\-]control|registry|survey|real[\s\-]world|"
            r"naturalistic|qualitative|interviews?|claims|database|"
            r"longitudinal study|prospective (?:observational )?study|"
            r"cost[\s\-]\w+ analysis|bibliometric)\b"
        ),
    ),
]
_OPEN_LABEL_TITLE = ci(
    r"\b(?:open[\s\-]label|single[\s\-]arm|non[\s\-]?randomi[sz]ed|"
    r"open trial|uncontrolled)\b"
)
# the abstract describing itself as non-randomised ('this open-label study', 'this was an
# uncontrolled trial'); the match runs to the end of its sentence so that 'this open-label
# extension of a randomised trial' is recognised and left to the model
_OPEN_LABEL_SELF = ci(
    r"\b(?:this|our|the present|the current)\s+(?:was an?\s+|is an?\s+)?"
    r"(?:[\w\-]+\s+){0,3}?(?:open[\s\-]label|single[\s\-]arm|"
    r"non[\s\-]?randomi[sz]ed|uncontrolled)\b[^.]*",
    ("open", "arm", "random", "uncontrolled"),
)
# anything that says the study (or the one it analyses) was randomised or controlled
# (written literal-first: 'random(?<!\wrandom)' is '\brandom', several times faster in `re`)
_ANY_RANDOM = ci(
    r"random(?<!\wrandom)(?<!non-random)(?:i[sz]|ly\b)|placebo(?<!\wplacebo)[\s\-]controlled|"
    r"double(?<!\wdouble)[\s\-]blind|cross(?<!\wcross)[ \-]?over\b|"
    r"sham(?<!\wsham)[\s\-]controlled",
    ("random", "placebo", "sham", "blind", "crossover", "cross-over", "cross over"),
)
# the abstract calling itself observational ('we conducted a retrospective cohort study')
_OBSERVATIONAL_SELF = ci(
    r"\b(?:this|our|the present|the current|we (?:conducted|performed|carried out|report)|"
    r"in) (?:an?|this)?\s*(?:[\w\-]+\s+){0,3}?(?:retrospective|observational|cohort|"
    r"registry|chart[\s\-]review|cross[\s\-]sectional|case[\s\-]control|real[\s\-]world|"
    r"naturalistic|population[\s\-]based|database|claims)\b",
    (
        "retrospective",
        "observational",
        "cohort",
        "registry",
        "chart review",
        "chart-review",
        "sectional",
        "case-control",
        "case control",
        "real-world",
        "real world",
        "naturalistic",
        "population",
        "database",
        "claims",
    ),
)
# an open-label or single-arm study anywhere in an abstract that names no randomisation
_OPEN_LABEL_ANY = ci(
    r"\b(?:open[\s\-]label|single[\s\-]arm|non[\s\-]?randomi[sz]ed|uncontrolled|open trial)\b",
    ("open", "arm", "random", "uncontrolled"),
)
# a review describing itself
_REVIEW_SELF = ci(
    r"\b(?:this|the present|our)\s+(?:narrative\s+|critical\s+|brief\s+|selective\s+|"
    r"mini[\s\-]?|comprehensive\s+|integrative\s+|current\s+)?review\b|"
    r"\bwe (?:review|summari[sz]e|overview)\b|\bthis (?:article|paper|chapter|commentary|"
    r"editorial|perspective) (?:reviews|discusses|summari[sz]es|examines|provides an overview)|"
    r"\bnarrative review\b|\breview (?:of )?the (?:current )?(?:literature|evidence)\b",
    ("review", "summari", "overview", "discusses", "examines"),
)
# a study of its own participants (then a 'review of the literature' is not the design)
_OWN_PARTICIPANTS = ci(
    r"\b(?:patients|participants|subjects|adults|individuals|veterans) (?:were|was) "
    r"(?:enrolled|recruited|included|treated|assessed|given|administered)\b|"
    r"\bwe (?:enrolled|recruited|treated|studied|assessed|randomi[sz]ed)\b|"
    r"\b(?:were|was) randomi[sz]ed\b|\brandomly (?:assigned|allocated)\b",
    ("were", "was", "we ", "randomly"),
)
_RANDOM_NEAR = re.compile(r"(?<!non-)(?<!non)\brandomi[sz]", re.I)
_FUTURE = ci(
    r"\b(?:will be (?:randomi[sz]ed|enrolled|recruited|assessed|allocated|assigned|"
    r"measured|included|conducted)|we will|will receive|are being recruited)\b",
    ("will", "are being recruited"),
)
_DESIGN_ABSTRACT: list[tuple[str, re.Pattern[str]]] = [
    (
        "protocol",
        ci(
            r"\b(?:will be (?:randomi[sz]ed|enrolled|recruited|assessed|"
            r"allocated)|we will (?:enrol|recruit|randomi|conduct|assess)|"
            r"this protocol|study protocol)\b",
            ("will", "protocol"),
        ),
    ),
    (
        "systematic_review",
        ci(
            r"\b(?:systematic(?:ally)? (?:review|search)\w*|"
            r"meta[\s\-]?analy\w*|PRISMA|databases? (?:were|was) "
            r"searched|searched (?:PubMed|MEDLINE|Embase))",
            ("systematic", "meta", "prisma", "searched"),
        ),
    ),
    (
        "case_report",
        ci(
            r"\b(?:case report|case series|we (?:present|report|describe) "
            r"(?:a|the|two|three|four|five|\d+) (?:case|patient)|"
            r"\d{1,2}[\s\-]year[\s\-]old (?:wo)?man|this case|"
            r"in an? (?:[\w\-]+ ){0,4}(?:patient|man|woman|boy|girl|child)\b)",
            ("case", "patient", "year", "man", "boy", "girl", "child"),
        ),
    ),
    (
        "review",
        ci(
            r"\b(?:this (?:narrative )?review|we review|in this review|"
            r"this article (?:reviews|discusses|summari[sz]es)|we discuss|"
            r"literature review|review (?:of )?the (?:literature|evidence))\b",
            ("review", "discuss", "summari"),
        ),
    ),
    (
        "rct",
        ci(
            r"\b(?:randomi[sz]ed|randomly (?:assigned|allocated|divided)|"
            r"placebo[\s\-]controlled|double[\s\-]blind\w*|crossover)\b",
            ("random", "controlled", "blind", "crossover"),
        ),
    ),
    (
        "nonrandomized_trial",
        ci(
            r"\b(?:open[\s\-]label|single[\s\-]arm|"
            r"non[\s\-]?randomi[sz]ed|open trial|uncontrolled)\b",
            ("open", "arm", "random", "uncontrolled"),
        ),
    ),
    (
        "observational",
        ci(
            r"\b(?:retrospective(?:ly)?|cohort|chart review|"
            r"cross[\s\-]sectional|case[\s\-]control|registry|survey|"
            r"real[\s\-]world|naturalistic|questionnaires?|interviews?)\b",
            (
                "retrospective",
                "cohort",
                "chart",
                "sectional",
                "control",
                "registry",
                "survey",
                "world",
                "naturalistic",
                "questionnaire",
                "interview",
            ),
        ),
    ),
]
# literal-first forms that measured faster (same matches: tests/test_facts.py)
_FAST = ("systematic_review", "rct", "nonrandomized_trial")
for _p in (
    *(p for d, p in _DESIGN_TITLE if d in _FAST),
    *(p for d, p in _DESIGN_ABSTRACT if d in (*_FAST, "protocol")),
    *(p for d, p in _DESIGN_ABSTRACT if d == "review"),
    _OPEN_LABEL_SELF,
    _OPEN_LABEL_ANY,
    _OBSERVATIONAL_SELF,
    _FUTURE,
    _LIKE_EFFECT_RE,
):
    _p.make_fast()  # type: ignore[attr-defined]
DESIGN_CUE_NAMES = [f"title_{d}" for d, _ in _DESIGN_TITLE] + [
    f"abs_{d}" for d, _ in _DESIGN_ABSTRACT
]


@memo
def design_cues(article: Article) -> dict[str, str]:
    """Every design cue that fires, cue name -> matched text."""
    out: dict[str, str] = {}
    title, abstract, _ = texts(article)
    for d, pat in _DESIGN_TITLE:
        m = pat.search(title)
        if m:
            out[f"title_{d}"] = m.group(0)
    for d, pat in _DESIGN_ABSTRACT:
        m = pat.search(abstract)
        if m:
            out[f"abs_{d}"] = m.group(0)
    return out


@memo
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
    if (
        "title_review" in cues
        and "title_rct" not in cues
        and "observational study" not in (p.lower() for p in article.publication_types)
    ):
        return "review", cues["title_review"]
    m = _OPEN_LABEL_TITLE.search(texts(article)[0]) or _OPEN_LABEL_SELF.search(texts(article)[1])
    if m and not _RANDOM_NEAR.search(m.group(0)):
        return "nonrandomized_trial", m.group(0)
    if len(_FUTURE.findall(texts(article)[1])) >= 2:
        return "protocol", "future tense: " + _FUTURE.findall(texts(article)[1])[0]
    if pt == "review":
        return "review", pt_ev
    animal, animal_ev = is_animal_study(article)
    if animal and "abs_review" not in cues:
        return "preclinical", animal_ev
    if "title_rct" in cues and not re.search(r"non[\s\-]?randomi", texts(article)[0], re.I):
        return "rct", cues["title_rct"]
    if pt == "rct":
        return "rct", pt_ev
    return _stated_in_abstract(article, cues)


def _stated_in_abstract(article: Article, cues: dict[str, str]) -> Hit:
    """A design the abstract states of itself, where nothing in the record says it was
    randomised: an observational or open-label study, a narrative review, or an animal
    study indexed as such (MeSH 'Animals' without 'Humans')."""
    title, abstract, both = texts(article)
    mesh = {m.lower() for m in article.mesh_terms}
    if "animals" in mesh and "humans" not in mesh and "abs_review" not in cues:
        return "preclinical", "MeSH Animals, not Humans"
    if not abstract or any(
        c in cues for c in ("abs_systematic_review", "abs_case_report", "abs_protocol")
    ):
        return None, None
    # a review may well discuss randomised trials: only its own participants say otherwise
    m = _REVIEW_SELF.search(abstract)
    if m and not _OWN_PARTICIPANTS.search(abstract):
        return "review", m.group(0)
    if _ANY_RANDOM.search(both):
        return None, None
    m = _OBSERVATIONAL_SELF.search(abstract)
    if m:
        return "observational", m.group(0)
    m = _OPEN_LABEL_ANY.search(abstract)
    if m and "abs_observational" not in cues:
        return "nonrandomized_trial", m.group(0)
    return None, None
