"""The portable prediction path must compute exactly what scikit-learn computes.

`portable` rebuilds TF-IDF matrices and head probabilities from stored arrays, outside
scikit-learn's estimators, and `rules.Guarded` skips a regex when none of its literal
anchors occurs; both are only allowed because their output is identical. These tests
compare them with scikit-learn's own pipeline on the corpus (read from ../shared at test
time) and on fictional text.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from pipeline.classify import convert, portable, rules
from pipeline.classify.registry import KeaModel, get_model
from pipeline.classify.text import TextAssembler, article_from_record
from pipeline.errors import ModelError
from pipeline.records import Article


def _same(a: object, b: object) -> None:
    a, b = a.tocsr(), b.tocsr()  # type: ignore[attr-defined]
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


@pytest.fixture(scope="module")
def articles(corpus: list[dict]) -> list[Article]:
    return [article_from_record(r) for r in corpus]


@pytest.fixture(scope="module")
def fitted(corpus: list[dict], articles: list[Article]) -> KeaModel:
    """The default recipe fitted on half the corpus (so the rest holds unseen terms)."""
    return get_model("hybrid").fit(articles[::2], [r["labels"] for r in corpus[::2]])


def _portable_block(pipe: Pipeline) -> portable.Tfidf:
    arrays: dict[str, np.ndarray] = {}
    spec = convert._block("b", pipe, arrays)  # noqa: SLF001 - the converter's unit
    return portable.Tfidf(spec, arrays["b.vocabulary"], arrays["b.idf"])


def test_feature_matrices_match_sklearn_transform(
    fitted: KeaModel, articles: list[Article]
) -> None:
    with rules.batch(articles):
        for union, mine in (
            (fitted.doc_, fitted.portable_.doc),
            (fitted.finding_, fitted.portable_.finding),
        ):
            _same(mine.transform(articles), union.transform(articles))


def test_head_probabilities_match_sklearn_predict_proba(
    fitted: KeaModel, articles: list[Article]
) -> None:
    with rules.batch(articles):
        D, F = fitted.doc_.transform(articles), fitted.finding_.transform(articles)
        heads = {h.key: h for h in fitted.portable_.heads}
        assert set(heads) == set(fitted.heads_)
        calibrated = 0
        for key, head in fitted.heads_.items():
            X = F if key == "outcome" else D
            assert heads[key].classes == head.classes_.tolist()
            assert np.array_equal(heads[key].predict_proba(X), head.predict_proba(X)), key
            calibrated += heads[key].calibrated
        assert calibrated >= 3  # the calibrated path is exercised, not only plain logistic


def test_uncalibrated_and_baseline_heads_match_sklearn(
    corpus: list[dict], articles: list[Article]
) -> None:
    model = get_model("tfidf-lr").fit(articles[::2], [r["labels"] for r in corpus[::2]])
    X = model.doc_.transform(articles)
    for h in model.portable_.heads:
        assert np.array_equal(h.predict_proba(X), model.heads_[h.key].predict_proba(X)), h.key


@pytest.mark.parametrize(
    "params",
    [
        {"ngram_range": (1, 2), "min_df": 1, "sublinear_tf": True, "dtype": np.float32},
        {"ngram_range": (1, 1), "min_df": 1},
        {"analyzer": "char_wb", "ngram_range": (3, 4), "min_df": 1, "sublinear_tf": True},
        {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 1, "lowercase": False},
        {"ngram_range": (1, 3), "min_df": 1, "norm": None},
        {"ngram_range": (2, 3), "min_df": 1, "lowercase": False},
    ],
)
def test_tfidf_transform_matches_sklearn_on_unseen_text(params: dict) -> None:
    train = [
        "Invented ketamine trial in made-up depression",
        "A fictional survey of mood",
        "Ketamine ketamine and mood: an imaginary report",
    ]
    new = [
        "An invented ketamine survey",
        "",
        "mood mood mood unseen words only",
        "X",
        "fictional  ketamine\ttrial   in   mood",
        "a ab abc abcd Mood MOOD",
    ]
    pipe = Pipeline(
        [("text", TextAssembler(("title",), 1)), ("tfidf", TfidfVectorizer(**params))]
    ).fit(train)
    _same(_portable_block(pipe).transform(new), pipe.transform(new))


def test_configurations_without_a_portable_form_are_refused() -> None:
    docs = ["invented ketamine text", "fictional mood text", "made-up anxiety text"]
    union = FeatureUnion(
        [("w", Pipeline([("text", TextAssembler(("title",))), ("tfidf", TfidfVectorizer())]))],
        transformer_weights={"w": 2.0},
    ).fit(docs)
    with pytest.raises(ModelError, match="weighted"):
        convert.features("doc", union, {})
    pipe = Pipeline(
        [("text", TextAssembler(("title",))), ("tfidf", TfidfVectorizer(stop_words=["text"]))]
    ).fit(docs)
    with pytest.raises(ModelError, match="does not cover"):
        convert.features("doc", pipe, {})


def _guarded() -> list[rules.Guarded]:
    found = [p for mod in rules.MODULES for p in vars(mod).values() if isinstance(p, rules.Guarded)]
    found += [p for p in rules.ROUTE_PATTERNS.values() if isinstance(p, rules.Guarded)]
    found += [p for _, p in rules.COMPARATOR_PATTERNS if isinstance(p, rules.Guarded)]
    return found


def test_guarded_patterns_find_what_the_plain_regex_finds(corpus: list[dict]) -> None:
    pats = _guarded()
    assert len(pats) >= 5
    texts = [f"{r['title']}\n{r['abstract'] or ''}" for r in corpus]
    texts += [
        "Invented i.v. and IV and i. v. ketamine",
        "s.c. or SC, i.m. or IM; n = 12",
        "N=40 fictional ECT patients",
        "no anchors here at all",
    ]
    for p in pats:
        plain = re.compile(p.pattern)
        for t in texts:
            m, q = p.search(t), plain.search(t)
            assert (m.group(0) if m else None) == (q.group(0) if q else None), p.pattern
            assert [x.group(0) for x in p.finditer(t)] == [x.group(0) for x in plain.finditer(t)]


def test_noun_count_pattern_keeps_its_boundaries(corpus: list[dict]) -> None:
    """The real participant-count pattern, written digit-first so `re` can skip to digits,
    finds exactly what its plain form (a leading lookbehind and \\b) finds."""
    head = r"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{0,5})"
    real = rules.NOUN_COUNT_RE.pattern
    assert real.startswith(head)
    plain = re.compile(r"(?<![\d.,/±])\b(\d{1,6})" + real[len(head) :], re.I)
    texts = [
        "12 patients",
        "x12 patients",
        "1.5 and 40 adults",
        "a/20 adults",
        "±3, 7 men",
        "1234567 people",
        "(40) men",
        "_9 people",
        "٣ patients",
        "40 (12%) women",
    ]
    texts += [rules.normalise_numbers(r["abstract"] or "") for r in corpus]
    for t in texts:
        mine = [(m.start(1), m.end(1), m.group(0)) for m in rules.NOUN_COUNT_RE.finditer(t)]
        assert mine == [(m.start(1), m.end(1), m.group(0)) for m in plain.finditer(t)], t[:60]


def _split_reference(text: str) -> tuple[str, ...]:
    """Sentence splitting as written before the abbreviation pre-check (the regex on every
    tail)."""
    from pipeline.classify import text as t

    out: list[str] = []
    for p in t._SENT_RE.split(text.strip()):  # noqa: SLF001 - the unit under test
        if out and t._ABBREV_RE.search(out[-1][-12:]):  # noqa: SLF001
            out[-1] = f"{out[-1]} {p}"
        else:
            out.append(p)
    return tuple(s.strip() for s in out if s.strip())


def test_sentence_split_pre_check_keeps_every_split(corpus: list[dict]) -> None:
    """The cheap ending test before the abbreviation regex must never change a split."""
    from pipeline.classify.text import _split_cached

    texts = [r["abstract"] or "" for r in corpus] + [r["title"] for r in corpus]
    texts += [
        "Doses of 2 mg. Then 4 Mg. Later FIG. B showed it. See Dr. Who. Case No. A was seen.",
        "Invented ketamine vs. Placebo. E.G. One. I.E. Two. Et Al. Three. APPROX. Four. 2 kg. X.",
        "Unicode folds: vſ. Here (ſ). And \u212ag. There. Done İ.e. X.",
        "Trailing abbreviation et al.",
        "No split here",
    ]
    for text in texts:
        assert _split_cached.__wrapped__(text) == _split_reference(text), text


def test_rules_batch_pauses_the_collector_and_restores_it() -> None:
    import gc

    a = Article(pmid="1", title="Fictional ketamine trial")
    assert gc.isenabled()
    with rules.batch([a]):
        assert not gc.isenabled()
        with rules.batch([a]):
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer batch still runs
    assert gc.isenabled()
    gc.disable()
    try:
        with rules.batch([a]):
            pass
        assert not gc.isenabled()  # a caller's own pause is left as it was
    finally:
        gc.enable()


def test_evidence_clip_pre_check_matches_the_regex() -> None:
    """`_clip` skips its whitespace regex for printable text without a double space: every
    whitespace character but ' ' must then be non-printable (checked over all of Unicode)."""
    from pipeline.classify.predict import _SPACES_RE, _clip

    spaces = [chr(c) for c in range(0x110000) if _SPACES_RE.fullmatch(chr(c))]
    assert len(spaces) > 20
    for ws in spaces:
        for s in (f"a{ws}b", f" x{ws}", f"a {ws} b", f"{ws}lead", "plain words here", "a  b"):
            assert _clip(s) == _SPACES_RE.sub(" ", s).strip()[:240], repr(s)
