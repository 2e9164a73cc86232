"""Facts and designs on team-written fixtures (issue 10): sample size for every design,
the 'multiple' drug value, and designs that were mistaken for randomised trials. The
corpus checks read ../shared at test time and copy nothing from it."""

from __future__ import annotations

import re

import pytest

from pipeline.classify import rules
from pipeline.classify.rules import facts
from pipeline.classify.text import article_from_record, sections_from_text
from pipeline.records import Article, MeshHeading


def art(title: str, abstract: str | None = None, **kw: object) -> Article:
    """A fictional record (team-written text)."""
    return Article(pmid="1", title=title, abstract_sections=sections_from_text(abstract), **kw)


# --------------------------------------------------------------------------- sample size
@pytest.mark.parametrize(
    "title,abstract,expected",
    [
        # case reports: one patient, whatever other numbers the text holds
        (
            "Ketamine for a refractory episode: a case report",
            "We describe a 45-year-old woman who had four children and received six "
            "invented ketamine infusions over 12 weeks.",
            1,
        ),
        (
            "Rapid relief after ketamine in a made-up clinic",
            "We present a case of a man with chronic invented depression; 16 points on "
            "the scale, classifying this patient as mildly depressed.",
            1,
        ),
        # a case series is counted, number words included
        (
            "Oral ketamine in imaginary hospice care: a case series",
            "We report the use of oral ketamine in three hospice patients with fictional "
            "depression.",
            3,
        ),
        (
            "An invented series",
            "Six patients with made-up bipolar depression received esketamine twice weekly.",
            6,
        ),
        ("An invented trial", "METHODS: Forty-two adults were enrolled.", 42),
    ],
)
def test_sample_size_case_reports_series_and_number_words(
    title: str, abstract: str, expected: int
) -> None:
    assert rules.sample_size(art(title, abstract))[0] == expected


@pytest.mark.parametrize(
    "abstract,expected",
    [
        ("We analysed the records of 1,234 invented patients.", 1234),
        ("We analysed the records of 12 345 invented patients.", 12345),
        ("We analysed the records of 12\u2009345 invented adults.", 12345),  # thin space
        ("We analysed the records of 12\u00a0345 invented adults.", 12345),  # no-break space
        ("We analysed the records of 12\u202f345 invented adults.", 12345),
        # a range or a decimal is not a thousands separator
        ("Ages were 18 to 65; 3.5 mg was given to 120 fictional patients.", 120),
    ],
)
def test_sample_size_reads_thousands_separators(abstract: str, expected: int) -> None:
    assert rules.sample_size(art("A fictional registry study", abstract))[0] == expected


@pytest.mark.parametrize(
    "abstract,expected",
    [
        # randomised beats enrolled beats analysed
        ("Of 42 patients who signed consent, 28 were randomized to ketamine or midazolam.", 28),
        (
            "Sixty adults were screened, 48 adults were enrolled and 40 were randomly assigned "
            "to ketamine or placebo; 35 completed the study.",
            40,
        ),
        ("A total of 120 invented patients were enrolled; 102 patients were analysed.", 120),
        # arms of one randomisation add up
        (
            "RESULTS: Twenty-two participants were randomised to ketamine, and 19 to placebo.",
            41,
        ),
        ("Patients received ketamine (n = 20) or midazolam (n = 21).", 41),
        # groups of one sample add up, healthy controls included
        ("Thirty patients with invented PTSD and 30 healthy controls were scanned.", 60),
        (
            "Seventeen participants with TRD, 18 participants with PTSD and 8 participants "
            "with OCD started oral ketamine.",
            43,
        ),
        # a per-arm size is not the sample; a later subsample does not add
        ("Invented patients were randomly allocated into two groups of 23 subjects each.", None),
        ("The first sample (N = 50) was scanned. A subsample (n = 10) was rescanned.", 50),
        ("The first sample (N = 50) was scanned. A second sample (N = 55) was scanned.", 105),
        # a sex breakdown and a subset with its share do not replace the total
        ("Fifty-two adults (62.5% female) received ketamine; 7 patients (13%) relapsed.", 52),
        # a scale's name and a population figure are not counts of participants
        ("GAD-7 scores of patients fell after ketamine.", None),
        ("Depression affects over 300 million people; we enrolled 64 adults.", 64),
    ],
)
def test_sample_size_randomised_enrolled_and_groups(abstract: str, expected: int | None) -> None:
    assert rules.sample_size(art("A fictional trial", abstract))[0] == expected


