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
from xml.sax.saxutils import escape, quoteattr

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


def _x(text: object) -> str:
    """XML-escape element text (&, <, >)."""
    return escape(str(text))


def _el(tag: str, text: object | None, **attrs: str) -> str:
    """One text element, or "" when there is no value."""
    if text is None:
        return ""
    attr = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<{tag}{attr}>{_x(text)}</{tag}>"


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


def _author_xml(name: str) -> str:
    parts = split_author(name)
    inner = "".join(_el(tag, value) for tag, value in parts.items())
    return f'<Author ValidYN="Y">{inner}</Author>'


def _abstract_xml(abstract: str | None) -> str:
    if not abstract:
        return ""
    paras = []
    for para in abstract.split("\n"):
        match = _LABEL_RE.match(para)
        if match:
            label, text = match.groups()
            category = _CATEGORIES.get(label.upper(), "UNASSIGNED")
            paras.append(
                f"<AbstractText Label={quoteattr(label)} NlmCategory={quoteattr(category)}>"
                f"{_x(text)}</AbstractText>"
            )
        else:
            paras.append(f"<AbstractText>{_x(para)}</AbstractText>")
    return f"<Abstract>{''.join(paras)}</Abstract>"


def _date_parts(iso: str | None) -> tuple[str, str, str] | None:
    if not iso:
        return None
    year, month, day = (iso.split("-") + ["01", "01"])[:3]
    return year, month, day


def _ymd_xml(tag: str, iso: str | None, **attrs: str) -> str:
    parts = _date_parts(iso)
    if parts is None:
        return ""
    year, month, day = parts
    attr = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<{tag}{attr}><Year>{year}</Year><Month>{month}</Month><Day>{day}</Day></{tag}>"


def _pub_date_xml(rec: Mapping[str, Any]) -> str:
    if rec.get("medline_date"):
        return f"<PubDate>{_el('MedlineDate', rec['medline_date'])}</PubDate>"
    if rec.get("year") is None:
        return "<PubDate><MedlineDate/></PubDate>"  # DTD requires a PubDate; the record has none
    inner = _el("Year", rec["year"])
    if rec.get("month"):
        inner += _el("Month", _MONTH_ABBR[int(rec["month"]) - 1])
        inner += _el("Day", f"{int(rec['day']):02d}" if rec.get("day") else None)
    return f"<PubDate>{inner}</PubDate>"


def _journal_xml(rec: Mapping[str, Any]) -> str:
    issn = _el("ISSN", rec.get("issn"), IssnType="Electronic")
    issue = (
        f'<JournalIssue CitedMedium="Internet">{_el("Volume", rec.get("volume"))}'
        f"{_el('Issue', rec.get('issue'))}{_pub_date_xml(rec)}</JournalIssue>"
    )
    return (
        f"<Journal>{issn}{issue}{_el('Title', rec.get('journal'))}"
        f"{_el('ISOAbbreviation', rec.get('journal_iso'))}</Journal>"
    )


def _publication_types(rec: Mapping[str, Any]) -> list[str]:
    types = list(rec.get("publication_types") or [])
    if rec.get("retracted") and "Retracted Publication" not in types:
        types.append("Retracted Publication")
    if rec.get("retraction_of") and "Retraction of Publication" not in types:
        types.append("Retraction of Publication")
    return types


def _article_body_xml(rec: Mapping[str, Any]) -> str:
    """<Article> in DTD order: Journal, ArticleTitle, Pagination/ELocationID, Abstract, ..."""
    pagination = f"<Pagination>{_el('MedlinePgn', rec.get('pages'))}</Pagination>"
    if not rec.get("pages") and rec.get("doi"):
        pagination = ""
    elif not rec.get("pages"):
        pagination = "<Pagination><MedlinePgn/></Pagination>"
    eloc = _el("ELocationID", rec.get("doi"), EIdType="doi", ValidYN="Y")
    authors = rec.get("authors") or []
    author_list = (
        f'<AuthorList CompleteYN="Y">{"".join(_author_xml(a) for a in authors)}</AuthorList>'
        if authors
        else ""
    )
    types = _publication_types(rec)
    type_list = (
        f"<PublicationTypeList>{''.join(_el('PublicationType', t, UI='') for t in types)}"
        "</PublicationTypeList>"
        if types
        else ""
    )
    return (
        f'<Article PubModel="Print-Electronic">{_journal_xml(rec)}'
        f"<ArticleTitle>{_x(rec.get('title') or '')}</ArticleTitle>{pagination}{eloc}"
        f"{_abstract_xml(rec.get('abstract'))}{author_list}"
        f"{_el('Language', rec.get('language') or 'eng')}{type_list}</Article>"
    )


