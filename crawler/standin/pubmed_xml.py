"""Render corpus-shaped records as efetch PubMed XML, for the offline stand-in and for tests.

Why: the stand-in must answer like NCBI without carrying NCBI's text, so it renders records
from ``../shared/corpus`` (or fictional ones) at serve time. Elements follow the order of
``pubmed_250101.dtd`` and the DOCTYPE names that DTD, which Biopython 1.88 ships, so
``Bio.Entrez.read`` parses our output offline: that is how the writer is checked.

``article_xml`` reads these keys (all optional except ``pmid``):

- corpus keys: ``pmid``, ``doi``, ``pmcid``, ``title``, ``abstract`` ("LABEL: text" paragraphs
  split by newlines -> labelled AbstractText), ``journal``, ``year``, ``authors`` ("Lastname
  Initials [Suffix]"; one word or no initials -> CollectiveName), ``publication_types``,
  ``mesh_terms`` ("Descriptor", "Descriptor*", "Descriptor / qualifier*", "Descriptor* / q";
  one MeshHeading per descriptor), ``keywords``;
- extra keys: ``journal_iso``, ``issn``, ``volume``, ``issue``, ``pages`` (MedlinePgn),
  ``month`` (1-12), ``day``, ``medline_date`` (free text, replaces year/month/day),
  ``entrez_date`` / ``revised_date`` / ``completed_date`` ("YYYY-MM-DD"), ``language``
  (default "eng"), ``status`` (MedlineCitation@Status; default MEDLINE when MeSH is given,
  else PubMed-not-MEDLINE), ``version`` (PMID@Version, default 1), ``retracted`` (bool ->
  PublicationType "Retracted Publication" + a CommentsCorrections RetractionIn per PMID in
  ``retraction_in``, or one without PMID), ``retraction_of`` (PMIDs this record retracts ->
  PublicationType "Retraction of Publication" + RetractionOf).

Where the DTD demands an element the record lacks (PubDate, Pagination, MedlineTA) an empty
one is written; an empty PublicationTypeList is left out (the corpus often has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree
from lxml.builder import E

__all__ = ["DOCTYPE", "article_xml", "efetch_document", "split_author", "split_mesh_term"]

DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
_LABEL_RE = re.compile(r"^([A-Z][A-Za-z0-9 ,/&()'-]{0,59}): (\S.*)$", re.DOTALL)
_SUFFIXES = frozenset({"Jr", "Sr", "2nd", "3rd", "4th", "II", "III", "IV", "V"})
_MESH_RE = re.compile(r"^(?P<d>.+?)(?P<dm>\*?)(?:\s*/\s*(?P<q>.+?)(?P<qm>\*?))?$")
_CATEGORIES = {
    "BACKGROUND": "BACKGROUND",
    "INTRODUCTION": "BACKGROUND",
    "CONTEXT": "BACKGROUND",
    "OBJECTIVE": "OBJECTIVE",
    "OBJECTIVES": "OBJECTIVE",
    "AIM": "OBJECTIVE",
    "AIMS": "OBJECTIVE",
    "PURPOSE": "OBJECTIVE",
    "METHODS": "METHODS",
    "METHOD": "METHODS",
    "DESIGN": "METHODS",
    "RESULTS": "RESULTS",
    "FINDINGS": "RESULTS",
    "CONCLUSIONS": "CONCLUSIONS",
    "CONCLUSION": "CONCLUSIONS",
    "DISCUSSION": "CONCLUSIONS",
}
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


Node = etree._Element


def _el(tag: str, text: object | None, **attrs: str) -> Node | None:
    """One text element, or None when there is no value (lxml escapes text and attributes)."""
    if text is None:
        return None
    return E(tag, str(text), **attrs)


def _make(tag: str, *children: Node | None, **attrs: str) -> Node:
    """An element of the children that exist, in the order given (the DTD's)."""
    return E(tag, *(c for c in children if c is not None), **attrs)


def _list(tag: str, children: Iterable[Node | None], **attrs: str) -> Node | None:
    """A list element, left out when it would be empty."""
    kids = [c for c in children if c is not None]
    return E(tag, *kids, **attrs) if kids else None


def _is_initials(token: str) -> bool:
    return token.isalpha() and token.isupper() and len(token) <= 6


def split_author(name: str) -> dict[str, str]:
    """'Zarate CA Jr' -> LastName/Initials/Suffix; a name without initials is a CollectiveName."""
    tokens = name.split()
    suffix = None
    if len(tokens) >= 3 and tokens[-1] in _SUFFIXES and _is_initials(tokens[-2]):
        suffix = tokens.pop()
    if len(tokens) >= 2 and _is_initials(tokens[-1]):
        parts = {"LastName": " ".join(tokens[:-1]), "Initials": tokens[-1]}
        if suffix:
            parts["Suffix"] = suffix
        return parts
    return {"CollectiveName": name}


def split_mesh_term(term: str) -> tuple[str, bool, str | None, bool]:
    """'Ketamine* / therapeutic use' -> (descriptor, major, qualifier, qualifier major)."""
    match = _MESH_RE.match(term.strip())
    if match is None:  # only an empty string fails the pattern
        raise ValueError(f"empty MeSH term {term!r}")
    return match["d"], bool(match["dm"]), match["q"], bool(match["qm"])


def _author_xml(name: str) -> Node:
    parts = split_author(name)
    return _make("Author", *(_el(tag, value) for tag, value in parts.items()), ValidYN="Y")


def _abstract_xml(abstract: str | None) -> Node | None:
    if not abstract:
        return None
    paras = []
    for para in abstract.split("\n"):
        match = _LABEL_RE.match(para)
        if match:
            label, text = match.groups()
            category = _CATEGORIES.get(label.upper(), "UNASSIGNED")
            paras.append(E.AbstractText(text, Label=label, NlmCategory=category))
        else:
            paras.append(E.AbstractText(para))
    return E.Abstract(*paras)


def _date_parts(iso: str | None) -> tuple[str, str, str] | None:
    if not iso:
        return None
    year, month, day = (iso.split("-") + ["01", "01"])[:3]
    return year, month, day


def _ymd_xml(tag: str, iso: str | None, **attrs: str) -> Node | None:
    parts = _date_parts(iso)
    if parts is None:
        return None
    year, month, day = parts
    return E(tag, E.Year(year), E.Month(month), E.Day(day), **attrs)


def _pub_date_xml(rec: Mapping[str, Any]) -> Node:
    if rec.get("medline_date"):
        return E.PubDate(E.MedlineDate(str(rec["medline_date"])))
    if rec.get("year") is None:
        return E.PubDate(E.MedlineDate())  # DTD requires a PubDate; the record has none
    month = day = None
    if rec.get("month"):
        month = E.Month(_MONTH_ABBR[int(rec["month"]) - 1])
        day = _el("Day", f"{int(rec['day']):02d}" if rec.get("day") else None)
    return _make("PubDate", _el("Year", rec["year"]), month, day)


def _journal_xml(rec: Mapping[str, Any]) -> Node:
    issue = _make(
        "JournalIssue",
        _el("Volume", rec.get("volume")),
        _el("Issue", rec.get("issue")),
        _pub_date_xml(rec),
        CitedMedium="Internet",
    )
    return _make(
        "Journal",
        _el("ISSN", rec.get("issn"), IssnType="Electronic"),
        issue,
        _el("Title", rec.get("journal")),
        _el("ISOAbbreviation", rec.get("journal_iso")),
    )


def _publication_types(rec: Mapping[str, Any]) -> list[str]:
    types = list(rec.get("publication_types") or [])
    if rec.get("retracted") and "Retracted Publication" not in types:
        types.append("Retracted Publication")
    if rec.get("retraction_of") and "Retraction of Publication" not in types:
        types.append("Retraction of Publication")
    return types


def _article_body_xml(rec: Mapping[str, Any]) -> Node:
    """<Article> in DTD order: Journal, ArticleTitle, Pagination/ELocationID, Abstract, ..."""
    if rec.get("pages"):
        pagination = E.Pagination(E.MedlinePgn(str(rec["pages"])))
    elif rec.get("doi"):
        pagination = None
    else:
        pagination = E.Pagination(E.MedlinePgn())
    return _make(
        "Article",
        _journal_xml(rec),
        E.ArticleTitle(str(rec.get("title") or "")),
        pagination,
        _el("ELocationID", rec.get("doi"), EIdType="doi", ValidYN="Y"),
        _abstract_xml(rec.get("abstract")),
        _list("AuthorList", (_author_xml(a) for a in rec.get("authors") or []), CompleteYN="Y"),
        E.Language(str(rec.get("language") or "eng")),
        _list(
            "PublicationTypeList",
            (_el("PublicationType", t, UI="") for t in _publication_types(rec)),
        ),
        PubModel="Print-Electronic",
    )


def _comments_xml(rec: Mapping[str, Any]) -> Node | None:
    items = []
    if rec.get("retracted"):
        for pmid in rec.get("retraction_in") or [None]:
            items.append(("RetractionIn", "Retraction notice", pmid))
    for pmid in rec.get("retraction_of") or []:
        items.append(("RetractionOf", "Retracted article", pmid))
    return _list(
        "CommentsCorrectionsList",
        (
            _make(
                "CommentsCorrections",
                E.RefSource(source),
                _el("PMID", pmid, Version="1"),
                RefType=ref,
            )
            for ref, source, pmid in items
        ),
    )


def _mesh_xml(terms: Iterable[str]) -> Node | None:
    """Group 'D / q' lines into one MeshHeading per descriptor, in first-seen order."""
    headings: dict[str, list[Any]] = {}
    for term in terms:
        desc, major, qual, qual_major = split_mesh_term(term)
        heading = headings.setdefault(desc, [False, []])
        heading[0] = heading[0] or major
        if qual is not None:
            heading[1].append((qual, qual_major))
    return _list(
        "MeshHeadingList",
        (
            E.MeshHeading(
                E.DescriptorName(desc, UI="", MajorTopicYN="Y" if major else "N"),
                *(E.QualifierName(q, UI="", MajorTopicYN="Y" if qm else "N") for q, qm in quals),
            )
            for desc, (major, quals) in headings.items()
        ),
    )


def _keywords_xml(keywords: Iterable[str]) -> Node | None:
    return _list(
        "KeywordList", (_el("Keyword", k, MajorTopicYN="N") for k in keywords), Owner="NOTNLM"
    )


def _citation_xml(rec: Mapping[str, Any]) -> Node:
    status = rec.get("status") or ("MEDLINE" if rec.get("mesh_terms") else "PubMed-not-MEDLINE")
    journal_ta = rec.get("journal_iso") or rec.get("journal")
    return _make(
        "MedlineCitation",
        _el("PMID", rec["pmid"], Version=str(rec.get("version") or 1)),
        _ymd_xml("DateCompleted", rec.get("completed_date")),
        _ymd_xml("DateRevised", rec.get("revised_date")),
        _article_body_xml(rec),
        E.MedlineJournalInfo(E.MedlineTA(str(journal_ta or ""))),
        _comments_xml(rec),
        _mesh_xml(rec.get("mesh_terms") or []),
        _keywords_xml(rec.get("keywords") or []),
        Status=status,
        Owner="NLM",
    )


def _pubmed_data_xml(rec: Mapping[str, Any]) -> Node:
    history = _list(
        "History", [_ymd_xml("PubMedPubDate", rec.get("entrez_date"), PubStatus="entrez")]
    )
    ids = _make(
        "ArticleIdList",
        _el("ArticleId", rec["pmid"], IdType="pubmed"),
        _el("ArticleId", rec.get("doi"), IdType="doi"),
        _el("ArticleId", rec.get("pmcid"), IdType="pmc"),
    )
    return _make("PubmedData", history, E.PublicationStatus("ppublish"), ids)


def article_xml(rec: Mapping[str, Any]) -> str:
    """One ``<PubmedArticle>`` element for a corpus-shaped record (keys: module docstring)."""
    if not rec.get("pmid"):
        raise ValueError("a record needs a pmid to be rendered as PubMed XML")
    article = E.PubmedArticle(_citation_xml(rec), _pubmed_data_xml(rec))
    return etree.tostring(article, encoding="unicode")


def efetch_document(article_xmls: Iterable[str], deleted: Iterable[str] = ()) -> bytes:
    """A whole efetch answer: XML declaration, 2025 DOCTYPE, records, optional DeleteCitation.

    The records come rendered (the stand-in renders each once and serves it on every page),
    so the envelope around them is written as text; every element in it is built by lxml.
    """
    parts = ['<?xml version="1.0" ?>\n', DOCTYPE, "\n<PubmedArticleSet>\n"]
    for xml in article_xmls:
        parts.append(xml)
        parts.append("\n")
    deleted_pmids = [str(p) for p in deleted]
    if deleted_pmids:
        gone = E.DeleteCitation(*(E.PMID(p, Version="1") for p in deleted_pmids))
        parts.append(etree.tostring(gone, encoding="unicode") + "\n")
    parts.append("</PubmedArticleSet>\n")
    return "".join(parts).encode("utf-8")
