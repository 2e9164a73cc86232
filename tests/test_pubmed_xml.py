"""Unit tests of the efetch XML writer, on fictional records written here."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from Bio import Entrez
from lxml import etree

from crawler.standin.pubmed_xml import (
    DOCTYPE,
    article_xml,
    efetch_document,
    split_author,
    split_mesh_term,
)
from pipeline.parse import parse_efetch
from pipeline.records import Article

FULL: dict[str, Any] = {  # fictional record using every key the writer reads
    "pmid": "99100001",
    "version": 2,
    "doi": "10.0000/fiction.100",
    "pmcid": "PMC0000001",
    "title": 'Imaginary <drug> & placebo in "made-up" patients',
    "abstract": "BACKGROUND: p < 0.05 & q > 1.\nMethods: Fictional.\nAn unlabelled closing line.",
    "journal": "Journal of Imaginary Results",
    "journal_iso": "J Imag Res",
    "issn": "0000-0000",
    "volume": "7",
    "issue": "2",
    "pages": "10-19",
    "year": 2030,
    "month": 6,
    "day": 9,
    "authors": ["Doe JQ", "van der Berg A", "Zed CA Jr", "Imaginary Study Group", "Mononym"],
    "publication_types": ["Journal Article", "Randomized Controlled Trial"],
    "mesh_terms": [
        "Humans",
        "Ketamine* / therapeutic use",
        "Depression / drug therapy*",
        "Depression / psychology",
    ],
    "keywords": ["fiction", "R&D"],
    "entrez_date": "2030-06-10",
    "revised_date": "2031-01-02",
    "completed_date": "2030-12-01",
    "language": "fre",
    "retracted": True,
    "retraction_in": ["99100002", "99100003"],
}


def parse_one(rec: dict[str, Any]) -> Article:
    return parse_efetch(efetch_document([article_xml(rec)])).articles[0]


def test_escaping_keeps_text_exact() -> None:
    xml = article_xml(FULL)
    assert "&lt;drug&gt; &amp; placebo" in xml
    etree.fromstring(xml)  # well-formed on its own
    art = parse_one(FULL)
    assert art.title == FULL["title"]
    assert art.abstract == FULL["abstract"]
    assert art.keywords == ["fiction", "R&D"]


def test_labelled_abstract_sections() -> None:
    sections = parse_one(FULL).abstract_sections
    assert [(s.label, s.category) for s in sections] == [
        ("BACKGROUND", "BACKGROUND"),
        ("Methods", "METHODS"),
        (None, None),
    ]


def test_authors_collective_and_suffix() -> None:
    authors = parse_one(FULL).authors
    assert [(a.last_name, a.initials, a.suffix, a.collective_name) for a in authors] == [
        ("Doe", "JQ", None, None),
        ("van der Berg", "A", None, None),
        ("Zed", "CA", "Jr", None),
        (None, None, None, "Imaginary Study Group"),
        (None, None, None, "Mononym"),
    ]


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Doe J", {"LastName": "Doe", "Initials": "J"}),
        ("Łoś Ł", {"LastName": "Łoś", "Initials": "Ł"}),
        ("Zed CA Jr", {"LastName": "Zed", "Initials": "CA", "Suffix": "Jr"}),
        ("Smith II", {"LastName": "Smith", "Initials": "II"}),
        ("Study Group", {"CollectiveName": "Study Group"}),
        ("Mononym", {"CollectiveName": "Mononym"}),
    ],
)
def test_split_author(name: str, parts: dict[str, str]) -> None:
    assert split_author(name) == parts


@pytest.mark.parametrize(
    ("term", "parts"),
    [
        ("Humans", ("Humans", False, None, False)),
        ("Ketamine*", ("Ketamine", True, None, False)),
        ("Ketamine* / therapeutic use", ("Ketamine", True, "therapeutic use", False)),
        ("Depression / drug therapy*", ("Depression", False, "drug therapy", True)),
        ("Fear/drug effects", ("Fear", False, "drug effects", False)),
        (
            "Anesthetics, Dissociative / administration & dosage",
            ("Anesthetics, Dissociative", False, "administration & dosage", False),
        ),
    ],
)
def test_split_mesh_term(term: str, parts: tuple[str, bool, str | None, bool]) -> None:
    assert split_mesh_term(term) == parts


def test_mesh_grouped_by_descriptor() -> None:
    mesh = parse_one(FULL).mesh
    assert [(m.descriptor, m.major, m.qualifiers) for m in mesh] == [
        ("Humans", False, ()),
        ("Ketamine", True, (("therapeutic use", False),)),
        ("Depression", False, (("drug therapy", True), ("psychology", False))),
    ]


def test_retracted_record_carries_both_signals() -> None:
    art = parse_one(FULL)
    assert art.retracted
    assert "Retracted Publication" in art.publication_types
    assert art.retraction_notices == ["99100002", "99100003"]
    notice = parse_one({"pmid": "99100002", "title": "Notice", "retraction_of": ["99100001"]})
    assert notice.is_retraction_notice and not notice.retracted
    assert notice.publication_types == ["Retraction of Publication"]
    plain = parse_one({"pmid": "99100009", "title": "Plain", "retracted": False})
    assert not plain.retracted and plain.retraction_notices == []


def test_dates_ids_and_journal_fields() -> None:
    art = parse_one(FULL)
    assert (art.pub_year, art.pub_date) == (2030, "2030-06-09")
    assert (art.entrez_date, art.revised_date, art.completed_date) == (
        "2030-06-10",
        "2031-01-02",
        "2030-12-01",
    )
    assert (art.doi, art.pmcid, art.version) == ("10.0000/fiction.100", "PMC0000001", 2)
    assert (art.journal, art.journal_iso, art.issn) == (
        "Journal of Imaginary Results",
        "J Imag Res",
        "0000-0000",
    )
    assert (art.volume, art.issue, art.pages, art.languages) == ("7", "2", "10-19", ["fre"])
    assert art.status == "MEDLINE"


def test_medline_date_and_missing_values_stay_none() -> None:
    art = parse_one({"pmid": "99100010", "medline_date": "1998 Dec-1999 Jan"})
    assert (art.pub_year, art.pub_date, art.medline_date) == (1998, "1998", "1998 Dec-1999 Jan")
    bare = parse_one({"pmid": "99100011"})
    assert bare.title is None and bare.doi is None and bare.journal is None
    assert bare.pub_year is None and bare.abstract is None and bare.authors == []
    assert bare.status == "PubMed-not-MEDLINE" and bare.languages == ["eng"]


def test_record_without_pmid_is_refused() -> None:
    with pytest.raises(ValueError, match="pmid"):
        article_xml({"title": "No id"})


def test_document_has_doctype_and_delete_citation() -> None:
    doc = efetch_document([article_xml(FULL)], deleted=["99100020", "99100021"])
    assert doc.startswith(b'<?xml version="1.0" ?>')
    assert DOCTYPE.encode() in doc and b"pubmed_250101.dtd" in doc
    batch = parse_efetch(doc)
    assert batch.deleted_pmids == ["99100020", "99100021"]
    bio = Entrez.read(io.BytesIO(doc), validate=True)
    assert [str(p) for p in bio["DeleteCitation"]] == ["99100020", "99100021"]
    assert (
        str(bio["PubmedArticle"][0]["MedlineCitation"]["Article"]["ArticleTitle"])
        == (FULL["title"])
    )


def test_full_record_is_valid_against_the_dtd(samples_dir: Path) -> None:
    dtd = etree.DTD(str(samples_dir / "biopython/DTDs/pubmed_250101.dtd"))
    doc = efetch_document(
        [
            article_xml(FULL),
            article_xml({"pmid": "1", "year": 2020, "publication_types": ["Letter"]}),
        ],
        deleted=["99100020"],
    )
    root = etree.fromstring(doc, etree.XMLParser(load_dtd=False, no_network=True))
    assert dtd.validate(root), dtd.error_log.filter_from_errors()