@pytest.mark.parametrize(
    "abstract,expected",
    [
        ("We included 14 randomized trials involving 1,890 participants with depression.", 1890),
        ("Twelve studies (n = 845) met the inclusion criteria.", 845),
        (
            "Twenty invented studies, including two case series and six case reports, "
            "involving 2336 patients were included.",
            2336,
        ),
        ("The trials pooled were: 4 of drug A (n = 300), 2 of drug B (n = 500).", 800),
    ],
)
def test_sample_size_pooled_participants_of_reviews(abstract: str, expected: int) -> None:
    a = art("Ketamine for invented depression: a systematic review", abstract)
    assert rules.sample_size(a)[0] == expected


def test_ketamine_count_matches_the_ketamine_pattern(corpus: list[dict]) -> None:
    """The literal-first count of ketamine mentions equals the count of _KET_RE matches."""
    texts = [f"{r['title']}\n{r['abstract'] or ''}" for r in corpus]
    texts += [
        "racemic ketamine, S-ketamine, (R)-ketamine, esketamine, (ketamine) and ketamine's",
        "Ketamine-assisted therapy; norketamine; ketamine_x; KETAMINE; racemic  ketamine",
    ]
    for t in texts:
        assert len(facts._KET_COUNT_RE.findall(t)) == len(facts._KET_RE.findall(t)), t[:60]


# --------------------------------------------------------------------------- drug
@pytest.mark.parametrize(
    "title,abstract,expected",
    [
        ("Ketamine and esketamine for invented depression: a narrative review", None, "multiple"),
        (
            "Ketamine for made-up depression: a systematic review",
            "We searched for trials of racemic ketamine or esketamine. Ketamine trials were "
            "pooled; two esketamine trials were summarised.",
            "multiple",
        ),
        (
            "Esketamine nasal spray in an invented trial",
            "Esketamine, the S-enantiomer of ketamine, was given twice weekly. Esketamine "
            "reduced scores.",
            "esketamine",
        ),
        (
            "Arketamine in a fictional stress model",
            "We compared ketamine, esketamine and arketamine. Ketamine and esketamine caused "
            "side effects; ketamine, esketamine and arketamine reduced immobility; ketamine "
            "was given once.",
            "multiple",
        ),
        (
            "Commentary on a review of ketamine for invented depression",
            "This commentary reviews esketamine data. Esketamine improved response.",
            "esketamine",
        ),
        ("Ketamine infusions in an invented clinic", "Ketamine was given weekly.", "ketamine"),
    ],
)
def test_drug_multiple_when_several_forms_are_studied(
    title: str, abstract: str | None, expected: str
) -> None:
    assert rules.drug(art(title, abstract))[0] == expected


# --------------------------------------------------------------------------- design
@pytest.mark.parametrize(
    "title,abstract,expected",
    [
        # open-label, single-arm: not a randomised trial
        (
            "Repeated ketamine in invented PTSD",
            "METHODS: Twenty adults received six open-label ketamine infusions in a "
            "single-arm design.",
            "nonrandomized_trial",
        ),
        # an observational study describing itself
        (
            "Ketamine for an invented suicidal crisis",
            "METHODS: We conducted an observational retrospective study of 100 adults who "
            "received ketamine infusions.",
            "observational",
        ),
        # a narrative review that discusses randomised trials is a review
        (
            "Ketamine for fictional depression: where do we stand?",
            "This narrative review summarizes randomized controlled trials of ketamine and "
            "esketamine and the open questions they leave.",
            "review",
        ),
        # a trial that reviews the literature in passing is not a review
        (
            "Ketamine in an invented clinic",
            "Forty patients were randomized to ketamine or placebo. We review the literature "
            "on dosing.",
            None,
        ),
        # animal studies
        (
            "Ketamine reverses depression-like behaviour after invented stress",
            "Stressed animals received ketamine; immobility fell.",
            "preclinical",
        ),
    ],
)
def test_design_rule_on_designs_mistaken_for_rcts(
    title: str, abstract: str, expected: str | None
) -> None:
    assert rules.design_rule(art(title, abstract))[0] == expected


