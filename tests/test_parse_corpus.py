"""Round trip over the real corpus: record -> our writer -> efetch XML -> our parser -> record.

Also feeds the rendered document to Bio.Entrez.read, which loads pubmed_250101.dtd (shipped
with Biopython) and rejects tags the DTD does not know: that checks the writer on its own.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from Bio import Entrez
from lxml import etree

from crawler.standin.pubmed_xml import article_xml, efetch_document
from pipeline.parse import parse_efetch
from pipeline.records import Article, Author

_MESH = re.compile(r"^(.+?)(\*?)(?:\s*/\s*(.+?)(\*?))?$")


def pubmed_name(author: Author) -> str:
    """'Lastname Initials' plus the suffix, as PubMed pages show authors ('Zarate CA Jr')."""
    return author.display


def corpus_mesh(terms: list[str]) -> list[tuple[str, bool, str | None, bool]]:
    """Corpus lines ('D', 'D*', 'D / q*', 'D* / q', 'D/q') as comparable tuples."""
    out = []
    for term in terms:
        d, dm, q, qm = _MESH.match(term).groups()  # type: ignore[union-attr]
        out.append((d, bool(dm), q, bool(qm)))
    return out


def article_mesh(article: Article) -> list[tuple[str, bool, str | None, bool]]:
    out = []
    for h in article.mesh:
        if not h.qualifiers:
            out.append((h.descriptor, h.major, None, False))
        out.extend((h.descriptor, h.major, q, qm) for q, qm in h.qualifiers)
    return out


@pytest.fixture(scope="module")
def rendered(corpus: list[dict[str, Any]]) -> bytes:
    return efetch_document(article_xml(rec) for rec in corpus)


@pytest.fixture(scope="module")
def parsed(rendered: bytes) -> list[Article]:
    return parse_efetch(rendered).articles


def test_every_record_comes_back(corpus: list[dict[str, Any]], parsed: list[Article]) -> None:
    assert len(corpus) > 200
    assert [a.pmid for a in parsed] == [r["pmid"] for r in corpus]


def test_every_field_round_trips(corpus: list[dict[str, Any]], parsed: list[Article]) -> None:
    mismatches = []
    for rec, art in zip(corpus, parsed, strict=True):
        got = {
            "pmid": art.pmid,
            "doi": art.doi,
            "pmcid": art.pmcid,
            "title": art.title,
            "abstract": art.abstract,
            "journal": art.journal,
            "year": art.pub_year,
            "authors": [pubmed_name(a) for a in art.authors],
            "publication_types": art.publication_types,
            # one MeshHeading per descriptor: order across headings is not kept, content is
            "mesh_terms": sorted(article_mesh(art), key=repr),
            "keywords": art.keywords,
        }
        want = {key: rec[key] for key in got}
        want["mesh_terms"] = sorted(corpus_mesh(rec["mesh_terms"]), key=repr)
        mismatches += [
            f"{rec['pmid']} {key}: got {got[key]!r}, want {want[key]!r}"
            for key in got
            if got[key] != want[key]
        ]
    assert not mismatches, "\n".join(mismatches[:20])


def test_round_trip_exercises_the_hard_shapes(parsed: list[Article]) -> None:
    """The corpus must actually contain what the round trip claims to cover."""
    assert sum(len(a.abstract_sections) > 1 for a in parsed) >= 10  # labelled abstracts
    assert any(a.authors and a.authors[0].collective_name for a in parsed)
    assert any(a.suffix for art in parsed for a in art.authors)
    assert any(h.qualifiers for art in parsed for h in art.mesh)
    assert any(a.abstract is None for a in parsed) and any(a.pub_year is None for a in parsed)


def test_biopython_accepts_the_rendered_document(
    corpus: list[dict[str, Any]], rendered: bytes
) -> None:
    result = Entrez.read(io.BytesIO(rendered), validate=True)
    records = result["PubmedArticle"]
    assert len(records) == len(corpus)
    for rec, bio in zip(corpus, records, strict=True):
        cit = bio["MedlineCitation"]
        assert str(cit["PMID"]) == rec["pmid"]
        assert str(cit["Article"]["ArticleTitle"]) == rec["title"]
        authors = cit["Article"].get("AuthorList", [])
        assert len(authors) == len(rec["authors"])


def test_rendered_records_are_valid_against_the_dtd(
    corpus: list[dict[str, Any]], samples_dir: Path
) -> None:
    """Every record with a publication type validates; without one the DTD cannot be met."""
    dtd = etree.DTD(str(samples_dir / "biopython/DTDs/pubmed_250101.dtd"))
    parser = etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False)
    typed = [rec for rec in corpus if rec["publication_types"]]
    assert len(typed) > 50
    root = etree.fromstring(efetch_document(article_xml(rec) for rec in typed), parser)
    assert dtd.validate(root), dtd.error_log.filter_from_errors()[:5]
