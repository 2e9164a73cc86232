"""Text assembly: turn an Article into the strings the vectorizers read.

Assembly is a scikit-learn transformer so that it sits inside a Pipeline and is
cloned, fitted and saved with the rest of the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.records import AbstractSection, Article, MeshHeading

# "LABEL: text" paragraph prefixes of structured abstracts in the corpus format.
_SECTION_RE = re.compile(r"^([A-Z][A-Za-z &/,\-]{1,40}):\s+(.*)$", re.S)
_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\[\"'])")
_ABBREV_RE = re.compile(r"\b(?:vs|e\.g|i\.e|et al|approx|Fig|no|mg|kg|Dr)\.$", re.I)
# how a text _ABBREV_RE matches ends, lowercased (or with a newline, which '$' skips)
_ABBREV_ENDS = ("vs.", "e.g.", "i.e.", "et al.", "approx.", "fig.", "no.", "mg.", "kg.", "dr.")
CONCLUSION_LABELS = ("conclusion", "interpretation", "discussion", "implication", "summary")
RESULT_LABELS = ("result", "finding", "outcome")


def sections_from_text(abstract: str | None) -> list[AbstractSection]:
    """Split a corpus-format abstract ('LABEL: text' paragraphs) into sections."""
    if not abstract:
        return []
    out: list[AbstractSection] = []
    for para in (p.strip() for p in abstract.split("\n")):
        if not para:
            continue
        m = _SECTION_RE.match(para)
        if m and len(m.group(1).split()) <= 5:
            label = m.group(1).strip()
            out.append(
                AbstractSection(text=m.group(2).strip(), label=label, category=label.upper())
            )
        else:
            out.append(AbstractSection(text=para))
    return out


def article_from_record(rec: dict[str, Any]) -> Article:
    """A gold-corpus JSON record as an Article, so training and serving read the same type."""
    return Article(
        pmid=str(rec["pmid"]),
        title=rec.get("title") or None,
        abstract_sections=sections_from_text(rec.get("abstract")),
        journal=rec.get("journal") or None,
        pub_year=rec.get("year"),
        publication_types=list(rec.get("publication_types") or []),
        mesh=[MeshHeading(descriptor=m) for m in rec.get("mesh_terms") or []],
        keywords=list(rec.get("keywords") or []),
    )


def split_sentences(text: str | None) -> list[str]:
    """Split prose into sentences without breaking on 'vs.' or 'e.g.'."""
    if not text:
        return []
    return list(_split_cached(text))


@lru_cache(maxsize=8192)
def _split_cached(text: str) -> tuple[str, ...]:
    pieces = _SENT_RE.split(text.strip())
    out: list[str] = []
    for p in pieces:
        if out:
            tail = out[-1][-12:]
            # the regex only where it can match: a tail ending as an abbreviation does
            # (non-ASCII tails always: re.I folds some Unicode letters to ASCII ones)
            if (
                not tail.isascii() or tail.lower().endswith(_ABBREV_ENDS) or tail[-1:] == "\n"
            ) and _ABBREV_RE.search(tail):
                out[-1] = f"{out[-1]} {p}"
                continue
        out.append(p)
    return tuple(s.strip() for s in out if s.strip())


def abstract_sentences(article: Article) -> list[tuple[str, str]]:
    """(section label lowercased or '', sentence) for every abstract sentence."""
    out: list[tuple[str, str]] = []
    for s in article.abstract_sections:
        label = (s.label or s.category or "").lower()
        out.extend((label, sent) for sent in split_sentences(s.text))
    return out


def conclusion_sentences(article: Article, n_tail: int = 2) -> list[str]:
    """Sentences that state the finding: labelled conclusions, else the last few sentences."""
    sents = abstract_sentences(article)
    labelled = [s for lab, s in sents if any(k in lab for k in CONCLUSION_LABELS)]
    if labelled:
        return labelled
    return [s for _, s in sents[-n_tail:]]


def _token(prefix: str, value: str) -> str:
    return prefix + re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")


def metadata_tokens(article: Article) -> str:
    """Publication types and MeSH as single tokens (pt_..., mesh_...), empty when unindexed."""
    toks = [_token("pt_", p) for p in article.publication_types]
    toks += [_token("mesh_", m) for m in article.mesh_terms]
    return " ".join(toks)


def assemble(article: Article, part: str) -> str:
    """One named view of a record as text."""
    if part == "title":
        return article.title or ""
    if part == "abstract":
        return article.abstract or ""
    if part == "conclusion":
        return " ".join(conclusion_sentences(article)) or (article.title or "")
    if part == "meta":
        return metadata_tokens(article)
    if part == "keywords":
        return " ".join(article.keywords)
    raise ValueError(f"unknown text part {part!r}")


class TextAssembler(BaseEstimator, TransformerMixin):
    """Articles -> one string each, built from the named parts (title repeated for weight).

    Plain strings pass through unchanged, which keeps the transformer usable on
    already-assembled text.
    """

    def __init__(
        self,
        parts: Sequence[str] = ("title", "abstract", "meta", "keywords"),
        title_weight: int = 2,
    ):
        self.parts = parts
        self.title_weight = title_weight

    def fit(self, X: Iterable[Any], y: Any = None) -> TextAssembler:
        self.n_features_in_ = 1
        return self

    def transform(self, X: Iterable[Any]) -> list[str]:
        out: list[str] = []
        for a in X:
            if isinstance(a, str):
                out.append(a)
                continue
            chunks: list[str] = []
            for part in self.parts:
                text = assemble(a, part)
                reps = self.title_weight if part == "title" else 1
                chunks.extend([text] * max(1, reps))
            out.append("\n".join(c for c in chunks if c))
        return out