def test_animal_study_indexed_as_such_is_preclinical() -> None:
    mesh = [MeshHeading(descriptor=d) for d in ("Animals", "Ketamine", "Depression")]
    a = art("Ketamine and synapse formation", "Ketamine increased spine density.", mesh=mesh)
    assert rules.design_rule(a)[0] == "preclinical"
    human = [*mesh, MeshHeading(descriptor="Humans")]
    b = art("Ketamine and synapse formation", "Ketamine increased spine density.", mesh=human)
    assert rules.design_rule(b)[0] is None


def test_observational_publication_type_beats_a_viewpoint_title() -> None:
    a = art(
        "Esketamine in invented comorbid patients: a viewpoint on a retrospective cohort",
        publication_types=["Observational Study"],
    )
    assert rules.design_rule(a)[0] != "review"


def test_case_report_title_naming_one_patient() -> None:
    assert rules.design_rule(art("Ketamine-induced mania in a patient with invented TRD"))[0] == (
        "case_report"
    )


def test_case_reports_in_corpus_count_one_patient(corpus: list[dict]) -> None:
    """Every single-patient case report of the corpus (by gold labels) that states its
    patient gets N = 1 from the rules, not another number of its text."""
    recs = [
        r
        for r in corpus
        if r["labels"]["design"] == "case_report"
        and r["labels"].get("sample_size") == 1
        and r["abstract"]
        and re.search(r"\ba \d+[\s-]year[\s-]old\b|\bcase of an?\b", r["abstract"], re.I)
    ]
    assert len(recs) >= 5
    ok = [rules.sample_size(article_from_record(r))[0] == 1 for r in recs]
    assert sum(ok) / len(ok) >= 0.9


def test_animal_model_assays_mark_target_conditions() -> None:
    a = art("Repeated ketamine in the forced swim test: invented doses compared")
    assert rules.condition_model_effect(a)[0] is True
    # the same assay used to model another condition, or abuse, is not a target
    b = art("Forced swim immobility as a model of invented negative symptoms of schizophrenia")
    assert rules.condition_model_effect(b)[0] is False
    c = art("Ketamine self-administration in rats after chronic mild stress")
    assert rules.condition_model_effect(c)[0] is False


def _ci_patterns() -> list[rules.CIPattern]:
    found: list[rules.CIPattern] = []
    for mod in rules.MODULES:
        for v in vars(mod).values():
            items = v.values() if isinstance(v, dict) else [v]
            if isinstance(v, list):
                items = [p for item in v if isinstance(item, tuple) for p in item[1:]]
            found += [p for p in items if isinstance(p, rules.CIPattern)]
    return found


def test_literal_first_patterns_find_what_their_plain_form_finds(corpus: list[dict]) -> None:
    """`make_fast` rewrites '\\b(?:a|b)' literal-first for speed: every rewritten pattern
    must match exactly where its plain (lowercased) form does, on the corpus and on edges."""
    rewritten = [
        p
        for p in _ci_patterns()
        if p._low.pattern != re.sub(r"(?<!\\)[A-Z]", lambda m: m.group(0).lower(), p.pattern)
    ]
    assert len(rewritten) >= 10
    texts = [f"{r['title']}\n{r['abstract'] or ''}".lower() for r in corpus]
    texts += ["xptsd and ptsd", "_ocd ocd 9ocd", "non-randomized, randomized", "é-ocd", ""]
    for p in rewritten:
        plain = re.compile(re.sub(r"(?<!\\)[A-Z]", lambda m: m.group(0).lower(), p.pattern))
        for t in texts:
            assert [m.span() for m in p._low.finditer(t)] == [
                m.span() for m in plain.finditer(t)
            ], (p.pattern[:60], t[:60])


