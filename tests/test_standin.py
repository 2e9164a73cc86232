"""The offline E-utilities stand-in answers like NCBI: shapes, paging, history, limits, faults.

Plain urllib against a started server; Bio.Entrez parses the answers offline (it ships the
esearch/einfo/epost/pubmed_250101 DTDs), which checks the shapes the crawler will see.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
from Bio import Entrez
from Bio.Entrez.Parser import CorruptedXMLError, NotXMLError

from crawler.standin.demo import demo_records
from crawler.standin.faults import FaultPlan, FaultSpecError
from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import StandinRecord, revise_record, synthetic_records
from crawler.standin.server import StandinServer

ROOT = Path(__file__).resolve().parent.parent
NO_LIMIT = math.inf


def call(
    server: StandinServer,
    endpoint: str,
    *,
    post: bool = False,
    headers: dict[str, str] | None = None,
    **params: object,
) -> tuple[int, dict, bytes]:
    """One request; returns (status, headers, body) for 2xx and 4xx/5xx alike."""
    query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    url = server.url + endpoint + ".fcgi"
    if post:
        req = urllib.request.Request(url, data=query.encode(), headers=headers or {})
    else:
        req = urllib.request.Request(f"{url}?{query}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def expected_order(records: list[StandinRecord]) -> list[str]:
    """Newest entrez date first, ties by PMID descending."""
    ordered = sorted(records, key=lambda r: (r.entrez_date, int(r.pmid)), reverse=True)
    return [r.pmid for r in ordered]


def entrez(body: bytes) -> dict:
    return Entrez.read(io.BytesIO(body))


def error_text(body: bytes) -> str:
    return ET.fromstring(body).findtext("ERROR")


@pytest.fixture(scope="module")
def records() -> list[StandinRecord]:
    return synthetic_records(120, seed=3)


@pytest.fixture
def server(records: list[StandinRecord]):
    with StandinServer(records, rate_limit=NO_LIMIT) as srv:
        yield srv


# ---- esearch -------------------------------------------------------------------------------


def test_esearch_pages_in_pubmed_date_order(server, records):
    order = expected_order(records)
    status, headers, body = call(
        server, "esearch", db="pubmed", term="ketamine", retstart=20, retmax=10
    )
    assert status == 200
    assert headers["Content-Type"] == "text/xml; charset=UTF-8"
    result = entrez(body)
    assert result["Count"] == "120"
    assert (result["RetMax"], result["RetStart"]) == ("10", "20")
    assert result["IdList"] == order[20:30]
    default = entrez(call(server, "esearch", db="pubmed", term="ketamine")[2])
    assert default["IdList"] == order[:20]
    last = entrez(call(server, "esearch", db="pubmed", term="x", retstart=115, retmax=10)[2])
    assert last["IdList"] == order[115:] and last["RetMax"] == "5"


def test_esearch_answer_has_the_real_doctype_and_shape(server, samples_dir):
    body = call(server, "esearch", db="pubmed", term="ketamine", usehistory="y", retmax=3)[2]
    real = (samples_dir / "biopython/Entrez/esearch2.xml").read_bytes()
    assert body.splitlines()[:2] == real.splitlines()[:2]  # XML declaration + DOCTYPE
    tags = [el.tag for el in ET.fromstring(body)]
    assert tags == [
        "Count",
        "RetMax",
        "RetStart",
        "QueryKey",
        "WebEnv",
        "IdList",
        "TranslationSet",
        "QueryTranslation",
    ]
    assert ET.fromstring(body).findtext("WebEnv").startswith("MCID_")


def test_esearch_rettype_count_gives_only_count(server):
    root = ET.fromstring(call(server, "esearch", db="pubmed", term="k", rettype="count")[2])
    assert [el.tag for el in root] == ["Count"] and root.findtext("Count") == "120"


def test_esearch_9999_window_clamps_and_rejects():
    recs = synthetic_records(10_050, seed=1)
    order = expected_order(recs)
    with StandinServer(recs, rate_limit=NO_LIMIT) as srv:
        big = entrez(call(srv, "esearch", db="pubmed", term="k", retmax=20_000)[2])
        assert big["Count"] == "10050" and big["RetMax"] == "9999"
        assert big["IdList"] == order[:9999]
        edge = entrez(call(srv, "esearch", db="pubmed", term="k", retstart=9990, retmax=100)[2])
        assert edge["IdList"] == order[9990:9999]
        status, headers, body = call(srv, "esearch", db="pubmed", term="k", retstart=9999)
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert b"'retstart' cannot be larger than 9998" in body
        assert b"Search Backend failed: Exception:\n" in body  # raw newline, as observed
        count = entrez(
            call(srv, "esearch", db="pubmed", term="k", retstart=9999, rettype="count")[2]
        )
        assert count["Count"] == "10050"


def test_esearch_errors_inside_200_bodies(server):
    status, _, body = call(server, "esearch", db="pubmed")
    assert status == 200 and error_text(body) == "Empty term and query_key - nothing todo"
    with pytest.raises(RuntimeError, match="nothing todo"):
        entrez(body)
    for term in ("(ketamine AND depression", 'ketamine "depression', "a) OR (b"):
        status, _, body = call(server, "esearch", db="pubmed", term=term)
        assert status == 200 and error_text(body).startswith("Invalid query syntax")
    for bad in (
        {"mindate": "2020/13/01", "maxdate": "2021"},
        {"mindate": "2020-01-01", "maxdate": "2021"},
        {"mindate": "2020"},
        {"datetype": "xdat", "mindate": "2020", "maxdate": "2021"},
    ):
        status, _, body = call(server, "esearch", db="pubmed", term="k", **bad)
        assert status == 200 and error_text(body), bad


def test_esearch_no_match_reports_phrase_not_found(server, samples_dir):
    body = call(server, "esearch", db="pubmed", term="ketamine AND nomatchxyz")[2]
    result = entrez(body)
    assert result["Count"] == "0" and result["IdList"] == []
    assert result["ErrorList"]["PhraseNotFound"] == ["nomatchxyz"]
    assert result["WarningList"]["OutputMessage"] == ["No items found."]
    real = entrez((samples_dir / "biopython/Entrez/esearch8.xml").read_bytes())
    assert set(real) == set(result)


def test_esearch_pmid_terms_restrict_results(server, records):
    a, b = records[5].pmid, records[70].pmid
    result = entrez(call(server, "esearch", db="pubmed", term=f"{a}[pmid] OR {b}[uid]")[2])
    assert sorted(result["IdList"]) == sorted([a, b])


@pytest.mark.parametrize(
    ("datetype", "attr"), [("edat", "entrez_date"), ("mdat", "modified_date"), ("pdat", "pub_date")]
)
def test_esearch_date_windows_are_inclusive(server, records, datetype, attr):
    lo, hi = date(2000, 3, 1), date(2011, 6, 30)
    want = [
        p
        for p in expected_order(records)
        if lo <= getattr(next(r for r in records if r.pmid == p), attr) <= hi
    ]
    assert 0 < len(want) < len(records)
    result = entrez(
        call(
            server,
            "esearch",
            db="pubmed",
            term="k",
            datetype=datetype,
            mindate="2000/03",
            maxdate="2011/06/30",
            retmax=500,
        )[2]
    )
    assert result["IdList"] == want and result["Count"] == str(len(want))
    label = {"edat": "Entry", "mdat": "Modification", "pdat": "Publication"}[datetype]
    assert f"2000/03/01:2011/06/30[Date - {label}]" in result["QueryTranslation"]


def test_esearch_year_windows_partition_the_results(server, records):
    counts = [
        int(
            entrez(
                call(
                    server,
                    "esearch",
                    db="pubmed",
                    term="k",
                    datetype="edat",
                    mindate=str(y),
                    maxdate=str(y),
                    rettype="count",
                )[2]
            )["Count"]
        )
        for y in range(1990, 2027)
    ]
    assert sum(counts) == len(records)


def test_esearch_reldate_and_term_date_ranges():
    today = date.today()
    recs = synthetic_records(200, seed=5, start_date=today - timedelta(days=100), end_date=today)
    recent = [r.pmid for r in recs if r.entrez_date >= today - timedelta(days=30)]
    with StandinServer(recs, rate_limit=NO_LIMIT) as srv:
        rel = entrez(
            call(srv, "esearch", db="pubmed", term="k", reldate=30, datetype="edat", retmax=500)[2]
        )
        assert sorted(rel["IdList"]) == sorted(recent)
        lo = today - timedelta(days=30)
        term = f"k AND {lo:%Y/%m/%d}:{today:%Y/%m/%d}[edat]"
        in_term = entrez(call(srv, "esearch", db="pubmed", term=term, retmax=500)[2])
        assert sorted(in_term["IdList"]) == sorted(recent)


# ---- history and efetch ----------------------------------------------------------------------


def test_history_round_trip_pages_return_exactly_the_pmids(server, records):
    search = entrez(call(server, "esearch", db="pubmed", term="k", usehistory="y", retmax=0)[2])
    fetched: list[str] = []
    for start in range(0, 120, 25):
        status, _, body = call(
            server,
            "efetch",
            db="pubmed",
            retmode="xml",
            WebEnv=search["WebEnv"],
            query_key=search["QueryKey"],
            retstart=start,
            retmax=25,
        )
        assert status == 200
        fetched += [str(a["MedlineCitation"]["PMID"]) for a in entrez(body)["PubmedArticle"]]
    assert fetched == expected_order(records)
    assert server.requests[-1].n_records_returned == 20


def test_history_out_of_range_and_unknown_webenv(server):
    search = entrez(call(server, "esearch", db="pubmed", term="k", usehistory="y")[2])
    status, _, body = call(
        server,
        "efetch",
        db="pubmed",
        retmode="xml",
        retstart=120,
        retmax=5,
        WebEnv=search["WebEnv"],
        query_key="1",
    )
    assert status == 400
    assert b"-//NLM//DTD efetch 20131226//EN" in body
    assert error_text(body) == (
        "Cannot retrieve history data: OUT OF RANGE. Parameter retstart=120 + 1 is greater "
        "than number of records available in history. History includes 120 IDs."
    )
    status, _, body = call(
        server,
        "efetch",
        db="pubmed",
        retmode="xml",
        WebEnv="MCID_000000000000000000000000",
        query_key="1",
    )
    assert status == 200 and error_text(body) == "Unable to obtain query #1"
    status, _, body = call(
        server, "efetch", db="pubmed", retmode="xml", WebEnv=search["WebEnv"], query_key="7"
    )
    assert status == 200 and error_text(body) == "Unable to obtain query #7"


def test_history_expires_on_demand_and_after_ttl(records):
    with StandinServer(records, rate_limit=NO_LIMIT, history_ttl=1.0) as srv:
        s1 = entrez(call(srv, "esearch", db="pubmed", term="k", usehistory="y")[2])
        ok = call(srv, "efetch", db="pubmed", retmode="xml", WebEnv=s1["WebEnv"], query_key="1")
        assert entrez(ok[2])["PubmedArticle"]
        time.sleep(1.2)
        gone = call(srv, "efetch", db="pubmed", retmode="xml", WebEnv=s1["WebEnv"], query_key="1")
        assert error_text(gone[2]) == "Unable to obtain query #1"
    with StandinServer(records, rate_limit=NO_LIMIT) as srv:
        s2 = entrez(call(srv, "esearch", db="pubmed", term="k", usehistory="y")[2])
        srv.expire_history()
        gone = call(srv, "efetch", db="pubmed", retmode="xml", WebEnv=s2["WebEnv"], query_key="1")
        assert error_text(gone[2]) == "Unable to obtain query #1"


def test_webenv_param_appends_query_keys(server, records):
    s1 = entrez(call(server, "esearch", db="pubmed", term="k", usehistory="y")[2])
    s2 = entrez(
        call(
            server,
            "esearch",
            db="pubmed",
            term="k",
            usehistory="y",
            WebEnv=s1["WebEnv"],
            datetype="edat",
            mindate="2015",
            maxdate="2016",
        )[2]
    )
    assert s2["WebEnv"] == s1["WebEnv"] and (s1["QueryKey"], s2["QueryKey"]) == ("1", "2")
    body = call(
        server, "efetch", db="pubmed", retmode="xml", WebEnv=s2["WebEnv"], query_key="2", retmax=500
    )[2]
    got = [str(a["MedlineCitation"]["PMID"]) for a in entrez(body)["PubmedArticle"]]
    assert got and len(got) == int(s2["Count"]) < len(records)


def test_efetch_by_id_get_and_post(server, records):
    ids = [r.pmid for r in records[:3]]
    body = call(server, "efetch", db="pubmed", retmode="xml", id=",".join(ids))[2]
    assert [str(a["MedlineCitation"]["PMID"]) for a in entrez(body)["PubmedArticle"]] == ids
    many = [r.pmid for r in records]
    status, _, body = call(
        server, "efetch", post=True, db="pubmed", retmode="xml", id=",".join(many)
    )
    assert status == 200 and len(entrez(body)["PubmedArticle"]) == len(many)
    assert server.requests[-1].method == "POST"
    assert server.requests[-1].params["id"] == ",".join(many)


def test_efetch_without_retmode_is_not_xml(server, records):
    status, _, body = call(server, "efetch", db="pubmed", id=records[0].pmid)
    assert status == 200
    with pytest.raises(NotXMLError):
        entrez(body)
    text = call(
        server, "efetch", db="pubmed", id=records[0].pmid, retmode="text", rettype="medline"
    )[2].decode()
    assert text.startswith(f"PMID- {records[0].pmid}")


def test_efetch_without_ids_is_an_error(server):
    status, _, body = call(server, "efetch", db="pubmed", retmode="xml")
    assert status == 200 and error_text(body) == "Empty id list - nothing todo"


def test_deleted_and_revised_records(records):
    with StandinServer(records[:10], rate_limit=NO_LIMIT) as srv:
        gone, kept = records[0].pmid, records[1].pmid
        srv.delete_records([gone])
        body = call(srv, "efetch", db="pubmed", retmode="xml", id=f"{gone},{kept}")[2]
        parsed = entrez(body)
        assert [str(a["MedlineCitation"]["PMID"]) for a in parsed["PubmedArticle"]] == [kept]
        assert [str(p) for p in parsed["DeleteCitation"]] == [gone]
        assert entrez(call(srv, "esearch", db="pubmed", term="k")[2])["Count"] == "9"
        newer = revise_record(records[2], date(2026, 11, 1))
        srv.upsert_records([newer, records[0]])
        found = entrez(
            call(
                srv,
                "esearch",
                db="pubmed",
                term="k",
                datetype="mdat",
                mindate="2026/11/01",
                maxdate="2026/11/30",
            )[2]
        )
        assert records[2].pmid in found["IdList"]
        body = call(srv, "efetch", db="pubmed", retmode="xml", id=records[2].pmid)[2]
        title = entrez(body)["PubmedArticle"][0]["MedlineCitation"]["Article"]["ArticleTitle"]
        assert "revised 2026-11-01" in title
        assert entrez(call(srv, "esearch", db="pubmed", term="k")[2])["Count"] == "10"


def test_einfo_and_epost(server, records):
    info = entrez(call(server, "einfo", db="pubmed")[2])
    assert info["DbInfo"][0]["Count"] == "120"
    assert entrez(call(server, "einfo")[2])["DbList"] == ["pubmed"]
    ids = [records[9].pmid, records[3].pmid]
    post = entrez(call(server, "epost", post=True, db="pubmed", id=",".join(ids))[2])
    assert post["QueryKey"] == "1" and post["WebEnv"].startswith("MCID_")
    body = call(server, "efetch", db="pubmed", retmode="xml", WebEnv=post["WebEnv"], query_key="1")[
        2
    ]
    assert [str(a["MedlineCitation"]["PMID"]) for a in entrez(body)["PubmedArticle"]] == ids
    assert error_text(call(server, "epost", db="pubmed")[2]) == "Empty ID list; Nothing to store"


def test_unknown_parameters_are_ignored_and_gzip_is_offered(server):
    plain = call(server, "esearch", db="pubmed", term="k", tool="kea", email="a@b.c", foo="1")
    assert plain[0] == 200 and entrez(plain[2])["Count"] == "120"
    status, headers, body = call(
        server,
        "efetch",
        db="pubmed",
        retmode="xml",
        id="90000001",
        headers={"Accept-Encoding": "gzip"},
    )
    assert headers.get("Content-Encoding") == "gzip"
    assert entrez(gzip.decompress(body))["PubmedArticle"]


# ---- rate limit and keys -----------------------------------------------------------------------


def burst(server: StandinServer, n: int, **params: object) -> list[tuple[int, dict, bytes]]:
    """n simultaneous esearch requests (threads released together)."""
    gate = threading.Barrier(n)
    out: list[tuple[int, dict, bytes]] = []

    def one() -> None:
        gate.wait()
        out.append(call(server, "esearch", db="pubmed", term="k", **params))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_burst_over_three_per_second_gets_429(records):
    with StandinServer(records, retry_after=2.0) as srv:
        answers = burst(srv, 4)
        limited = [a for a in answers if a[0] == 429]
        assert len(limited) == 1 and sum(a[0] == 200 for a in answers) == 3
        status, headers, body = limited[0]
        assert json.loads(body) == {
            "error": "API rate limit exceeded",
            "api-key": "127.0.0.1",
            "count": "4",
            "limit": "3",
        }
        assert headers["Retry-After"] == "2"
        assert headers["X-RateLimit-Limit"] == "3" and headers["X-RateLimit-Remaining"] == "0"
        assert srv.max_requests_in_window(1.0) == 4 and srv.count("esearch") == 4
        time.sleep(1.1)  # the sliding window empties
        assert call(srv, "esearch", db="pubmed", term="k")[0] == 200


def test_valid_key_allows_ten_per_second_and_invalid_key_is_400(records):
    with StandinServer(records, api_keys={"goodkey"}) as srv:
        answers = burst(srv, 11, api_key="goodkey")
        assert sorted(a[0] for a in answers) == [200] * 10 + [429]
        body = json.loads(next(a[2] for a in answers if a[0] == 429))
        assert (body["api-key"], body["count"], body["limit"]) == ("goodkey", "11", "10")
        ok = next(a for a in answers if a[0] == 200)
        assert ok[1]["X-RateLimit-Limit"] == "10"
        status, _, body = call(srv, "esearch", db="pubmed", term="k", api_key="badkey")
        assert status == 400
        assert json.loads(body) == {
            "error": "API key invalid",
            "api-key": "badkey",
            "type": "invalid",
        }


# ---- faults ------------------------------------------------------------------------------------


def test_fault_plan_parsing():
    plan = FaultPlan.parse("efetch:2=500,efetch:4-5=slow:2.5,esearch:1=429,*:9=reset")
    assert plan.fault_for("efetch", 1) is None
    assert plan.fault_for("efetch", 2).http_status == 500
    assert plan.fault_for("efetch", 5).seconds == 2.5
    assert plan.fault_for("esearch", 1).kind == "429"
    assert plan.fault_for("einfo", 1, n_any=9).kind == "reset"
    for bad in ("efetch=500", "efetch:0=500", "efetch:2=teapot", "elink:1=500", "efetch:3-2=500"):
        with pytest.raises(FaultSpecError):
            FaultPlan.parse(bad)
    assert not FaultPlan.parse("")


def test_random_fault_plan_is_reproducible():
    a = FaultPlan.random(7, p=0.1)
    b = FaultPlan.random(7, p=0.1)
    draws = [a.fault_for("efetch", n) for n in range(1, 2001)]
    assert draws == [b.fault_for("efetch", n) for n in range(1, 2001)]
    rate = sum(f is not None for f in draws) / len(draws)
    assert 0.07 < rate < 0.13
    assert {f.kind for f in draws if f} <= set(a.kinds)


def fetch_ids(srv: StandinServer, ids: str) -> tuple[int, dict, bytes]:
    return call(srv, "efetch", db="pubmed", retmode="xml", id=ids)


@pytest.mark.parametrize("code", [500, 502, 503])
def test_fault_http_error_pages(records, code):
    with StandinServer(records, rate_limit=NO_LIMIT, faults=f"efetch:2={code}") as srv:
        assert fetch_ids(srv, records[0].pmid)[0] == 200
        status, headers, body = fetch_ids(srv, records[0].pmid)
        assert status == code and headers["Content-Type"].startswith("text/html")
        assert f"NCBI/eutils202 - WWW Error {code} Diagnostic".encode() in body
        assert fetch_ids(srv, records[0].pmid)[0] == 200
        assert [r.status for r in srv.requests] == [200, code, 200]


def test_fault_429_and_ratelimit200(records):
    with StandinServer(
        records, rate_limit=NO_LIMIT, retry_after=1.5, faults="esearch:1=429,esearch:2=ratelimit200"
    ) as srv:
        status, headers, body = call(srv, "esearch", db="pubmed", term="k")
        assert status == 429 and headers["Retry-After"] == "1.5"
        assert json.loads(body)["error"] == "API rate limit exceeded"
        status, _, body = call(srv, "esearch", db="pubmed", term="k")
        assert status == 200 and json.loads(body)["error"] == "API rate limit exceeded"


def test_fault_truncate_cuts_the_body(records):
    ids = ",".join(r.pmid for r in records[:20])
    with StandinServer(records, rate_limit=NO_LIMIT, faults="efetch:2=truncate") as srv:
        full = fetch_ids(srv, ids)[2]
        status, headers, cut = fetch_ids(srv, ids)
        assert status == 200 and int(headers["Content-Length"]) == len(cut)
        assert full.startswith(cut) and 0.5 * len(full) < len(cut) < 0.7 * len(full)
        with pytest.raises(CorruptedXMLError):
            entrez(cut)


def test_fault_slow_delays_then_answers(records):
    with StandinServer(records, rate_limit=NO_LIMIT, faults="efetch:1=slow:0.4") as srv:
        t0 = time.monotonic()
        status, _, body = fetch_ids(srv, records[0].pmid)
        assert time.monotonic() - t0 >= 0.4
        assert status == 200 and entrez(body)["PubmedArticle"]


def test_fault_error200_and_history_lost(records):
    with StandinServer(
        records, rate_limit=NO_LIMIT, faults="efetch:1=error200,efetch:2=history_lost"
    ) as srv:
        status, _, body = fetch_ids(srv, records[0].pmid)
        assert status == 200 and "temporarily unavailable" in error_text(body)
        search = entrez(call(srv, "esearch", db="pubmed", term="k", usehistory="y")[2])
        hist = {"WebEnv": search["WebEnv"], "query_key": "1"}
        status, _, body = call(srv, "efetch", db="pubmed", retmode="xml", **hist)
        assert status == 200 and error_text(body) == "Unable to obtain query #1"
        # the environment is really gone: only a new esearch helps
        body = call(srv, "efetch", db="pubmed", retmode="xml", **hist)[2]
        assert error_text(body) == "Unable to obtain query #1"


def test_fault_reset_closes_without_answer(records):
    with StandinServer(records, rate_limit=NO_LIMIT, faults="esearch:1=reset") as srv:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(srv.url + "esearch.fcgi?db=pubmed&term=k", timeout=5).read()
        assert call(srv, "esearch", db="pubmed", term="k")[0] == 200
        assert [r.status for r in srv.requests] == [None, 200]


# ---- records -----------------------------------------------------------------------------------


def test_synthetic_records_are_deterministic_and_spread():
    a = synthetic_records(500, seed=9)
    assert [r.fields for r in a] == [r.fields for r in synthetic_records(500, seed=9)]
    assert len({r.pmid for r in a}) == 500 and a[0].pmid == "90000001"
    assert all(date(1990, 1, 1) <= r.entrez_date <= date(2026, 10, 31) for r in a)
    assert all(r.modified_date >= r.entrez_date for r in a)
    assert len({r.entrez_date.year for r in a}) > 30
    assert all(r.fields["title"].startswith("Synthetic record") for r in a)


def test_demo_records_render_and_parse():
    today = date(2026, 11, 26)
    recs = demo_records(today)
    assert len(recs) >= 60
    assert all(r.fields["title"].startswith("[Demo] ") for r in recs)
    assert all("fictional demo data" in r.fields["abstract"].lower() for r in recs)
    assert len({r.pmid for r in recs}) == len(recs)
    assert all(int(r.pmid) >= 99_900_001 for r in recs)
    assert sum(bool(r.fields.get("retracted")) for r in recs) == 1
    assert any(r.entrez_date >= today - timedelta(days=30) for r in recs)
    assert min(r.pub_date.year for r in recs) <= 2007
    assert any(not r.fields["mesh_terms"] for r in recs)
    assert sum(bool(r.fields["mesh_terms"]) for r in recs) > len(recs) // 2
    text = " ".join(f"{r.fields['title']} {r.fields['abstract']}" for r in recs)
    for word in (
        "intravenous",
        "intranasal",
        "oral",
        "intramuscular",
        "placebo",
        "midazolam",
        "electroconvulsive",
        "psychotherapy",
        "esketamine",
        "arketamine",
        "PTSD",
        "bipolar",
        "postpartum",
        "suicidal",
        "obsessive-compulsive",
        "anaesthesia",
        "analgesia",
        "sedation",
        "mice",
        "protocol",
        "A total of ",
        "did not",
    ):
        assert word in text, word
    kinds = {t for r in recs for t in r.fields["publication_types"]}
    assert {"Randomized Controlled Trial", "Systematic Review", "Case Reports", "Review"} <= kinds
    parsed = entrez(efetch_document([r.xml() for r in recs]))
    assert [str(a["MedlineCitation"]["PMID"]) for a in parsed["PubmedArticle"]] == [
        r.pmid for r in recs
    ]
    assert recs == demo_records(today)


def test_serve_forever_prints_its_url(tmp_path):
    code = (
        "from crawler.standin.server import serve_forever; serve_forever('127.0.0.1', 0, 30, None)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[-1].strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/entrez/eutils/")
        with urllib.request.urlopen(url + "einfo.fcgi?db=pubmed", timeout=10) as resp:
            assert entrez(resp.read())["DbInfo"][0]["Count"] == "30"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
