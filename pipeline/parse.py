"""Stream PubMed efetch XML into typed records: bytes in, dataclasses out, nothing fetched.

Why streaming: a crawl hands us batches of up to 10,000 records; ``iter_efetch`` builds one
record at a time with lxml ``iterparse`` and clears it, so memory stays flat in batch size.
Why no DTD: NCBI bumps the DTD name every year and Biopython (our reference) downloads DTDs
it does not ship; we never load a DTD, resolve an entity or touch the network, so any DOCTYPE parses.
A broken answer (truncated, HTML, an ``<ERROR>`` body, a foreign root) raises ``ParseError``;
``parse_efetch`` never returns a partial batch.
Why size caps: one 10 MB abstract is stored, indexed and shown as is, and the dashboard's
detail view never finished rendering it. Texts and lists longer than any real record are cut
at parse time, with a visible marker in the text and a warning (``ParsedBatch.warnings``).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO

from lxml import etree

from pipeline.errors import ParseError, RecordError
from pipeline.records import (
    MAX_PMID,
    AbstractSection,
    Article,
    Author,
    MeshHeading,
    ParsedBatch,
    pmid_or_none,
)

__all__ = [
    "DeletedPmids",
    "FieldWarning",
    "iter_efetch",
    "parse_article",
    "parse_efetch",
]

_Element = etree._Element

_ROOT = "PubmedArticleSet"
_RECORD_TAGS = ("PubmedArticle", "PubmedBookArticle")
_DELETE = "DeleteCitation"
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_AUTHOR_FIELDS = {
    "LastName": "last_name",
    "ForeName": "fore_name",
    "Initials": "initials",
    "Suffix": "suffix",
    "CollectiveName": "collective_name",
}
_MATHML = "{http://www.w3.org/1998/Math/MathML}math"
_YEAR_RE = re.compile(r"\b(\d{4})\b")

# Size caps, ~15x the largest seen in ../shared (abstract 6,669 characters in all, title 282,
# 28 MeSH headings, 23 authors, 11 keywords); PubMed's longest real abstracts are a few tens
# of kB and its largest author lists a few thousand names.
ABSTRACT_MAX = 100_000  # characters, all sections together
TITLE_MAX = 4_000
TEXT_MAX = 2_000  # any other text: a name, journal, keyword, MeSH term, date, page range
LIST_MAX = 5_000  # authors, MeSH headings, keywords, publication types of one record
CUT_MARK = " [… cut by kea: {n:,} characters in the PubMed record]"
_NOTES = threading.local()  # what was cut in the record being parsed (the spider parses in threads)


@dataclass(frozen=True)
class DeletedPmids:
    """PMIDs that NCBI lists under ``<DeleteCitation>``: the store should drop them."""

    pmids: tuple[str, ...]


@dataclass(frozen=True)
class FieldWarning:
    """A record kept with over-long texts or lists cut (the crawler logs it)."""

    reason: str


@dataclass(frozen=True)
class RejectedRecord:
    """A record dropped from an answer, and why (the crawler warns and counts it missing)."""

    reason: str


# --------------------------------------------------------------------------- text helpers


def _text(elem: _Element | None, limit: int = TEXT_MAX) -> str | None:
    """All text under ``elem`` (inline markup and MathML flattened), whitespace collapsed,
    cut to ``limit`` characters with a visible marker."""
    if elem is None:
        return None
    if len(elem):
        raw = "".join(_flatten(elem))
    else:
        raw = elem.text
        if raw is None:
            return None
    out = _ASCII_WS.sub(" ", raw).strip(" ") or None
    if out is not None and len(out) > limit:
        out = _cut(out, limit, f"<{elem.tag}>")
    return out


def _cut(text: str, limit: int, what: str) -> str:
    """``text`` cut to ``limit`` characters plus the marker; the cut is noted for a warning."""
    _note(f"{what} of {len(text):,} characters cut to {limit:,}")
    return text[:limit] + CUT_MARK.format(n=len(text))


def _note(message: str) -> None:
    notes = getattr(_NOTES, "items", None)
    if notes is not None:
        notes.append(message)


def _capped(items: Iterator[_Element], what: str) -> list[_Element]:
    """At most LIST_MAX elements; more are noted, never built."""
    kept = list(islice(items, LIST_MAX))
    if len(kept) == LIST_MAX:
        extra = sum(1 for _ in items)
        if extra:
            _note(f"{what}: {LIST_MAX + extra:,} items, kept the first {LIST_MAX:,}")
    return kept


# Only layout whitespace collapses: thin and no-break spaces (as in "0.5\u2009mg/kg") are
# typography the record means to keep; str.split() would turn them into plain spaces.
_ASCII_WS = re.compile(r"[ \t\n\r\f\v]+")


def _flatten(elem: _Element) -> Iterator[str]:
    """Text and tails in document order; MathML tokens are glued (its whitespace is layout)."""
    if elem.text:
        yield elem.text
    for child in elem:
        if child.tag == _MATHML:
            yield "".join(t.strip() for t in child.itertext())
        elif isinstance(child.tag, str):
            yield from _flatten(child)
        if child.tail:
            yield child.tail


def _kids(elem: _Element | None) -> dict[str, _Element]:
    """Tag -> first child: one pass over the children beats repeated ``find`` calls."""
    kids: dict[str, _Element] = {}
    if elem is not None:
        for child in elem:
            kids.setdefault(child.tag, child)
    return kids


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _month_number(value: str | None) -> int | None:
    """'06', '6', 'Jun' or 'June' -> 6; anything else -> None."""
    if value is None:
        return None
    if value.isdigit():
        n = int(value)
        return n if 1 <= n <= 12 else None
    return _MONTHS.get(value[:3].lower())


def _iso(year: int | None, month: int | None = None, day: int | None = None) -> str | None:
    """ISO date as precise as the parts allow: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'."""
    if year is None:
        return None
    if month is None:
        return f"{year:04d}"
    if day is None:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _ymd_date(elem: _Element | None) -> str | None:
    """ISO date of a (Year, Month, Day) element such as DateRevised or PubMedPubDate."""
    if elem is None:
        return None
    kids = _kids(elem)
    year = _int_or_none(_text(kids.get("Year")))
    month = _month_number(_text(kids.get("Month")))
    day = _int_or_none(_text(kids.get("Day"))) if month is not None else None
    return _iso(year, month, day)


