"""An offline HTTP stand-in for NCBI E-utilities (esearch, efetch, einfo, epost) for PubMed.

NCBI is unreachable from our machines, so tests, benchmarks and the offline demo crawl this server.
It copies the real service's answer shapes (see docs/eutils_facts.md in ../shared): XML with the
real DOCTYPEs, ERROR bodies inside 200 answers, the 9,999-record esearch window, the history
server (WebEnv/query_key), the 3/10 requests-per-second limit with its 429 JSON body, and
injectable faults (faults.py). Choices where reality is unknown are marked "stand-in choice".

Term matching is deliberately simple: every record matches any term, except
- ``nomatchxyz`` anywhere in the term -> Count 0 with PhraseNotFound (like a real miss);
- unbalanced parentheses or double quotes -> ``<ERROR>Invalid query syntax ...`` (invented text);
- ``123[pmid]`` / ``123[uid]`` -> only those PMIDs;
- ``2020/01/01:2020/12/31[dp]`` (also [pdat] [edat] [crdt] [mdat] [lr]) -> that date window.

Stand-in choices where NCBI's behaviour is unknown or disputed:
- esearch ``retstart`` > 9998 -> status 200 with the observed JSON-ish body (raw newline inside
  the string), whatever ``retmode`` was asked for; ``rettype=count`` still answers.
- efetch from history: unknown/expired WebEnv or query_key -> 200 "Unable to obtain query #K";
  retstart past the end -> 400 "Cannot retrieve history data: OUT OF RANGE ..." (as observed);
  ``retmax`` defaults to 20, at most 10,000; paging past 9,999 in history is allowed.
- mindate without maxdate (or the reverse), a bad date or datetype -> ERROR in a 200 body;
  ``datetype`` defaults to pdat; ``reldate=n`` means [today - n days, today].
- esearch ``usehistory=y`` with an unknown WebEnv starts a fresh environment.
- History entries expire ``history_ttl`` seconds after they were stored (not after last use).
- ``WebEnv`` is also read as ``webenv`` (Biopython's tutorial sends it lower-case and NCBI
  answers it).
- efetch without ``retmode=xml``: ``retmode=text`` gives uilist/MEDLINE-like text; anything else
  an HTML page with ASN.1-like text (what NCBI once answered); esearch ignores retmode (XML only).
- Fault numbering (faults.py) counts requests that passed the api-key and rate-limit checks.
- Bodies over 1 KB are gzip-compressed when the client accepts gzip (NCBI serves gzip too);
  truncated and HTML fault bodies are sent uncompressed.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import socket
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from lxml import etree
from lxml.builder import E

from crawler.standin.faults import ENDPOINTS, Fault, FaultPlan
from crawler.standin.pubmed_xml import efetch_document
from crawler.standin.records import StandinRecord

BASE_PATH = "/entrez/eutils/"
XML_TYPE = "text/xml; charset=UTF-8"
JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
TEXT_TYPE = "text/plain; charset=UTF-8"
ESEARCH_CAP = 9999  # PubMed esearch returns ids only from the first 9,999 matches
EFETCH_MAX = 10_000
XML_DECL = '<?xml version="1.0" encoding="UTF-8" ?>\n'
DOCTYPES = {
    "eSearchResult": '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">',
    "eFetchResult": '<!DOCTYPE eFetchResult PUBLIC "-//NLM//DTD efetch 20131226//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd">',
    "eInfoResult": '<!DOCTYPE eInfoResult PUBLIC "-//NLM//DTD einfo 20190110//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20190110/einfo.dtd">',
    "ePostResult": '<!DOCTYPE ePostResult PUBLIC "-//NLM//DTD epost 20090526//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20090526/epost.dtd">',
}
ROOTS = {
    "esearch": "eSearchResult",
    "efetch": "eFetchResult",
    "einfo": "eInfoResult",
    "epost": "ePostResult",
}
DATE_FIELDS = {"edat": "entrez_date", "mdat": "modified_date", "pdat": "pub_date"}
DATE_LABELS = {"edat": "Date - Entry", "mdat": "Date - Modification", "pdat": "Date - Publication"}
TERM_DATE_TAGS = {
    "dp": "pdat",
    "pdat": "pdat",
    "date - publication": "pdat",
    "edat": "edat",
    "crdt": "edat",
    "date - entry": "edat",
    "date - create": "edat",
    "mdat": "mdat",
    "lr": "mdat",
    "date - modification": "mdat",
}
_DATE_RE = r"\d{4}(?:/\d{1,2}(?:/\d{1,2})?)?"
TERM_DATE = re.compile(rf'"?({_DATE_RE})"?\s*:\s*"?({_DATE_RE})"?\s*\[([A-Za-z -]+)\]')
TERM_PMID = re.compile(r"\b(\d+)\s*\[(?:pmid|uid)\]", re.IGNORECASE)
NO_MATCH = re.compile(r"\bnomatchxyz\b", re.IGNORECASE)
# The real message goes on after "EDirect"; only this part is recorded in eutils_facts.md.
RETSTART_ERROR = (
    '{"header":{"type":"esearch","version":"0.3"},"esearchresult":{"ERROR":"Search Backend '
    "failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, ESearch can only "
    "retrieve the first 9,999 records matching the query. To obtain more than 9,999 PubMed "
    'records, consider using EDirect."}}'
)
HTML_ERROR = (
    "<html><head><title>NCBI/eutils202 - WWW Error {code} Diagnostic</title></head>\n"
    "<body><h1>Error {code}</h1><p>Stand-in server error: the eutils backend failed to process "
    "the request (injected fault). Please try again later.</p></body></html>\n"
)
TRANSIENT_ERRORS = {  # stand-in choice: invented texts that look like a passing backend failure
    "esearch": "Search Backend failed: temporary failure, please retry later",
    "efetch": "Backend temporarily unavailable: cannot retrieve records, please retry later",
}


class StandinError(ValueError):
    """A request the stand-in answers with an ERROR body; the message is the ERROR text."""


@dataclass
class RequestLog:
    """One request as received: monotonic time, endpoint ('efetch'), method, merged params."""

    time: float
    endpoint: str
    method: str
    params: dict[str, str]
    status: int | None  # None: connection closed without an answer (reset fault)
    n_records_returned: int


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = XML_TYPE
    n_records: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    compressible: bool = True


@dataclass
class _Query:
    pmids: list[str]
    created: float


def _fmt_num(x: float) -> str:
    """'3' for 3.0, '2.5' for 2.5 (NCBI prints integers in headers and JSON)."""
    return str(int(x)) if float(x).is_integer() else str(x)


def xml_doc(root: etree._Element) -> bytes:
    """A complete XML answer with the real DOCTYPE for its root (lxml escapes every text)."""
    body = etree.tostring(root, encoding="unicode")
    return (XML_DECL + DOCTYPES[root.tag] + "\n" + body + "\n").encode()


def error_xml(root: str, *messages: str) -> bytes:
    """An ERROR body like the real ones (Bio.Entrez turns it into RuntimeError)."""
    return xml_doc(E(root, *(E.ERROR(m) for m in messages)))


def _lines(indent: str, *children: etree._Element) -> list[etree._Element | str]:
    """Children each on its own line after indent, as NCBI lays out einfo and epost."""
    out: list[etree._Element | str] = []
    for child in children:
        out += [indent, child]
    return out


def rate_limit_json(client: str, count: int, limit: float) -> bytes:
    """The observed 429 body; 'api-key' holds the client IP when no key was sent."""
    return json.dumps(
        {
            "error": "API rate limit exceeded",
            "api-key": client,
            "count": str(count),
            "limit": _fmt_num(limit),
        },
        separators=(",", ":"),
    ).encode()


def parse_eutils_date(text: str, *, upper: bool) -> date:
    """YYYY, YYYY/MM or YYYY/MM/DD -> first (upper=False) or last (upper=True) day covered."""
    parts = text.strip().split("/")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        raise StandinError(f"Invalid date format: {text}")
    try:
        year = int(parts[0])
        if len(parts) == 1:
            return date(year, 12, 31) if upper else date(year, 1, 1)
        month = int(parts[1])
        if len(parts) == 2:
            if not upper:
                return date(year, month, 1)
            nxt = date(year + month // 12, month % 12 + 1, 1)
            return nxt - timedelta(days=1)
        return date(year, month, int(parts[2]))
    except ValueError as err:
        raise StandinError(f"Invalid date format: {text}") from err


def check_term_syntax(term: str) -> None:
    """Reject unbalanced parentheses or quotes (real NCBI's exact message is unknown)."""
    depth = 0
    for ch in term:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            break
    if depth != 0 or term.count('"') % 2:
        raise StandinError(f"Invalid query syntax: unbalanced parentheses or quotes in '{term}'")


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise StandinError(f"Invalid {name} value: {raw}") from err
    if value < 0:
        raise StandinError(f"Invalid {name} value: {raw}")
    return value


def _split_ids(raw: str) -> list[str]:
    """Comma/space separated UIDs, de-duplicated in order; non-numbers are dropped."""
    seen: dict[str, None] = {}
    for tok in re.split(r"[,\s]+", raw.strip()):
        if tok.isdigit():
            seen.setdefault(str(int(tok)), None)
    return list(seen)


class StandinServer:
    """A threaded E-utilities look-alike; use as a context manager, crawl ``url``."""

    def __init__(
        self,
        records: list[StandinRecord] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | str | None = None,
        rate_limit: float | None = None,
        api_keys: set[str] | None = None,
        retry_after: float = 1.0,
        history_ttl: float | None = None,
        compress: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
        self.rate_limit = rate_limit
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.retry_after = retry_after
        self.history_ttl = history_ttl
        self.compress = compress
        self.requests: list[RequestLog] = []
        self.url = ""
        self._lock = threading.RLock()
        self._records: dict[str, StandinRecord] = {}
        self._deleted: set[str] = set()
        self._order: list[StandinRecord] | None = None
        self._history: dict[str, dict[int, _Query]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._passed: dict[str, int] = {}
        self._passed_any = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_records(records or [])

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> StandinServer:
        """Bind and serve in a daemon thread; ``url`` is valid afterwards."""
        if self._httpd is not None:
            return self
        handler = type("BoundHandler", (_Handler,), {"standin": self})
        httpd = _HTTPServer((self.host, self.port), handler)
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.port = port
        self.url = f"http://{host}:{port}{BASE_PATH}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- records -----------------------------------------------------------------------------
    def set_records(self, records: Iterable[StandinRecord]) -> None:
        """Replace every record (and forget deletions)."""
        with self._lock:
            self._records = {r.pmid: r for r in records}
            self._deleted = set()
            self._order = None

    def upsert_records(self, records: Iterable[StandinRecord]) -> None:
        """Add new records or replace revised ones with the same PMID."""
        with self._lock:
            for r in records:
                self._records[r.pmid] = r
                self._deleted.discard(r.pmid)
            self._order = None

    def delete_records(self, pmids: Iterable[str]) -> None:
        """Remove records; fetching them by id then yields <DeleteCitation>."""
        with self._lock:
            for pmid in pmids:
                self._records.pop(str(pmid), None)
                self._deleted.add(str(pmid))
            self._order = None

    def expire_history(self) -> None:
        """Forget every WebEnv, as when NCBI's history server drops old sessions."""
        with self._lock:
            self._history.clear()

    # ---- inspection --------------------------------------------------------------------------
    def max_requests_in_window(self, window: float = 1.0) -> int:
        """Most requests received within any `window` seconds (all endpoints, all clients)."""
        with self._lock:
            times = sorted(r.time for r in self.requests)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def count(self, endpoint: str) -> int:
        """Requests received at an endpoint ('efetch' or 'efetch.fcgi'), whatever the answer."""
        name = endpoint.removesuffix(".fcgi")
        with self._lock:
            return sum(1 for r in self.requests if r.endpoint == name)

    def _log(self, entry: RequestLog) -> None:
        with self._lock:
            self.requests.append(entry)

    # ---- request handling ----------------------------------------------------------------------
    def _sorted_records(self) -> list[StandinRecord]:
        """Newest entrez date first, ties by PMID descending (PubMed's date sort)."""
        with self._lock:
            if self._order is None:
                self._order = sorted(
                    self._records.values(), key=lambda r: (r.entrez_date, int(r.pmid)), reverse=True
                )
            return self._order

    def _limit_for(self, valid_key: bool) -> float:
        if self.rate_limit is not None:
            return self.rate_limit
        return 10 if valid_key else 3

    def dispatch(
        self, endpoint: str, params: dict[str, str], client_ip: str, received: float
    ) -> _Answer:
        """Key check -> rate limit -> injected fault -> the endpoint's normal answer."""
        api_key = params.get("api_key") or None
        if api_key is not None and self.api_keys is not None and api_key not in self.api_keys:
            body = json.dumps(
                {"error": "API key invalid", "api-key": api_key, "type": "invalid"},
                separators=(",", ":"),
            ).encode()
            return _Answer(400, body, JSON_TYPE)
        client = api_key or client_ip
        limit = self._limit_for(api_key is not None)
        with self._lock:
            win = self._windows.setdefault(client, deque())
            while win and win[0] <= received - 1.0:
                win.popleft()
            win.append(received)
            seen = len(win)
        rate_headers = {}
        if limit != float("inf"):
            rate_headers = {
                "X-RateLimit-Limit": _fmt_num(limit),
                "X-RateLimit-Remaining": _fmt_num(max(0, int(limit) - seen)),
            }
        if seen > limit:
            answer = self._too_many(client, seen, limit)
        else:
            # injected 429s quote NCBI's limit even when the real limiter is switched off
            shown = limit if limit != float("inf") else (10 if api_key else 3)
            answer = self._answer_with_faults(endpoint, params, client, shown)
        answer.headers = {**rate_headers, **answer.headers}
        return answer

    def _too_many(self, client: str, seen: int, limit: float, status: int = 429) -> _Answer:
        headers = {"Retry-After": _fmt_num(self.retry_after)} if status == 429 else {}
        return _Answer(status, rate_limit_json(client, seen, limit), JSON_TYPE, headers=headers)

    def _answer_with_faults(
        self, endpoint: str, params: dict[str, str], client: str, limit: float
    ) -> _Answer:
        fault: Fault | None = None
        if endpoint in ENDPOINTS:
            with self._lock:
                self._passed[endpoint] = n = self._passed.get(endpoint, 0) + 1
                self._passed_any += 1
                n_any = self._passed_any
            if self.faults:
                fault = self.faults.fault_for(endpoint, n, n_any)
        if fault is None:
            return self._normal(endpoint, params)
        return self._faulted(fault, endpoint, params, client, limit)

    def _faulted(
        self, fault: Fault, endpoint: str, params: dict[str, str], client: str, limit: float
    ) -> _Answer:
        kind = fault.kind
        root = ROOTS[endpoint]
        if fault.http_status == 429:
            return self._too_many(client, int(limit) + 1, limit)
        if fault.http_status is not None:
            page = HTML_ERROR.format(code=fault.http_status).encode()
            return _Answer(fault.http_status, page, HTML_TYPE, compressible=False)
        if kind == "ratelimit200":
            return self._too_many(client, int(limit) + 1, limit, status=200)
        if kind == "reset":
            return _Answer(0, b"", reset=True)
        if kind == "error200":
            text = TRANSIENT_ERRORS.get(endpoint, "Backend temporarily unavailable")
            return _Answer(200, error_xml(root, text))
        if kind == "history_lost":
            with self._lock:
                self._history.pop(params.get("WebEnv", ""), None)
            key = params.get("query_key") or "1"
            return _Answer(200, error_xml(root, f"Unable to obtain query #{key}"))
        answer = self._normal(endpoint, params)
        if kind == "slow":
            answer.delay = fault.seconds
        elif kind == "truncate":
            answer.body = answer.body[: max(1, int(len(answer.body) * 0.6))]
            answer.compressible = False
        return answer

    def _normal(self, endpoint: str, params: dict[str, str]) -> _Answer:
        handlers = {
            "esearch": self._esearch,
            "efetch": self._efetch,
            "einfo": self._einfo,
            "epost": self._epost,
        }
        handler = handlers.get(endpoint)
        if handler is None:
            page = f"<html><body><h1>404 Not Found</h1><p>{escape(endpoint)}</p></body></html>"
            return _Answer(404, page.encode(), HTML_TYPE)
        try:
            return handler(params)
        except StandinError as err:
            return _Answer(200, error_xml(ROOTS[endpoint], str(err)))

    # ---- history -------------------------------------------------------------------------------
    def _store(self, webenv: str | None, pmids: list[str]) -> tuple[str, int]:
        """Append a UID list to an environment (a fresh one when webenv is absent/unknown)."""
        with self._lock:
            if not webenv or webenv not in self._history:
                webenv = "MCID_" + secrets.token_hex(12)
                self._history[webenv] = {}
            env = self._history[webenv]
            key = len(env) + 1
            env[key] = _Query(list(pmids), time.monotonic())
            return webenv, key

    def _recall(self, webenv: str | None, query_key: str | None) -> list[str]:
        """The stored UID list, or StandinError('Unable to obtain query #k')."""
        missing = StandinError(f"Unable to obtain query #{query_key or 1}")
        with self._lock:
            env = self._history.get(webenv or "")
            if env is None or query_key is None or not query_key.strip().isdigit():
                raise missing
            q = env.get(int(query_key))
            if q is None:
                raise missing
            if self.history_ttl is not None and time.monotonic() - q.created > self.history_ttl:
                del env[int(query_key)]
                raise missing
            return q.pmids

    # ---- endpoints -------------------------------------------------------------------------------
    def _esearch(self, p: dict[str, str]) -> _Answer:
        db = p.get("db") or "pubmed"
        if db != "pubmed":
            raise StandinError(f"Invalid db name specified: {db}")
        term = (p.get("term") or "").strip()
        query_key = (p.get("query_key") or "").strip() or None
        if not term and not query_key:
            raise StandinError("Empty term and query_key - nothing todo")
        check_term_syntax(term)
        retstart = _int_param(p, "retstart", 0)
        retmax = min(_int_param(p, "retmax", 20), ESEARCH_CAP)
        count_only = (p.get("rettype") or "").lower() == "count"
        if retstart > ESEARCH_CAP - 1 and not count_only:
            return _Answer(200, RETSTART_ERROR.encode(), JSON_TYPE)
        windows = self._date_windows(p, term)
        pool = self._sorted_records()
        if query_key:
            keep = set(self._recall(p.get("WebEnv"), query_key))
            pool = [r for r in pool if r.pmid in keep]
        wanted = {str(int(x)) for x in TERM_PMID.findall(term)}
        if wanted:
            pool = [r for r in pool if r.pmid in wanted]
        for dtype, lo, hi in windows:
            attr = DATE_FIELDS[dtype]
            pool = [r for r in pool if lo <= getattr(r, attr) <= hi]
        miss = NO_MATCH.search(term)
        ids = [] if miss else [r.pmid for r in pool]
        if count_only:
            return _Answer(200, xml_doc(E.eSearchResult(E.Count(str(len(ids))))))
        history: list[etree._Element] = []
        if (p.get("usehistory") or "").lower() == "y":
            webenv, key = self._store(p.get("WebEnv"), ids)
            history = [E.QueryKey(str(key)), E.WebEnv(webenv)]
        page = ids[retstart : min(retstart + retmax, ESEARCH_CAP)]
        id_list = E.IdList(*(["\n"] + [x for i in page for x in (E.Id(i), "\n")] if page else []))
        translation = term if term else f"#{query_key}"
        for dtype, lo, hi in windows:
            translation += f" AND {lo:%Y/%m/%d}:{hi:%Y/%m/%d}[{DATE_LABELS[dtype]}]"
        answer = E.eSearchResult(
            E.Count(str(len(ids))),
            E.RetMax(str(len(page))),
            E.RetStart(str(retstart)),
            *history,
            id_list,
            E.TranslationSet(),
            E.QueryTranslation(translation),
        )
        if miss:
            answer.append(E.ErrorList(E.PhraseNotFound(miss.group(0))))
            answer.append(E.WarningList(E.OutputMessage("No items found.")))
        return _Answer(200, xml_doc(answer), n_records=len(page))

    def _date_windows(self, p: dict[str, str], term: str) -> list[tuple[str, date, date]]:
        """(datetype, first, last) windows from mindate/maxdate, reldate and the term."""
        dtype = (p.get("datetype") or "pdat").lower()  # stand-in choice: pdat when unspecified
        if dtype not in DATE_FIELDS:
            raise StandinError(f"Invalid datetype: {dtype}")
        out = []
        mindate, maxdate = p.get("mindate"), p.get("maxdate")
        if bool(mindate) != bool(maxdate):
            raise StandinError("mindate and maxdate must be used together")
        if mindate and maxdate:
            out.append(
                (
                    dtype,
                    parse_eutils_date(mindate, upper=False),
                    parse_eutils_date(maxdate, upper=True),
                )
            )
        if p.get("reldate"):
            days = _int_param(p, "reldate", 0)
            today = date.today()
            out.append((dtype, today - timedelta(days=days), today))
        for lo, hi, tag in TERM_DATE.findall(term):
            tdtype = TERM_DATE_TAGS.get(tag.strip().lower())
            if tdtype is not None:
                out.append(
                    (tdtype, parse_eutils_date(lo, upper=False), parse_eutils_date(hi, upper=True))
                )
        return out

    def _efetch(self, p: dict[str, str]) -> _Answer:
        db = p.get("db") or "pubmed"
        if db != "pubmed":
            raise StandinError(f"Invalid db name specified: {db}")
        if p.get("id"):
            pmids = _split_ids(p["id"])
            if not pmids:
                raise StandinError("Empty id list - nothing todo")
        elif p.get("query_key") or p.get("WebEnv"):
            stored = self._recall(p.get("WebEnv"), p.get("query_key"))
            retstart = _int_param(p, "retstart", 0)
            retmax = min(_int_param(p, "retmax", 20), EFETCH_MAX)  # stand-in choice: default 20
            if retstart >= len(stored):
                text = (
                    f"Cannot retrieve history data: OUT OF RANGE. Parameter retstart="
                    f"{retstart} + 1 is greater than number of records available in "
                    f"history. History includes {len(stored)} IDs."
                )
                return _Answer(400, error_xml("eFetchResult", text))
            pmids = stored[retstart : retstart + retmax]
        else:
            raise StandinError("Empty id list - nothing todo")
        with self._lock:
            found = [self._records[i] for i in pmids if i in self._records]
            deleted = [i for i in pmids if i not in self._records and i in self._deleted]
        retmode = (p.get("retmode") or "").lower()
        if retmode == "xml":
            body = efetch_document([r.xml() for r in found], deleted=deleted)
            return _Answer(200, body, n_records=len(found))
        if retmode == "text":
            return _Answer(
                200,
                _text_records(found, (p.get("rettype") or "").lower()).encode(),
                TEXT_TYPE,
                n_records=len(found),
            )
        # No (or an unsupported) retmode: an old-style non-XML page, as NCBI once answered.
        return _Answer(200, _asn1_page(found).encode(), HTML_TYPE, n_records=len(found))

    def _einfo(self, p: dict[str, str]) -> _Answer:
        db = p.get("db")
        if not db:
            listing = E.DbList(*_lines("\n\t", E.DbName("pubmed")), "\n")
            return _Answer(200, xml_doc(E.eInfoResult("\n", listing, "\n")))
        if db != "pubmed":
            raise StandinError(f"Invalid db name specified: {db}")
        with self._lock:
            n = len(self._records)
            last = max((r.modified_date for r in self._records.values()), default=date.today())
        info = E.DbInfo(
            *_lines(
                "\n\t\t",
                E.DbName("pubmed"),
                E.MenuName("PubMed"),
                E.Description("PubMed bibliographic record (Kea offline stand-in)"),
                E.DbBuild("Build-standin"),
                E.Count(str(n)),
                E.LastUpdate(f"{last:%Y/%m/%d} 00:00"),
                E.FieldList(),
                E.LinkList(),
            ),
            "\n\t",
        )
        return _Answer(200, xml_doc(E.eInfoResult(*_lines("\n\t", info), "\n")))

    def _epost(self, p: dict[str, str]) -> _Answer:
        db = p.get("db") or "pubmed"
        if db != "pubmed":
            raise StandinError(f"Invalid db name specified: {db}")
        pmids = _split_ids(p.get("id") or "")
        if not pmids:
            raise StandinError("Empty ID list; Nothing to store")
        webenv, key = self._store(p.get("WebEnv"), pmids)
        posted = E.ePostResult(*_lines("\n\t", E.QueryKey(str(key)), E.WebEnv(webenv)), "\n")
        return _Answer(200, xml_doc(posted))


def _text_records(records: list[StandinRecord], rettype: str) -> str:
    """retmode=text: uilist, or a MEDLINE-like listing (enough for a client to see it's text)."""
    if rettype == "uilist":
        return "".join(f"{r.pmid}\n" for r in records)
    blocks = []
    for r in records:
        f = r.fields
        lines = [
            f"PMID- {r.pmid}",
            "OWN - NLM",
            f"DP  - {r.pub_date:%Y %b %d}",
            f"TI  - {f.get('title') or ''}",
        ]
        if f.get("abstract"):
            lines.append("AB  - " + " ".join(str(f["abstract"]).split()))
        lines += [f"AU  - {a}" for a in f.get("authors") or []]
        lines += [f"PT  - {t}" for t in f.get("publication_types") or []]
        lines.append(f"JT  - {f.get('journal') or ''}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _asn1_page(records: list[StandinRecord]) -> str:
    entries = "".join(
        f"Pubmed-entry ::= {{\n  pmid {r.pmid},\n  medent {{\n    cit {{\n      title {{\n"
        f"        name {escape(json.dumps(r.fields.get('title') or ''))}\n      }}\n    }}\n  }}\n}}\n"
        for r in records
    )
    return (
        "<html><head><title>PmFetch response</title></head><body>\n<pre>\n"
        f"{entries}</pre>\n</body></html>\n"
    )


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server with a real-server-sized accept backlog (bursts must not wait on SYN
    retries, or a 4-request burst would not land inside one second)."""

    request_queue_size = 128
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block stop()


class _Handler(BaseHTTPRequestHandler):
    """Parses GET/POST, asks the StandinServer for an answer, writes it (or resets)."""

    protocol_version = "HTTP/1.1"
    server_version = "Finatra"
    sys_version = ""
    timeout = 30  # idle keep-alive connections are closed after this many seconds
    standin: StandinServer

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the StandinServer keeps its own request log."""

    def _params(self, method: str, query: str) -> dict[str, str]:
        pairs = parse_qsl(query, keep_blank_values=True)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            ctype = self.headers.get("Content-Type") or ""
            if "application/x-www-form-urlencoded" in ctype or not ctype:
                pairs += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
        params: dict[str, str] = {}
        for k, v in pairs:
            if k.lower() == "webenv":
                k = "WebEnv"
            params[k] = f"{params[k]},{v}" if k == "id" and params.get(k) else v
        return params

    def _handle(self, method: str) -> None:
        received = time.monotonic()
        parts = urlsplit(self.path)
        params = self._params(method, parts.query)
        name = parts.path.rsplit("/", 1)[-1].removesuffix(".fcgi")
        if not parts.path.startswith(BASE_PATH) or "/" in parts.path[len(BASE_PATH) :]:
            name = parts.path
        try:
            answer = self.standin.dispatch(name, params, self.client_address[0], received)
        except Exception:  # a bug in the stand-in must look like a server fault, not a hang
            traceback.print_exc()
            answer = _Answer(500, HTML_ERROR.format(code=500).encode(), HTML_TYPE)
        if answer.delay:
            time.sleep(answer.delay)
        self.standin._log(
            RequestLog(
                received,
                name,
                method,
                params,
                None if answer.reset else answer.status,
                answer.n_records,
            )
        )
        if answer.reset:
            self._reset()
            return
        self._write(answer)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer (a 'connection reset by peer')."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _write(self, answer: _Answer) -> None:
        body = answer.body
        headers = dict(answer.headers)
        accepts = self.headers.get("Accept-Encoding") or ""
        if self.standin.compress and answer.compressible and len(body) > 1024 and "gzip" in accepts:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Expose-Headers", "X-RateLimit-Limit,X-RateLimit-Remaining")
        self.send_header("NCBI-PHID", secrets.token_hex(12).upper())
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def serve_forever(host: str, port: int, n_records: int | None, faults: str | None) -> None:
    """`kea standin`: serve demo records (or N synthetic ones) until interrupted."""
    if n_records is None:
        from crawler.standin.demo import demo_records

        records = demo_records()
    else:
        from crawler.standin.records import synthetic_records

        records = synthetic_records(n_records)
    server = StandinServer(records, host=host, port=port, faults=faults)
    server.start()
    print(f"E-utilities stand-in serving {len(records)} records at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