@pytest.mark.parametrize(
    "pattern,expected",
    [
        (r"\b(?:this|our)\s+x", r"(?:t(?<!\wt)his|o(?<!\wo)ur)\s+x"),
        (r"\b(?:randomi[sz]ed|crossover)\b", r"(?:r(?<!\wr)andomi[sz]ed|c(?<!\wc)rossover)\b"),
        # shapes it cannot rewrite safely are left as they are
        (r"\b(?:s?x|y)", r"\b(?:s?x|y)"),
        (r"\b(?:[ab]x|y)", r"\b(?:[ab]x|y)"),
        (r"\b(?:\d+ cases|y)", r"\b(?:\d+ cases|y)"),
        (r"(?:a|b)", r"(?:a|b)"),
        # an optional or repeated group: the \b must stay in front of what follows
        (r"\b(?:psycho)?active", r"\b(?:psycho)?active"),
        (r"\b(?:re)*do", r"\b(?:re)*do"),
    ],
)
def test_literal_first_rewrite(pattern: str, expected: str) -> None:
    from pipeline.classify.rules.matching import literal_first

    assert literal_first(pattern) == expected


# --------------------------------------------------------------------------- corpus levels
def test_corpus_sample_size_and_drug_levels(corpus: list[dict]) -> None:
    """Rule-only facts on every gold record (rules learn nothing, so no folds are needed):
    sample size exact 192 of 210 (0.914; 0.79 before issue 10), drug per form: multiple
    36 of 40 (0.90; 25 of 40 before), macro over the named forms 0.97."""
    pairs = [
        (r["labels"]["sample_size"], rules.sample_size(article_from_record(r))[0])
        for r in corpus
        if r["abstract"] and r["labels"].get("sample_size") is not None
    ]
    assert sum(g == p for g, p in pairs) / len(pairs) >= 0.9
    per: dict[str, list[bool]] = {}
    for r in corpus:
        gold = r["labels"].get("drug")
        if gold is not None:
            per.setdefault(gold, []).append(rules.drug(article_from_record(r))[0] == gold)
    acc = {k: sum(v) / len(v) for k, v in per.items()}
    assert acc["multiple"] >= 0.85
    assert sum(acc.values()) / len(acc) >= 0.95


# --------------------------------------------------------------------------- comparator
@pytest.mark.parametrize(
    "title,abstract,design,expected",
    [
        # a placebo that is negated, earlier evidence, a limitation or a future trial names
        # no arm of this study
        (
            "Open-label ketamine in an invented clinic",
            "Twenty adults received ketamine. This study lacked a placebo group.",
            "nonrandomized_trial",
            "none",
        ),
        (
            "Esketamine in a made-up real-world cohort",
            "Phase III studies have shown esketamine superior to placebo. We report "
            "real-world outcomes of 50 invented patients.",
            "observational",
            "none",
        ),
        (
            "A fictional feasibility study of ketamine",
            "Twelve adults received open-label ketamine. Placebo-controlled trials are needed.",
            "nonrandomized_trial",
            "none",
        ),
        # midazolam as premedication is no arm; the saline arm is the comparator
        (
            "Ketamine for invented emergence agitation",
            "Children were premedicated with midazolam. Group K received ketamine and "
            "group P received a placebo.",
            "rct",
            "placebo",
        ),
        # midazolam as the active placebo, alone or beside an inactive saline arm
        (
            "Ketamine for a fictional suicidal crisis",
            "Adults were randomized to ketamine or midazolam, an active placebo.",
            "rct",
            "midazolam",
        ),
        (
            "Ketamine in two invented trials",
            "Trial 1 compared ketamine with saline; trial 2 compared ketamine with midazolam.",
            "rct",
            "placebo",
        ),
        # another drug compared with ketamine, by name or by INN stem
        ("Ketamine versus propofol for invented sedation", None, "rct", "active_drug"),
        (
            "Effects of esketamine and fluoxetine in a fictional stress model",
            None,
            "preclinical",
            "active_drug",
        ),
        (
            "An invented sedation trial",
            "Patients were randomized to ketamine or zelbrazepam for sedation.",
            "rct",
            "active_drug",
        ),
        (
            "Ketamine, but not the invented antagonist lanicemine, changes connectivity",
            None,
            "nonrandomized_trial",
            "active_drug",
        ),
        # 'compared to baseline' is no drug
        (
            "A fictional open-label ketamine study",
            "Scores fell compared to baseline.",
            "nonrandomized_trial",
            "none",
        ),
        # racemic ketamine compared with esketamine: an active comparator
        (
            "Intravenous ketamine versus intranasal esketamine in an invented clinic",
            "Real-world outcomes were compared.",
            "observational",
            "active_drug",
        ),
        # a review pooling placebo-controlled trials; a review naming no comparison
        (
            "Ketamine for invented depression: a meta-analysis",
            "We pooled randomized placebo-controlled trials of ketamine.",
            "systematic_review",
            "placebo",
        ),
        (
            "Ketamine for invented depression: a meta-analysis",
            "We pooled trials of ketamine; electroconvulsive therapy was not studied.",
            "systematic_review",
            None,
        ),
        # doses of ketamine compared with each other
        (
            "High-dose versus low-dose oral ketamine in invented depression",
            "Thirty adults were randomized.",
            "rct",
            "other",
        ),
        (
            "Ketamine for an invented addiction",
            "Adults were randomized to single versus repeated sessions of ketamine therapy.",
            "rct",
            "other",
        ),
        # saline as a diluent is no placebo arm; a saline injection is
        (
            "Comparison of nebulized ketamine with nebulized magnesium for invented sore throat",
            "Patients received magnesium 250 mg in 5 ml saline or ketamine 50 mg in 5 ml saline.",
            "rct",
            "active_drug",
        ),
        (
            "An invented sore throat trial",
            "Group A inhaled magnesium 250 mg in 5 ml saline and group B inhaled ketamine "
            "50 mg in 5 ml saline.",
            "rct",
            None,
        ),
        (
            "Esketamine for invented postoperative behaviour",
            "Group C received an intravenous injection of 5 mL of normal saline; the other "
            "groups received esketamine.",
            "rct",
            "placebo",
        ),
        # animal studies: a vehicle arm is a placebo, a sham operation is not
        (
            "Ketamine in invented stressed mice",
            "Mice received ketamine or vehicle.",
            "preclinical",
            "placebo",
        ),
        (
            "Ketamine in an invented lesion model",
            "Sham-operated and lesioned rats received ketamine.",
            "preclinical",
            None,
        ),
        # a narrative review has no comparator
        ("Ketamine versus placebo: a narrative review", None, "review", None),
    ],
)
def test_comparator_reads_the_arms_of_this_study(
    title: str, abstract: str | None, design: str, expected: str | None
) -> None:
    assert rules.comparator(art(title, abstract), design)[0] == expected