# --------------------------------------------------------------------------- record parts


def _pmid(container: _Element, elem: _Element | None) -> tuple[str, int]:
    """PMID (canonical ASCII digits) and its Version attribute (1 when absent).

    ``str.isdigit`` alone would let "1001²" or Arabic-Indic digits through, which
    ``int()`` then reads as another number than the one shown.
    """
    text = _text(elem)
    if elem is None or text is None:
        raise RecordError(f"<{container.tag}> has no PMID")
    pmid = pmid_or_none(text)
    if pmid is None:
        raise RecordError(f"PMID {text[:40]!r} is not a whole number from 1 to {MAX_PMID}")
    version = _int_or_none(elem.get("Version")) or 1
    return pmid, version


def _article_ids(id_list: _Element | None) -> dict[str, str]:
    """IdType -> value for an ArticleIdList (first of each type wins)."""
    ids: dict[str, str] = {}
    if id_list is None:
        return ids
    for aid in id_list.iterchildren("ArticleId"):
        value = _text(aid)
        if value is not None:
            ids.setdefault(aid.get("IdType", "pubmed"), value)
    return ids


def _elocation_doi(parent: _Element | None) -> str | None:
    if parent is None:
        return None
    for loc in parent.iterchildren("ELocationID"):
        if loc.get("EIdType") == "doi":
            return _text(loc)
    return None


def _abstract_sections(abstract: _Element | None) -> list[AbstractSection]:
    """AbstractText paragraphs with Label and NlmCategory; OtherAbstract is never passed here."""
    if abstract is None:
        return []
    sections = []
    budget = ABSTRACT_MAX  # all sections together stay within the cap
    for para in abstract.iterchildren("AbstractText"):
        if budget <= 0:
            _note("abstract sections beyond the abstract's size cap dropped")
            break
        text = _text(para, budget) or ""
        label = para.get("Label") or None
        if not text and label is None:
            continue
        budget -= len(text)
        sections.append(
            AbstractSection(text=text, label=label, category=para.get("NlmCategory") or None)
        )
    return sections


def _author(elem: _Element) -> Author:
    """One Author: personal name parts or a CollectiveName, plus the first ORCID."""
    parts: dict[str, str | None] = {}
    orcid = None
    for child in elem:
        tag = child.tag
        if tag in _AUTHOR_FIELDS:
            parts[_AUTHOR_FIELDS[tag]] = _text(child)
        elif tag == "Identifier" and orcid is None and child.get("Source", "").upper() == "ORCID":
            orcid = _text(child)
    return Author(**parts, orcid=orcid)


