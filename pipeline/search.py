"""The search box's query language: PubMed-style syntax -> FTS5 MATCH + SQL, bound params only.

One language for the dashboard, ``kea export --search`` and the URL (``q=``)::

    ptsd[ti] AND "randomized controlled trial"[pt]
    (esketamine OR ketamine) NOT placebo        esketamine -placebo
    ketam* 2018:2024[dp]   murrough jw[au]   12345678   10.1001/jama.2020.1

Operators are ``AND``, ``OR``, ``NOT`` (upper case, as in PubMed), applied left to right
with equal precedence as PubMed does; parentheses group; two terms side by side are ANDed;
``-word`` is ``NOT word``. A term is a word or a "quoted phrase", optionally ending in ``*``
(prefix) and followed by a field tag (``FIELDS``). An untagged term searches title,
abstract and authors; an untagged number is also a PMID, an untagged DOI also that DOI, an
untagged registry id (NCT..., ISRCTN...) also that trial registration.

Parsing is pyparsing's; a query it cannot read raises ``SearchSyntaxError`` (a KeaError)
naming the problem and the 1-based character position, never a silent other search.
The translation never puts user text into SQL: each FTS5 expression is built from quoted
phrases (quotes doubled) and bound as one ``?``; PMIDs, DOIs and years are bound too.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyparsing as pp

from pipeline.errors import KeaError
from pipeline.records import pmid_or_none
from pipeline.trials import find_ids

MAX_QUERY = 2_000  # characters; a longer "query" is a paste accident
MAX_TERMS = 100


class SearchSyntaxError(KeaError, ValueError):
    """A search the query language cannot read; the message names the problem and where."""


# -- fields --------------------------------------------------------------------------------
# FTS5 columns of articles_fts (pipeline.schema): what each field tag searches.
DEFAULT_COLUMNS = ("title", "abstract", "authors_text")
FTS_FIELDS: dict[str, tuple[str, ...]] = {
    "ti": ("title",),
    "title": ("title",),
    "ab": ("abstract",),
    "tiab": ("title", "abstract"),
    "tw": ("title", "abstract"),
    "au": ("authors_text",),
    "author": ("authors_text",),
    "ta": ("journal",),
    "jour": ("journal",),
    "journal": ("journal",),
    "mh": ("mesh_text",),
    "mesh": ("mesh_text",),
    "pt": ("pubtypes_text",),
    "all": DEFAULT_COLUMNS,
}
SQL_FIELDS = ("pmid", "uid", "doi", "dp", "pdat", "si")
FIELDS = (*FTS_FIELDS, *SQL_FIELDS)

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_YEAR = re.compile(r"^(\d{4})(?::(\d{4}))?$")
_WORDCHAR = re.compile(r"\w", re.UNICODE)


# -- the parse tree ------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One word or phrase, with its field tag (None: untagged) and prefix star."""

    text: str
    field: str | None = None
    phrase: bool = False
    prefix: bool = False
    pos: int = 0  # 0-based offset in the query, for messages


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Bool:
    op: str  # AND | OR
    children: tuple[Node, ...]


Node = Term | Not | Bool


def _err(message: str, query: str, pos: int) -> SearchSyntaxError:
    shown = query if len(query) <= 80 else query[:77] + "..."
    return SearchSyntaxError(f"search {shown!r}: {message} at character {pos + 1}")


@lru_cache(maxsize=1)
def _grammar() -> pp.ParserElement:
    """operand (op? operand)*; an operand is (expr), a phrase or a word, with a tag."""
    expr = pp.Forward()
    tag = pp.Regex(r"\[\s*[^\[\]\s]*\s*\]")("tag")
    phrase = pp.Regex(r'"[^"]*"\*?')("phrase")
    word = ~pp.Regex(r"(AND|OR|NOT)(?![^\s()\"\[\]])") + pp.Regex(r'[^\s()"\[\]]+')("word")
    op = pp.Regex(r"(AND|OR|NOT)(?![^\s()\"\[\]])")("op")
    group = pp.Group(pp.Suppress("(") + expr + pp.Suppress(")"))("group")
    atom = pp.Group(pp.Located(group | phrase | word) + pp.Optional(tag))
    expr <<= pp.Optional(pp.Group(op)) + atom + pp.ZeroOrMore(pp.Optional(pp.Group(op)) + atom)
    expr.parse_with_tabs()  # positions are of the text as typed (no tab expansion)
    return expr