def test_comparator_design_only_none_quotes_nothing() -> None:
    """'none' inferred from the design alone carries no made-up evidence."""
    value, ev = rules.comparator(
        art("Ketamine in an invented clinic", "Ten adults."), "nonrandomized_trial"
    )
    assert (value, ev) == ("none", None)


# --------------------------------------------------------------------------- routes
@pytest.mark.parametrize(
    "title,abstract,expected",
    [
        ("An invented trial", "Intravenous ketamine was given.", ["iv"]),
        ("An invented trial", "Adults with DSM-IV depression received oral ketamine.", ["oral"]),
        ("An invented clinic", "Patients received six ketamine infusions.", ["iv"]),
        ("Subcutaneous ketamine infusion in invented palliative care", None, ["sc"]),
        (
            "Oral ketamine for invented depression",
            "Oral ketamine is preferred over intravenous ketamine for access.",
            ["oral"],
        ),
        (
            "Intranasal ketamine for invented agitation",
            "Intramuscular meperidine was the rescue analgesic.",
            ["intranasal"],
        ),
        (
            "Ketamine for invented induction",
            "Diazepam 1 mg was given intravenously as premedication. Ketamine was given "
            "intranasally via nasal spray.",
            ["intranasal"],
        ),
    ],
)
def test_routes_of_ketamine_not_of_asides(title: str, abstract: str | None, expected: list) -> None:
    assert rules.routes(art(title, abstract))[0] == expected


# --------------------------------------------------------------------------- drug, more
@pytest.mark.parametrize(
    "title,abstract,expected",
    [
        # a combination's second drug is racemic ketamine
        ("Propofol-fentanyl versus propofol-ketamine for invented sedation", None, "ketamine"),
        # the racemate and both enantiomers discussed at length
        (
            "Ketamine for invented depression: does chirality matter?",
            "Ketamine is a mix of S-ketamine and R-ketamine. S-ketamine binds more; "
            "R-ketamine lasts longer; racemic ketamine sits between.",
            "multiple",
        ),
        # a review titled with esketamine that surveys racemic ketamine's trials too
        (
            "Esketamine for invented PTSD: a narrative review",
            "This narrative review covers intravenous ketamine trials and intranasal "
            "esketamine data. Ketamine trials were larger; esketamine data are pilot data.",
            "multiple",
        ),
        # no form named: the drug family the record was found by
        ("Rapid-acting antidepressants and invented synapses", None, "ketamine"),
    ],
)
def test_drug_combinations_chirality_and_reviews(
    title: str, abstract: str | None, expected: str
) -> None:
    assert rules.drug(art(title, abstract))[0] == expected


