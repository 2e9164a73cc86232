"""Every read the dashboard and the exports make, as small functions over one connection.

All SQL of the read side lives here, with bound parameters only (user text never
becomes SQL or FTS syntax). Nothing here imports streamlit: the dashboard caches
these calls, the CLI export streams them.

Conventions of the returned rows: ``pmid`` is a string (as in ``Article``), set-valued
labels are lists, counts are named ``studies``; a record without labels has ``None``
label values and appears only under ``scope="all"``.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.errors import KeaError, StoreError
from pipeline.records import Article
from pipeline.store import LABEL_FIELDS, decode_label_row
from pipeline.taxonomy import (
    COMPARATORS,
    CONDITIONS,
    DESIGN_RANK,
    DESIGNS,
    DRUGS,
    OUTCOMES,
    ROUTES,
    SUBGROUPS,
)

SCOPES = ("in_scope", "off_topic", "all")
POPULATIONS = ("all", "human", "animal")
SORTS = ("strength", "newest", "year", "n", "relevance")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
DOI_URL = "https://doi.org/{doi}"

# The read side's indexes; store.SCHEMA creates them too, this keeps older stores fast.
INDEXES = (
    "CREATE INDEX IF NOT EXISTS articles_live ON articles(deleted, pmid)",
    "CREATE INDEX IF NOT EXISTS labels_relevance_design ON labels(relevance, design)",
    "CREATE INDEX IF NOT EXISTS crawl_runs_finished ON crawl_runs(status, finished_at)",
)


# -- connection ---------------------------------------------------------------------------
def connect(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection (the dashboard must never write by accident)."""
    path = Path(db_path)
    if not path.is_file():
        raise StoreError(f"database {path} does not exist (run `kea crawl` first)")
    conn = None
    try:
        conn = sqlite3.connect(
            path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
        )
        conn.execute("SELECT 1 FROM articles LIMIT 1")
    except sqlite3.Error as err:
        if conn is not None:
            conn.close()
        raise StoreError(f"cannot read database {path}: {err}") from err
    conn.row_factory = sqlite3.Row
    return conn


def ensure_indexes(db_path: str | Path) -> None:
    """Create the read-side indexes; idempotent, for the store owner to call after writes."""
    try:
        with closing(sqlite3.connect(db_path, timeout=30)) as conn, conn:
            for stmt in INDEXES:
                conn.execute(stmt)
            conn.execute("ANALYZE")
    except sqlite3.Error as err:
        raise StoreError(f"cannot add indexes to database {db_path}: {err}") from err


# -- the filter ---------------------------------------------------------------------------
_SET_FILTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # attribute: (query-param key, labels column, vocabulary)
    "conditions": ("c", "conditions", CONDITIONS),
    "subgroups": ("sg", "subgroups", SUBGROUPS),
    "designs": ("d", "design", DESIGNS),
    "outcomes": ("o", "outcome", OUTCOMES),
    "drugs": ("dr", "drug", DRUGS),
    "routes": ("r", "routes", ROUTES),
    "comparators": ("cmp", "comparator", COMPARATORS),
}
_JSON_COLUMNS = ("conditions", "subgroups", "routes")
_CLI_NAMES = {  # attribute -> argparse dest of kea.cli._add_filter_args
    "conditions": "condition",
    "subgroups": "subgroup",
    "designs": "design",
    "outcomes": "outcome",
    "drugs": "drug",
    "routes": "route",
    "comparators": "comparator",
}
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def _as_list(value: object) -> list[str]:
    """Query params arrive as 'a,b', ['a', 'b'] or ['a,b']; give ['a', 'b']."""
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    return [v.strip() for item in items for v in str(item).split(",") if v.strip()]