def _precheck(query: str) -> None:
    """Clearer messages than a parser's for the common slips (quotes, brackets, parentheses)."""
    quote = None
    depth = 0
    opened: list[int] = []
    bracket = None
    for i, ch in enumerate(query):
        if (ch < " " and ch not in "\t\n\r") or ch == "\x7f":
            raise _err(f"control character {ch!r} in the search", query, i)  # FTS5 stops at NUL
        if quote is not None:
            if ch == '"':
                quote = None
            continue
        if ch == '"':
            quote = i
        elif ch == "[":
            if bracket is not None:
                raise _err("a field tag cannot hold '['", query, i)
            bracket = i
        elif ch == "]":
            if bracket is None:
                raise _err("']' without its '['", query, i)
            bracket = None
        elif ch == "(":
            depth += 1
            opened.append(i)
        elif ch == ")":
            if depth == 0:
                raise _err("')' without its '('", query, i)
            depth -= 1
            opened.pop()
    if quote is not None:
        raise _err('unclosed quote (")', query, quote)
    if bracket is not None:
        raise _err("unclosed field tag ('[' without ']')", query, bracket)
    if opened:
        raise _err("unclosed parenthesis", query, opened[-1])


def parse(query: str) -> Node | None:
    """The query's tree, or None for a blank one. Raises SearchSyntaxError."""
    text = query or ""
    if len(text) > MAX_QUERY:
        raise SearchSyntaxError(f"search is {len(text)} characters long; the limit is {MAX_QUERY}")
    if not text.strip():
        return None
    _precheck(text)
    try:
        tokens = _grammar().parse_string(text, parse_all=True)
    except pp.ParseException as err:
        raise _err(_explain(text, err.loc), text, err.loc) from None
    except RecursionError:
        raise SearchSyntaxError(f"search {text[:40]!r}...: too deeply nested") from None
    counter = [0]
    node = _build(_atoms(list(tokens)), text, counter)
    if node is None:
        raise _err("nothing to search (no word with a letter or digit)", text, 0)
    return node


def _plain(item: Any) -> str | None:
    """The word of an untagged, unstarred, unnegated word atom, else None."""
    if "op" in item or item.get("tag") or not isinstance(item[1][0], str):
        return None
    word = item[1][0]
    return None if word.startswith(('"', "-")) or word.endswith("*") else word


def _atoms(items: list[Any]) -> list[Any]:
    """(op, None, None) | (start, body, tag) items; as PubMed does, a field tag applies to
    all the words before it up to an operator: ``murrough jw[au]`` is the author
    "murrough jw", ``treatment resistant[ti]`` the title phrase."""
    out: list[Any] = []
    run: list[tuple[int, str]] = []  # trailing plain words joined by implicit AND
    for item in items:
        if "op" in item:
            out.append((item["op"], None, None))
            run = []
            continue
        start, body, tag = int(item[0]), item[1][0], item.get("tag")
        word = _plain(item) if not tag else None
        mergeable = tag and tag.strip("[] \t").lower() in FTS_FIELDS
        if mergeable and run and isinstance(body, str) and not body.startswith(('"', "-")):
            del out[-len(run) :]
            start = run[0][0]
            body = " ".join([w for _, w in run] + [body])
            body = '"' + body.rstrip("*") + '"' + ("*" if body.endswith("*") else "")
            run = []
        out.append((start, body, tag))
        run = run + [(start, word)] if word is not None else []
    return out


def _explain(text: str, loc: int) -> str:
    rest = text[loc:].lstrip()
    if rest[:1] == "[":
        return "a field tag must follow a term"
    if rest[:1] == ")":
        return "empty parentheses or an operator with nothing after it"
    m = re.match(r"(AND|OR|NOT)\b", rest)
    if m:
        return f"{m.group(1)} has no term after it"
    if not rest:
        return "the search ends too soon"
    return f"unexpected {rest[:10]!r}"


