"""The speed paths must compute exactly what the plain paths compute.

`fastvec` rebuilds TF-IDF matrices outside scikit-learn's loops and `rules.Guarded` skips a
regex when none of its literal anchors occurs; both are only allowed because their
output is identical. These tests compare them with the plain computation on the corpus
(read from ../shared at test time) and on fictional text.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from pipeline.classify import fastvec, rules
from pipeline.classify.text import TextAssembler, article_from_record
from pipeline.classify.train import load_model
from pipeline.records import Article


def _same(a: object, b: object) -> None:
    assert type(a) is type(b)
    assert a.shape == b.shape and a.dtype == b.dtype  # type: ignore[attr-defined]
    assert np.array_equal(a.indptr, b.indptr)  # type: ignore[attr-defined]
    assert np.array_equal(a.indices, b.indices)  # type: ignore[attr-defined]
    assert np.array_equal(a.data, b.data)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def articles(corpus: list[dict]) -> list[Article]:
    return [article_from_record(r) for r in corpus]


def test_shipped_feature_unions_match_sklearn_transform(articles: list[Article]) -> None:
    model = load_model()
    with rules.batch(articles):
        for union in (model.doc_, model.finding_):
            _same(fastvec.union_transform(union, articles), union.transform(articles))


@pytest.mark.parametrize("params", [
    {"ngram_range": (1, 2), "min_df": 1, "sublinear_tf": True, "dtype": np.float32},
    {"ngram_range": (1, 1), "min_df": 1},
    {"analyzer": "char_wb", "ngram_range": (3, 4), "min_df": 1, "sublinear_tf": True},
    {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 1, "lowercase": False},
    {"ngram_range": (1, 3), "min_df": 1},  # not fast-pathed: falls back, still equal
])
def test_tfidf_transform_matches_sklearn_on_unseen_text(params: dict) -> None:
    train = ["Invented ketamine trial in made-up depression", "A fictional survey of mood",
             "Ketamine ketamine and mood: an imaginary report"]
    new = ["An invented ketamine survey", "", "mood mood mood unseen words only",
           "X", "fictional  ketamine\ttrial   in   mood", "a ab abc abcd Mood MOOD"]
    vec = TfidfVectorizer(**params).fit(train)
    _same(fastvec.tfidf_transform(vec, new), vec.transform(new))


def test_union_with_weights_takes_sklearn_path() -> None:
    docs = ["invented ketamine text", "fictional mood text", "made-up anxiety text"]
    union = FeatureUnion([("w", Pipeline([("text", TextAssembler(("title",))),
                                          ("tfidf", TfidfVectorizer())]))],
                         transformer_weights={"w": 2.0}).fit(docs)
    _same(fastvec.union_transform(union, docs), union.transform(docs))


def _guarded() -> list[rules.Guarded]:
    found = [p for p in vars(rules).values() if isinstance(p, rules.Guarded)]
    found += [p for p in rules._ROUTE_PATTERNS.values() if isinstance(p, rules.Guarded)]
    found += [p for _, p in rules._COMPARATORS if isinstance(p, rules.Guarded)]
    return found


def test_guarded_patterns_find_what_the_plain_regex_finds(corpus: list[dict]) -> None:
    pats = _guarded()
    assert len(pats) >= 5
    texts = [f"{r['title']}\n{r['abstract'] or ''}" for r in corpus]
    texts += ["Invented i.v. and IV and i. v. ketamine", "s.c. or SC, i.m. or IM; n = 12",
              "N=40 fictional ECT patients", "no anchors here at all"]
    for p in pats:
        plain = re.compile(p.pattern)
        for t in texts:
            m, q = p.search(t), plain.search(t)
            assert (m.group(0) if m else None) == (q.group(0) if q else None), p.pattern
            assert [x.group(0) for x in p.finditer(t)] == [x.group(0) for x in
                                                           plain.finditer(t)]


def test_noun_count_pattern_keeps_its_boundaries() -> None:
    """The digit-first rewrite of the participant-count pattern keeps the lookbehind and \\b
    of the original form."""
    original = re.compile(r"(?<![\d.,/±])\b(\d{1,6})")
    head = re.compile(r"(\d(?<![\d.,/±]\d)(?<!\w\d)\d{0,5})")
    for t in ["12 patients", "x12 patients", "1.5 and 40 adults", "a/20 b", "±3, 7",
              "1234567 people", "(40) men", "_9 people", "٣ patients"]:
        assert [m.span(1) for m in original.finditer(t)] == [m.span(1) for m in
                                                             head.finditer(t)], t
