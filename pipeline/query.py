"""Every read the dashboard and the exports make, as small functions over one connection.

All SQL of the read side lives here, with bound parameters only (user text never
becomes SQL or FTS syntax). Nothing here imports streamlit: the dashboard caches
these calls, the CLI export streams them.

Conventions of the returned rows: ``pmid`` is a string (as in ``Article``), set-valued
labels are lists, counts are named ``studies``; a record without labels has ``None``
label values and appears only under ``scope="all"``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import field, make_dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.labels import BY_NAME, DESIGN_RANK, FILTERABLE, LABEL_NAMES, LABELS, VOCAB, Label
from pipeline.records import Article, pmid_or_none
from pipeline.search import SearchSyntaxError, follow_where, snippets
from pipeline.search import plan as search_plan
from pipeline.store import connect_readonly, decode_label_row, resolve_db_path
from pipeline.trials import article_trial_ids, links

SCOPES = ("in_scope", "off_topic", "all")
POPULATIONS = ("all", "human", "animal")
SORTS = ("strength", "newest", "year", "n", "relevance")
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
DOI_URL = "https://doi.org/{doi}"


# -- connection ---------------------------------------------------------------------------
def connect(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection (the dashboard must never write by accident).

    The store decides what may be opened: never a missing or foreign file, never a newer
    schema; an older store is upgraded first (with a backup), see ``connect_readonly``.
    """
    return connect_readonly(db_path)


# -- the filter ---------------------------------------------------------------------------
FILTER_LABELS: dict[str, Label] = {lab.filter: lab for lab in FILTERABLE if lab.filter}
"""StudyFilter field name -> the label it narrows by."""


def _label_field(lab: Label) -> tuple[str, Any, Any]:
    """A label's StudyFilter field: any-of tuple, minimum, or yes/no/either."""
    assert lab.filter is not None
    if lab.has_vocabulary:
        return (lab.filter, tuple[str, ...], field(default=()))
    if lab.kind == "integer":
        return (lab.filter, int | None, field(default=None))
    return (lab.filter, bool | None, field(default=None))


_OTHER_FIELDS: tuple[tuple[str, Any, Any], ...] = (
    ("year_from", int | None, field(default=None)),
    ("year_to", int | None, field(default=None)),
    # the query language of pipeline.search (PubMed-style), FTS5 + bound SQL
    ("search", str | None, field(default=None)),
    # entered PubMed on/after this ISO date, or "last-crawl": first stored by the last crawl
    ("added_since", str | None, field(default=None)),
    # True: only records naming a trial registration (pipeline.trials)
    ("registered", bool | None, field(default=None)),
    # in_scope | off_topic | all (by labels.relevance)
    ("scope", str, field(default="in_scope")),
    # all | human | animal (animal = design preclinical)
    ("population", str, field(default="all")),
    ("needs_review", bool | None, field(default=None)),
    ("retracted", bool | None, field(default=None)),  # None = both
    ("include_deleted", bool, field(default=False)),
)


def _is_active(lab: Label, value: Any) -> bool:
    return bool(value) if lab.has_vocabulary else value is not None


def _is_empty(self: Any) -> bool:
    """True when nothing differs from the default view."""
    return self == type(self)()


def _has_label_filter(self: Any) -> bool:
    """Does any filter need labels (so unlabelled records cannot match)?"""
    return (
        any(_is_active(lab, getattr(self, name)) for name, lab in FILTER_LABELS.items())
        or self.needs_review is not None
        or self.population != "all"
    )


