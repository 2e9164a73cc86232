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
from dataclasses import fields as dataclass_fields
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
def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _from_where(
    f: StudyFilter,
    *,
    counted: bool = False,
    retracted_only: bool = False,
    pmids: Sequence[int] | None = None,
) -> tuple[str, list[Any]]:
    """``FROM ... WHERE ...`` of the filtered studies (aliases: a articles, l labels, s fts).

    ``counted``: only the studies that count as evidence (retracted ones never do);
    ``retracted_only``: only the retracted ones (what a count leaves out); ``pmids``:
    only these records (store keys).
    """
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
    if counted:
        where.append("a.retracted = 0")
    if retracted_only:
        where.append("a.retracted = 1")
    if pmids is not None:
        where.append("a.pmid IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([int(p) for p in pmids]))
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
def count_studies(conn: sqlite3.Connection, f: StudyFilter, *, counted: bool = False) -> int:
    """How many studies match (for the headline of a filtered view, whose list shows the
    retracted ones marked); ``counted=True``: only those that count as evidence."""
    sql, params = _from_where(f, counted=counted)
    return int(conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()[0])


_LIST_COLUMNS = ", ".join(
    (
        "a.pmid, a.title, a.first_author, a.year, a.journal, a.doi, a.retracted, a.is_demo,"
        " a.entrez_date, a.trial_ids, l.pmid AS label_pmid",
        *(f"l.{name}" for name in LABEL_NAMES),
        "l.needs_review, l.review, l.verified, l.confidence, l.evidence",
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


# -- the confidence of what is shown ---------------------------------------------------------
def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def shown_confidence(labels: dict[str, Any]) -> dict[str, float | None]:
    """Per label, the confidence that the value shown is right (common.md's contract).

    ``confidence[label]`` when the model wrote it; for rows written before that: a set
    label takes the lowest of its shown members (``conditions:<c>``), never of the
    classes it does not show; a single label its ``label:value`` entry. A label a human
    verified is 1.0: the model's old probability is not the confidence of a human's value.
    None when nothing says.
    """
    conf = labels.get("confidence") or {}
    verified = set(labels.get("verified") or ())
    out: dict[str, float | None] = {}
    for lab in LABELS:
        name = lab.name
        if name in verified:
            out[name] = 1.0
            continue
        got = _number(conf.get(name))
        if got is None:
            value = labels.get(name)
            if lab.is_set:
                members = [_number(conf.get(f"{name}:{m}")) for m in value or ()]
                known = [m for m in members if m is not None]
                got = min(known) if known else None
            elif value is not None:
                got = _number(conf.get(f"{name}:{value}"))
        out[name] = got
    return out


def lowest_confidence(shown: dict[str, float | None]) -> tuple[str | None, float | None]:
    """The least certain shown label and its confidence ((None, None) when none is known)."""
    known = [(p, name) for name, p in shown.items() if p is not None]
    if not known:
        return None, None
    p, name = min(known)
    return name, p


def _without_model_view(d: dict[str, Any], verified: set[str]) -> dict[str, Any]:
    """A confidence/evidence dict without the entries of human-verified labels."""
    return {k: v for k, v in d.items() if k.split(":", 1)[0] not in verified}


def verifications(
    conn: sqlite3.Connection, pmids: Sequence[str | int]
) -> dict[str, dict[str, dict[str, Any]]]:
    """pmid -> label -> the latest human correction: author, time (ISO, UTC), source."""
    keys = [int(p) for p in pmids]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = conn.execute(
            "SELECT pmid, field, author, created_at, source FROM corrections"
            f" WHERE pmid IN ({_placeholders(chunk)}) ORDER BY id",
            chunk,
        )
        for r in rows:
            out.setdefault(str(r["pmid"]), {})[r["field"]] = {
                "author": r["author"],
                "at": _iso(r["created_at"]),
                "source": r["source"],
            }
    return out


def _confidence_fields(
    labels: dict[str, Any] | None, verified_by: dict[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """The row fields of the confidence contract (see ``list_studies``)."""
    if labels is None:
        return {
            "confidence": {},
            "evidence": {},
            "label_confidence": {lab.name: None for lab in LABELS},
            "min_confidence": None,
            "min_confidence_label": None,
            "verified_by": {},
        }
    verified = set(labels.get("verified") or ())
    shown = shown_confidence(labels)
    low_label, low = lowest_confidence(shown)
    return {
        "confidence": _without_model_view(labels.get("confidence") or {}, verified),
        "evidence": _without_model_view(labels.get("evidence") or {}, verified),
        "label_confidence": shown,
        "min_confidence": low,
        "min_confidence_label": low_label,
        "verified_by": {
            name: (verified_by or {}).get(name, {"author": None, "at": None, "source": None})
            for name in labels.get("verified") or ()
        },
    }


def _list_row(
    row: sqlite3.Row, verified_by: dict[str, dict[str, dict[str, Any]]]
) -> dict[str, Any]:
    labelled = row["label_pmid"] is not None
    lab = decode_label_row(row) if labelled else None
    pmid = str(row["pmid"])
    return {
        "pmid": pmid,
        "title": row["title"],
        "first_author": row["first_author"],
        "year": row["year"],
        "journal": row["journal"],
        "doi": row["doi"],
        **{label.name: lab[label.name] if lab else _unlabelled(label) for label in LABELS},
        "retracted": bool(row["retracted"]),
        "needs_review": lab["needs_review"] if lab else None,
        "review": lab["review"] if lab else None,
        "verified": lab["verified"] if lab else [],
        **_confidence_fields(lab, verified_by.get(pmid)),
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
    """One page of matching studies, strongest evidence first by default.

    Besides the labels each row carries the confidence of what it shows:
    ``label_confidence`` {label: probability that the shown value is right, 1.0 for a
    human-verified label, None when unknown}, ``min_confidence`` / ``min_confidence_label``
    (the least certain shown label), ``verified_by`` {label: {author, at, source}} for the
    human-verified labels, ``review`` (labels flagged for review; None on rows older than
    per-label flags), and ``confidence``/``evidence`` as stored minus the model's entries
    for human-verified labels. Retracted studies are listed (``retracted`` True), never
    hidden: only counts leave them out.
    """
    sql, params = _from_where(f)
    order, order_params = _order_by(sort, _ranked(f))
    page = " LIMIT ? OFFSET ?"
    page_params = [-1 if limit is None else int(limit), max(0, int(offset))]
    rows = conn.execute(
        f"SELECT {_LIST_COLUMNS} {sql} {order}{page}", [*params, *order_params, *page_params]
    ).fetchall()
    checked = [r["pmid"] for r in rows if r["verified"] not in (None, "[]")]
    verified_by = verifications(conn, checked) if checked else {}
    return [_list_row(r, verified_by) for r in rows]


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

    The confidence fields are those of ``list_studies`` (``label_confidence``,
    ``min_confidence``, ``verified_by``; no model confidence or evidence for a label a
    human verified).

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
    labels = decode_label_row(row) if out["labelled"] else None
    out.update(decode_label_row(row))
    checked = verifications(conn, [key]).get(str(key), {}) if labels else {}
    out.update(_confidence_fields(labels, checked))
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
    """The dashboard's top numbers. Study counts are of live (not deleted) in-scope records
    that count as evidence: a retracted study is in none of them, only in ``retracted``
    (with its PMIDs in ``retracted_pmids``, to show beside the numbers);
    total_records/labelled/needs_review are of all live records."""
    since = ((today or date.today()) - timedelta(days=30)).isoformat()
    row = conn.execute(
        """SELECT
            COUNT(*) AS total_records,
            COUNT(l.pmid) AS labelled,
            COALESCE(SUM(l.needs_review = 1), 0) AS needs_review,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 0), 0) AS in_scope,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 0 AND l.design = 'rct'), 0)
                AS rcts,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 0
                AND l.design = 'systematic_review'), 0) AS systematic_reviews,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 0 AND a.entrez_date >= ?), 0)
                AS new_last_30_days,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 1), 0) AS retracted,
            COALESCE(SUM(l.relevance = 'in_scope' AND a.retracted = 0 AND l.design = 'rct'
                AND a.trial_ids IS NOT NULL), 0) AS rcts_registered,
            COALESCE(SUM(a.retracted = 1 AND a.retracted_run = (SELECT MAX(id) FROM crawl_runs
                WHERE status = 'completed') AND a.first_seen_run IS NOT a.retracted_run), 0)
                AS newly_retracted
           FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.deleted = 0""",
        (since,),
    ).fetchone()
    out: dict[str, Any] = {k: int(row[k]) for k in row.keys()}
    out["retracted_pmids"] = [
        str(r[0])
        for r in conn.execute(
            "SELECT a.pmid FROM articles a JOIN labels l ON l.pmid = a.pmid WHERE a.deleted = 0"
            " AND a.retracted = 1 AND l.relevance = 'in_scope' ORDER BY a.pmid DESC"
        )
    ]
    finished = conn.execute(
        "SELECT MAX(finished_at) FROM crawl_runs WHERE status = 'completed'"
    ).fetchone()[0]
    out["last_update"] = _iso(finished)
    out["new_since"] = since  # the "new in the last 30 days" tile opens added_since=this
    out["is_demo"] = meta(conn).get("demo") == "1"
    return out


def retracted_not_counted(
    conn: sqlite3.Connection, f: StudyFilter, designs: Sequence[str] | None = None
) -> dict[str, Any]:
    """The retracted studies a count of ``f`` leaves out, to show beside it.

    ``designs`` narrows to those designs as ``outcome_summary``/``question_answer`` do.
    Returns ``{"count": k, "pmids": [...], "studies": [{pmid, title, year, design,
    pubmed_url}], "text": "1 retracted study not counted"}`` (text None when k is 0).
    """
    if designs is not None:
        picked = getattr(f, _DESIGN_FILTER)
        chosen = tuple(d for d in designs if not picked or d in picked)
        if not chosen:
            return _retracted_block([])
        f = replace(f, **{_DESIGN_FILTER: chosen})
    sql, params = _from_where(f, retracted_only=True)
    rows = conn.execute(
        f"SELECT a.pmid, a.title, a.year, l.design {sql} ORDER BY a.pmid DESC", params
    ).fetchall()
    return _retracted_block(
        [
            {
                "pmid": str(r["pmid"]),
                "title": r["title"],
                "year": r["year"],
                "design": r["design"],
                "pubmed_url": PUBMED_URL.format(pmid=r["pmid"]),
            }
            for r in rows
        ]
    )


def _retracted_block(studies: list[dict[str, Any]]) -> dict[str, Any]:
    k = len(studies)
    text = None if not k else f"{k} retracted {'study' if k == 1 else 'studies'} not counted"
    return {"count": k, "pmids": [s["pmid"] for s in studies], "studies": studies, "text": text}


def _studies_cte(f: StudyFilter) -> tuple[str, list[Any]]:
    """The filtered studies that count as evidence (never a retracted one) as a CTE ``fs``
    with their label columns; ``retracted_not_counted`` lists what it leaves out."""
    sql, params = _from_where(f, counted=True)
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

    ``participants`` sums the stated sample sizes, None when no study of the cell states
    one (never 0: "0 participants" would claim empty trials); ``with_n`` says how many
    studies gave a size and ``n_not_stated`` how many did not ("N not stated (k studies)").
    Reviews report pooled participants, so rct and systematic_review sums can overlap.
    Retracted studies are not counted (``retracted_not_counted(conn, f, designs)``).
    """
    picked = getattr(f, _DESIGN_FILTER)
    chosen = tuple(d for d in designs if not picked or d in picked)
    if not chosen:
        return []
    cte, params = _studies_cte(replace(f, **{_DESIGN_FILTER: chosen}))
    extra, extra_params = _condition_limit(f)
    rows = conn.execute(
        f"{cte} SELECT c.value AS condition, fs.outcome, COUNT(*) AS studies,"
        " SUM(fs.sample_size) AS participants, COUNT(fs.sample_size) AS with_n,"
        " COUNT(*) - COUNT(fs.sample_size) AS n_not_stated"
        f" FROM fs, json_each(fs.conditions) c WHERE fs.conditions IS NOT NULL{extra}"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        [*params, *extra_params],
    )
    return [dict(r) for r in rows]


STRONG_DESIGNS = ("rct", "systematic_review")


def _participants(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    sizes = [r["sample_size"] for r in rows if r.get("sample_size") is not None]
    return {
        "participants": sum(sizes) if sizes else None,
        "with_n": len(sizes),
        "n_not_stated": len(rows) - len(sizes),
    }


def question_answer(
    conn: sqlite3.Connection,
    filters: Sequence[StudyFilter],
    designs: Sequence[str] = STRONG_DESIGNS,
    *,
    limit: int = 5000,
) -> dict[str, Any]:
    """How the studies of the given designs matching ANY of ``filters`` came out.

    The Questions page's answer: each study once, retracted ones never counted (listed
    in ``retracted``). Returns ``studies`` (counted), ``rows`` (list_studies rows, counted
    ones, strength order), ``cells`` [{design, outcome, studies, participants (None when
    no study states N), with_n, n_not_stated}] for every design x outcome, ``totals``
    {outcome: studies}, ``participants``/``with_n``/``n_not_stated`` over all counted,
    ``newest`` and ``largest`` (3 each), ``truncated`` (a filter had more than ``limit``
    rows) and ``retracted`` (see ``retracted_not_counted``).
    """
    counted: dict[str, dict[str, Any]] = {}
    left_out: dict[str, dict[str, Any]] = {}
    truncated = False
    for f in filters:
        picked = getattr(f, _DESIGN_FILTER)
        chosen = tuple(d for d in designs if not picked or d in picked)
        if not chosen:
            continue
        rows = list_studies(conn, replace(f, **{_DESIGN_FILTER: chosen}), limit=limit)
        truncated = truncated or len(rows) >= limit
        for r in rows:
            (left_out if r["retracted"] else counted).setdefault(r["pmid"], r)
    rows = sorted(
        counted.values(),
        key=lambda r: (
            DESIGN_RANK.get(r["design"], len(DESIGN_RANK)),
            -(r["sample_size"] or -1),
            -(r["year"] or 0),
            r["pmid"],
        ),
    )
    cells = []
    for design in designs:
        for outcome in VOCAB["outcome"]:
            cell = [r for r in rows if r["design"] == design and r["outcome"] == outcome]
            cells.append(
                {"design": design, "outcome": outcome, "studies": len(cell), **_participants(cell)}
            )
    newest = sorted(rows, key=lambda r: (r["entrez_date"] or "", r["year"] or 0), reverse=True)
    largest = sorted(
        (r for r in rows if r["sample_size"]), key=lambda r: r["sample_size"], reverse=True
    )
    return {
        "studies": len(rows),
        "rows": rows,
        "cells": cells,
        "totals": {o: sum(r["outcome"] == o for r in rows) for o in VOCAB["outcome"]},
        **_participants(rows),
        "newest": newest[:3],
        "largest": largest[:3],
        "truncated": truncated,
        "retracted": _retracted_block(
            [
                {
                    "pmid": r["pmid"],
                    "title": r["title"],
                    "year": r["year"],
                    "design": r["design"],
                    "pubmed_url": r["pubmed_url"],
                }
                for r in sorted(left_out.values(), key=lambda r: int(r["pmid"]), reverse=True)
            ]
        ),
    }


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
    """Counts for a PRISMA-style flow from retrieval to in-scope studies per condition.

    ``retracted`` in-scope records are excluded (``included`` = in_scope - retracted), and
    ``in_scope_by_condition`` counts the included ones only.
    """
    row = conn.execute(
        """SELECT COUNT(*) AS retrieved,
            COALESCE(SUM(a.deleted = 1), 0) AS deleted,
            COALESCE(SUM(a.deleted = 0 AND l.relevance IS NULL), 0) AS unlabelled,
            COALESCE(SUM(a.deleted = 0 AND l.relevance = 'off_topic'), 0) AS off_topic,
            COALESCE(SUM(a.deleted = 0 AND l.relevance = 'in_scope'), 0) AS in_scope,
            COALESCE(SUM(a.deleted = 0 AND l.relevance = 'in_scope' AND a.retracted = 1), 0)
                AS retracted
           FROM articles a LEFT JOIN labels l ON l.pmid = a.pmid"""
    ).fetchone()
    out: dict[str, Any] = {k: int(row[k]) for k in row.keys()}
    out["duplicates"] = 0
    out["duplicates_note"] = (
        "0 by construction: records are keyed on PMID, so a record returned by several "
        "searches or crawls is stored once"
    )
    out["screened"] = out["retrieved"] - out["deleted"]
    out["included"] = out["in_scope"] - out["retracted"]
    by_cond = {c: 0 for c in VOCAB["conditions"]}
    for r in conn.execute(
        "SELECT c.value, COUNT(*) FROM articles a JOIN labels l ON l.pmid = a.pmid,"
        " json_each(l.conditions) c WHERE a.deleted = 0 AND l.relevance = 'in_scope'"
        " AND a.retracted = 0 AND l.conditions IS NOT NULL GROUP BY 1"
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


def _pmid_keys(pmids: Sequence[str | int]) -> list[int]:
    """PMIDs as store keys; anything that is not a PMID matches nothing."""
    keys = []
    for p in pmids:
        canonical = pmid_or_none(str(p)) if isinstance(p, str | int) else None
        if canonical is not None:
            keys.append(int(canonical))
    return keys


def iter_articles(
    conn: sqlite3.Connection, f: StudyFilter, pmids: Sequence[str | int] | None = None
) -> Iterator[tuple[Article, dict[str, Any] | None, bool]]:
    """(Article, decoded labels or None, is_demo) in strength order, streamed.

    ``pmids``: only these of the filtered records (the dashboard's selected rows).
    The labels carry ``verified_by`` (see ``verifications``). Only the ordered PMIDs are
    held in memory; the big ``data`` column is read in chunks, so 50k records never sit
    in one fetchall.
    """
    sql, params = _from_where(f, pmids=None if pmids is None else _pmid_keys(pmids))
    order, order_params = _order_by("strength", False)
    ordered = [r[0] for r in conn.execute(f"SELECT a.pmid {sql} {order}", [*params, *order_params])]
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        rows = conn.execute(
            "SELECT a.pmid AS article_pmid, a.data, a.is_demo, l.* FROM articles a"
            f" LEFT JOIN labels l ON l.pmid = a.pmid WHERE a.pmid IN ({_placeholders(chunk)})",
            chunk,
        )
        by_pmid = {r["article_pmid"]: r for r in rows}
        checked = [p for p, r in by_pmid.items() if r["verified"] not in (None, "[]")]
        verified_by = verifications(conn, checked) if checked else {}
        for pmid in chunk:
            r = by_pmid.get(pmid)
            if r is None or r["data"] is None:  # deleted between the two reads
                continue
            labels = decode_label_row(r) if r["pmid"] is not None else None
            if labels is not None:
                labels["verified_by"] = verified_by.get(str(pmid), {})
            yield Article.from_dict(json.loads(r["data"])), labels, bool(r["is_demo"])


EXPORT_LABEL_FIELDS = (*LABEL_NAMES, "confidence", "needs_review", "verified")


def export_record(
    article: Article, labels: dict[str, Any] | None, *, is_demo: bool | None = None
) -> dict[str, Any]:
    """One record as issue 2/3 name its fields; every label None when unlabelled.

    Beside the labels: ``confidence`` and ``evidence`` as stored (minus the model's
    entries for human-verified labels), ``label_confidence`` {label: confidence of the
    value shown}, ``review`` (labels flagged for review), ``verified`` and ``verified_by``
    {label: {author, at, source}}, and the PubMed link.
    """
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
        "pubmed_url": PUBMED_URL.format(pmid=article.pmid),
        "trial_ids": article_trial_ids(article),
    }
    for name in EXPORT_LABEL_FIELDS:
        rec[name] = labels.get(name) if labels is not None else None
    if labels is None:
        rec.update(
            evidence=None, label_confidence=None, review=None, verified_by=None, model_version=None
        )
    else:
        fields = _confidence_fields(labels, labels.get("verified_by"))
        rec.update(
            confidence=fields["confidence"],
            evidence=fields["evidence"],
            label_confidence=fields["label_confidence"],
            review=labels.get("review"),
            verified_by=fields["verified_by"],
            model_version=labels.get("model_version"),
        )
    if is_demo is not None:
        rec["is_demo"] = is_demo
    return rec


def iter_export_rows(
    conn: sqlite3.Connection, f: StudyFilter, pmids: Sequence[str | int] | None = None
) -> Iterator[dict[str, Any]]:
    """Full bibliographic record + every label, strength order, streamed."""
    demo = meta(conn).get("demo") == "1"
    for article, labels, is_demo in iter_articles(conn, f, pmids):
        yield export_record(article, labels, is_demo=is_demo if demo else None)


# -- provenance ---------------------------------------------------------------------------
NCBI_NOTICE = (
    "Bibliographic data from PubMed (U.S. National Library of Medicine, via NCBI E-utilities). "
    "NLM/NCBI neither endorse nor check this export or the labels added to it; abstracts may "
    "be protected by their publishers' copyright."
)
NCBI_DISCLAIMER_URL = "https://www.ncbi.nlm.nih.gov/About/disclaimer.html"


def filter_fields(f: StudyFilter) -> dict[str, Any]:
    """The fields of ``f`` that differ from the default view (tuples as lists)."""
    out: dict[str, Any] = {}
    for fld in dataclass_fields(f):
        value = getattr(f, fld.name)
        if value != fld.default:
            out[fld.name] = list(value) if isinstance(value, tuple) else value
    return out


def describe_filter(f: StudyFilter) -> str:
    """The filter as 'name=value' pairs, only what differs from the defaults ('none')."""
    parts = [
        f"{name}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for name, v in filter_fields(f).items()
    ]
    return "; ".join(parts) if parts else "none"


def _kea_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kea")
    except PackageNotFoundError:
        return "unknown"


def provenance(
    conn: sqlite3.Connection,
    f: StudyFilter,
    *,
    pmids: Sequence[str | int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Where an export comes from, for its About sheet / ``.about.json`` / zip.

    ``query`` (the PubMed search), ``evidence_as_of`` (end of the last completed crawl,
    UTC), ``model_versions`` (the models that made the labels of these records, from the
    labels table: what ``kea classify`` wrote per row) and ``model_version`` (them joined,
    or "not classified" when no record of the filter has labels), ``filter`` (text) and
    ``filter_fields``, ``selected_pmids`` (when only some rows were exported),
    ``record_count``, ``retracted_count``, ``exported_at``, ``kea_version``, ``source``
    (NCBI's notice) and ``ncbi_disclaimer``; ``demo`` is True for the stand-in's records.
    The NCBI API key is never read here.
    """
    info = meta(conn)
    keys = None if pmids is None else _pmid_keys(pmids)
    sql, params = _from_where(f, pmids=keys)
    row = conn.execute(f"SELECT COUNT(*), COALESCE(SUM(a.retracted), 0) {sql}", params).fetchone()
    versions = [
        r[0]
        for r in conn.execute(f"SELECT DISTINCT l.model_version {sql} ORDER BY 1", params)
        if r[0] is not None
    ]
    last = conn.execute(
        "SELECT query, finished_at FROM crawl_runs WHERE status = 'completed'"
        " ORDER BY finished_at DESC, id DESC LIMIT 1"
    ).fetchone()
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    out: dict[str, Any] = {
        "title": "Ketamine Evidence Atlas export",
        "query": info.get("query") or (last["query"] if last else None) or "unknown",
        "evidence_as_of": _iso(last["finished_at"]) if last else None,
        "model_versions": versions,
        "model_version": ", ".join(versions) if versions else "not classified",
        "filter": describe_filter(f),
        "filter_fields": filter_fields(f),
        "record_count": int(row[0]),
        "retracted_count": int(row[1]),
        "exported_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kea_version": _kea_version(),
        "source": NCBI_NOTICE,
        "ncbi_disclaimer": NCBI_DISCLAIMER_URL,
        "demo": info.get("demo") == "1",
    }
    if keys is not None:
        out["selected_pmids"] = [str(k) for k in keys]
    return out


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
    "NCBI_NOTICE",
    "STRONG_DESIGNS",
    "describe_filter",
    "filter_fields",
    "lowest_confidence",
    "provenance",
    "question_answer",
    "retracted_not_counted",
    "shown_confidence",
    "verifications",
    "resolve_db_path",
    "StudyFilter",
    "breakdown",
    "connect",
    "count_studies",
    "crawl_history",
    "evidence_map",
    "export_record",
    "filtered_pmids",
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
