"""Prediction-time TF-IDF: the same matrices as the fitted vectorizers give, built faster.

scikit-learn's `CountVectorizer._count_vocab` counts terms in a per-token Python loop and
builds word bigrams one slice-and-join at a time; at serving time those loops are about a
quarter of the classifier's cost. Here the counting is done by `collections.Counter` and a
set intersection with the vocabulary (both in C), and bigrams by one `zip`. The matrix is
then assembled exactly as scikit-learn assembles it (same dtypes, sorted indices) and
handed to the fitted `TfidfTransformer`, so the output is identical, value for value
(tests compare both paths on the corpus). Anything outside the configurations the models
use falls back to the vectorizer's own `transform`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

try:  # scikit-learn >= 1.8: the sparse interface (spmatrix / sparray) follows the config
    from sklearn.utils._sparse import _align_api_if_sparse
except ImportError:  # pragma: no cover - older scikit-learn returns what scipy builds
    def _align_api_if_sparse(X: Any) -> Any:
        return X


def _fast_ok(vec: Any) -> bool:
    """True for a plain fitted TF-IDF vectorizer whose analysis this module reproduces."""
    return (type(vec) is TfidfVectorizer and hasattr(vec, "vocabulary_")
            and hasattr(vec, "_tfidf") and not vec.binary and vec.input == "content"
            and vec.analyzer in ("word", "char_wb") and vec.preprocessor is None
            and (vec.analyzer != "word" or (vec.tokenizer is None and vec.stop_words is None)))


def _word_analyzer(vec: TfidfVectorizer) -> Callable[[str], list[str]]:
    """Preprocess + tokenize as the vectorizer does; n-grams by zip for (1, 1) and (1, 2)."""
    if tuple(vec.ngram_range) not in ((1, 1), (1, 2)):
        return vec.build_analyzer()
    preprocess = vec.build_preprocessor()
    tokenize = vec.build_tokenizer()
    bigrams = tuple(vec.ngram_range) == (1, 2)

    def analyze(doc: str) -> list[str]:
        tokens = tokenize(preprocess(doc))
        if bigrams and len(tokens) > 1:
            return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
        return tokens

    return analyze


_WHITE_SPACES = re.compile(r"\s\s+")  # CountVectorizer._white_spaces


def _word_char_ngrams(w: str, min_n: int, max_n: int) -> list[str]:
    """scikit-learn's `_char_wb_ngrams` loop body for one word."""
    grams: list[str] = []
    w = " " + w + " "
    w_len = len(w)
    for n in range(min_n, max_n + 1):
        offset = 0
        grams.append(w[offset:offset + n])
        while offset + n < w_len:
            offset += 1
            grams.append(w[offset:offset + n])
        if offset == 0:  # count a short word (w_len < n) only once
            break
    return grams


def _char_wb_analyzer(vec: TfidfVectorizer) -> Callable[[str], list[str]]:
    """char_wb analysis with the n-grams of each distinct word computed once per call of
    `count_matrix` (words repeat across titles: 'ketamine', 'depression', ...)."""
    if vec.strip_accents is not None:
        return vec.build_analyzer()
    lower = vec.lowercase
    min_n, max_n = vec.ngram_range
    seen: dict[str, list[str]] = {}

    def analyze(doc: str) -> list[str]:
        out: list[str] = []
        for w in _WHITE_SPACES.sub(" ", doc.lower() if lower else doc).split():
            grams = seen.get(w)
            if grams is None:
                grams = seen[w] = _word_char_ngrams(w, min_n, max_n)
            out.extend(grams)
        return out

    return analyze


def count_matrix(vec: TfidfVectorizer, docs: Sequence[str]) -> Any:
    """The term-count matrix `CountVectorizer.transform(docs)` returns (fitted vocabulary)."""
    analyze = _word_analyzer(vec) if vec.analyzer == "word" else _char_wb_analyzer(vec)
    vocab = vec.vocabulary_
    known = vocab.__contains__
    get = vocab.__getitem__
    j_indices: list[int] = []
    values: list[int] = []
    indptr = [0]
    for doc in docs:
        # out-of-vocabulary terms (most bigrams) are dropped before counting
        counts = Counter(filter(known, analyze(doc)))
        j_indices.extend(map(get, counts))
        values.extend(counts.values())
        indptr.append(len(j_indices))
    idx_dtype = np.int32 if indptr[-1] <= np.iinfo(np.int32).max else np.int64
    X = sp.csr_array(
        (np.asarray(values, dtype=np.intc), np.asarray(j_indices, dtype=idx_dtype),
         np.asarray(indptr, dtype=idx_dtype)),
        shape=(len(indptr) - 1, len(vocab)),
        dtype=vec.dtype,
    )
    X.sort_indices()
    return _align_api_if_sparse(X)


def tfidf_transform(vec: Any, docs: Sequence[str]) -> Any:
    """`vec.transform(docs)`, through the fast counter when the vectorizer allows it."""
    if not _fast_ok(vec) or isinstance(docs, str):
        return vec.transform(docs)
    return vec._tfidf.transform(count_matrix(vec, docs), copy=False)


def _pipeline_transform(pipe: Any, X: Any) -> Any:
    """A Pipeline's transform, with a final TF-IDF vectorizer through the fast counter."""
    if not isinstance(pipe, Pipeline) or not _fast_ok(pipe.steps[-1][1]):
        return pipe.transform(X)
    Xt = X
    for _, step in pipe.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        Xt = step.transform(Xt)
    return tfidf_transform(pipe.steps[-1][1], Xt)


def union_transform(union: Any, X: Any) -> Any:
    """`union.transform(X)` for a fitted FeatureUnion, its TF-IDF parts computed faster.

    Weighted, parallel or pandas-output unions take scikit-learn's own path.
    """
    if (not isinstance(union, FeatureUnion) or union.transformer_weights is not None
            or union.n_jobs not in (None, 1) or getattr(union, "_sklearn_output_config", None)):
        return union.transform(X)
    parts = [trans for _, trans in union.transformer_list]
    if not parts or any(t is None or isinstance(t, str) for t in parts):
        return union.transform(X)
    return union._hstack([_pipeline_transform(trans, X) for trans in parts])