StudyFilter = make_dataclass(
    "StudyFilter",
    [*(_label_field(lab) for lab in FILTERABLE), *_OTHER_FIELDS],
    frozen=True,
    namespace={"is_empty": _is_empty, "has_label_filter": _has_label_filter},
)
StudyFilter.__module__ = __name__
StudyFilter.__doc__ = """What a user narrowed the evidence to; one object for the dashboard, URLs and the CLI.

One field per filterable label of ``pipeline.labels`` (``Label.filter``): single and set
labels any-of (a tuple of vocabulary ids), an integer label a minimum, a boolean label
yes/no/either (None); then the fields that are not labels. Fields are combined with
AND. Label filters (and needs_review, population) never match unlabelled records, and
an unknown value (NULL psychotherapy, sample_size) matches neither True/False nor a
minimum. The URL codec lives in ``dashboard.url``, the CLI one in ``kea.filters_cli``.
"""


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
    where: list[str] = []
    plan = search_plan(f.search)  # raises SearchSyntaxError on an unreadable search
    sql = (plan.join if plan else "FROM articles a") + " LEFT JOIN labels l ON l.pmid = a.pmid"
    if plan is not None:
        params.extend(plan.join_params)
        if plan.where:
            where.append(plan.where)
            params.extend(plan.where_params)
    added_sql, added_params = follow_where(f.added_since, f.registered)
    where.extend(added_sql)
    params.extend(added_params)
    if not f.include_deleted:
        where.append("a.deleted = 0")
    if f.scope in ("in_scope", "off_topic"):
        where.append("l.relevance = ?")
        params.append(f.scope)
    if f.population == "animal":
        where.append("l.design = 'preclinical'")
    elif f.population == "human":
        where.append("l.design IS NOT NULL AND l.design != 'preclinical'")
    for name, lab in FILTER_LABELS.items():
        value = getattr(f, name)
        if not _is_active(lab, value):
            continue
        col = f"l.{lab.name}"
        if lab.is_set:
            where.append(
                f"EXISTS (SELECT 1 FROM json_each({col}) WHERE value IN ({_placeholders(value)}))"
            )
            params.extend(value)
        elif lab.has_vocabulary:
            where.append(f"{col} IN ({_placeholders(value)})")
            params.extend(value)
        elif lab.kind == "integer":
            where.append(f"{col} >= ?")  # unknown (NULL) never reaches a minimum
            params.append(_sql_int(value))
        else:
            where.append(f"{col} = ?")  # unknown (NULL) matches neither value
            params.append(lab.encode(value))
    if f.year_from is not None:
        where.append("a.year >= ?")
        params.append(_sql_int(f.year_from))
    if f.year_to is not None:
        where.append("a.year <= ?")
        params.append(_sql_int(f.year_to))
    if f.needs_review is not None:
        where.append("l.needs_review = ?")  # unlabelled records match neither value
        params.append(int(f.needs_review))
    if f.retracted is not None:
        where.append("a.retracted = ?")
        params.append(int(f.retracted))
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, params


_INT64 = 2**63 - 1


def _sql_int(value: int) -> int:
    """An integer bound saturated to SQLite's INTEGER range (a bigger one raises
    OverflowError); saturation keeps the comparison's meaning for any real value."""
    return max(-_INT64, min(_INT64, int(value)))


def _rank_case() -> tuple[str, list[Any]]:
    """CASE mapping design -> DESIGN_RANK (unlabelled last), values bound."""
    whens = " ".join("WHEN ? THEN ?" for _ in DESIGN_RANK)
    params: list[Any] = [x for item in DESIGN_RANK.items() for x in item]
    return f"(CASE l.design {whens} ELSE {len(DESIGN_RANK)} END)", params


def _ranked(f: Any) -> bool:
    """Does the filter's search give a relevance rank (s.fts_rank)?"""
    plan = search_plan(f.search)
    return plan is not None and plan.ranked


def _order_by(sort: str, has_search: bool) -> tuple[str, list[Any]]:
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; valid: {', '.join(SORTS)}")
    if sort == "relevance" and has_search:
        return "ORDER BY s.fts_rank IS NULL, s.fts_rank, a.pmid DESC", []
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


_LIST_COLUMNS = ", ".join(
    (
        "a.pmid, a.title, a.first_author, a.year, a.journal, a.doi, a.retracted, a.is_demo,"
        " a.entrez_date, a.trial_ids, l.pmid AS label_pmid",
        *(f"l.{name}" for name in LABEL_NAMES),
        "l.needs_review, l.verified, l.confidence",
    )
)


def _unlabelled(lab: Label) -> Any:
    """A label's value on a record the classifier has not seen."""
    return [] if lab.is_set else None


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
        **{label.name: lab[label.name] if lab else _unlabelled(label) for label in LABELS},
        "retracted": bool(row["retracted"]),
        "needs_review": lab["needs_review"] if lab else None,
        "verified": lab["verified"] if lab else [],
        "confidence": confidence,
        "min_confidence": min(numbers) if numbers else None,
        "labelled": labelled,
        "is_demo": bool(row["is_demo"]),
        "entrez_date": row["entrez_date"],
        "trials": links(json.loads(row["trial_ids"] or "[]")),
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
    order, order_params = _order_by(sort, _ranked(f))
    page = " LIMIT ? OFFSET ?"
    page_params = [-1 if limit is None else int(limit), max(0, int(offset))]
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} {sql} {order}{page}", [*params, *order_params, *page_params]
    )
    return [_list_row(r) for r in rows]


def filtered_pmids(conn: sqlite3.Connection, f: StudyFilter, among: Sequence[int]) -> set[int]:
    """Which of these PMIDs match the filter (feeds, what's new: a few hundred at a time)."""
    sql, params = _from_where(f)
    out: set[int] = set()
    keys = [int(p) for p in among]
    for start in range(0, len(keys), _CHUNK):
        part = keys[start : start + _CHUNK]
        rows = conn.execute(
            f"SELECT pmid FROM (SELECT a.pmid AS pmid {sql}) WHERE pmid IN ({_placeholders(part)})",
            [*params, *part],
        )
        out.update(int(r[0]) for r in rows)
    return out


