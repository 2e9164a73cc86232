"""One unusable record (a bad PMID) is dropped with its reason; the records beside it are kept."""

from __future__ import annotations

import pytest

from pipeline.errors import ParseError
from pipeline.parse import MAX_PMID, parse_efetch


def _record(pmid: str) -> str:
    # Team-written, fictional record: just enough of PubMed's shape.
    return (
        "<PubmedArticle><MedlineCitation Status='MEDLINE' Owner='NLM'>"
        f"<PMID Version='1'>{pmid}</PMID><Article PubModel='Print'><Journal><JournalIssue>"
        "<PubDate><Year>2031</Year></PubDate></JournalIssue><Title>Journal of Fiction</Title>"
        "</Journal><ArticleTitle>A fictional record.</ArticleTitle></Article>"
        "</MedlineCitation><PubmedData><ArticleIdList/></PubmedData></PubmedArticle>"
    )


def _answer(*pmids: str) -> bytes:
    body = "".join(_record(p) for p in pmids)
    return f"<?xml version='1.0'?><PubmedArticleSet>{body}</PubmedArticleSet>".encode()


@pytest.mark.parametrize(
    "bad",
    [
        "1001²",  # superscript two: str.isdigit() says yes, int() says no
        "١٠٠١",  # Arabic-Indic digits: int() reads them as 1001
        "12345678901234567890123",  # 23 digits
        str(MAX_PMID + 1),
        "0",
        "abc",
        "1002.5",
        "-5",
    ],
)
def test_a_bad_pmid_drops_only_its_record(bad: str) -> None:
    batch = parse_efetch(_answer("90000001", bad, "90000003"))
    assert [a.pmid for a in batch.articles] == ["90000001", "90000003"]
    assert len(batch.rejected) == 1
    assert "is not a whole number" in batch.rejected[0]


def test_a_record_without_pmid_is_rejected_alone() -> None:
    xml = _answer("90000001").replace(b"</PubmedArticleSet>", b"")
    xml += b"<PubmedArticle><MedlineCitation><Article/></MedlineCitation></PubmedArticle>"
    xml += b"</PubmedArticleSet>"
    batch = parse_efetch(xml)
    assert [a.pmid for a in batch.articles] == ["90000001"]
    assert batch.rejected == ["<MedlineCitation> has no PMID"]


def test_leading_zeros_are_read_as_the_canonical_pmid() -> None:
    assert [a.pmid for a in parse_efetch(_answer("0090000001")).articles] == ["90000001"]


def test_a_broken_document_still_raises() -> None:
    with pytest.raises(ParseError, match="not well-formed"):
        parse_efetch(_answer("90000001")[:-20])
