"""The evidence store: one SQLite file (WAL) holding records, crawl state, labels.

Everything that must survive a crash is written in the same transaction as
the records it describes, so a crawl killed at any point resumes exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import StoreError
from pipeline.records import Article

DEFAULT_DB = "data/kea.sqlite"


def resolve_db_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The database to use: the given path, else $KEA_DB, else data/kea.sqlite.

    The one place that knows the default; an empty path is an error, never the default.
    """
    if path is not None and not str(path).strip():
        raise StoreError("--db is empty: give a database path (or leave --db out)")
    chosen = path if path is not None else os.environ.get("KEA_DB") or DEFAULT_DB
    return Path(chosen)

# Label fields as TAXONOMY.md names them; set-valued ones are stored as JSON arrays.
LABEL_FIELDS = (
    "relevance",
    "conditions",
    "subgroups",
    "design",
    "outcome",
    "sample_size",
    "drug",
    "routes",
    "comparator",
    "psychotherapy",
)
SET_FIELDS = ("conditions", "subgroups", "routes")

SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    pmid INTEGER PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 1,
    title TEXT,
    abstract TEXT,
    doi TEXT,
    pmcid TEXT,
    journal TEXT,
    journal_iso TEXT,
    year INTEGER,
    pub_date TEXT,
    entrez_date TEXT,
    revised_date TEXT,
    language TEXT,
    first_author TEXT,
    retracted INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    is_demo INTEGER NOT NULL DEFAULT 0,
    data TEXT,
    content_hash TEXT,
    fetched_at REAL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS articles_year ON articles(year);
CREATE INDEX IF NOT EXISTS articles_entrez ON articles(entrez_date);
CREATE INDEX IF NOT EXISTS articles_live ON articles(deleted, pmid);

CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, abstract, content='articles', content_rowid='pmid',
    tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS articles_ai AFTER INSERT ON articles BEGIN
  INSERT INTO articles_fts(rowid, title, abstract) VALUES (new.pmid, new.title, new.abstract);
END;
CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
  VALUES ('delete', old.pmid, old.title, old.abstract);
END;
CREATE TRIGGER IF NOT EXISTS articles_au AFTER UPDATE OF title, abstract ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
  VALUES ('delete', old.pmid, old.title, old.abstract);
  INSERT INTO articles_fts(rowid, title, abstract) VALUES (new.pmid, new.title, new.abstract);
END;

CREATE TABLE IF NOT EXISTS crawl_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    query TEXT NOT NULL,
    eutils_url TEXT NOT NULL,
    mode TEXT NOT NULL,            -- full | incremental
    status TEXT NOT NULL,          -- running | completed | failed
    started_at REAL NOT NULL,
    finished_at REAL,
    since TEXT,                    -- watermark used by an incremental run
    total INTEGER,                 -- records the searches asked us to fetch
    fetched INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    missing INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    is_demo INTEGER NOT NULL DEFAULT 0,
    error TEXT
);

