"""Items the spider yields: one per efetch answer, stored in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.records import Article


@dataclass
class FetchedBatch:
    articles: list[Article] = field(default_factory=list)
    deleted_pmids: list[str] = field(default_factory=list)
