"""Pure E-utilities helpers, on real NCBI answers from ../shared/eutils-samples."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from crawler.eutils import (
    EutilsAnswerError,
    check_query,
    common_params,
    efetch_history_params,
    efetch_ids_params,
    error_text,
    esearch_params,
    is_history_error,
    is_rate_limited,
    looks_complete,
    parse_esearch,
    parse_ncbi_date,
    parse_user_date,
    plan_history_pages,
    redact,
    retry_after_seconds,
    split_window,
    use_post,
)
from crawler.strategy import DEFAULT_QUERY
from pipeline.errors import CrawlError


def entrez(samples_dir: Path, name: str) -> bytes:
    return (samples_dir / "biopython" / "Entrez" / name).read_bytes()


def test_parse_esearch_history_answer(samples_dir: Path) -> None:
    res = parse_esearch(entrez(samples_dir, "esearch2.xml"))
    assert res.webenv and res.webenv.startswith("MCID_")
    assert res.query_key == "1"
    assert res.count > len(res.ids) > 0
    assert all(i.isdigit() for i in res.ids)


def test_parse_esearch_paging_answer(samples_dir: Path) -> None:
    from Bio import Entrez

    body = entrez(samples_dir, "esearch3.xml")
    res = parse_esearch(body)
    with (samples_dir / "biopython" / "Entrez" / "esearch3.xml").open("rb") as fh:
        ref = Entrez.read(fh)
    assert res.ids == list(ref["IdList"])
    assert res.count == int(ref["Count"])


def test_parse_esearch_no_match_keeps_error_list(samples_dir: Path) -> None:
    res = parse_esearch(entrez(samples_dir, "esearch8.xml"))
    assert res.count == 0 and res.ids == []
    assert res.errors.get("PhraseNotFound")


def test_parse_esearch_partial_miss_with_count(samples_dir: Path) -> None:
    body = (
        samples_dir / "hawc" / "extracted" / "TestPubMedSearch.test_complex_query.01.esearch.xml"
    ).read_bytes()
    res = parse_esearch(body)
    assert res.count > 0 and res.errors.get("PhraseNotFound")


@pytest.mark.parametrize("name", ["epost2.xml", "esummary8.xml"])
def test_error_inside_answer_is_found(samples_dir: Path, name: str) -> None:
    body = entrez(samples_dir, name)
    assert error_text(body)
    with pytest.raises(EutilsAnswerError):
        parse_esearch(body)


def test_empty_error_element_is_not_an_error(samples_dir: Path) -> None:
    assert error_text(entrez(samples_dir, "espell.xml")) is None


def test_truncated_answer_is_detected(samples_dir: Path) -> None:
    assert not looks_complete(entrez(samples_dir, "einfo4.xml"), b"eInfoResult")
    assert looks_complete(entrez(samples_dir, "einfo1.xml"), b"eInfoResult")
    full = entrez(samples_dir, "pubmed1.xml")
    assert looks_complete(full, b"PubmedArticleSet")
    assert not looks_complete(full[: len(full) // 2], b"PubmedArticleSet")
    assert not looks_complete(entrez(samples_dir, "pubmed3.html"), b"PubmedArticleSet")


def test_history_errors_are_recognised() -> None:
    body = (
        b"<eFetchResult><ERROR>Cannot retrieve history data: OUT OF RANGE. Parameter "
        b"retstart=1 + 1 is greater than number of records available in history."
        b"</ERROR></eFetchResult>"
    )
    assert is_history_error(error_text(body) or "")
    assert is_history_error("Unable to obtain query #1")
    assert is_history_error("Invalid WebEnv")
    assert not is_history_error("Invalid db name specified: nothing")


def test_rate_limit_body_even_with_status_200() -> None:
    body = b'{"error":"API rate limit exceeded","api-key":"127.0.0.1","count":"5","limit":"3"}'
    assert is_rate_limited(429, b"")
    assert is_rate_limited(200, body)
    assert not is_rate_limited(200, b"<eSearchResult/>")
    assert error_text(body) == "API rate limit exceeded"


def test_json_error_with_raw_newline() -> None:
    body = (
        b'{"header":{"type":"esearch","version":"0.3"},"esearchresult":{"ERROR":"Search '
        b"Backend failed: Exception:\n'retstart' cannot be larger than 9998.\"}}"
    )
    assert "9998" in (error_text(body) or "")


def test_retry_after() -> None:
    assert retry_after_seconds(b"2") == 2.0
    assert retry_after_seconds(None) == 2.0
    assert retry_after_seconds("garbage") == 2.0
    assert retry_after_seconds("999") == 60.0


def test_request_parameters() -> None:
    p = esearch_params("ketamine", mindate="2020/01/01", maxdate="2020/12/31", retmax=50_000)
    assert p["usehistory"] == "y" and p["retmax"] == "9999" and p["datetype"] == "edat"
    assert p["mindate"] == "2020/01/01" and p["maxdate"] == "2020/12/31"
    assert "mindate" not in esearch_params("ketamine")
    h = efetch_history_params("MCID_1", "1", 500, 500)
    assert h["retmode"] == "xml" and h["WebEnv"] == "MCID_1" and h["retstart"] == "500"
    ids = efetch_ids_params([str(i) for i in range(300)])
    assert ids["id"].count(",") == 299 and ids["retmode"] == "xml"
    c = common_params(email="a@b.org", api_key="k")
    assert c == {"tool": "kea", "email": "a@b.org", "api_key": "k"}
    assert "api_key" not in common_params(email=None, api_key=None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020", "2020"),
        ("2020/5", "2020/05"),
        ("2020-05-17", "2020/05/17"),
        ("2024/02/29", "2024/02/29"),
    ],
)
def test_user_dates(text: str, expected: str) -> None:
    assert parse_user_date(text) == expected


@pytest.mark.parametrize("text", ["2023/02/29", "2020/13", "2020/00/10", "tomorrow", "20201"])
def test_bad_user_dates(text: str) -> None:
    with pytest.raises(CrawlError):
        parse_user_date(text)


def test_date_windows_split_without_gap_or_overlap() -> None:
    lo, hi = date(2000, 1, 1), date(2000, 1, 31)
    (a, b), (c, d) = split_window(lo, hi)
    assert a == lo and d == hi and (c - b).days == 1
    assert split_window(lo, lo) is None
    assert parse_ncbi_date("2020/02", end=True) == date(2020, 2, 29)
    assert parse_ncbi_date("2020") == date(2020, 1, 1)


@pytest.mark.parametrize(
    "query", ["", "(ketamine", "ketamine)", 'ketamine "depression', "ketamine AND", "OR x"]
)
def test_malformed_queries(query: str) -> None:
    with pytest.raises(CrawlError):
        check_query(query)


def test_default_query_is_well_formed() -> None:
    assert check_query(DEFAULT_QUERY)
    for word in (
        "esketamine",
        "arketamine",
        "spravato",
        "ptsd",
        "bipolar",
        "suicid",
        "obsessive",
        "panic",
    ):
        assert word in DEFAULT_QUERY.lower()


def test_history_pages_cover_pending_minimally() -> None:
    ids = [str(i) for i in range(1000)]
    pages, by_id = plan_history_pages(ids, set(ids), 300)
    assert pages == [(0, 300), (300, 300), (600, 300), (900, 100)] and by_id == []
    # resume: only the tail is pending
    pages, by_id = plan_history_pages(ids, set(ids[650:]), 300)
    assert pages == [(650, 300), (950, 50)]
    # a few scattered new records are fetched by id, not by refetching whole pages
    sparse = {"5", "400", "777"}
    pages, by_id = plan_history_pages(ids, sparse, 300)
    assert pages == [] and sorted(by_id, key=int) == ["5", "400", "777"]


def test_post_only_when_long() -> None:
    assert not use_post(efetch_history_params("MCID_1", "1", 0, 500))
    assert not use_post(efetch_ids_params([str(i) for i in range(50)]))
    assert use_post(efetch_ids_params([str(i) for i in range(200)]))
    assert use_post(esearch_params(DEFAULT_QUERY))  # the default query is long
    assert not use_post(esearch_params("ketamine AND depression"))


def test_redact() -> None:
    assert redact("url?api_key=SECRET1", "SECRET1") == "url?api_key=***"
    assert redact("nothing", None) == "nothing"