def _build(items: list[Any], text: str, counter: list[int]) -> Node | None:
    """Fold ``[op?] atom ([op] atom)*`` left to right (PubMed's order), implicit AND.

    A term with no letter or digit (``-``, ``&``, ``(-)`` in a pasted title) has no token
    to search, as the index's tokenizer would drop it too: it is left out, and None is
    returned when nothing is left."""
    node: Node | None = None
    pending: str | None = None
    for item in items:
        if item[1] is None:
            if pending is not None:
                raise _err(f"{pending} followed by {item[0]}", text, 0)
            pending = item[0]
            if node is None and pending != "NOT":
                raise _err(f"{pending} has no term before it", text, 0)
            continue
        operand = _atom(item, text, counter)
        if operand is None:
            continue
        if node is None:
            node = Not(operand) if pending == "NOT" else operand
        elif pending == "OR":
            node = (
                Bool("OR", (*node.children, operand))
                if _is(node, "OR")
                else Bool("OR", (node, operand))
            )
        else:
            right = Not(operand) if pending == "NOT" else operand
            node = (
                Bool("AND", (*node.children, right))
                if _is(node, "AND")
                else Bool("AND", (node, right))
            )
        pending = None
    if pending is not None:
        raise _err(f"{pending} has no term after it", text, len(text.rstrip()) - len(pending))
    return node


def _is(node: Node, op: str) -> bool:
    return isinstance(node, Bool) and node.op == op


def _atom(item: Any, text: str, counter: list[int]) -> Node | None:
    start, body, tag = item
    field = _field(tag, text, start) if tag else None
    if isinstance(body, pp.ParseResults):  # a parenthesised group
        if field is not None:
            raise _err("a field tag after parentheses is not supported; tag each term", text, start)
        return _build(_atoms(list(body)), text, counter)
    counter[0] += 1
    if counter[0] > MAX_TERMS:
        raise _err(f"more than {MAX_TERMS} terms", text, start)
    raw = str(body)
    negate = False
    phrase = raw.startswith('"')
    after_space = start == 0 or text[start - 1] in " \t\r\n("
    if not phrase and raw.startswith("-") and len(raw) > 1 and after_space:
        negate, raw = True, raw[1:]  # -word: NOT word
        phrase = False
    prefix = raw.endswith("*")
    core = raw.rstrip("*")
    if phrase:
        core = core[1:-1]
    if "*" in core:
        raise _err("'*' may only end a term", text, start)
    if field in ("dp", "pdat"):
        term = _year_term(core, text, start)
    elif field in ("pmid", "uid"):
        if pmid_or_none(core) is None:
            raise _err(f"{core!r} is not a PMID", text, start)
        term = Term(core.strip(), "pmid", pos=start)
    elif field == "doi":
        if not core.strip():
            raise _err("empty DOI", text, start)
        term = Term(core.strip(), "doi", pos=start)
    else:
        if not _WORDCHAR.search(core):
            return None
        term = Term(core, field, phrase=phrase, prefix=prefix, pos=start)
    return Not(term) if negate else term


def _year_term(core: str, text: str, start: int) -> Term:
    m = _YEAR.match(core.strip())
    if not m:
        raise _err(f"{core!r} is not a year or a year range like 2018:2024", text, start)
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if lo > hi:
        raise _err(f"year range {core!r} ends before it starts", text, start)
    return Term(f"{lo}:{hi}", "dp", pos=start)


def _field(tag: str, text: str, start: int) -> str:
    name = tag.strip("[] \t").lower()
    if name not in FIELDS:
        known = ", ".join(
            f"[{f}]"
            for f in ("ti", "tiab", "ab", "au", "ta", "mh", "pt", "pmid", "doi", "dp", "si")
        )
        raise _err(f"unknown field tag [{name}] (known: {known})", text, start)
    return name


# -- translation ---------------------------------------------------------------------------
def _phrase(text: str, prefix: bool) -> str:
    return '"' + text.replace('"', '""') + '"' + (" *" if prefix else "")


def _fts_leaf(t: Term) -> str | None:
    """The FTS5 text of a term searched in the index, or None for a SQL-only term."""
    if t.field in SQL_FIELDS:
        return None
    cols = FTS_FIELDS[t.field] if t.field else DEFAULT_COLUMNS
    prefix = t.prefix
    if t.field in ("au", "author") and len(t.text.split()) > 1 and not prefix:
        prefix = True  # "smith j"[au] finds Smith JA, as PubMed's author search does
    spec = cols[0] if len(cols) == 1 else "{" + " ".join(cols) + "}"
    return f"{spec}: ({_phrase(t.text, prefix)})"