def _authors(author_list: _Element | None) -> list[Author]:
    if author_list is None:
        return []
    return [_author(a) for a in _capped(author_list.iterchildren("Author"), "authors")]


def _pub_date(pub_date: _Element | None) -> tuple[int | None, str | None, str | None]:
    """(pub_year, ISO pub_date, raw MedlineDate) from a PubDate; a Season keeps the year only."""
    if pub_date is None:
        return None, None, None
    kids = _kids(pub_date)
    medline = _text(kids.get("MedlineDate"))
    if medline is not None:
        match = _YEAR_RE.search(medline)
        year = int(match.group(1)) if match else None
        return year, _iso(year), medline
    year = _int_or_none(_text(kids.get("Year")))
    if year is None:
        return None, None, None
    month = _month_number(_text(kids.get("Month")))
    day = _int_or_none(_text(kids.get("Day"))) if month is not None else None
    return year, _iso(year, month, day), None


def _pages(pagination: _Element | None) -> str | None:
    if pagination is None:
        return None
    kids = _kids(pagination)
    pgn = _text(kids.get("MedlinePgn"))
    if pgn is not None:
        return pgn
    start, end = _text(kids.get("StartPage")), _text(kids.get("EndPage"))
    if start and end:
        return f"{start}-{end}"
    return start


def _texts(elems: Iterator[_Element]) -> list[str]:
    """Non-empty flattened texts, in order (publication types, languages, keywords)."""
    return [t for t in map(_text, elems) if t is not None]


def _mesh(mesh_list: _Element | None) -> list[MeshHeading]:
    if mesh_list is None:
        return []
    headings = []
    for heading in _capped(mesh_list.iterchildren("MeshHeading"), "MeSH headings"):
        desc = next(heading.iterchildren("DescriptorName"), None)
        name = _text(desc)
        if desc is None or name is None:
            continue
        quals = tuple(
            (q_name, q.get("MajorTopicYN") == "Y")
            for q in heading.iterchildren("QualifierName")
            if (q_name := _text(q)) is not None
        )
        headings.append(
            MeshHeading(
                descriptor=name,
                ui=desc.get("UI") or None,
                major=desc.get("MajorTopicYN") == "Y",
                qualifiers=quals,
            )
        )
    return headings


def _accessions(bank_list: _Element | None) -> list[str]:
    """Every DataBankList/DataBank/AccessionNumberList/AccessionNumber, in order."""
    if bank_list is None:
        return []
    found = (
        acc
        for bank in bank_list.iterchildren("DataBank")
        for acc_list in bank.iterchildren("AccessionNumberList")
        for acc in acc_list.iterchildren("AccessionNumber")
    )
    return _texts(iter(_capped(found, "accession numbers")))


def _keywords(container: _Element) -> list[str]:
    """Keywords from every KeywordList (NOTNLM author keywords and NLM ones alike)."""
    kws = [kw for kw_list in container.iterchildren("KeywordList") for kw in _texts(kw_list)]
    if len(kws) > LIST_MAX:
        _note(f"keywords: {len(kws):,} items, kept the first {LIST_MAX:,}")
        del kws[LIST_MAX:]
    return kws


def _entrez_date(data: _Element | None) -> str | None:
    """When the record entered PubMed: History 'entrez', else 'pubmed'."""
    history = _kids(data).get("History")
    if history is None:
        return None
    dates = {d.get("PubStatus"): d for d in history.iterchildren("PubMedPubDate")}
    for status in ("entrez", "pubmed"):
        if status in dates:
            return _ymd_date(dates[status])
    return None


def _comments(comment_list: _Element | None) -> list[tuple[str | None, str | None]]:
    """(RefType, PMID) of each CommentsCorrections."""
    if comment_list is None:
        return []
    return [
        (cc.get("RefType"), _text(next(cc.iterchildren("PMID"), None)))
        for cc in comment_list.iterchildren("CommentsCorrections")
    ]


# --------------------------------------------------------------------------- records


