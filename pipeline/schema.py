"""The store's schema, its version, and the migrations that bring old stores up to it.

A kea store says what it is in the SQLite header: ``PRAGMA application_id`` is
``APPLICATION_ID`` (0x6B656173, the ASCII bytes "keas", for "kea store") and
``PRAGMA user_version`` is the schema version. Version 0 is the 0.1 release: it set
neither, and is recognised by its tables (``V0_TABLES``). Any other SQLite file is not
ours and is never touched.

- A new (missing or empty) file is created at ``latest()`` directly from ``schema_sql()``.
- An older store is upgraded on open by ``pipeline.store``: a backup copy first, then
  ``MIGRATIONS[old:]`` in one transaction with the new ``user_version``; any error rolls
  everything back.
- The label columns follow the registry (``pipeline.labels.LABELS``): a new store gets
  them from ``schema_sql()``, an existing one gets any it lacks from
  ``missing_label_columns``/``add_label_columns``, run on every writable open after the
  migrations. Adding a label therefore needs no migration.

How to add a migration (say v1 -> v2):

1. Write ``def _v1_to_v2(conn: sqlite3.Connection) -> None`` with the plain SQL that
   changes a v1 store into a v2 one and append it to ``MIGRATIONS`` (``latest()`` follows).
   A migration is frozen once released: write its SQL out in full, never derive it from
   ``schema_sql()`` or the registry (they move on; the migration must not). Do not
   commit inside it; the caller owns the transaction.
2. Change ``_SCHEMA`` so that a new store is what the migrated one is.
3. ``tests/test_migrations.py`` checks that a new store and an upgraded 0.1 store have
   the same tables, columns and indexes, and that every record, label, correction and
   crawl run survives; add a test for what your migration fills in, and, if it changes
   data, commit a small fixture store made by the release before it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from pipeline import labels as label_registry

APPLICATION_ID = 0x6B656173  # b"keas": "kea store"

# The tables every kea store has had since 0.1 (version 0 is recognised by these).
V0_TABLES = frozenset(
    {"articles", "articles_fts", "crawl_runs", "crawl_targets", "labels", "corrections", "meta"}
)

# labels columns that are not labels, before and after the label columns; a Label may not
# take one of these names.
LABELS_HEAD = ("pmid", "model_version", "content_hash")
LABELS_TAIL = ("confidence", "evidence", "needs_review", "review", "verified", "classified_at")
LABELS_RESERVED = frozenset(LABELS_HEAD + LABELS_TAIL)

# The read-side indexes the query layer relies on (the schema owns them).
READ_INDEXES = (
    "CREATE INDEX IF NOT EXISTS articles_live ON articles(deleted, pmid)",
    "CREATE INDEX IF NOT EXISTS labels_relevance_design ON labels(relevance, design)",
    "CREATE INDEX IF NOT EXISTS crawl_runs_finished ON crawl_runs(status, finished_at)",
)

_SCHEMA = """
CREATE TABLE articles (
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
CREATE INDEX articles_year ON articles(year);
CREATE INDEX articles_entrez ON articles(entrez_date);
CREATE INDEX articles_live ON articles(deleted, pmid);

CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, abstract, content='articles', content_rowid='pmid',
    tokenize='porter unicode61'
);
CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
  INSERT INTO articles_fts(rowid, title, abstract) VALUES (new.pmid, new.title, new.abstract);
END;
CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
  VALUES ('delete', old.pmid, old.title, old.abstract);
END;
CREATE TRIGGER articles_au AFTER UPDATE OF title, abstract ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, title, abstract)
  VALUES ('delete', old.pmid, old.title, old.abstract);
  INSERT INTO articles_fts(rowid, title, abstract) VALUES (new.pmid, new.title, new.abstract);
END;

CREATE TABLE crawl_runs (
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
CREATE INDEX crawl_runs_finished ON crawl_runs(status, finished_at);

-- The PMIDs a run must fetch. Written once after the searches, ticked off in the
-- same transaction that stores each batch: the resume point of a killed crawl.
CREATE TABLE crawl_targets (
    run_id INTEGER NOT NULL,
    pmid INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, pmid)
) WITHOUT ROWID;