def _also(t: Term) -> tuple[str, list[Any]] | None:
    """SQL an untagged term also matches: a bare PMID, DOI or trial registration."""
    if t.field is not None or t.prefix:
        return None
    text = t.text.strip()
    if pmid_or_none(text) is not None:
        return "a.pmid = ?", [int(text)]
    if _DOI.match(text):
        return "lower(a.doi) = lower(?)", [text]
    ids = find_ids(text)
    if len(ids) == 1 and len(text) <= len(ids[0].id) + 2:
        return _trial_sql(ids[0].id)
    return None


def _trial_sql(trial_id: str) -> tuple[str, list[Any]]:
    return (
        "EXISTS (SELECT 1 FROM json_each(COALESCE(a.trial_ids, '[]')) WHERE value = ?)",
        [trial_id],
    )


def _sql_leaf(t: Term) -> tuple[str, list[Any]]:
    if t.field == "pmid":
        return "a.pmid = ?", [int(t.text)]
    if t.field == "doi":
        return "lower(a.doi) = lower(?)", [t.text]
    if t.field == "dp":
        lo, hi = (int(x) for x in t.text.split(":"))
        return "a.year BETWEEN ? AND ?", [lo, hi]
    assert t.field == "si"
    ids = find_ids(t.text)
    return _trial_sql(ids[0].id if ids else t.text.strip())


def fts_of(node: Node) -> str | None:
    """One FTS5 expression for a subtree searched wholly in the index, else None."""
    if isinstance(node, Term):
        return _fts_leaf(node) if _also(node) is None else None
    if isinstance(node, Not):
        return None
    if node.op == "OR":
        parts = [fts_of(c) for c in node.children]
        return None if any(p is None for p in parts) else "(" + " OR ".join(parts) + ")"  # type: ignore[arg-type]
    pos = [c for c in node.children if not isinstance(c, Not)]
    neg = [c.child for c in node.children if isinstance(c, Not)]
    pos_fts = [fts_of(c) for c in pos]
    neg_fts = [fts_of(c) for c in neg]
    if not pos or any(p is None for p in pos_fts) or any(n is None for n in neg_fts):
        return None
    out = "(" + " AND ".join(pos_fts) + ")"  # type: ignore[arg-type]
    for n in neg_fts:
        out = f"({out} NOT {n})"
    return out


_IN_FTS = "a.pmid IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)"


def sql_of(node: Node) -> tuple[str, list[Any]]:
    """A WHERE condition over ``articles a`` for the subtree, every value bound."""
    fts = fts_of(node)
    if fts is not None:
        return _IN_FTS, [fts]
    if isinstance(node, Term):
        if node.field in SQL_FIELDS:
            return _sql_leaf(node)
        also = _also(node)
        assert also is not None
        return f"({_IN_FTS} OR {also[0]})", [_fts_leaf(node), *also[1]]
    if isinstance(node, Not):
        inner, params = sql_of(node.child)
        return f"NOT ({inner})", params
    parts = [sql_of(c) for c in node.children]
    joiner = f" {node.op} "
    return "(" + joiner.join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]


def positive_fts(node: Node) -> str | None:
    """The FTS5 terms that make a record match (none under a NOT), ORed: for rank, snippets."""
    parts: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Not):
            return
        if isinstance(n, Term):
            if n.field not in SQL_FIELDS:
                parts.append(_fts_leaf(n))  # type: ignore[arg-type]
            return
        for c in n.children:
            walk(c)

    walk(node)
    return " OR ".join(dict.fromkeys(parts)) if parts else None


@dataclass(frozen=True)
class SearchPlan:
    """How a search joins into the study query (aliases: a articles, s the FTS rank)."""

    join: str  # replaces "FROM articles a"
    join_params: list[Any]
    where: str | None
    where_params: list[Any]
    ranked: bool  # s.fts_rank exists (relevance order possible)
    highlight: str | None  # FTS5 expression for snippet()/highlight()


_BASE = "FROM articles a"