# --------------------------------------------------------------------------- N, more
@pytest.mark.parametrize(
    "abstract,expected",
    [
        # groups described with a parenthesis between adjective and noun
        (
            "Effects were compared between 19 elderly (≥50 years) and 116 younger "
            "(<50 years) adults with invented depression.",
            135,
        ),
        # the denominator of a share of the sample
        (
            "Dissociation occurred in 14.3% (109/764) of patients; invented headaches "
            "occurred in 5 patients.",
            764,
        ),
        # a comparison group named in the next sentence
        (
            "Ketamine was given to 86 healthy children. These children were compared with "
            "62 others who received an invented sedative.",
            148,
        ),
    ],
)
def test_sample_size_groups_denominators_and_comparison_groups(
    abstract: str, expected: int
) -> None:
    assert rules.sample_size(art("An invented study", abstract))[0] == expected


# --------------------------------------------------------------------------- corpus, dev part
def test_corpus_comparator_and_routes_levels_on_the_development_part(corpus: list[dict]) -> None:
    """Rule-only comparator (read under the gold design) and routes on the development part
    of the gold records (the sealed part is left alone): comparator macro-F1 0.83 and
    accuracy 0.91 (0.52 / 0.76 before this work, under the predicted design), routes exact
    0.98 (0.92)."""
    from sklearn.metrics import f1_score

    from pipeline.classify.split import split_gold

    dev, _ = split_gold(corpus)
    arts = [article_from_record(r) for r in dev]
    gold = [str(r["labels"]["comparator"]) for r in dev]
    pred = [
        str(rules.comparator(a, r["labels"]["design"])[0]) for a, r in zip(arts, dev, strict=True)
    ]
    classes = sorted(set(gold) - {"None"})
    assert f1_score(gold, pred, labels=classes, average="macro") >= 0.8
    assert sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) >= 0.89
    routes_ok = [
        sorted(rules.routes(a)[0]) == sorted(r["labels"]["routes"] or [])
        for a, r in zip(arts, dev, strict=True)
    ]
    assert sum(routes_ok) / len(routes_ok) >= 0.96


@pytest.mark.parametrize(
    "pattern,expected",
    [
        (r"\b(?:this|that|our)\s", r"\b(?:t(?:his|hat)|o(?:ur))\s"),
        # a non-letter alternative keeps its place; only the runs around it are grouped
        (r"\b(?:ab|ac|\w+-like|ad|ae)x", r"\b(?:a(?:b|c)|\w+-like|a(?:d|e))x"),
        # capturing groups would be renumbered; fewer than three alternatives gain nothing
        (r"\b(?:a(b)|ac|ad)", r"\b(?:a(b)|ac|ad)"),
        (r"\b(?:ab|ac)", r"\b(?:ab|ac)"),
    ],
)
def test_first_letter_grouped_rewrite(pattern: str, expected: str) -> None:
    from pipeline.classify.rules.matching import first_letter_grouped

    assert first_letter_grouped(pattern) == expected


def test_first_letter_grouped_finds_what_the_plain_pattern_finds() -> None:
    """Alternatives are tried in order: grouping by letter must keep the first match at
    every place (team-written texts; the corpus check above covers the shipped patterns)."""
    from pipeline.classify.rules.matching import first_letter_grouped

    patterns = [
        r"\b(?:an|a|and|b|be|ban|\w+ed|a\w*)\b",
        r"\b(?:open|o|open-label|single|s\w+|sin)(?:\s+arm)?",
        r"\b(?:x|y|xy|yx|xyz)",
    ]
    texts = ["an and a ban be banned", "open-label single arm sin o opened", "xyz yx xy x y"]
    for p in patterns:
        fast = re.compile(first_letter_grouped(p))
        assert fast.pattern != p
        plain = re.compile(p)
        for t in texts:
            assert [m.span() for m in fast.finditer(t)] == [m.span() for m in plain.finditer(t)]
