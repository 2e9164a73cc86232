"""Outcome direction: negation-aware reading of conclusion and results sentences, and
the findings titles claim. Used as model features and as overrides in `predict`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.classify.rules.matching import Hit, ci, lower, memo, texts
from pipeline.classify.text import (
    CONCLUSION_LABELS,
    RESULT_LABELS,
    abstract_sentences,
    split_sentences,
)
from pipeline.records import Article

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
    r"significant(?:ly)? (?:lower|higher|greater|fewer)|resolution|protect\w*|prevent\w*)\b"
)
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
    (
        "no",
        "n't",
        "fail",
        "without",
        "neither",
        "lack",
        "absence",
        "unable",
        "insufficient",
        "inconclusive",
        "similar",
        "comparable",
        "equivalent",
        "ineffective",
        "null",
    ),
)
# Harm: the condition got worse ('worsened', 'exacerbated', 'increased freezing',
# 'induces an anxiety-like state', 'symptoms were elevated').
HARM_RE = ci(
    r"\b(?:worsen\w*|aggravat\w*|exacerbat\w*|anxiogenic|depressogenic|pro-?depressant)\b"
    r"|\b(?<!-)(?:increas\w*|elevat\w*|heighten\w*|promot\w*|induc\w*|enhanc\w*)\s+(?:[\w\-]+\s+)"
    r"{0,3}?(?:freezing|immobility|despair|anxiety[\s\-]like|depressi\w*[\s\-]like|"
    r"(?:depressive|anxiety|ptsd|posttraumatic stress|suicidal) (?:symptoms?|severity|state))"
    r"|\bworse (?:than|outcomes?|scores?|symptoms?)\b"
    r"|\b(?:symptom\w*|severity|suicidal ideation)\s+(?:[\w\-]+\s+){0,3}?(?:was|were)\s+"
    r"(?:\w+\s+)?(?:increased|elevated|heightened|worse)\b",
    (
        "worse",
        "aggravat",
        "exacerbat",
        "anxiogenic",
        "depressogenic",
        "depressant",
        "freezing",
        "immobility",
        "despair",
        "like",
        "symptom",
        "severity",
        "state",
    ),
)
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
    ("need", "warrant", "requir", "necessar", "should", "must"),
)
_CLAUSE_END = re.compile(r"[,;:]\s|\s(?:but|whereas|while|although)\s")
_SECONDARY = ci(
    r"\b(?:other|secondary|exploratory|remaining)\s+(?:[\w\-]+\s+)?(?:measures?|"
    r"outcomes?|end ?points?|parameters?|variables?|scales?)\b",
    ("other", "secondary", "exploratory", "remaining"),
)
# moderator and predictor analyses: 'did not differ by sex', 'was not associated with response'
_PREDICTOR = ci(
    r"\b(?:by|according to|across) (?:sex|gender|age|race|ethnicity|sites?|"
    r"diagnos\w*|baseline)\b|\bnot (?:\w+ )?(?:associated|correlated|predict\w*)\b",
    ("by", "according", "across", "associated", "correlated", "predict"),
)
_FUTURE_SPLIT = re.compile(r"([,;:]\s|\s(?:but|whereas|while|although|and)\s)")
_CONTRAST = ci(
    r"\b(?:but|whereas|while|although|however|in contrast|yet)\b",
    ("but", "whereas", "while", "although", "however", "contrast", "yet"),
)
for _p in (_MINORITY, _SECONDARY, _CONTRAST):
    _p.make_fast()  # literal-first: measured faster, same matches
# 'A but not B', 'only at the higher dose', 'not at week 4', 'post hoc ... revealed'
_PARTIAL = ci(
    r"\bbut not\b(?! (?:completely|entirely|solely|only|exclusively|fully|necessarily|all|"
    r"at (?:the )?\d|\d))|\b(?<!not )only (?:at|in|on|for|during|among|after|with|when|the)\b|"
    r"\bnot (?:at|on|in) (?:all|other|later|the (?:primary|end))\b|\bpost[\s\-]hoc\b",
    ("but not", "only", "not ", "post"),
)
# a finding that did not last: benefit at some time points, not at others
_TRANSIENT = ci(
    r"\b(?:not|no longer) (?:be )?(?:maintained|sustained|persist\w*)\b|\bdid not (?:last|"
    r"persist)\b|\btransient(?:ly)?\b|\bshort[\s\-]lived\b|\bwore off\b|\breturned to baseline\b"
)
# an explicitly equivocal conclusion
_EQUIVOCAL = ci(
    r"\b(?:mixed|inconsistent|equivocal|conflicting|inconclusive|contradictory)\s+(?:[\w\-]+ )?"
    r"(?:results?|findings?|evidence|effects?|outcomes?|data)\b"
    r"|\b(?:results?|findings?|evidence|effects?|efficacy|data)\s+(?:[\w\-]+ ){0,6}?"
    r"(?:(?:was|were|is|are|remains?|remained)\s+)(?:\w+\s+)?(?:mixed|inconsistent|"
    r"equivocal|conflicting|inconclusive|unclear|uncertain)\b",
    (
        "mixed",
        "inconsistent",
        "equivocal",
        "conflicting",
        "inconclusive",
        "contradictory",
        "unclear",
        "uncertain",
    ),
)
# negatives about safety or side effects are not the efficacy direction
_SAFETY_TOPIC = ci(
    r"\b(?:dissociat\w*|psychotomimetic|adverse|side[\s\-]effects?|safety|tolerab\w*|"
    r"blood pressure|heart rate|h(?:a)?emodynamic\w*|BPRS|CADSS|demographic\w*|"
    r"baseline characteristics|sedation|abuse|withdrawal|drop[\s\-]?outs?|cost\w*)"
)
_EFFICACY_TOPIC = ci(
    r"\b(?:depress\w*|antidepress\w*|anxi\w*|PTSD|symptom\w*|suicid\w*|mood|MADRS|HAM-?D|"
    r"HAM-?A|CAPS|remission|response|anhedoni\w*|fear|despair|immobility|OCD|obsess\w*|"
    r"-like behaviou?r\w*|efficac\w*|primary (?:outcome|end ?point))"
)


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
_DRUG_MENTION = ci(
    r"ketamine|\b(?:spravato|the drug|infusions?|treatment|administration)\b",
    ("ketamine", "spravato", "drug", "infusion", "treatment", "administration"),
)


def drug_harm(sentence: str) -> bool:
    """True when the sentence reports that the drug made the condition worse (not negated,
    not a minority of patients)."""
    if not _DRUG_MENTION.search(sentence) or not HARM_RE.search(sentence):
        return False
    for m in HARM_RE.finditer(sentence):
        before = sentence[max(0, m.start() - 60) : m.start()]
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
    low = lower(sentence)
    if _FUTURE_WORK.search(low):
        # drop the clauses that call for more research, keep what the study found
        parts = _FUTURE_SPLIT.split(low)
        low = "".join(p for i, p in enumerate(parts) if i % 2 or not _FUTURE_WORK.search(p))
    clean = _NOT_A_RESULT.sub(" ", low) if _NOT_A_RESULT_ANCHORS.search(low) else low
    neg_m = _NEG_RESULT.search(clean)
    harm = drug_harm(clean)
    neg = bool(neg_m) or harm
    skip = (0, 0)  # the span of a null finding that is not about the primary outcome
    if neg_m and not harm:
        head = _CLAUSE_END.split(clean[: neg_m.start()])[-1]
        tail = _CLAUSE_END.split(clean[neg_m.start() :], maxsplit=1)[0]
        clause = head + tail
        if (
            (_SAFETY_TOPIC.search(clause) and not _EFFICACY_TOPIC.search(clause))
            or _SECONDARY.search(clause)
            or (_PREDICTOR.search(clause) and not _DRUG_MENTION.search(clause))
        ):
            # 'no difference in dissociation' is a safety finding, 'did not differ on other
            # measures' a secondary one, 'did not differ by sex' or 'BDNF was not associated
            # with response' a moderator or predictor: none is the direction on the
            # primary outcome
            neg = False
            skip = (neg_m.start() - len(head), neg_m.start() + len(tail))
    pos_unneg = [
        m
        for m in _POS_TERMS.finditer(clean)
        if not skip[0] <= m.start() < skip[1]
        and not _NEG_BEFORE.search(_scope(clean[max(0, m.start() - 70) : m.start()]))
    ]
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
        res = plain[len(plain) // 2 : -3]
    return tail, res


@memo
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
    return OutcomeCues(
        c["pos"],
        c["neg"],
        c["mixed"],
        topical,
        short(ev),
        r["pos"],
        r["neg"],
        r["mixed"],
        equivocal,
        transient,
        short(rev),
    )


def short(s: str | None, n: int = 240) -> str | None:
    if s is None:
        return None
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


# --------------------------------------------------------------------------- title claims
_DRUG_WORD = (
    r"(?:\(?[rs]\)?-?ketamine|es-?ketamine|ar-?ketamine|ketamine|nmda (?:receptor )?"
    r"antagonists?)(?:'s|’s)?"
)
_CLAIM_VERB = (
    r"(?:reduc|reliev|elicit|revers|alleviat|improv|attenuat|rescu|prevent|decreas|"
    r"amelior|restor|normali[sz]|mitigat|protect|produc|provid|enhanc)(?:es|s|ed)\b"
)
_TITLE_POS = [
    ci(rf"\b{_DRUG_WORD}\s+(?:[\w\-]+\s+){{0,3}}?{_CLAIM_VERB}"),
    ci(
        r"\b(?:rapid|sustained|long-lasting|robust|lasting)\w*(?: and \w+)? (?:antidepressant|"
        r"anxiolytic|anti-?suicidal)[\w\-]* (?:effects?|action|activity|response)\b"
    ),
    ci(
        r"\bantidepressant-like (?:effects?|activity|action)\b"
        r"|\banxiolytic(?:-like)? effects? of\b"
    ),
    ci(r"\b(?:amelioration|improvement|remission)s? (?:of|in|from)\b"),
    ci(r"\bsafe and effective\b|\bis (?:an )?effective\b|\band effective results\b"),
]
_TITLE_NEG = [
    ci(r"\b(?:aggravat|exacerbat|worsen)\w*"),
    ci(r"\black of (?:\w+ )?(?:effects?|efficacy|benefit)"),
    ci(r"\b(?:fails?|failed) to\b|\bno (?:effect|benefit|improvement)\b"),
    ci(r"\b(?:does|did|do) not (?:improve|reduce|alter|change|differ)|\bnot superior\b"),
]


@memo
def title_claim(article: Article) -> Hit:
    """The finding a title states ('ketamine reduces ...' -> beneficial), or None.

    Aims ('for the reduction of', 'to prevent') are not findings: only finite
    verbs and result nouns count.
    """
    title = texts(article)[0]
    for pat in _TITLE_NEG:
        m = pat.search(title)
        if m:
            return "no_benefit", m.group(0)
    for pat in _TITLE_POS:
        m = pat.search(title)
        if m:
            return "beneficial", m.group(0)
    if drug_harm(title):  # 'ketamine increases freezing in ...', unless the harm is negated
        m = HARM_RE.search(title)
        return "no_benefit", m.group(0) if m else title
    return None, None


@memo
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
