"""Unit tests of the classifier's parts: rules on team-written text, estimator contract,
registry, safe model files. Records from ../shared are read at test time, never copied."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import (
    check_estimator,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)

from pipeline.classify import rules
from pipeline.classify.predict import predict_articles
from pipeline.classify.registry import KeaModel, SafeCalibratedClassifier, get_model, model_names
from pipeline.classify.text import (
    TextAssembler,
    article_from_record,
    conclusion_sentences,
    sections_from_text,
    split_sentences,
)
from pipeline.classify.train import library_versions, load_model, save_model
from pipeline.errors import ModelError
from pipeline.labels import VOCAB, record_needs_review
from pipeline.records import AbstractSection, Article


def art(title: str, abstract: str | None = None, **kw: object) -> Article:
    """A fictional record (team-written text)."""
    sections = sections_from_text(abstract)
    return Article(pmid=str(kw.pop("pmid", "1")), title=title, abstract_sections=sections, **kw)


# --------------------------------------------------------------------------- text
def test_sections_split_on_label_prefixes() -> None:
    secs = sections_from_text("BACKGROUND: Why we did it.\nRESULTS: What we saw.\nUnlabelled end.")
    assert [s.label for s in secs] == ["BACKGROUND", "RESULTS", None]
    assert secs[1].text == "What we saw."


def test_sentence_split_keeps_abbreviations() -> None:
    s = split_sentences("Ketamine vs. placebo was tested. Scores fell (e.g. MADRS). Done.")
    assert s == ["Ketamine vs. placebo was tested.", "Scores fell (e.g. MADRS).", "Done."]


def test_conclusion_sentences_prefer_labelled_section() -> None:
    a = art("T", "METHODS: We did things. More things.\nCONCLUSIONS: It worked. Try more.")
    assert conclusion_sentences(a) == ["It worked.", "Try more."]


def test_article_from_record_maps_corpus_fields(corpus: list[dict]) -> None:
    rec = next(r for r in corpus if r["abstract"] and r["publication_types"])
    a = article_from_record(rec)
    assert a.pmid == str(rec["pmid"]) and a.title == rec["title"]
    assert a.publication_types == rec["publication_types"]
    assert a.mesh_terms == rec["mesh_terms"]
    # the corpus abstract format round-trips through sections
    assert a.abstract.replace("\n", " ").split() == rec["abstract"].replace("\n", " ").split()


# --------------------------------------------------------------------------- negation
@pytest.mark.parametrize(
    "sentence,expected",
    [
        ("Ketamine did not differ from placebo on the primary outcome at day 7.", "neg"),
        ("There was no significant difference in depression scores between the groups.", "neg"),
        ("Esketamine failed to separate from placebo on the MADRS.", "neg"),
        ("Ketamine was not superior to midazolam.", "neg"),
        ("Symptoms worsened after the second infusion.", "neg"),
        ("Depression scores were comparable to those in the saline group.", "neg"),
        ("Ketamine significantly reduced depressive symptoms compared with placebo.", "pos"),
        ("Rapid antidepressant effects were seen within 24 hours.", "pos"),
        ("Ketamine reduced anxiety but did not improve depression scores.", "mixed"),
        ("Participants completed questionnaires at baseline.", None),
    ],
)
def test_sentence_direction_is_negation_aware(sentence: str, expected: str | None) -> None:
    assert rules.sentence_direction(sentence) == expected


def test_negated_benefit_never_reads_as_benefit() -> None:
    a = art(
        "A fictional trial",
        "RESULTS: Ketamine did not reduce suicidal ideation more than "
        "placebo.\nCONCLUSIONS: No significant improvement was found with ketamine.",
    )
    cues = rules.outcome_cues(a)
    assert cues.neg >= 1 and cues.pos == 0
    assert rules.direction_rule(a)[0] == "no_benefit"


@pytest.mark.parametrize(
    "sentence,expected",
    [
        # benefit on some outcomes, time points or groups but not others
        ("Ketamine improved invented mood scores at 24 hours but not at day 7.", "mixed"),
        (
            "The reduction was significant in the inpatient cohort, whereas it was not significant "
            "in outpatients.",
            "mixed",
        ),
        ("Esketamine showed efficacy on made-up anhedonia but not on suicidal ideation.", "mixed"),
        (
            "The trial failed to meet its primary endpoint, but post hoc analyses suggested a benefit.",
            "mixed",
        ),
        ("Ketamine was effective only in the higher dose group.", "mixed"),
        # no benefit, negation-aware, and harm attributed to the drug
        ("Response rates did not differ between the ketamine and midazolam arms.", "neg"),
        ("Ketamine was not superior to placebo at any time point.", "neg"),
        ("There was no evidence of antidepressant efficacy in this fictional sample.", "neg"),
        ("Ketamine did not significantly reduce depressive symptoms (p = 0.4).", "neg"),
        ("Scores at 4 hours were similar to those with saline.", "neg"),
        ("Ketamine worsened anxiety symptoms in most invented participants.", "neg"),
        # negators that do not report a negative result
        ("Ketamine not only reduced depressive symptoms but also improved sleep.", "pos"),
        (
            "Patients who did not respond to two antidepressants improved rapidly after ketamine.",
            "pos",
        ),
        ("A small percentage of patients worsened after ketamine, but most improved.", "pos"),
        ("Stress increased immobility, and ketamine reversed it.", "pos"),
        ("Efficacy was comparable between intravenous and intranasal routes.", "pos"),
        # safety or secondary findings, and plans, state no direction on the primary outcome
        ("No significant differences in dissociative side effects were found between arms.", None),
        ("Ketamine did not differ from saline on other behavioural measures.", None),
        ("Further trials are needed to show whether the effect is sustained.", None),
        # moderators and predictors are not the treatment effect
        ("The response rate did not differ by sex or age.", None),
        ("Baseline invented biomarker levels were not associated with response.", None),
        ("Ketamine was not associated with a reduction in depressive symptoms.", "neg"),
        # a call for more research does not cancel the finding stated beside it
        (
            "Ketamine was safe and effective in this made-up sample, although larger trials are "
            "needed.",
            "pos",
        ),
    ],
)
def test_sentence_direction_mixed_no_benefit_and_false_negations(
    sentence: str, expected: str | None
) -> None:
    assert rules.sentence_direction(sentence) == expected


def test_negated_harm_is_not_a_negative_finding() -> None:
    for s in (
        "No patient relapsed during follow-up after ketamine.",
        "Symptoms did not worsen after the fictional infusion.",
    ):
        assert rules.sentence_direction(s) != "neg"


@pytest.mark.parametrize(
    "abstract,expected",
    [
        # conclusion states benefit, results report it on one cohort and not the other
        (
            "RESULTS: In cohort A the reduction in invented anxiety scores was not significant, "
            "whereas a significant reduction was seen in cohort B. The effect was not maintained at "
            "4 weeks.\nCONCLUSIONS: Ketamine reduces invented anxiety in adequate doses.",
            "mixed",
        ),
        # an explicitly equivocal conclusion
        (
            "RESULTS: Nine made-up trials were pooled.\nCONCLUSIONS: Findings across trials were "
            "inconsistent, although some patients improved after ketamine.",
            "mixed",
        ),
        (
            "CONCLUSIONS: Evidence for ketamine in this fictional disorder remains inconclusive.",
            "mixed",
        ),
        # a benefit and a non-benefit in the same conclusion
        (
            "CONCLUSIONS: Ketamine reduced invented depression scores. It did not reduce suicidal "
            "ideation compared with placebo.",
            "mixed",
        ),
        # no direction in the conclusion: the results decide
        (
            "RESULTS: Symptoms were substantially elevated in the ketamine group. Groups did not "
            "differ on invented depression scores.\nCONCLUSIONS: The data describe a modulating role "
            "of ketamine in this fictional sample.",
            "no_benefit",
        ),
        # a clear benefit with a secondary null result stays unflagged (the model decides)
        (
            "RESULTS: Ketamine reduced MADRS scores at 24 hours. Blood pressure did not differ.\n"
            "CONCLUSIONS: Ketamine rapidly reduced invented depressive symptoms.",
            None,
        ),
    ],
)
def test_direction_rule_reads_conclusions_then_results(abstract: str, expected: str | None) -> None:
    assert rules.direction_rule(art("A fictional study", abstract))[0] == expected


@pytest.mark.parametrize(
    "title,expected",
    [
        ("Ketamine rapidly relieves fictional despair in imaginary patients", "beneficial"),
        ("Esketamine nasal spray for the rapid reduction of symptoms: a trial", None),
        ("Ketamine aggravates symptoms in a made-up cohort", "no_benefit"),
        ("Lack of efficacy of ketamine in an invented model", "no_benefit"),
        ("Efficacy and safety of ketamine in invented depression", None),
        ("Ketamine increases freezing in a fictional fear model", "no_benefit"),
        (
            "Ketamine reverses stress-induced depressive-like behaviour in imaginary mice",
            "beneficial",
        ),
        ("Effects of ketamine on toxin-induced anxiety-like behaviour in imaginary rats", None),
    ],
)
def test_title_claims_findings_not_aims(title: str, expected: str | None) -> None:
    assert rules.title_claim(art(title))[0] == expected


# --------------------------------------------------------------------------- facts
@pytest.mark.parametrize(
    "text,expected",
    [
        ("METHODS: Forty-two adults with depression were randomized to ketamine or saline.", 42),
        ("METHODS: A total of 1,204 patients were included in the cohort.", 1204),
        ("We describe a 34-year-old woman with severe depression treated with ketamine.", 1),
        ("Ketamine (0.5 mg/kg) was infused over 40 minutes for 6 weeks.", None),
        ("Patients (N = 61) and healthy controls (n = 20) completed scans.", 61),
        ("Twenty users and 20 healthy controls were compared.", 40),
    ],
)
def test_sample_size(text: str, expected: int | None) -> None:
    assert rules.sample_size(art("A fictional study", text))[0] == expected


def test_sample_size_none_for_animal_study() -> None:
    a = art("Ketamine in mice", "Forty mice were exposed to chronic mild stress; 20 rats too.")
    assert rules.sample_size(a)[0] is None


@pytest.mark.parametrize(
    "text,drug,routes",
    [
        (
            "Esketamine nasal spray plus an oral antidepressant in invented TRD",
            "esketamine",
            ["intranasal"],
        ),
        (
            "Oral ketamine versus intravenous ketamine in fictional depression",
            "ketamine",
            ["iv", "oral"],
        ),
        (
            "Intranasal esketamine versus intravenous ketamine: an imaginary comparison",
            "multiple",
            ["intranasal", "iv"],
        ),
        ("Arketamine for made-up depression given subcutaneously", "arketamine", ["sc"]),
    ],
)
def test_drug_and_routes(text: str, drug: str, routes: list[str]) -> None:
    a = art(text)
    assert rules.drug(a)[0] == drug
    assert rules.routes(a)[0] == routes


def test_oral_antidepressant_is_not_an_oral_ketamine_route() -> None:
    a = art("Esketamine nasal spray with a new oral antidepressant")
    assert "oral" not in rules.routes(a)[0]


def test_esketamine_nasal_spray_records(corpus: list[dict]) -> None:
    recs = [r for r in corpus if re.search(r"esketamine nasal spray", r["title"], re.I)]
    assert recs, "corpus has esketamine nasal spray records"
    for r in recs:
        a = article_from_record(r)
        assert rules.drug(a)[0] == "esketamine", r["pmid"]
        assert "intranasal" in rules.routes(a)[0], r["pmid"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Ketamine-assisted psychotherapy for fictional PTSD", True),
        ("Ketamine infusions followed by cognitive behavioral therapy", True),
        ("Ketamine infusion for invented depression", False),
    ],
)
def test_psychotherapy(text: str, expected: bool) -> None:
    assert rules.psychotherapy(art(text))[0] is expected


def test_comparator_by_design() -> None:
    a = art("Ketamine versus midazolam in an imaginary randomized trial")
    assert rules.comparator(a, "rct")[0] == "midazolam"
    assert rules.comparator(art("Ketamine or saline placebo"), "rct")[0] == "placebo"
    assert (
        rules.comparator(art("An open-label study of ketamine"), "nonrandomized_trial")[0] == "none"
    )
    assert rules.comparator(a, "review")[0] is None


@pytest.mark.parametrize(
    "title,expected",
    [
        ("Ketamine for invented depression: a study protocol for a randomised trial", "protocol"),
        (
            "Ketamine for invented depression: a systematic review and meta-analysis",
            "systematic_review",
        ),
        ("Ketamine in a made-up patient: a case report", "case_report"),
        ("Ketamine reverses stress-induced behaviour in mice", "preclinical"),
        ("A randomized, placebo-controlled trial of ketamine in fictional PTSD", "rct"),
        ("An open-label trial of ketamine in imaginary OCD", "nonrandomized_trial"),
        ("Ketamine for depression: a narrative review", "review"),
        ("Ketamine in invented depression", None),
    ],
)
def test_design_rule_on_titles(title: str, expected: str | None) -> None:
    assert rules.design_rule(art(title))[0] == expected


@pytest.mark.parametrize(
    "abstract,expected",
    [
        (
            "METHODS: In this open-label study, twenty invented patients received ketamine.",
            "nonrandomized_trial",
        ),
        (
            "This was an uncontrolled trial of ketamine in a fictional clinic.",
            "nonrandomized_trial",
        ),
        # an open-label phase of a randomised trial is left to the model
        ("This open-label extension followed a randomized phase in made-up patients.", None),
        # another study's design, or a call for one, is not this record's design
        (
            "Randomized trials of ketamine are needed; an open-label study is planned elsewhere.",
            None,
        ),
    ],
)
def test_design_rule_reads_the_abstract_describing_itself(
    abstract: str, expected: str | None
) -> None:
    assert rules.design_rule(art("A fictional ketamine study", abstract))[0] == expected


def test_design_rule_uses_publication_types() -> None:
    a = art("Ketamine in invented depression", publication_types=["Randomized Controlled Trial"])
    assert rules.design_rule(a)[0] == "rct"


def test_retraction_flag() -> None:
    assert rules.retraction(art("X", retracted=True, retraction_notices=["123"]))[0] is True
    assert rules.retraction(art("Retracted: a fictional trial"))[0] is True
    assert rules.retraction(art("A fictional trial"))[0] is False


def test_ci_pattern_reports_original_case() -> None:
    m = rules.ci(r"nasal spray").search("Esketamine Nasal Spray")
    assert m is not None and m.group(0) == "Nasal Spray"


# --------------------------------------------------------------------------- estimator contract
@pytest.mark.parametrize(
    "est", [TextAssembler(), rules.RuleFeatures(), KeaModel(), SafeCalibratedClassifier()]
)
def test_estimator_contract_basics(est: object) -> None:
    name = type(est).__name__
    check_no_attributes_set_in_init(name, est)
    check_parameters_default_constructible(name, est)
    check_get_params_invariance(name, est)
    assert clone(est).get_params() == est.get_params()


def test_safe_calibrated_classifier_passes_sklearn_checks() -> None:
    check_estimator(SafeCalibratedClassifier(LogisticRegression()))


def test_safe_calibrated_falls_back_on_tiny_classes() -> None:
    X = np.arange(20, dtype=float).reshape(-1, 1)
    y = np.array([0] * 19 + [1])
    clf = SafeCalibratedClassifier(LogisticRegression(), cv=3).fit(X, y)
    assert clf.calibrated_ is False
    y = np.array([0, 1] * 10)
    assert SafeCalibratedClassifier(LogisticRegression(), cv=3).fit(X, y).calibrated_ is True


def test_transformers_fit_returns_self_and_learned_attrs_end_in_underscore() -> None:
    docs = [art("Ketamine in mice", "Mice were stressed."), art("Ketamine trial", None)]
    for est in (TextAssembler(), rules.RuleFeatures()):
        before = set(vars(est))
        assert est.fit(docs) is est
        assert all(k.endswith("_") for k in set(vars(est)) - before)
    n_feats = len(rules.RULE_FEATURE_NAMES)
    assert rules.RuleFeatures().fit(docs).transform(docs).shape == (2, n_feats)
    titles = TextAssembler(parts=("title",), title_weight=1).fit_transform(docs)
    assert titles[1] == "Ketamine trial"


# --------------------------------------------------------------------------- registry
def test_unknown_model_name_lists_valid_ones() -> None:
    with pytest.raises(ModelError) as err:
        get_model("no-such-model")
    for name in model_names():
        assert name in str(err.value)


@pytest.fixture(scope="module")
def small_split(corpus: list[dict]) -> tuple[list[Article], list[dict], list[Article]]:
    """Every 3rd record is held out; the rest train."""
    arts = [article_from_record(r) for r in corpus]
    labs = [r["labels"] for r in corpus]
    train = [i for i in range(len(arts)) if i % 3]
    test = [i for i in range(len(arts)) if not i % 3]
    return [arts[i] for i in train], [labs[i] for i in train], [arts[i] for i in test]


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_fits_and_emits_valid_rows(name: str, small_split: tuple) -> None:
    tr_a, tr_l, te_a = small_split
    model = get_model(name)
    assert model.fit(tr_a, tr_l) is model
    rows = predict_articles(te_a, model)
    assert len(rows) == len(te_a)
    for row in rows:
        for f in ("relevance", "design", "outcome"):
            assert row[f] in VOCAB[f]
        assert set(row["conditions"]) <= set(VOCAB["conditions"])
        assert set(row["subgroups"]) <= set(VOCAB["subgroups"])
        assert set(row["routes"]) <= set(VOCAB["routes"])
        assert row["drug"] is None or row["drug"] in VOCAB["drug"]
        assert row["comparator"] is None or row["comparator"] in VOCAB["comparator"]
        assert row["sample_size"] is None or row["sample_size"] > 0
        assert isinstance(row["psychotherapy"], bool)
        if row["relevance"] == "off_topic":
            assert row["conditions"] == [] and row["outcome"] == "not_reported"
        assert all(0.0 <= p <= 1.0 for p in row["confidence"].values())
        conf_fields = {k.split(":")[0] for k in row["confidence"]}
        assert set(row["review_fields"]) <= conf_fields
        assert row["needs_review"] == record_needs_review(row["review_fields"])
        assert row["content_hash"] and row["model_version"]


# --------------------------------------------------------------------------- safe files
@pytest.fixture(scope="module")
def tiny_model(small_split: tuple) -> KeaModel:
    tr_a, tr_l, _ = small_split
    model = get_model("hybrid-word").fit(tr_a[:80], tr_l[:80])
    model.version_ = "test"
    return model


def test_save_and_load_round_trip(tmp_path: Path, tiny_model: KeaModel, small_split: tuple) -> None:
    path = save_model(tiny_model, tmp_path / "m.json", {"note": "test"})
    assert path.exists() and path.with_suffix(".npz").exists()
    loaded = load_model(path)
    te = small_split[2]
    assert predict_articles(te, loaded) == predict_articles(te, tiny_model)
    meta = json.loads(path.read_text())["metadata"]
    assert meta["libraries"] == library_versions() and meta["note"] == "test"
    assert loaded.version_ == "test"


def test_saved_arrays_are_plain_numeric_or_text(tmp_path: Path, tiny_model: KeaModel) -> None:
    """Nothing in the archive needs pickle: every array loads with allow_pickle=False."""
    path = save_model(tiny_model, tmp_path / "m.json", {})
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        kinds = {data[k].dtype.kind for k in data.files}
    assert kinds <= {"f", "i", "U"}


def test_load_refuses_pickled_arrays(tmp_path: Path, tiny_model: KeaModel) -> None:
    path = save_model(tiny_model, tmp_path / "m.json", {})
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(k for k in arrays if k.endswith(".vocabulary"))
    arrays[key] = np.asarray(arrays[key].tolist(), dtype=object)  # would need pickle
    np.savez(path.with_suffix(".npz"), **arrays)
    with pytest.raises(ModelError, match="not a plain numpy archive"):
        load_model(path)


def test_load_refuses_a_file_that_is_not_a_kea_model(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelError, match="not a kea-linear model"):
        load_model(path)
    path.write_text("not json")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(path)


def test_load_refuses_another_format_version(tmp_path: Path, tiny_model: KeaModel) -> None:
    path = save_model(tiny_model, tmp_path / "m.json", {})
    doc = json.loads(path.read_text())
    doc["format_version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="format version 99"):
        load_model(path)


def test_load_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.json")


def test_load_without_arrays_refuses(tmp_path: Path, tiny_model: KeaModel) -> None:
    path = save_model(tiny_model, tmp_path / "m.json", {})
    shutil.copy(path, tmp_path / "copy.json")
    with pytest.raises(ModelError, match="arrays .* are missing"):
        load_model(tmp_path / "copy.json")


def test_evidence_comes_from_the_record(tiny_model: KeaModel) -> None:
    a = Article(
        pmid="5",
        title="Esketamine nasal spray in invented TRD: an open-label trial",
        abstract_sections=[AbstractSection("Forty patients received esketamine.")],
    )
    row = predict_articles([a], tiny_model)[0]
    text = f"{a.title} {a.abstract}".lower()
    assert row["evidence"]["routes"].lower() in text
    assert row["sample_size"] == 40 and row["drug"] == "esketamine"
    assert row["design"] == "nonrandomized_trial"


def test_baselines_extract_no_facts(small_split: tuple) -> None:
    tr_a, tr_l, te_a = small_split
    rows = predict_articles(te_a[:10], get_model("metadata").fit(tr_a, tr_l))
    assert all(r["sample_size"] is None and r["routes"] == [] for r in rows)


def test_procedural_anxiety_alone_is_flagged() -> None:
    a = art("Esketamine for preoperative anxiety in invented children", "Sedation scores fell.")
    assert rules.only_procedural_anxiety(a)[0] is True
    b = art("Ketamine for preoperative anxiety and postpartum depression after caesarean")
    assert rules.only_procedural_anxiety(b)[0] is False


def _all_ci_patterns() -> list[rules.CIPattern]:
    found: list[rules.CIPattern] = []
    for obj in [o for mod in rules.MODULES for o in vars(mod).values()]:
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else [obj]
        for it in items:
            pat = it[1] if isinstance(it, tuple) and len(it) == 2 else it
            if isinstance(pat, rules.CIPattern):
                found.append(pat)
    return found


def test_anchor_prefilters_never_change_a_match(corpus: list[dict]) -> None:
    """An anchored pattern must find exactly what the plain case-insensitive regex finds."""
    pats = [p for p in _all_ci_patterns() if p.anchors]
    assert len(pats) > 10
    texts = [f"{r['title']}\n{r['abstract'] or ''}" for r in corpus]
    for p in pats:
        plain = re.compile(p.pattern, re.I)
        for t in texts:
            assert bool(p.search(t)) == bool(plain.search(t)), (p.pattern[:60], t[:60])
            assert len(p.findall(t)) == len(plain.findall(t)), p.pattern[:60]


def test_condition_model_effects_mark_animal_models_of_target_conditions() -> None:
    assert rules.condition_model_effect(art("Ketamine and anxiety-like behaviour in mice"))[0]
    assert rules.condition_model_effect(art("X", "An antidepressant-like effect was seen."))[0]
    assert not rules.condition_model_effect(art("Ketamine-induced cystitis in rats"))[0]


def test_shipped_model_reads_a_stated_benefit_as_beneficial() -> None:
    """Team-written RCT whose conclusion states a benefit on the target condition."""
    a = art(
        "Intravenous ketamine versus saline placebo for treatment-resistant depression: a "
        "randomized trial",
        "METHODS: A total of 64 adults with treatment-resistant depression were randomized to "
        "ketamine or saline placebo.\nRESULTS: Ketamine improved MADRS scores compared with "
        "saline placebo (difference 6.1 points; p = 0.01).\nCONCLUSIONS: Ketamine appears "
        "effective for treatment-resistant depression.",
    )
    neg = art(
        "Intravenous ketamine versus saline placebo for treatment-resistant depression: a "
        "randomized trial",
        "METHODS: A total of 64 adults with treatment-resistant depression were randomized to "
        "ketamine or saline placebo.\nRESULTS: MADRS scores did not differ between ketamine and "
        "saline placebo (p = 0.61).\nCONCLUSIONS: Ketamine was not superior to placebo for "
        "treatment-resistant depression.",
    )
    rows = predict_articles([a, neg], load_model())
    assert rows[0]["design"] == "rct" and rows[0]["outcome"] == "beneficial"
    assert rows[1]["outcome"] == "no_benefit"
    assert rows[0]["sample_size"] == 64 and rows[1]["sample_size"] == 64