CREATE TABLE labels (
    pmid INTEGER PRIMARY KEY,
    model_version TEXT,
    content_hash TEXT,
    @LABEL_COLUMNS@,
    confidence TEXT,      -- JSON {label or label:value: probability}
    evidence TEXT,        -- JSON {label: sentence or terms}
    needs_review INTEGER NOT NULL DEFAULT 0,  -- any label needs review
    review TEXT,          -- JSON array of the labels that need review (NULL: before v1)
    verified TEXT,        -- JSON array of human-verified labels
    classified_at REAL
);
CREATE INDEX labels_design ON labels(design);
CREATE INDEX labels_relevance ON labels(relevance);
CREATE INDEX labels_relevance_design ON labels(relevance, design);

CREATE TABLE corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pmid INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT,           -- JSON
    source TEXT,          -- cli | dashboard
    created_at REAL NOT NULL,
    author TEXT           -- who made it (NULL: not recorded, or before v1)
);
CREATE INDEX corrections_pmid ON corrections(pmid);

CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
"""


def _label_column(lab: label_registry.Label) -> str:
    if not lab.name.isidentifier() or lab.name in LABELS_RESERVED:
        raise ValueError(f"label name {lab.name!r} cannot be a labels column")
    return f"{lab.name} {lab.sql_type}"


def schema_sql() -> str:
    """The DDL of a new store at ``latest()``, with one labels column per registry label."""
    cols = ",\n    ".join(_label_column(lab) for lab in label_registry.LABELS)
    return _SCHEMA.replace("@LABEL_COLUMNS@", cols)


def create(conn: sqlite3.Connection) -> None:
    """Create a new store at ``latest()`` (inside the caller's transaction)."""
    for stmt in _statements(schema_sql()):
        conn.execute(stmt)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {latest()}")


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (triggers hold ';' inside BEGIN ... END)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf.strip()[:60]}")
    return out


# -- migrations ---------------------------------------------------------------------------
def _v0_to_v1(conn: sqlite3.Connection) -> None:
    """0.1 -> v1: correction authors, per-label review flags, the read-side indexes, our id."""
    conn.execute("ALTER TABLE corrections ADD COLUMN author TEXT")
    conn.execute("ALTER TABLE labels ADD COLUMN review TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS articles_live ON articles(deleted, pmid)")
    conn.execute("CREATE INDEX IF NOT EXISTS labels_relevance_design ON labels(relevance, design)")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS crawl_runs_finished ON crawl_runs(status, finished_at)"
    )
    conn.execute("PRAGMA application_id = 1801806195")  # APPLICATION_ID, frozen here


# MIGRATIONS[v] turns a version-v store into a version-(v+1) one; append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v0_to_v1]


def latest() -> int:
    """The schema version this code writes: one past the last migration."""
    return len(MIGRATIONS)


# -- what a file is -----------------------------------------------------------------------
def version_of(conn: sqlite3.Connection) -> int | None:
    """The kea schema version of an open file; None for an empty one.

    Raises ValueError with the reason when the file is a SQLite database but not a kea store.
    """
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if app_id == APPLICATION_ID:
        if not V0_TABLES <= tables:
            raise ValueError("it has kea's application id but not kea's tables (damaged?)")
        return int(user_version)
    if app_id != 0:
        raise ValueError(f"its application id is {app_id:#010x}, not kea's {APPLICATION_ID:#010x}")
    if not tables and user_version == 0:
        return None
    if user_version == 0 and V0_TABLES <= tables:
        return 0  # the 0.1 release: no id, no version, kea's tables
    shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    raise ValueError(f"it holds other tables ({shown or 'none'}) and no kea application id")


def missing_label_columns(conn: sqlite3.Connection) -> list[label_registry.Label]:
    """Registry labels the store's labels table has no column for."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(labels)")}
    return [lab for lab in label_registry.LABELS if lab.name not in have]


def add_label_columns(conn: sqlite3.Connection) -> list[str]:
    """Add a column for each registry label the store lacks (idempotent); the names added."""
    added = []
    for lab in missing_label_columns(conn):
        conn.execute(f"ALTER TABLE labels ADD COLUMN {_label_column(lab)}")
        added.append(lab.name)
    return added