@lru_cache(maxsize=256)
def plan(query: str | None) -> SearchPlan | None:
    """The search as SQL pieces for ``pipeline.query._from_where``; None for a blank one."""
    node = parse(query or "")
    if node is None:
        return None
    whole = fts_of(node)
    if whole is not None:
        # CROSS JOIN pins the full-text match as the outer loop: run once, not once per row.
        join = (
            "FROM (SELECT rowid AS fts_rowid, bm25(articles_fts) AS fts_rank FROM articles_fts"
            " WHERE articles_fts MATCH ?) s CROSS JOIN articles a ON a.pmid = s.fts_rowid"
        )
        return SearchPlan(join, [whole], None, [], True, whole)
    where, params = sql_of(node)
    rank = positive_fts(node)
    if rank is None:
        return SearchPlan(_BASE, [], where, params, False, None)
    join = (
        "FROM articles a LEFT JOIN (SELECT rowid AS fts_rowid, bm25(articles_fts) AS fts_rank"
        " FROM articles_fts WHERE articles_fts MATCH ?) s ON s.fts_rowid = a.pmid"
    )
    return SearchPlan(join, [rank], where, params, True, rank)


def check(query: str | None) -> str | None:
    """The error message for an unreadable search, None when it is fine (for widgets, URLs)."""
    try:
        parse(query or "")
    except SearchSyntaxError as err:
        return str(err)
    return None


# -- follow: added since, registered ---------------------------------------------------------
LAST_CRAWL = "last-crawl"
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_added_since(value: str | None) -> str | None:
    """The canonical "added since" value (an ISO day or LAST_CRAWL), None when unset.

    Raises KeaError naming the value when it is neither.
    """
    from datetime import date

    v = (value or "").strip()
    if not v:
        return None
    if v.lower() in (LAST_CRAWL, "last", "last_crawl"):
        return LAST_CRAWL
    if _ISO_DAY.match(v):
        try:
            return date.fromisoformat(v).isoformat()
        except ValueError:
            pass
    raise KeaError(f"added since {v!r}: give a date (YYYY-MM-DD) or {LAST_CRAWL!r}")


def follow_where(added_since: str | None, registered: bool | None) -> tuple[list[str], list[Any]]:
    """WHERE conditions for "added since" and "registered trials only", values bound.

    A date keeps records that entered PubMed on or after it (their entry date, as the
    dashboard's "new in the last 30 days" counts them); LAST_CRAWL keeps the records the
    last completed crawl stored for the first time.
    """
    where: list[str] = []
    params: list[Any] = []
    since = check_added_since(added_since)
    if since == LAST_CRAWL:
        where.append(
            "a.first_seen_run = (SELECT MAX(id) FROM crawl_runs WHERE status = 'completed')"
        )
    elif since is not None:
        where.append("a.entrez_date >= ?")
        params.append(since)
    if registered is True:
        where.append("a.trial_ids IS NOT NULL")
    elif registered is False:
        where.append("a.trial_ids IS NULL")
    return where, params


# -- snippets ------------------------------------------------------------------------------
MARK_START = "\x02"
MARK_END = "\x03"


def snippets(
    conn: sqlite3.Connection, query: str | None, pmids: Sequence[str | int], *, tokens: int = 32
) -> dict[str, dict[str, str | None]]:
    """pmid -> {"title": title with matches marked, "snippet": abstract excerpt}.

    Matches are wrapped in MARK_START/MARK_END (control characters no record holds), so a
    page escapes the text first and then turns the marks into highlighting.
    """
    p = plan(query)
    keys = [int(x) for x in pmids if pmid_or_none(str(x))]
    if p is None or p.highlight is None or not keys:
        return {}
    marks = ",".join("?" * len(keys))
    rows = conn.execute(
        "SELECT rowid, highlight(articles_fts, 0, ?, ?),"
        " snippet(articles_fts, 1, ?, ?, '…', ?) FROM articles_fts"
        f" WHERE articles_fts MATCH ? AND rowid IN ({marks})",
        [MARK_START, MARK_END, MARK_START, MARK_END, max(1, min(64, tokens)), p.highlight, *keys],
    )
    return {str(r[0]): {"title": r[1], "snippet": r[2] or None} for r in rows}


def split_marks(text: str | None) -> list[tuple[str, bool]]:
    """Marked text as (piece, is_match) pairs, for a page to render safely."""
    out: list[tuple[str, bool]] = []
    for i, part in enumerate(re.split(f"[{MARK_START}{MARK_END}]", text or "")):
        if part:
            out.append((part, i % 2 == 1))
    return out


__all__ = [
    "FIELDS",
    "LAST_CRAWL",
    "check_added_since",
    "follow_where",
    "SearchPlan",
    "SearchSyntaxError",
    "check",
    "parse",
    "plan",
    "positive_fts",
    "snippets",
    "split_marks",
    "sql_of",
]