-- The PMIDs a run must fetch. Written once after the searches, ticked off in the
-- same transaction that stores each batch: the resume point of a killed crawl.
CREATE TABLE IF NOT EXISTS crawl_targets (
    run_id INTEGER NOT NULL,
    pmid INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, pmid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS labels (
    pmid INTEGER PRIMARY KEY,
    model_version TEXT,
    content_hash TEXT,
    relevance TEXT,
    conditions TEXT,      -- JSON array
    subgroups TEXT,       -- JSON array
    design TEXT,
    outcome TEXT,
    sample_size INTEGER,
    drug TEXT,
    routes TEXT,          -- JSON array
    comparator TEXT,
    psychotherapy INTEGER,
    confidence TEXT,      -- JSON {field or field:value: probability}
    evidence TEXT,        -- JSON {field: sentence or terms}
    needs_review INTEGER NOT NULL DEFAULT 0,
    verified TEXT,        -- JSON array of human-verified fields
    classified_at REAL
);
CREATE INDEX IF NOT EXISTS labels_design ON labels(design);
CREATE INDEX IF NOT EXISTS labels_relevance ON labels(relevance);
CREATE INDEX IF NOT EXISTS labels_relevance_design ON labels(relevance, design);

CREATE TABLE IF NOT EXISTS corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pmid INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT,           -- JSON
    source TEXT,          -- cli | dashboard
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS corrections_pmid ON corrections(pmid);

CREATE INDEX IF NOT EXISTS crawl_runs_finished ON crawl_runs(status, finished_at);

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


def content_hash(article: Article) -> str:
    """Hash of what the classifier reads, so labels are redone only when it changes."""
    payload = json.dumps(
        [article.title, article.abstract, article.publication_types, article.mesh_terms,
         article.keywords],
        ensure_ascii=False,
    )
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def _revision_key(revised: str | None, version: int | None) -> tuple[str, int]:
    return (revised or "", version or 0)


class Store:
    """The one door to the SQLite file. Open with ``Store(path)``; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, readonly: bool = False):
        self.path = resolve_db_path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.exists():
                    raise StoreError(f"database {self.path} does not exist (run `kea crawl` first)")
                self.conn = sqlite3.connect(
                    self.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and not os.access(self.path, os.W_OK):
                    raise StoreError(f"database {self.path} is not writable")
                if not os.access(self.path.parent, os.W_OK):
                    raise StoreError(f"database folder {self.path.parent} is not writable")
                self.conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(SCHEMA)
                self.conn.commit()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open database {self.path}: {err}") from err
        except OSError as err:
            raise StoreError(f"cannot create database {self.path}: {err.strerror}") from err
        self.conn.row_factory = sqlite3.Row

    # -- plumbing -----------------------------------------------------------
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self.conn:
                yield self.conn
        except sqlite3.OperationalError as err:
            raise StoreError(f"cannot write to database {self.path}: {err}") from err

    def analyze(self) -> None:
        """Refresh the query planner's statistics after a large write (crawl, classify)."""
        with self.transaction() as c:
            c.execute("ANALYZE")

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    @property
    def is_demo(self) -> bool:
        return self.get_meta("demo") == "1"

    # -- records ------------------------------------------------------------
    def upsert_batch(
        self,
        articles: Iterable[Article],
        deleted_pmids: Iterable[str] = (),
        *,
        run_id: int | None = None,
        is_demo: bool = False,
    ) -> UpsertResult:
        """Store one efetch batch atomically and tick its PMIDs off the run's targets.

        Idempotent: the same batch twice changes nothing; an older revision never
        replaces a newer one.
        """
        res = UpsertResult()
        now = time.time()
        articles = list(articles)
        with self.transaction() as c:
            pmids = [int(a.pmid) for a in articles]
            existing: dict[int, tuple[Any, ...]] = {}
            for i in range(0, len(pmids), 900):  # SQLite's bound-parameter limit
                part = pmids[i : i + 900]
                marks = ",".join("?" * len(part))
                for row in c.execute(
                    "SELECT pmid, revised_date, version, data, deleted FROM articles "
                    f"WHERE pmid IN ({marks})",
                    part,
                ):
                    existing[row[0]] = tuple(row[1:])
            if run_id is not None:
                c.executemany(
                    "UPDATE crawl_targets SET done=1 WHERE run_id=? AND pmid=?",
                    [(run_id, p) for p in pmids],
                )
            rows = []
            for a, pmid in zip(articles, pmids, strict=True):
                data = json.dumps(a.to_dict(), ensure_ascii=False, separators=(",", ":"))
                old = existing.get(pmid)
                if old is not None:
                    if _revision_key(a.revised_date, a.version) < _revision_key(old[0], old[1]):
                        res.unchanged += 1  # an older revision never replaces a newer one
                        continue
                    if old[2] == data and not old[3]:
                        res.unchanged += 1
                        continue
                    res.updated += 1
                else:
                    res.new += 1
                existing[pmid] = (a.revised_date, a.version, data, 0)  # a repeat in one batch
                first = a.authors[0].display if a.authors else None
                rows.append((
                    pmid, a.version, a.title, a.abstract, a.doi, a.pmcid, a.journal,
                    a.journal_iso, a.pub_year, a.pub_date, a.entrez_date, a.revised_date,
                    a.language, first, int(a.retracted), int(is_demo), data,
                    content_hash(a), now, run_id,
                ))
            c.executemany(
                """INSERT INTO articles(pmid, version, title, abstract, doi, pmcid, journal,
                    journal_iso, year, pub_date, entrez_date, revised_date, language,
                    first_author, retracted, deleted, is_demo, data, content_hash,
                    fetched_at, run_id)
                   VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?)
                   ON CONFLICT(pmid) DO UPDATE SET
                    version=excluded.version, title=excluded.title,
                    abstract=excluded.abstract, doi=excluded.doi, pmcid=excluded.pmcid,
                    journal=excluded.journal, journal_iso=excluded.journal_iso,
                    year=excluded.year, pub_date=excluded.pub_date,
                    entrez_date=excluded.entrez_date, revised_date=excluded.revised_date,
                    language=excluded.language, first_author=excluded.first_author,
                    retracted=excluded.retracted, deleted=0, is_demo=excluded.is_demo,
                    data=excluded.data, content_hash=excluded.content_hash,
                    fetched_at=excluded.fetched_at, run_id=excluded.run_id""",
                rows,
            )
            for d in deleted_pmids:
                pmid = int(d)
                cur = c.execute(
                    "UPDATE articles SET deleted=1 WHERE pmid=? AND deleted=0", (pmid,)
                )
                res.deleted += cur.rowcount
                if run_id is not None:
                    c.execute(
                        "UPDATE crawl_targets SET done=1 WHERE run_id=? AND pmid=?", (run_id, pmid)
                    )
            if run_id is not None:
                c.execute(
                    "UPDATE crawl_runs SET fetched=fetched+?, new=new+?, updated=updated+?, "
                    "unchanged=unchanged+?, deleted=deleted+? WHERE id=?",
                    (res.new + res.updated + res.unchanged, res.new, res.updated,
                     res.unchanged, res.deleted, run_id),
                )
        return res

    def get_article(self, pmid: str | int) -> Article | None:
        row = self.conn.execute("SELECT data FROM articles WHERE pmid=?", (int(pmid),)).fetchone()
        return Article.from_dict(json.loads(row[0])) if row else None

    def iter_articles(self, *, include_deleted: bool = False) -> Iterator[Article]:
        sql = "SELECT data FROM articles"
        if not include_deleted:
            sql += " WHERE deleted=0"
        sql += " ORDER BY pmid"
        for (data,) in self.conn.execute(sql):
            yield Article.from_dict(json.loads(data))

    def stored_pmids(self) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT pmid FROM articles")}

    def count(self, *, include_deleted: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM articles" + ("" if include_deleted else " WHERE deleted=0")
        return self.conn.execute(sql).fetchone()[0]

    def max_date(self, column: str) -> str | None:
        if column not in ("entrez_date", "revised_date"):
            raise ValueError(column)
        return self.conn.execute(f"SELECT MAX({column}) FROM articles WHERE is_demo=0").fetchone()[0]

    def years(self) -> list[tuple[int | None, int]]:
        return [
            (r[0], r[1])
            for r in self.conn.execute(
                "SELECT year, COUNT(*) FROM articles WHERE deleted=0 GROUP BY year ORDER BY year"
            )
        ]

    # -- crawl runs and targets --------------------------------------------
    def start_run(self, query: str, eutils_url: str, mode: str, *, is_demo: bool = False,
                  since: str | None = None) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO crawl_runs(query, eutils_url, mode, status, started_at, is_demo, since)"
                " VALUES(?,?,?,?,?,?,?)",
                (query, eutils_url, mode, "running", time.time(), int(is_demo), since),
            )
            return int(cur.lastrowid)

    def unfinished_run(self, query: str, eutils_url: str) -> sqlite3.Row | None:
        """The newest run for this query and server that neither completed nor was superseded."""
        return self.conn.execute(
            "SELECT * FROM crawl_runs WHERE query=? AND eutils_url=? AND status IN ('running','failed')"
            " AND id > COALESCE((SELECT MAX(id) FROM crawl_runs WHERE query=? AND eutils_url=?"
            " AND status='completed'), 0) ORDER BY id DESC LIMIT 1",
            (query, eutils_url, query, eutils_url),
        ).fetchone()

    def last_completed_run(self, query: str, eutils_url: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM crawl_runs WHERE query=? AND eutils_url=? AND status='completed'"
            " ORDER BY id DESC LIMIT 1",
            (query, eutils_url),
        ).fetchone()

    def runs(self, limit: int = 20) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT * FROM crawl_runs ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()

    def set_targets(self, run_id: int, pmids: Iterable[int | str]) -> None:
        """Record the PMIDs a run must fetch (adds to any already recorded)."""
        with self.transaction() as c:
            c.executemany(
                "INSERT OR IGNORE INTO crawl_targets(run_id, pmid) VALUES(?, ?)",
                ((run_id, int(p)) for p in pmids),
            )
            total = c.execute(
                "SELECT COUNT(*) FROM crawl_targets WHERE run_id=?", (run_id,)
            ).fetchone()[0]
            c.execute("UPDATE crawl_runs SET total=? WHERE id=?", (total, run_id))

    def pending_targets(self, run_id: int) -> set[int]:
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT pmid FROM crawl_targets WHERE run_id=? AND done=0", (run_id,)
            )
        }

    def target_count(self, run_id: int) -> tuple[int, int]:
        """(done, total) for a run."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(done),0), COUNT(*) FROM crawl_targets WHERE run_id=?", (run_id,)
        ).fetchone()
        return int(row[0]), int(row[1])

    def update_run(self, run_id: int, **fields: Any) -> None:
        allowed = {"status", "finished_at", "total", "missing", "requests", "error", "since", "mode"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown run fields: {sorted(bad)}")
        if not fields:
            return
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as c:
            c.execute(f"UPDATE crawl_runs SET {cols} WHERE id=?", (*fields.values(), run_id))

    def add_requests(self, run_id: int, n: int) -> None:
        with self.transaction() as c:
            c.execute("UPDATE crawl_runs SET requests=requests+? WHERE id=?", (n, run_id))

    # -- labels -------------------------------------------------------------
    def corrections_for(self, pmid: int | str) -> dict[str, Any]:
        """The latest human correction per field."""
        out: dict[str, Any] = {}
        for field_, value in self.conn.execute(
            "SELECT field, value FROM corrections WHERE pmid=? ORDER BY id", (int(pmid),)
        ):
            out[field_] = json.loads(value)
        return out

    def all_corrections(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for pmid, field_, value in self.conn.execute(
            "SELECT pmid, field, value FROM corrections ORDER BY id"
        ):
            out.setdefault(pmid, {})[field_] = json.loads(value)
        return out

    def add_correction(self, pmid: int | str, field_: str, value: Any, source: str = "cli") -> None:
        """Record a human correction and apply it to the stored labels at once."""
        if field_ not in LABEL_FIELDS:
            raise ValueError(f"unknown label field {field_!r}; valid: {', '.join(LABEL_FIELDS)}")
        pmid = int(pmid)
        if self.conn.execute("SELECT 1 FROM articles WHERE pmid=?", (pmid,)).fetchone() is None:
            raise StoreError(f"PMID {pmid} is not in the database {self.path}")
        with self.transaction() as c:
            c.execute(
                "INSERT INTO corrections(pmid, field, value, source, created_at) VALUES(?,?,?,?,?)",
                (pmid, field_, json.dumps(value), source, time.time()),
            )
            row = c.execute("SELECT verified FROM labels WHERE pmid=?", (pmid,)).fetchone()
            if row is None:
                c.execute("INSERT INTO labels(pmid, verified) VALUES(?, '[]')", (pmid,))
                verified: list[str] = []
            else:
                verified = json.loads(row[0] or "[]")
            if field_ not in verified:
                verified.append(field_)
            stored = json.dumps(value) if field_ in SET_FIELDS else value
            if field_ == "psychotherapy" and value is not None:
                stored = int(bool(value))
            c.execute(
                f"UPDATE labels SET {field_}=?, verified=? WHERE pmid=?",
                (stored, json.dumps(verified), pmid),
            )

    def save_labels(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store classifier output; human corrections win over predictions field by field.

        Each row: pmid, model_version, content_hash, every LABEL_FIELDS value,
        confidence (dict), evidence (dict), needs_review (bool).
        """
        corrections = self.all_corrections()
        n = 0
        now = time.time()
        with self.transaction() as c:
            for r in rows:
                pmid = int(r["pmid"])
                fix = corrections.get(pmid, {})
                vals = {f: fix.get(f, r.get(f)) for f in LABEL_FIELDS}
                for f in SET_FIELDS:
                    vals[f] = json.dumps(sorted(vals[f] or []))
                if vals["psychotherapy"] is not None:
                    vals["psychotherapy"] = int(bool(vals["psychotherapy"]))
                c.execute(
                    """INSERT INTO labels(pmid, model_version, content_hash, relevance, conditions,
                        subgroups, design, outcome, sample_size, drug, routes, comparator,
                        psychotherapy, confidence, evidence, needs_review, verified, classified_at)
                       VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT(pmid) DO UPDATE SET model_version=excluded.model_version,
                        content_hash=excluded.content_hash, relevance=excluded.relevance,
                        conditions=excluded.conditions, subgroups=excluded.subgroups,
                        design=excluded.design, outcome=excluded.outcome,
                        sample_size=excluded.sample_size, drug=excluded.drug,
                        routes=excluded.routes, comparator=excluded.comparator,
                        psychotherapy=excluded.psychotherapy, confidence=excluded.confidence,
                        evidence=excluded.evidence, needs_review=excluded.needs_review,
                        verified=excluded.verified, classified_at=excluded.classified_at""",
                    (
                        pmid, r.get("model_version"), r.get("content_hash"),
                        vals["relevance"], vals["conditions"], vals["subgroups"], vals["design"],
                        vals["outcome"], vals["sample_size"], vals["drug"], vals["routes"],
                        vals["comparator"], vals["psychotherapy"],
                        json.dumps(r.get("confidence") or {}), json.dumps(r.get("evidence") or {}),
                        int(_needs_review(r, fix)),
                        json.dumps(sorted(fix)), now,
                    ),
                )
                n += 1
        return n

    def unlabelled(self, model_version: str) -> Iterator[Article]:
        """Records with no labels, or labels from another model or older content."""
        sql = (
            "SELECT a.data FROM articles a LEFT JOIN labels l ON l.pmid=a.pmid "
            "WHERE a.deleted=0 AND (l.pmid IS NULL OR l.model_version IS NULL "
            "OR l.model_version != ? OR l.content_hash IS NOT a.content_hash) ORDER BY a.pmid"
        )
        for (data,) in self.conn.execute(sql, (model_version,)):
            yield Article.from_dict(json.loads(data))

    def get_labels(self, pmid: int | str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM labels WHERE pmid=?", (int(pmid),)).fetchone()
        return decode_label_row(row) if row else None


def _needs_review(row: dict[str, Any], fix: dict[str, Any]) -> bool:
    """Uncertain fields still need a human unless a human already settled each of them."""
    fields = set(row.get("review_fields") or [])
    if fields:
        return bool(fields - set(fix))
    return bool(row.get("needs_review")) and not fix


def decode_label_row(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A labels row as TAXONOMY-named Python values."""
    d = dict(row)
    out: dict[str, Any] = {}
    for f in LABEL_FIELDS:
        v = d.get(f)
        if f in SET_FIELDS:
            v = json.loads(v) if v else []
        elif f == "psychotherapy" and v is not None:
            v = bool(v)
        out[f] = v
    out["confidence"] = json.loads(d.get("confidence") or "{}")
    out["evidence"] = json.loads(d.get("evidence") or "{}")
    out["needs_review"] = bool(d.get("needs_review"))
    out["verified"] = json.loads(d.get("verified") or "[]")
    out["model_version"] = d.get("model_version")
    return out