def _last(value: object) -> str | None:
    """The last of repeated values (a URL edited by hand may repeat a key)."""
    if isinstance(value, list | tuple):
        value = value[-1] if value else None
    return None if value is None else str(value)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _bool_or_none(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    return True if v in _TRUE else False if v in _FALSE else None


@dataclass(frozen=True)
class StudyFilter:
    """What a user narrowed the evidence to; one object for the dashboard, URLs and the CLI.

    Sets are any-of, fields are combined with AND. Label filters (sets, psychotherapy,
    min_n, needs_review, population) never match unlabelled records, and an unknown
    value (NULL psychotherapy, sample_size) matches neither True/False nor a minimum.
    """

    conditions: tuple[str, ...] = ()  # any-of, like every set below
    subgroups: tuple[str, ...] = ()
    designs: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    psychotherapy: bool | None = None
    min_n: int | None = None
    year_from: int | None = None
    year_to: int | None = None
    search: str | None = None  # FTS5 over title+abstract, always quoted (see fts_query)
    scope: str = "in_scope"  # in_scope | off_topic | all (by labels.relevance)
    population: str = "all"  # all | human | animal (animal = design preclinical)
    needs_review: bool | None = None
    retracted: bool | None = None  # None = both
    include_deleted: bool = False

    def is_empty(self) -> bool:
        """True when nothing differs from the default view."""
        return self == StudyFilter()

    def has_label_filter(self) -> bool:
        """Does any filter need labels (so unlabelled records cannot match)?"""
        return (
            any(getattr(self, a) for a in _SET_FILTERS)
            or any(v is not None for v in (self.psychotherapy, self.min_n, self.needs_review))
            or self.population != "all"
        )

    # -- URL round trip -----------------------------------------------------------------
    def to_query_params(self) -> dict[str, str | list[str]]:
        """Short keys, defaults left out; sets comma-joined so st.query_params.to_dict() keeps them."""
        out: dict[str, str | list[str]] = {}
        for attr, (key, _col, _vocab) in _SET_FILTERS.items():
            values = getattr(self, attr)
            if values:
                out[key] = ",".join(values)
        scalars = {
            "pt": self.psychotherapy,
            "n": self.min_n,
            "yf": self.year_from,
            "yt": self.year_to,
            "q": self.search,
            "nr": self.needs_review,
            "ret": self.retracted,
        }
        for key, value in scalars.items():
            if value is None:
                continue
            out[key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if self.scope != "in_scope":
            out["sc"] = self.scope
        if self.population != "all":
            out["pop"] = self.population
        if self.include_deleted:
            out["del"] = "1"
        return out

    @classmethod
    def from_query_params(cls, params: Mapping[str, str | list[str]]) -> StudyFilter:
        """Tolerant reading of a (possibly hand-edited) URL: bad values are dropped, never raised."""
        kw: dict[str, Any] = {}
        for attr, (key, _col, vocab) in _SET_FILTERS.items():
            values = [v for v in dict.fromkeys(_as_list(params.get(key))) if v in vocab]
            if values:
                kw[attr] = tuple(values)
        kw["psychotherapy"] = _bool_or_none(_last(params.get("pt")))
        kw["needs_review"] = _bool_or_none(_last(params.get("nr")))
        kw["retracted"] = _bool_or_none(_last(params.get("ret")))
        n = _int_or_none(_last(params.get("n")))
        kw["min_n"] = n if n is not None and n > 0 else None
        kw["year_from"] = _int_or_none(_last(params.get("yf")))
        kw["year_to"] = _int_or_none(_last(params.get("yt")))
        q = (_last(params.get("q")) or "").strip()
        kw["search"] = q or None
        scope = _last(params.get("sc"))
        kw["scope"] = scope if scope in SCOPES else "in_scope"
        pop = _last(params.get("pop"))
        kw["population"] = pop if pop in POPULATIONS else "all"
        kw["include_deleted"] = _bool_or_none(_last(params.get("del"))) is True
        return cls(**kw)

    # -- command line -------------------------------------------------------------------
    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> StudyFilter:
        """Strict reading of `kea export` flags: a value outside TAXONOMY.md is an error.

        Scope: ``--all`` or no label filter at all means every stored record (issue 2:
        `kea export --format jsonl` exports everything); any label filter means in-scope.
        """
        kw: dict[str, Any] = {}
        for attr, (_key, _col, vocab) in _SET_FILTERS.items():
            flag = _CLI_NAMES[attr]
            values = list(dict.fromkeys(_as_list(getattr(args, flag, None))))
            bad = [v for v in values if v not in vocab]
            if bad:
                raise KeaError(
                    f"--{flag}: {', '.join(repr(b) for b in bad)} not one of {', '.join(vocab)}"
                )
            kw[attr] = tuple(values)
        kw["psychotherapy"] = True if getattr(args, "psychotherapy", None) else None
        min_n = getattr(args, "min_n", None)
        if min_n is not None and min_n < 1:
            raise KeaError(f"--min-n must be a positive number, not {min_n}")
        kw["min_n"] = min_n
        kw["year_from"] = getattr(args, "since", None)
        kw["year_to"] = getattr(args, "until", None)
        if kw["year_from"] and kw["year_to"] and kw["year_from"] > kw["year_to"]:
            raise KeaError(f"--since {kw['year_from']} is after --until {kw['year_to']}")
        search = (getattr(args, "search", None) or "").strip()
        if search and fts_query(search) is None:
            raise KeaError(f"--search {search!r} has no word to search for")
        kw["search"] = search or None
        filt = cls(**kw)
        scope = "all" if getattr(args, "all", False) or not filt.has_label_filter() else "in_scope"
        return replace(filt, scope=scope)


# -- SQL building -------------------------------------------------------------------------
_FTS_CHUNK = re.compile(r"\S+")
_WORD = re.compile(r"\w", re.UNICODE)


def fts_query(text: str | None) -> str | None:
    """User text as an FTS5 query that cannot be a syntax error.

    Each whitespace-separated chunk becomes a quoted phrase (quotes doubled), all of them
    required; a trailing ``*`` keeps prefix search (``ketam*``). Chunks with no letter or
    digit (``"``, ``*``, ``(``) are dropped; ``None`` when nothing searchable is left.
    """
    if not text:
        return None
    parts = []
    for chunk in _FTS_CHUNK.findall(text):
        prefix = chunk.endswith("*")
        core = chunk.rstrip("*")
        if not _WORD.search(core):
            continue
        parts.append('"' + core.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(parts) if parts else None


def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _from_where(f: StudyFilter) -> tuple[str, list[Any]]:
    """``FROM ... WHERE ...`` of the filtered studies (aliases: a articles, l labels, s fts)."""
    params: list[Any] = []
    sql = "FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid"
    match = fts_query(f.search)
    if match is not None:
        # CROSS JOIN pins the full-text match as the outer loop: run once, not once per row.
        sql = (
            "FROM (SELECT rowid AS fts_rowid, bm25(articles_fts) AS fts_rank FROM articles_fts"
            " WHERE articles_fts MATCH ?) s CROSS JOIN articles a ON a.pmid = s.fts_rowid"
            " LEFT JOIN labels l ON l.pmid = a.pmid"
        )
        params.append(match)
    where: list[str] = []
    if not f.include_deleted:
        where.append("a.deleted = 0")
    if f.scope in ("in_scope", "off_topic"):
        where.append("l.relevance = ?")
        params.append(f.scope)
    if f.population == "animal":
        where.append("l.design = 'preclinical'")
    elif f.population == "human":
        where.append("l.design IS NOT NULL AND l.design != 'preclinical'")
    for attr, (_key, col, _vocab) in _SET_FILTERS.items():
        values = getattr(f, attr)
        if not values:
            continue
        if col in _JSON_COLUMNS:
            where.append(
                f"EXISTS (SELECT 1 FROM json_each(l.{col}) WHERE value IN ({_placeholders(values)}))"
            )
        else:
            where.append(f"l.{col} IN ({_placeholders(values)})")
        params.extend(values)
    if f.psychotherapy is not None:
        where.append("l.psychotherapy = ?")  # unknown (NULL) matches neither value
        params.append(int(f.psychotherapy))
    if f.min_n is not None:
        where.append("l.sample_size >= ?")
        params.append(f.min_n)
    if f.year_from is not None:
        where.append("a.year >= ?")
        params.append(f.year_from)
    if f.year_to is not None:
        where.append("a.year <= ?")
        params.append(f.year_to)
    if f.needs_review is not None:
        where.append("l.needs_review = ?")  # unlabelled records match neither value
        params.append(int(f.needs_review))
    if f.retracted is not None:
        where.append("a.retracted = ?")
        params.append(int(f.retracted))
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, params


def _rank_case() -> tuple[str, list[Any]]:
    """CASE mapping design -> DESIGN_RANK (unlabelled last), values bound."""
    whens = " ".join("WHEN ? THEN ?" for _ in DESIGN_RANK)
    params: list[Any] = [x for item in DESIGN_RANK.items() for x in item]
    return f"(CASE l.design {whens} ELSE {len(DESIGN_RANK)} END)", params


def _order_by(sort: str, has_search: bool) -> tuple[str, list[Any]]:
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; valid: {', '.join(SORTS)}")
    if sort == "relevance" and has_search:
        return "ORDER BY s.fts_rank, a.pmid DESC", []
    if sort == "newest":
        return "ORDER BY a.entrez_date IS NULL, a.entrez_date DESC, a.pmid DESC", []
    if sort == "year":
        return "ORDER BY a.year IS NULL, a.year DESC, a.pmid DESC", []
    if sort == "n":
        return "ORDER BY l.sample_size IS NULL, l.sample_size DESC, a.pmid DESC", []
    case, params = _rank_case()
    return (
        f"ORDER BY {case}, l.sample_size IS NULL, l.sample_size DESC,"
        " a.year IS NULL, a.year DESC, a.pmid DESC",
        params,
    )


# -- list and count -----------------------------------------------------------------------
def count_studies(conn: sqlite3.Connection, f: StudyFilter) -> int:
    """How many studies match (for the headline of a filtered view)."""
    sql, params = _from_where(f)
    return int(conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()[0])


_LIST_COLUMNS = (
    "a.pmid, a.title, a.first_author, a.year, a.journal, a.doi, a.retracted, a.is_demo,"
    " a.entrez_date, l.pmid AS label_pmid, l.relevance, l.design, l.sample_size, l.outcome,"
    " l.conditions, l.subgroups, l.drug, l.routes, l.comparator, l.psychotherapy,"
    " l.needs_review, l.verified, l.confidence"
)


def _urls(pmid: object, doi: str | None) -> dict[str, str | None]:
    return {
        "pubmed_url": PUBMED_URL.format(pmid=pmid),
        "doi_url": DOI_URL.format(doi=doi) if doi else None,
    }


def _list_row(row: sqlite3.Row) -> dict[str, Any]:
    labelled = row["label_pmid"] is not None
    lab = decode_label_row(row) if labelled else None
    confidence = lab["confidence"] if lab else {}
    numbers = [v for v in confidence.values() if isinstance(v, int | float)]
    return {
        "pmid": str(row["pmid"]),
        "title": row["title"],
        "first_author": row["first_author"],
        "year": row["year"],
        "journal": row["journal"],
        "doi": row["doi"],
        "relevance": lab["relevance"] if lab else None,
        "design": lab["design"] if lab else None,
        "sample_size": lab["sample_size"] if lab else None,
        "outcome": lab["outcome"] if lab else None,
        "conditions": lab["conditions"] if lab else [],
        "subgroups": lab["subgroups"] if lab else [],
        "drug": lab["drug"] if lab else None,
        "routes": lab["routes"] if lab else [],
        "comparator": lab["comparator"] if lab else None,
        "psychotherapy": lab["psychotherapy"] if lab else None,
        "retracted": bool(row["retracted"]),
        "needs_review": lab["needs_review"] if lab else None,
        "verified": lab["verified"] if lab else [],
        "confidence": confidence,
        "min_confidence": min(numbers) if numbers else None,
        "labelled": labelled,
        "is_demo": bool(row["is_demo"]),
        "entrez_date": row["entrez_date"],
        **_urls(row["pmid"], row["doi"]),
    }


def list_studies(
    conn: sqlite3.Connection,
    f: StudyFilter,
    *,
    sort: str = "strength",
    limit: int | None = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One page of matching studies, strongest evidence first by default."""
    sql, params = _from_where(f)
    order, order_params = _order_by(sort, fts_query(f.search) is not None)
    page = " LIMIT ? OFFSET ?"
    page_params = [-1 if limit is None else int(limit), max(0, int(offset))]
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} {sql} {order}{page}", [*params, *order_params, *page_params]
    )
    return [_list_row(r) for r in rows]


# -- one study ------------------------------------------------------------------------------
def study_detail(conn: sqlite3.Connection, pmid: str | int) -> dict[str, Any] | None:
    """Everything about one record: the Article, its labels (flat), links; None if unknown."""
    try:
        key = int(pmid)
    except (TypeError, ValueError):
        return None
    row = conn.execute(
        "SELECT a.data, a.deleted, a.is_demo, l.* FROM articles a"
        " LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.pmid = ?",
        (key,),
    ).fetchone()
    if row is None or row["data"] is None:
        return None
    article = Article.from_dict(json.loads(row["data"]))
    out = article.to_dict()
    out.update(
        abstract=article.abstract,
        author_names=article.author_names,
        mesh_terms=article.mesh_terms,
        language=article.language,
        deleted=bool(row["deleted"]),
        is_demo=bool(row["is_demo"]),
        labelled=row["pmid"] is not None,
    )
    out.update(decode_label_row(row))
    out["pmid"] = article.pmid
    if not out["labelled"]:
        out["needs_review"] = None
    out.update(_urls(article.pmid, article.doi))
    return out


# -- overview numbers -----------------------------------------------------------------------
def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else None


def meta(conn: sqlite3.Connection) -> dict[str, str | None]:
    """All meta keys (query, demo, model_version, ...), secrets left out."""
    return {
        k: v
        for k, v in conn.execute("SELECT key, value FROM meta ORDER BY key")
        if "api_key" not in k.lower() and "apikey" not in k.lower()
    }


def headline(conn: sqlite3.Connection, *, today: date | None = None) -> dict[str, Any]:
    """The dashboard's top numbers. Study counts are of live (not deleted) in-scope records;
    total_records/labelled/needs_review are of all live records."""
    since = ((today or date.today()) - timedelta(days=30)).isoformat()
    row = conn.execute(
        """SELECT
            COUNT(*) AS total_records,
            COUNT(l.pmid) AS labelled,
            COALESCE(SUM(l.needs_review = 1), 0) AS needs_review,
            COALESCE(SUM(l.relevance = 'in_scope'), 0) AS in_scope,
            COALESCE(SUM(l.relevance = 'in_scope' AND l.design = 'rct'), 0) AS rcts,
            COALESCE(SUM(l.relevance = 'in_scope' AND l.design = 'systematic_review'), 0)
                AS systematic_reviews,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.entrez_date >= ?), 0) AS new_last_30_days,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 1), 0) AS retracted
           FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.deleted = 0""",
        (since,),
    ).fetchone()
    out = {k: int(row[k]) for k in row.keys()}
    finished = conn.execute(
        "SELECT MAX(finished_at) FROM crawl_runs WHERE status = 'completed'"
    ).fetchone()[0]
    out["last_update"] = _iso(finished)
    out["is_demo"] = meta(conn).get("demo") == "1"
    return out


def _studies_cte(f: StudyFilter) -> tuple[str, list[Any]]:
    """The filtered studies as a CTE ``fs`` with their label columns."""
    sql, params = _from_where(f)
    cols = (
        "a.pmid, a.year, l.relevance, l.conditions, l.subgroups, l.routes, l.design,"
        " l.outcome, l.sample_size, l.drug, l.comparator, l.psychotherapy"
    )
    return f"WITH fs AS (SELECT {cols} {sql})", params


def _condition_limit(f: StudyFilter) -> tuple[str, list[Any]]:
    """When the user picked conditions, rows of other conditions would answer another question."""
    if not f.conditions:
        return "", []
    return f" AND c.value IN ({_placeholders(f.conditions)})", list(f.conditions)


def evidence_map(conn: sqlite3.Connection, f: StudyFilter) -> list[dict[str, Any]]:
    """condition x design x outcome study counts; a two-condition study counts in both rows."""
    cte, params = _studies_cte(f)
    extra, extra_params = _condition_limit(f)
    rows = conn.execute(
        f"{cte} SELECT c.value AS condition, fs.design, fs.outcome, COUNT(*) AS studies"
        f" FROM fs, json_each(fs.conditions) c WHERE fs.conditions IS NOT NULL{extra}"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        [*params, *extra_params],
    )
    return [dict(r) for r in rows]


def outcome_summary(
    conn: sqlite3.Connection, f: StudyFilter, designs: Sequence[str] = ("rct", "systematic_review")
) -> list[dict[str, Any]]:
    """Per condition and outcome among the strongest designs: studies and participants.

    ``participants`` sums sample_size (reviews report pooled participants, so rct and
    systematic_review sums can overlap); ``with_n`` says how many studies gave a size.
    """
    chosen = tuple(d for d in designs if not f.designs or d in f.designs)
    if not chosen:
        return []
    cte, params = _studies_cte(replace(f, designs=chosen))
    extra, extra_params = _condition_limit(f)
    rows = conn.execute(
        f"{cte} SELECT c.value AS condition, fs.outcome, COUNT(*) AS studies,"
        " COALESCE(SUM(fs.sample_size), 0) AS participants, COUNT(fs.sample_size) AS with_n"
        f" FROM fs, json_each(fs.conditions) c WHERE fs.conditions IS NOT NULL{extra}"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        [*params, *extra_params],
    )
    return [dict(r) for r in rows]


def timeline(conn: sqlite3.Connection, f: StudyFilter) -> list[dict[str, Any]]:
    """Studies per publication year and design (design None = unlabelled)."""
    cte, params = _studies_cte(f)
    rows = conn.execute(
        f"{cte} SELECT year, design, COUNT(*) AS studies FROM fs WHERE year IS NOT NULL"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    return [dict(r) for r in rows]


BREAKDOWN_FIELDS = {
    "conditions": "conditions",
    "condition": "conditions",
    "subgroups": "subgroups",
    "subgroup": "subgroups",
    "routes": "routes",
    "route": "routes",
    "design": "design",
    "outcome": "outcome",
    "drug": "drug",
    "comparator": "comparator",
    "psychotherapy": "psychotherapy",
    "relevance": "relevance",
    "year": "year",
}


def breakdown(conn: sqlite3.Connection, f: StudyFilter, field: str) -> list[dict[str, Any]]:
    """Study counts per value of one label (sets: a study counts once per value it has)."""
    col = BREAKDOWN_FIELDS.get(field)
    if col is None:
        raise ValueError(f"unknown breakdown field {field!r}; valid: {', '.join(BREAKDOWN_FIELDS)}")
    cte, params = _studies_cte(f)
    if col in _JSON_COLUMNS:
        sql = (
            f"{cte} SELECT v.value AS value, COUNT(*) AS studies"
            f" FROM fs, json_each(fs.{col}) v WHERE fs.{col} IS NOT NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    else:
        sql = f"{cte} SELECT fs.{col} AS value, COUNT(*) AS studies FROM fs GROUP BY 1 ORDER BY 2 DESC, 1"
    out = [dict(r) for r in conn.execute(sql, params)]
    if col == "psychotherapy":
        for r in out:
            r["value"] = None if r["value"] is None else bool(r["value"])
    return out


def prisma_flow(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts for a PRISMA-style flow from retrieval to in-scope studies per condition."""
    row = conn.execute(
        """SELECT COUNT(*) AS retrieved,
            COALESCE(SUM(a.deleted = 1), 0) AS deleted,
            COALESCE(SUM(a.deleted = 0 AND l.relevance IS NULL), 0) AS unlabelled,
            COALESCE(SUM(a.deleted = 0 AND l.relevance = 'off_topic'), 0) AS off_topic,
            COALESCE(SUM(a.deleted = 0 AND l.relevance = 'in_scope'), 0) AS in_scope
           FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid"""
    ).fetchone()
    out: dict[str, Any] = {k: int(row[k]) for k in row.keys()}
    out["duplicates"] = 0
    out["duplicates_note"] = (
        "0 by construction: records are keyed on PMID, so a record returned by several "
        "searches or crawls is stored once"
    )
    out["screened"] = out["retrieved"] - out["deleted"]
    by_cond = {c: 0 for c in CONDITIONS}
    for r in conn.execute(
        "SELECT c.value, COUNT(*) FROM articles a JOIN labels l ON l.pmid = a.pmid,"
        " json_each(l.conditions) c WHERE a.deleted = 0 AND l.relevance = 'in_scope'"
        " AND l.conditions IS NOT NULL GROUP BY 1"
    ):
        by_cond[r[0]] = int(r[1])
    out["in_scope_by_condition"] = by_cond
    return out