def _journal_article(record: _Element) -> Article:
    rec = _kids(record)
    citation = rec.get("MedlineCitation")
    if citation is None:
        raise RecordError("<PubmedArticle> has no MedlineCitation")
    cit = _kids(citation)
    article = cit.get("Article")
    if article is None:
        raise RecordError("<MedlineCitation> has no Article")
    art = _kids(article)
    pmid, version = _pmid(citation, cit.get("PMID"))
    data = rec.get("PubmedData")
    ids = _article_ids(_kids(data).get("ArticleIdList"))
    journal = _kids(art.get("Journal"))
    issue = _kids(journal.get("JournalIssue"))
    pub_year, pub_date, medline_date = _pub_date(issue.get("PubDate"))
    if pub_year is None:
        pub_date = _ymd_date(art.get("ArticleDate"))  # electronic date when the issue has none
        pub_year = int(pub_date[:4]) if pub_date else None
    type_list = art.get("PublicationTypeList")
    pub_types = (
        _texts(_capped(iter(type_list), "publication types")) if type_list is not None else []
    )
    comments = _comments(cit.get("CommentsCorrectionsList"))
    return Article(
        pmid=pmid,
        version=version,
        title=_text(art.get("ArticleTitle"), TITLE_MAX),
        abstract_sections=_abstract_sections(art.get("Abstract")),
        authors=_authors(art.get("AuthorList")),
        journal=_text(journal.get("Title")),
        journal_iso=_text(journal.get("ISOAbbreviation")),
        issn=_text(journal.get("ISSN")),
        volume=_text(issue.get("Volume")),
        issue=_text(issue.get("Issue")),
        pages=_pages(art.get("Pagination")),
        pub_year=pub_year,
        pub_date=pub_date,
        medline_date=medline_date,
        publication_types=pub_types,
        mesh=_mesh(cit.get("MeshHeadingList")),
        keywords=_keywords(citation),
        languages=_texts(article.iterchildren("Language")),
        doi=ids.get("doi") or _elocation_doi(article),
        pmcid=ids.get("pmc"),
        status=citation.get("Status") or None,
        entrez_date=_entrez_date(data),
        revised_date=_ymd_date(cit.get("DateRevised")),
        completed_date=_ymd_date(cit.get("DateCompleted")),
        retracted="Retracted Publication" in pub_types
        or any(ref == "RetractionIn" for ref, _ in comments),
        retraction_notices=[p for ref, p in comments if ref == "RetractionIn" and p is not None],
        is_retraction_notice="Retraction of Publication" in pub_types
        or any(ref == "RetractionOf" for ref, _ in comments),
        accession_numbers=_accessions(art.get("DataBankList")),
    )


def _book_authors(document: _Element, book: _Element | None) -> list[Author]:
    """Chapter authors first; a whole book falls back to its own authors, then its editors."""
    lists = [
        al for al in document.iterchildren("AuthorList") if al.get("Type", "authors") == "authors"
    ]
    if not lists and book is not None:
        book_lists = list(book.iterchildren("AuthorList"))
        lists = [al for al in book_lists if al.get("Type", "authors") == "authors"] or book_lists
    return [a for al in lists for a in _authors(al)]


def _book_article(record: _Element) -> Article:
    rec = _kids(record)
    document = rec.get("BookDocument")
    if document is None:
        raise RecordError("<PubmedBookArticle> has no BookDocument")
    doc = _kids(document)
    pmid, version = _pmid(document, doc.get("PMID"))
    book_elem = doc.get("Book")
    book = _kids(book_elem)
    ids = _article_ids(doc.get("ArticleIdList"))
    book_title = _text(book.get("BookTitle"), TITLE_MAX)
    pub_year, pub_date, medline_date = _pub_date(book.get("PubDate"))
    pub_types = _texts(_capped(document.iterchildren("PublicationType"), "publication types"))
    return Article(
        pmid=pmid,
        version=version,
        title=_text(doc.get("ArticleTitle"), TITLE_MAX) or book_title,
        abstract_sections=_abstract_sections(doc.get("Abstract")),
        authors=_book_authors(document, book_elem),
        volume=_text(book.get("Volume")),
        pages=_pages(doc.get("Pagination")),
        pub_year=pub_year,
        pub_date=pub_date,
        medline_date=medline_date,
        publication_types=pub_types,
        keywords=_keywords(document),
        languages=_texts(document.iterchildren("Language")),
        doi=ids.get("doi") or _elocation_doi(book_elem),
        pmcid=ids.get("pmc"),
        entrez_date=_entrez_date(rec.get("PubmedBookData")),
        revised_date=_ymd_date(doc.get("DateRevised")),
        retracted="Retracted Publication" in pub_types,
        is_retraction_notice="Retraction of Publication" in pub_types,
        is_book=True,
        book_title=book_title,
        publisher=_text(_kids(book.get("Publisher")).get("PublisherName")),
    )