def _comments_xml(rec: Mapping[str, Any]) -> str:
    items = []
    if rec.get("retracted"):
        for pmid in rec.get("retraction_in") or [None]:
            items.append(("RetractionIn", "Retraction notice", pmid))
    for pmid in rec.get("retraction_of") or []:
        items.append(("RetractionOf", "Retracted article", pmid))
    if not items:
        return ""
    body = "".join(
        f"<CommentsCorrections RefType={quoteattr(ref)}>{_el('RefSource', source)}"
        f"{_el('PMID', pmid, Version='1')}</CommentsCorrections>"
        for ref, source, pmid in items
    )
    return f"<CommentsCorrectionsList>{body}</CommentsCorrectionsList>"


def _mesh_xml(terms: Iterable[str]) -> str:
    """Group 'D / q' lines into one MeshHeading per descriptor, in first-seen order."""
    headings: dict[str, list[Any]] = {}
    for term in terms:
        desc, major, qual, qual_major = split_mesh_term(term)
        heading = headings.setdefault(desc, [False, []])
        heading[0] = heading[0] or major
        if qual is not None:
            heading[1].append((qual, qual_major))
    if not headings:
        return ""
    out = []
    for desc, (major, quals) in headings.items():
        q_xml = "".join(
            _el("QualifierName", q, UI="", MajorTopicYN="Y" if qm else "N") for q, qm in quals
        )
        d_xml = _el("DescriptorName", desc, UI="", MajorTopicYN="Y" if major else "N")
        out.append(f"<MeshHeading>{d_xml}{q_xml}</MeshHeading>")
    return f"<MeshHeadingList>{''.join(out)}</MeshHeadingList>"


def _keywords_xml(keywords: Iterable[str]) -> str:
    kws = "".join(_el("Keyword", k, MajorTopicYN="N") for k in keywords)
    return f'<KeywordList Owner="NOTNLM">{kws}</KeywordList>' if kws else ""


def _citation_xml(rec: Mapping[str, Any]) -> str:
    status = rec.get("status") or ("MEDLINE" if rec.get("mesh_terms") else "PubMed-not-MEDLINE")
    journal_ta = rec.get("journal_iso") or rec.get("journal")
    return (
        f'<MedlineCitation Status={quoteattr(status)} Owner="NLM">'
        f"{_el('PMID', rec['pmid'], Version=str(rec.get('version') or 1))}"
        f"{_ymd_xml('DateCompleted', rec.get('completed_date'))}"
        f"{_ymd_xml('DateRevised', rec.get('revised_date'))}"
        f"{_article_body_xml(rec)}"
        f"<MedlineJournalInfo><MedlineTA>{_x(journal_ta or '')}</MedlineTA></MedlineJournalInfo>"
        f"{_comments_xml(rec)}{_mesh_xml(rec.get('mesh_terms') or [])}"
        f"{_keywords_xml(rec.get('keywords') or [])}</MedlineCitation>"
    )


def _pubmed_data_xml(rec: Mapping[str, Any]) -> str:
    history = _ymd_xml("PubMedPubDate", rec.get("entrez_date"), PubStatus="entrez")
    history = f"<History>{history}</History>" if history else ""
    ids = _el("ArticleId", rec["pmid"], IdType="pubmed")
    ids += _el("ArticleId", rec.get("doi"), IdType="doi")
    ids += _el("ArticleId", rec.get("pmcid"), IdType="pmc")
    return (
        f"<PubmedData>{history}<PublicationStatus>ppublish</PublicationStatus>"
        f"<ArticleIdList>{ids}</ArticleIdList></PubmedData>"
    )


def article_xml(rec: Mapping[str, Any]) -> str:
    """One ``<PubmedArticle>`` element for a corpus-shaped record (keys: module docstring)."""
    if not rec.get("pmid"):
        raise ValueError("a record needs a pmid to be rendered as PubMed XML")
    return f"<PubmedArticle>{_citation_xml(rec)}{_pubmed_data_xml(rec)}</PubmedArticle>"


def efetch_document(article_xmls: Iterable[str], deleted: Iterable[str] = ()) -> bytes:
    """A whole efetch answer: XML declaration, 2025 DOCTYPE, records, optional DeleteCitation."""
    parts = ['<?xml version="1.0" ?>\n', DOCTYPE, "\n<PubmedArticleSet>\n"]
    for xml in article_xmls:
        parts.append(xml)
        parts.append("\n")
    deleted_pmids = [str(p) for p in deleted]
    if deleted_pmids:
        pmids = "".join(_el("PMID", p, Version="1") for p in deleted_pmids)
        parts.append(f"<DeleteCitation>{pmids}</DeleteCitation>\n")
    parts.append("</PubmedArticleSet>\n")
    return "".join(parts).encode("utf-8")
