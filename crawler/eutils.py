"""Pure helpers for E-utilities: parameters, answers, errors. No network here.

Kept free of Scrapy so that each rule about NCBI's service is a small function
tested by asserting on its output.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode, urljoin

from lxml import etree

from pipeline.errors import CrawlError
from pipeline.parse import MAX_PMID

NCBI_EUTILS = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL = "kea"
ESEARCH_MAX = 9999  # PubMed's esearch never pages past the first 9,999 hits
DEFAULT_BATCH = 500

# An efetch/esearch answer naming one of these lost its history set: search again.
HISTORY_ERRORS = ("unable to obtain query", "cannot retrieve history data", "invalid webenv")
RATE_LIMIT_MARK = b"API rate limit exceeded"

_DATE_RE = re.compile(r"^(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?$")


def endpoint(base_url: str, name: str) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return urljoin(base, f"{name}.fcgi")


def common_params(*, email: str | None, api_key: str | None, tool: str = TOOL) -> dict[str, str]:
    """tool/email (and api_key) on every request, as NCBI asks."""
    params = {"tool": tool}
    if email:
        params["email"] = email
    if api_key:
        params["api_key"] = api_key
    return params


def esearch_params(
    term: str,
    *,
    mindate: str | None = None,
    maxdate: str | None = None,
    datetype: str = "edat",
    retmax: int = ESEARCH_MAX,
) -> dict[str, str]:
    params = {
        "db": "pubmed",
        "term": term,
        "usehistory": "y",
        "retmax": str(min(retmax, ESEARCH_MAX)),
        "retstart": "0",
        "sort": "pub_date",
    }
    if mindate or maxdate:
        params.update(
            datetype=datetype, mindate=mindate or "1800/01/01", maxdate=maxdate or "3000/12/31"
        )
    return params


def efetch_history_params(
    webenv: str, query_key: str, retstart: int, retmax: int
) -> dict[str, str]:
    return {
        "db": "pubmed",
        "WebEnv": webenv,
        "query_key": query_key,
        "retstart": str(retstart),
        "retmax": str(retmax),
        "retmode": "xml",
    }


def use_post(params: dict[str, str]) -> bool:
    """Biopython's rule: POST for 200+ ids or parameters over 1,000 characters encoded."""
    ids = params.get("id", "")
    return (ids.count(",") + 1 >= 200 if ids else False) or len(urlencode(params)) > 1000


def efetch_ids_params(pmids: list[str]) -> dict[str, str]:
    """An id list goes by POST past 200 ids (NCBI's advice; Scrapy drops URLs > 2083 chars)."""
    return {"db": "pubmed", "id": ",".join(pmids), "retmode": "xml"}


# -- dates -----------------------------------------------------------------
def parse_ncbi_date(text: str, *, end: bool = False, name: str = "date") -> date:
    """YYYY, YYYY/MM or YYYY/MM/DD (or with '-') as the first day it covers, or the last with end.

    The one reader of dates in the crawler: user input (--mindate), NCBI's own form and the
    ISO dates the store keeps all go through it, so they cannot disagree on a partial date.
    """
    m = _DATE_RE.match(text.strip())
    if not m:
        raise CrawlError(f"{name} {text!r} is not a date: use YYYY, YYYY/MM or YYYY/MM/DD")
    y, mo, d = int(m.group(1)), m.group(2), m.group(3)
    try:
        month = int(mo) if mo else (12 if end else 1)
        last = calendar.monthrange(y, month)[1] if 1 <= month <= 12 else 0
        day = int(d) if d else (last if end else 1)
        found = date(y, month, day)
    except ValueError as err:
        raise CrawlError(f"{name} {text!r} is an impossible date ({err})") from err
    if y < 1700:
        raise CrawlError(f"{name} {text!r} is before any PubMed record")
    return found


def parse_user_date(text: str, *, name: str = "date") -> str:
    """Validate a user's date and return it in NCBI's slash form, as precise as it was given."""
    parse_ncbi_date(text, name=name)
    y, mo, d = _DATE_RE.match(text.strip()).groups()  # type: ignore[union-attr]
    return "/".join(p for p in (y, mo and f"{int(mo):02d}", d and f"{int(d):02d}") if p)


def ncbi_date(d: date) -> str:
    return d.strftime("%Y/%m/%d")


def window_from_user(mindate: str | None, maxdate: str | None) -> tuple[date | None, date | None]:
    """The inclusive day range of --mindate/--maxdate: '2020' runs from Jan 1 to Dec 31."""
    lo = parse_ncbi_date(mindate, name="--mindate") if mindate else None
    hi = parse_ncbi_date(maxdate, end=True, name="--maxdate") if maxdate else None
    return lo, hi