def parse_article(elem: _Element) -> Article:
    """One ``<PubmedArticle>`` or ``<PubmedBookArticle>`` element -> ``Article``."""
    if elem.tag == "PubmedArticle":
        return _journal_article(elem)
    if elem.tag == "PubmedBookArticle":
        return _book_article(elem)
    raise ParseError(f"expected <PubmedArticle> or <PubmedBookArticle>, got <{elem.tag}>")


def _parse_noting(elem: _Element) -> tuple[Article, list[str]]:
    """``parse_article`` and what its size caps cut."""
    _NOTES.items = notes = []
    try:
        return parse_article(elem), notes
    finally:
        _NOTES.items = None


# --------------------------------------------------------------------------- documents


def _as_stream(source: bytes | BinaryIO) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    if isinstance(source, str):
        # lxml would read a str as a file name: refuse rather than open an arbitrary path.
        raise TypeError("iter_efetch takes bytes or a binary file object, not str")
    return source


def _wrong_root_error(root: _Element | None) -> ParseError:
    """Explain a document whose root is not PubmedArticleSet (ERROR body, HTML, other XML)."""
    if root is None:
        return ParseError("efetch answer holds no XML element")
    tag = root.tag if isinstance(root.tag, str) else "?"
    errors = [t for t in (_text(e) for e in root.iter("ERROR")) if t]
    if errors:
        return ParseError(f"E-utilities returned an error: {'; '.join(errors)}")
    if tag.lower() == "html":
        return ParseError("efetch answer is HTML, not PubMed XML (was retmode=xml sent?)")
    return ParseError(f"efetch answer has root <{tag}>, expected <{_ROOT}>")


def _drop_done(elem: _Element) -> None:
    """Free a handled record and the siblings before it so memory stays flat."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def iter_efetch(
    source: bytes | BinaryIO,
) -> Iterator[Article | DeletedPmids | RejectedRecord | FieldWarning]:
    """Yield each record of an efetch answer as soon as it is read.

    A broken document raises ``ParseError`` when the break is reached, after the records
    before it were yielded: callers that need all-or-nothing use ``parse_efetch``. A single
    unusable record (a bad PMID) is yielded as ``RejectedRecord``: one bad record never
    costs the good ones beside it. A record kept with fields cut to the size caps is
    followed by a ``FieldWarning`` saying what was cut.
    """
    context = etree.iterparse(
        _as_stream(source),
        events=("start", "end"),
        tag=(_ROOT, _DELETE, *_RECORD_TAGS),
        load_dtd=False,
        no_network=True,
        resolve_entities=False,
        remove_comments=True,
        remove_pis=True,
        huge_tree=True,
    )
    seen_root = False
    try:
        for event, elem in context:
            if event == "start":
                if elem.tag == _ROOT and elem.getparent() is None:
                    seen_root = True
                elif not seen_root:
                    raise ParseError(f"<{elem.tag}> found outside <{_ROOT}>")
                continue
            if elem.tag in _RECORD_TAGS:
                try:
                    article, notes = _parse_noting(elem)
                except RecordError as err:
                    yield RejectedRecord(reason=str(err))
                else:
                    yield article
                    if notes:
                        yield FieldWarning(f"PMID {article.pmid}: " + "; ".join(notes))
            elif elem.tag == _DELETE:
                pmids = tuple(_texts(elem.iterchildren("PMID")))
                yield DeletedPmids(pmids=pmids)
            else:
                continue
            _drop_done(elem)
    except etree.XMLSyntaxError as err:
        raise ParseError(f"efetch answer is not well-formed XML (truncated?): {err}") from err
    if not seen_root:
        raise _wrong_root_error(context.root)


def parse_efetch(source: bytes | BinaryIO) -> ParsedBatch:
    """All records, deleted PMIDs and rejected records of one efetch answer.

    Raises rather than return part of a broken document."""
    batch = ParsedBatch()
    for item in iter_efetch(source):
        if isinstance(item, DeletedPmids):
            batch.deleted_pmids.extend(item.pmids)
        elif isinstance(item, RejectedRecord):
            batch.rejected.append(item.reason)
        elif isinstance(item, FieldWarning):
            batch.warnings.append(item.reason)
        else:
            batch.articles.append(item)
    return batch