# -- one study ------------------------------------------------------------------------------
def study_detail(conn: sqlite3.Connection, pmid: str | int) -> dict[str, Any] | None:
    """Everything about one record: the Article, its labels (flat), links; None if unknown.

    Anything that is not a PMID (a 20-digit number would overflow SQLite) is unknown.
    """
    canonical = pmid_or_none(str(pmid)) if isinstance(pmid, str | int) else None
    if canonical is None:
        return None
    key = int(canonical)
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
    out["trials"] = links(article_trial_ids(article))
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
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 1), 0) AS retracted,
            COALESCE(SUM(l.relevance = 'in_scope' AND l.design = 'rct'
                AND a.trial_ids IS NOT NULL), 0) AS rcts_registered,
            COALESCE(SUM(a.retracted = 1 AND a.retracted_run = (SELECT MAX(id) FROM crawl_runs
                WHERE status = 'completed') AND a.first_seen_run IS NOT a.retracted_run), 0)
                AS newly_retracted
           FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.deleted = 0""",
        (since,),
    ).fetchone()
    out = {k: int(row[k]) for k in row.keys()}
    finished = conn.execute(
        "SELECT MAX(finished_at) FROM crawl_runs WHERE status = 'completed'"
    ).fetchone()[0]
    out["last_update"] = _iso(finished)
    out["new_since"] = since  # the "new in the last 30 days" tile opens added_since=this
    out["is_demo"] = meta(conn).get("demo") == "1"
    return out


def _studies_cte(f: StudyFilter) -> tuple[str, list[Any]]:
    """The filtered studies as a CTE ``fs`` with their label columns."""
    sql, params = _from_where(f)
    cols = ", ".join(("a.pmid, a.year", *(f"l.{name}" for name in LABEL_NAMES)))
    return f"WITH fs AS (SELECT {cols} {sql})", params


_CONDITION_FILTER = BY_NAME["conditions"].filter or "conditions"
_DESIGN_FILTER = BY_NAME["design"].filter or "designs"


def _condition_limit(f: StudyFilter) -> tuple[str, list[Any]]:
    """When the user picked conditions, rows of other conditions would answer another question."""
    picked = getattr(f, _CONDITION_FILTER)
    if not picked:
        return "", []
    return f" AND c.value IN ({_placeholders(picked)})", list(picked)


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
    picked = getattr(f, _DESIGN_FILTER)
    chosen = tuple(d for d in designs if not picked or d in picked)
    if not chosen:
        return []
    cte, params = _studies_cte(replace(f, **{_DESIGN_FILTER: chosen}))
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


def _breakdown_fields() -> dict[str, str]:
    """Field name -> label column: every label with a vocabulary or yes/no, sets also by
    their singular ('condition'), and the publication year."""
    out: dict[str, str] = {}
    for lab in LABELS:
        if lab.kind == "integer":
            continue  # a count per distinct sample size answers nothing
        out[lab.name] = lab.name
        if lab.is_set and lab.name.endswith("s"):
            out.setdefault(lab.name[:-1], lab.name)
    out["year"] = "year"
    return out


BREAKDOWN_FIELDS = _breakdown_fields()


def breakdown(conn: sqlite3.Connection, f: StudyFilter, field: str) -> list[dict[str, Any]]:
    """Study counts per value of one label (sets: a study counts once per value it has)."""
    col = BREAKDOWN_FIELDS.get(field)
    if col is None:
        raise ValueError(f"unknown breakdown field {field!r}; valid: {', '.join(BREAKDOWN_FIELDS)}")
    cte, params = _studies_cte(f)
    lab = BY_NAME.get(col)
    if lab is not None and lab.is_set:
        sql = (
            f"{cte} SELECT v.value AS value, COUNT(*) AS studies"
            f" FROM fs, json_each(fs.{col}) v WHERE fs.{col} IS NOT NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    else:
        sql = f"{cte} SELECT fs.{col} AS value, COUNT(*) AS studies FROM fs GROUP BY 1 ORDER BY 2 DESC, 1"
    out = [dict(r) for r in conn.execute(sql, params)]
    if lab is not None and not lab.is_set:
        for r in out:
            r["value"] = lab.decode(r["value"])
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
    by_cond = {c: 0 for c in VOCAB["conditions"]}
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


EXPORT_LABEL_FIELDS = (*LABEL_NAMES, "confidence", "needs_review", "verified")


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
        "trial_ids": article_trial_ids(article),
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


# -- the model card ------------------------------------------------------------------------
def model_card() -> dict[str, Any] | None:
    """The classifier's model card (metrics per label, review block), or None without one.

    The card is the classifier's to write; the dashboard reads it only through here.
    """
    from pipeline.classify.card import model_card as _card  # lazy: keeps numpy off the import

    return _card()


__all__ = [
    "FILTER_LABELS",
    "SearchSyntaxError",
    "snippets",
    "resolve_db_path",
    "StudyFilter",
    "breakdown",
    "connect",
    "count_studies",
    "crawl_history",
    "evidence_map",
    "export_record",
    "filtered_pmids",
    "fts_query",
    "headline",
    "iter_articles",
    "iter_export_rows",
    "list_studies",
    "meta",
    "model_card",
    "outcome_summary",
    "prisma_flow",
    "study_detail",
    "timeline",
]
