"""Typed records that flow E-utilities -> parse -> store -> classify -> query.

A missing value is ``None``, never ``""``; lists are empty when the record has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# E-utilities UIDs are 32-bit signed integers; anything else is not a PMID.
MAX_PMID = 2_147_483_647


def pmid_or_none(text: str | None) -> str | None:
    """A PMID in canonical form (ASCII digits, 1..MAX_PMID, no leading zeros), else None.

    ``str.isdigit`` alone would let "1001²" or Arabic-Indic digits through, which ``int()``
    then reads as another number than the one shown; a 20-digit one overflows SQLite.
    """
    t = (text or "").strip()
    if not t or len(t.lstrip("0")) > 10 or not (t.isascii() and t.isdigit()):
        return None
    n = int(t)
    return str(n) if 1 <= n <= MAX_PMID else None


@dataclass(frozen=True)
class Author:
    last_name: str | None = None
    fore_name: str | None = None
    initials: str | None = None
    suffix: str | None = None
    collective_name: str | None = None
    orcid: str | None = None

    @property
    def display(self) -> str:
        """'Lastname Initials' as PubMed shows it; a collective name as is."""
        if self.collective_name:
            return self.collective_name
        parts = [p for p in (self.last_name, self.initials, self.suffix) if p]
        return " ".join(parts) if parts else (self.fore_name or "")


@dataclass(frozen=True)
class AbstractSection:
    text: str
    label: str | None = None
    category: str | None = None  # NlmCategory: BACKGROUND, METHODS, RESULTS, ...


@dataclass(frozen=True)
class MeshHeading:
    descriptor: str
    ui: str | None = None
    major: bool = False
    qualifiers: tuple[tuple[str, bool], ...] = ()  # (name, major_topic)


@dataclass
class Article:
    """One PubMed record (PubmedArticle or PubmedBookArticle)."""

    pmid: str
    version: int = 1
    title: str | None = None
    abstract_sections: list[AbstractSection] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    journal: str | None = None
    journal_iso: str | None = None
    issn: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    pub_year: int | None = None
    pub_date: str | None = None  # ISO, as precise as the record: "2018", "2018-05", "2018-05-17"
    medline_date: str | None = None  # raw MedlineDate text when PubDate used it
    publication_types: list[str] = field(default_factory=list)
    mesh: list[MeshHeading] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    doi: str | None = None
    pmcid: str | None = None
    status: str | None = None  # MedlineCitation@Status
    entrez_date: str | None = None  # ISO date from History PubStatus=entrez (or pubmed)
    revised_date: str | None = None  # ISO date from DateRevised
    completed_date: str | None = None
    retracted: bool = False
    retraction_notices: list[str] = field(default_factory=list)  # PMIDs of RetractionIn notices
    is_retraction_notice: bool = False
    is_book: bool = False
    book_title: str | None = None
    publisher: str | None = None
    # DataBankList/AccessionNumber (trial registrations among them: pipeline.trials)
    accession_numbers: list[str] = field(default_factory=list)

    @property
    def abstract(self) -> str | None:
        """Sections as 'LABEL: text' paragraphs joined by newlines (the corpus format)."""
        if not self.abstract_sections:
            return None
        paras = [f"{s.label}: {s.text}" if s.label else s.text for s in self.abstract_sections]
        return "\n".join(paras)

    @property
    def author_names(self) -> list[str]:
        return [a.display for a in self.authors if a.display]

    @property
    def mesh_terms(self) -> list[str]:
        return [m.descriptor for m in self.mesh]

    @property
    def language(self) -> str | None:
        return self.languages[0] if self.languages else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (hand-written: dataclasses.asdict deep-copies, 5x slower)."""
        d = {f: getattr(self, f) for f in _SCALARS}
        d["abstract_sections"] = [
            {"text": s.text, "label": s.label, "category": s.category}
            for s in self.abstract_sections
        ]
        d["authors"] = [
            {
                "last_name": a.last_name,
                "fore_name": a.fore_name,
                "initials": a.initials,
                "suffix": a.suffix,
                "collective_name": a.collective_name,
                "orcid": a.orcid,
            }
            for a in self.authors
        ]
        d["mesh"] = [
            {
                "descriptor": m.descriptor,
                "ui": m.ui,
                "major": m.major,
                "qualifiers": [list(q) for q in m.qualifiers],
            }
            for m in self.mesh
        ]
        for f in _LISTS:
            d[f] = list(getattr(self, f))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Article:
        d = dict(d)
        d["abstract_sections"] = [AbstractSection(**s) for s in d.get("abstract_sections", [])]
        d["authors"] = [Author(**a) for a in d.get("authors", [])]
        d["mesh"] = [
            MeshHeading(
                descriptor=m["descriptor"],
                ui=m.get("ui"),
                major=m.get("major", False),
                qualifiers=tuple((q[0], bool(q[1])) for q in m.get("qualifiers", ())),
            )
            for m in d.get("mesh", [])
        ]
        return cls(**d)


_NESTED = ("abstract_sections", "authors", "mesh")
_LISTS = ("publication_types", "keywords", "languages", "retraction_notices", "accession_numbers")
_SCALARS = tuple(f.name for f in fields(Article) if f.name not in _NESTED and f.name not in _LISTS)


@dataclass
class ParsedBatch:
    """What one efetch answer holds: records, PMIDs NCBI says were deleted, why any
    record was rejected (a bad PMID), and which kept records had over-long fields cut
    (``warnings``: one line per record, for the crawler's log)."""

    articles: list[Article] = field(default_factory=list)
    deleted_pmids: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