def split_window(lo: date, hi: date) -> tuple[tuple[date, date], tuple[date, date]] | None:
    """Halve an inclusive day range; None when it is a single day (cannot split further)."""
    if lo >= hi:
        return None
    mid = date.fromordinal((lo.toordinal() + hi.toordinal()) // 2)
    return (lo, mid), (date.fromordinal(mid.toordinal() + 1), hi)


# -- queries ----------------------------------------------------------------
def check_query(term: str) -> str:
    """Catch queries NCBI would reject or silently misread, before spending a request."""
    t = (term or "").strip()
    if not t:
        raise CrawlError("the query is empty")
    if t.count('"') % 2:
        raise CrawlError(f"malformed query: unbalanced double quote in {t[:80]!r}")
    depth = 0
    for ch in t:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            raise CrawlError(f"malformed query: ')' without '(' in {t[:80]!r}")
    if depth:
        raise CrawlError(f"malformed query: {depth} unclosed '(' in {t[:80]!r}")
    if re.search(r"(^|\s)(AND|OR|NOT)\s*$", t) or re.match(r"^\s*(AND|OR)\b", t):
        raise CrawlError(f"malformed query: dangling boolean operator in {t[:80]!r}")
    return " ".join(t.split())


# -- answers ----------------------------------------------------------------
@dataclass
class SearchResult:
    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    errors: dict[str, list[str]] = field(default_factory=dict)


class EutilsAnswerError(Exception):
    """An <ERROR> inside an answer, or an answer that is not the one asked for."""


def is_history_error(message: str) -> bool:
    """The history set (WebEnv/query_key) is gone: a new search fixes it, a retry does not."""
    lowered = message.lower()
    return any(h in lowered for h in HISTORY_ERRORS)


def error_text(body: bytes) -> str | None:
    """The text of a top-level <ERROR> (XML) or "ERROR"/"error" (JSON) in an answer, if any."""
    head = body.lstrip()[:1]
    if head == b"{":
        try:
            obj = json.loads(body.decode("utf-8", "replace"), strict=False)
        except ValueError:
            m = re.search(rb'"(?:ERROR|error)"\s*:\s*"([^"]*)', body)
            return m.group(1).decode("utf-8", "replace") if m else None
        if isinstance(obj, dict):
            if "error" in obj:
                return str(obj["error"])
            inner = obj.get("esearchresult") or {}
            if isinstance(inner, dict) and inner.get("ERROR"):
                return str(inner["ERROR"])
        return None
    m = re.search(rb"<ERROR>(.*?)</ERROR>", body[:4096], re.S)
    if m and m.group(1).strip():
        return m.group(1).decode("utf-8", "replace").strip()
    return None


def is_rate_limited(status: int, body: bytes) -> bool:
    return status == 429 or (body.lstrip()[:1] == b"{" and RATE_LIMIT_MARK in body[:512])


def looks_complete(body: bytes, root: bytes) -> bool:
    """A cut transfer ends before the closing root tag; cheap check before parsing."""
    tail = body.rstrip()[-64:]
    return tail.endswith(b"</" + root + b">") or tail.endswith(b"<" + root + b"/>")


def parse_esearch(body: bytes) -> SearchResult:
    """Parse an esearch XML answer; an <ERROR> becomes EutilsAnswerError, not an empty result."""
    msg = error_text(body)
    if msg:
        raise EutilsAnswerError(msg)
    try:
        root = etree.fromstring(
            body,
            etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
        )
    except etree.XMLSyntaxError as err:
        raise EutilsAnswerError(f"esearch answer is not well-formed XML ({err})") from err
    if root.tag != "eSearchResult":
        raise EutilsAnswerError(f"esearch answered <{root.tag}>, not <eSearchResult>")
    count_text = (root.findtext("Count") or "").strip()
    if not count_text:
        raise EutilsAnswerError("esearch answer has no <Count>")
    if not (count_text.isascii() and count_text.isdigit()) or len(count_text) > 12:
        raise EutilsAnswerError(f"esearch answer's <Count> {count_text[:40]!r} is not a number")
    ids = [(e.text or "").strip() for e in root.iterfind("IdList/Id")]
    for pmid in ids:
        if not is_pmid(pmid):
            raise EutilsAnswerError(
                f"esearch listed {pmid[:40]!r}, not a PMID (a whole number from 1 to {MAX_PMID})"
            )

    def _lists(tag: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        node = root.find(tag)
        if node is not None:
            for child in node:
                if child.text and child.text.strip():
                    out.setdefault(child.tag, []).append(child.text.strip())
        return out

    return SearchResult(
        count=int(count_text),
        ids=ids,
        webenv=root.findtext("WebEnv"),
        query_key=root.findtext("QueryKey"),
        errors=_lists("ErrorList"),
    )


def is_pmid(text: str) -> bool:
    """ASCII digits within PubMed's range: what the parser accepts, so targets and records agree."""
    return text.isascii() and text.isdigit() and len(text) <= 10 and 1 <= int(text) <= MAX_PMID


def retry_after_seconds(
    header: bytes | str | None, default: float = 2.0, cap: float = 60.0
) -> float:
    if header is None:
        return default
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    try:
        return max(0.0, min(cap, float(header.strip())))
    except ValueError:
        return default


def redact(text: str, secret: str | None) -> str:
    """Never let the API key reach a log, the database or an export."""
    if secret and secret in text:
        text = text.replace(secret, "***")
    return text


_KEY_IN_URL = re.compile(r"([?&]api_key=)[^&#]*", re.I)
_PASSWORD_IN_URL = re.compile(r"(//[^/@:]*:)[^/@]*@")


def redact_url(url: str) -> str:
    """A URL as it may be shown or stored: any api_key value (or password) masked, whatever
    the key is, so a key written into --eutils-url is not kept either."""
    return _PASSWORD_IN_URL.sub(r"\1***@", _KEY_IN_URL.sub(r"\1***", url))


def plan_history_pages(
    ids: list[str], pending: set[str], batch: int, *, min_density: float = 0.8
) -> tuple[list[tuple[int, int]], list[str]]:
    """Cover the pending ids of one search with (retstart, retmax) pages.

    Greedy from the first pending position (optimal for fixed-length pages).
    A page that would mostly refetch stored records is dropped and its pending
    ids are returned to be fetched by id instead.
    """
    pages: list[tuple[int, int]] = []
    by_id: list[str] = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] not in pending:
            i += 1
            continue
        end = min(i + batch, n)
        wanted = [p for p in ids[i:end] if p in pending]
        if len(wanted) >= min_density * (end - i):
            pages.append((i, end - i))
        else:
            by_id.extend(wanted)
        i = end
    return pages, by_id


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
