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

import json
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
    run_id INTEGER,
    authors_text TEXT,    -- v2: "Last Initials; ..." for [au] search
    mesh_text TEXT,       -- v2: MeSH descriptors, for [mh]
    pubtypes_text TEXT,   -- v2: publication types, for [pt]
    trial_ids TEXT,       -- v2: JSON array of canonical registry ids (pipeline.trials)
    first_seen_at REAL,   -- v2: when this store first stored the record
    first_seen_run INTEGER,  -- v2: the crawl run that first stored it
    retracted_at REAL,    -- v2: when the store saw it become retracted
    retracted_run INTEGER -- v2: the crawl run that saw it become retracted
);
CREATE INDEX articles_year ON articles(year);
CREATE INDEX articles_first_seen ON articles(first_seen_run);
CREATE INDEX articles_retracted_run ON articles(retracted_run);
CREATE INDEX articles_entrez ON articles(entrez_date);
CREATE INDEX articles_live ON articles(deleted, pmid);

CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, abstract, authors_text, journal, mesh_text, pubtypes_text,
    content='articles', content_rowid='pmid', tokenize='porter unicode61'
);
@FTS_TRIGGERS@

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

CREATE TABLE saved_searches (
    name TEXT PRIMARY KEY,
    params TEXT NOT NULL,     -- the filter as a dashboard URL query string
    created_at REAL NOT NULL,
    author TEXT
);
"""

# v2's full-text index triggers (frozen: the v1 -> v2 migration writes these same statements)
_FTS_COLS = "title, abstract, authors_text, journal, mesh_text, pubtypes_text"
_FTS_NEW = (
    "new.title, new.abstract, new.authors_text, new.journal, new.mesh_text, new.pubtypes_text"
)
_FTS_OLD = (
    "old.title, old.abstract, old.authors_text, old.journal, old.mesh_text, old.pubtypes_text"
)
FTS_TRIGGERS_V2 = (
    f"""CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
  INSERT INTO articles_fts(rowid, {_FTS_COLS}) VALUES (new.pmid, {_FTS_NEW});
END;""",
    f"""CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, {_FTS_COLS}) VALUES ('delete', old.pmid, {_FTS_OLD});
END;""",
    f"""CREATE TRIGGER articles_au AFTER UPDATE OF {_FTS_COLS} ON articles BEGIN
  INSERT INTO articles_fts(articles_fts, rowid, {_FTS_COLS}) VALUES ('delete', old.pmid, {_FTS_OLD});
  INSERT INTO articles_fts(rowid, {_FTS_COLS}) VALUES (new.pmid, {_FTS_NEW});
END;""",
)


def _label_column(lab: label_registry.Label) -> str:
    if not lab.name.isidentifier() or lab.name in LABELS_RESERVED:
        raise ValueError(f"label name {lab.name!r} cannot be a labels column")
    return f"{lab.name} {lab.sql_type}"


def schema_sql() -> str:
    """The DDL of a new store at ``latest()``, with one labels column per registry label."""
    cols = ",\n    ".join(_label_column(lab) for lab in label_registry.LABELS)
    return _SCHEMA.replace("@LABEL_COLUMNS@", cols).replace(
        "@FTS_TRIGGERS@", "\n".join(FTS_TRIGGERS_V2)
    )


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


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """v1 -> v2 (search, follow, trials): author/MeSH/publication-type text in the full-text
    index (field tags), trial registration ids, when each record was first stored and
    seen retracted (feeds, "added since"), and saved searches.

    Records stored before v2 count as first seen by the run that stored them (and as
    retracted by it, when they are), so the first feed after an upgrade is not the whole
    store. Trial ids are read from the stored record by ``pipeline.trials`` (data, not
    schema: a later extractor may fill them anew).
    """
    for col in (
        "authors_text TEXT",
        "mesh_text TEXT",
        "pubtypes_text TEXT",
        "trial_ids TEXT",
        "first_seen_at REAL",
        "first_seen_run INTEGER",
        "retracted_at REAL",
        "retracted_run INTEGER",
    ):
        conn.execute(f"ALTER TABLE articles ADD COLUMN {col}")
    conn.execute(
        """UPDATE articles SET
        authors_text = (SELECT group_concat(COALESCE(json_extract(value, '$.collective_name'),
              trim(COALESCE(json_extract(value, '$.last_name'), '') || ' '
                   || COALESCE(json_extract(value, '$.initials'), '') || ' '
                   || COALESCE(json_extract(value, '$.suffix'), ''))), '; ')
            FROM json_each(data, '$.authors')),
        mesh_text = (SELECT group_concat(json_extract(value, '$.descriptor'), '; ')
            FROM json_each(data, '$.mesh')),
        pubtypes_text = (SELECT group_concat(value, '; ')
            FROM json_each(data, '$.publication_types')),
        first_seen_at = fetched_at, first_seen_run = run_id,
        retracted_at = CASE WHEN retracted = 1 THEN fetched_at END,
        retracted_run = CASE WHEN retracted = 1 THEN run_id END
        WHERE data IS NOT NULL AND json_valid(data)"""
    )
    from pipeline.trials import trial_ids  # lazy: the schema module stays import-light

    rows = conn.execute("SELECT pmid, abstract, data FROM articles WHERE data IS NOT NULL")
    updates = []
    for pmid, abstract, data in rows.fetchall():
        try:
            accessions = json.loads(data).get("accession_numbers") or []
        except ValueError:
            accessions = []
        ids = [t.id for t in trial_ids(accessions, abstract)]
        updates.append((json.dumps(ids) if ids else None, pmid))
    conn.executemany("UPDATE articles SET trial_ids = ? WHERE pmid = ?", updates)
    for trigger in ("articles_ai", "articles_ad", "articles_au"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    conn.execute("DROP TABLE articles_fts")
    conn.execute(
        """CREATE VIRTUAL TABLE articles_fts USING fts5(
    title, abstract, authors_text, journal, mesh_text, pubtypes_text,
    content='articles', content_rowid='pmid', tokenize='porter unicode61'
)"""
    )
    for stmt in FTS_TRIGGERS_V2:
        conn.execute(stmt)
    conn.execute("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')")
    conn.execute("CREATE INDEX IF NOT EXISTS articles_first_seen ON articles(first_seen_run)")
    conn.execute("CREATE INDEX IF NOT EXISTS articles_retracted_run ON articles(retracted_run)")
    conn.execute(
        """CREATE TABLE saved_searches (
    name TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    created_at REAL NOT NULL,
    author TEXT
)"""
    )


# MIGRATIONS[v] turns a version-v store into a version-(v+1) one; append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v0_to_v1, _v1_to_v2]


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