_API_KEY = re.compile(r"(api_key=)[^&\s]+", re.IGNORECASE)


def crawl_history(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """Newest crawl runs first, with ISO times (UTC) next to the raw timestamps."""
    rows = conn.execute("SELECT * FROM crawl_runs ORDER BY id DESC LIMIT ?", (int(limit),))
    out = []
    for r in rows:
        d = dict(r)
        d["eutils_url"] = _API_KEY.sub(r"\1***", d["eutils_url"] or "") or None
        d["is_demo"] = bool(d["is_demo"])
        d["started"] = _iso(d["started_at"])
        d["finished"] = _iso(d["finished_at"])
        out.append(d)
    return out


# -- export rows ----------------------------------------------------------------------------
_CHUNK = 500


def iter_articles(
    conn: sqlite3.Connection, f: StudyFilter
) -> Iterator[tuple[Article, dict[str, Any] | None, bool]]:
    """(Article, decoded labels or None, is_demo) in strength order, streamed.

    Only the ordered PMIDs are held in memory; the big ``data`` column is read in
    chunks, so 50k records never sit in one fetchall.
    """
    sql, params = _from_where(f)
    order, order_params = _order_by("strength", False)
    pmids = [r[0] for r in conn.execute(f"SELECT a.pmid {sql} {order}", [*params, *order_params])]
    for start in range(0, len(pmids), _CHUNK):
        chunk = pmids[start : start + _CHUNK]
        rows = conn.execute(
            "SELECT a.pmid AS article_pmid, a.data, a.is_demo, l.* FROM articles a"
            f" LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.pmid IN ({_placeholders(chunk)})",
            chunk,
        )
        by_pmid = {r["article_pmid"]: r for r in rows}
        for pmid in chunk:
            r = by_pmid.get(pmid)
            if r is None or r["data"] is None:  # deleted between the two reads
                continue
            labels = decode_label_row(r) if r["pmid"] is not None else None
            yield Article.from_dict(json.loads(r["data"])), labels, bool(r["is_demo"])


EXPORT_LABEL_FIELDS = (*LABEL_FIELDS, "confidence", "needs_review", "verified")


def export_record(
    article: Article, labels: dict[str, Any] | None, *, is_demo: bool | None = None
) -> dict[str, Any]:
    """One record as issue 2/3 name its fields; every label None when unlabelled."""
    rec: dict[str, Any] = {
        "pmid": article.pmid,
        "doi": article.doi,
        "pmcid": article.pmcid,
        "title": article.title,
        "abstract": article.abstract,
        "journal": article.journal,
        "journal_iso": article.journal_iso,
        "year": article.pub_year,
        "pub_date": article.pub_date,
        "volume": article.volume,
        "issue": article.issue,
        "pages": article.pages,
        "authors": article.author_names,
        "publication_types": list(article.publication_types),
        "mesh_terms": article.mesh_terms,
        "keywords": list(article.keywords),
        "language": article.language,
        "retracted": article.retracted,
        "entrez_date": article.entrez_date,
    }
    for name in EXPORT_LABEL_FIELDS:
        rec[name] = labels.get(name) if labels is not None else None
    if is_demo is not None:
        rec["is_demo"] = is_demo
    return rec


def iter_export_rows(conn: sqlite3.Connection, f: StudyFilter) -> Iterator[dict[str, Any]]:
    """Full bibliographic record + every label, strength order, streamed."""
    demo = meta(conn).get("demo") == "1"
    for article, labels, is_demo in iter_articles(conn, f):
        yield export_record(article, labels, is_demo=is_demo if demo else None)


__all__ = [
    "StudyFilter",
    "breakdown",
    "connect",
    "count_studies",
    "crawl_history",
    "ensure_indexes",
    "evidence_map",
    "export_record",
    "fts_query",
    "headline",
    "iter_articles",
    "iter_export_rows",
    "list_studies",
    "meta",
    "outcome_summary",
    "prisma_flow",
    "study_detail",
    "timeline",
]
