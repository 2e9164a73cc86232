"""The evidence store: one SQLite file (WAL) holding records, crawl state, labels.

Everything that must survive a crash is written in the same transaction as
the records it describes, so a crawl killed at any point resumes exactly.

The schema, its version and its migrations live in ``pipeline.schema`` (how to add a
migration is written there); the label columns and their encoding come from the
registry, ``pipeline.labels``. Opening recognises a kea store by its application id
(or, for the 0.1 release, its tables), upgrades an older one after a backup copy, and
refuses anything else without writing a byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import labels as label_registry
from pipeline import schema
from pipeline.errors import LabelValueError, StoreError
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


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


def content_hash(article: Article) -> str:
    """Hash of what the classifier reads, so labels are redone only when it changes."""
    payload = json.dumps(
        [
            article.title,
            article.abstract,
            article.publication_types,
            article.mesh_terms,
            article.keywords,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


def search_columns(article: Article) -> tuple[str | None, str | None, str | None, str | None]:
    """The v2 search columns of a record: authors, MeSH and publication types as text (the
    full-text index's field tags) and its trial registration ids (JSON, or None)."""
    from pipeline.trials import article_trial_ids

    ids = article_trial_ids(article)
    return (
        "; ".join(article.author_names) or None,
        "; ".join(article.mesh_terms) or None,
        "; ".join(article.publication_types) or None,
        json.dumps(ids) if ids else None,
    )


def _revision_key(revised: str | None, version: int | None) -> tuple[str, int]:
    return (revised or "", version or 0)


class Store:
    """The one door to the SQLite file. Open with ``Store(path)``; use as a context manager.

    Opening for writing creates a missing file at the latest schema (unless
    ``create=False``) and upgrades an older kea store in place, a backup first (see
    ``pipeline.schema``). ``readonly=True`` opens as ``connect_readonly`` does. Files that
    are not kea stores, and stores from a newer kea, are refused and left untouched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
        create: bool = True,
    ):
        self.path = resolve_db_path(path)
        self.readonly = readonly
        self.backup_path: Path | None = None  # set when this open upgraded the store
        if readonly:
            self.conn = connect_readonly(self.path)
            return
        if not create and not self.path.exists():
            raise StoreError(f"database {self.path} does not exist (run `kea crawl` first)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and not os.access(self.path, os.W_OK):
                raise StoreError(f"database {self.path} is not writable")
            if not os.access(self.path.parent, os.W_OK):
                raise StoreError(f"database folder {self.path.parent} is not writable")
            version = _inspect(self.path)  # refuses non-kea and newer files before any write
            self.conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            try:
                if version is None:
                    _run_locked(self.conn, self.path, _create)
                elif _needs_upgrade(self.conn, version):
                    self.backup_path = _run_locked(self.conn, self.path, _upgrade)
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                self.conn.close()
                raise
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
                    "SELECT pmid, revised_date, version, data, deleted, retracted FROM articles "
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
                existing[pmid] = (a.revised_date, a.version, data, 0, int(a.retracted))
                newly_retracted = a.retracted and (old is None or not old[4])
                first = a.authors[0].display if a.authors else None
                rows.append(
                    (
                        pmid,
                        a.version,
                        a.title,
                        a.abstract,
                        a.doi,
                        a.pmcid,
                        a.journal,
                        a.journal_iso,
                        a.pub_year,
                        a.pub_date,
                        a.entrez_date,
                        a.revised_date,
                        a.language,
                        first,
                        int(a.retracted),
                        int(is_demo),
                        data,
                        content_hash(a),
                        now,
                        run_id,
                        *search_columns(a),
                        now,
                        run_id,
                        now if newly_retracted else None,
                        run_id if newly_retracted else None,
                    )
                )
            c.executemany(
                """INSERT INTO articles(pmid, version, title, abstract, doi, pmcid, journal,
                    journal_iso, year, pub_date, entrez_date, revised_date, language,
                    first_author, retracted, deleted, is_demo, data, content_hash,
                    fetched_at, run_id, authors_text, mesh_text, pubtypes_text, trial_ids,
                    first_seen_at, first_seen_run, retracted_at, retracted_run)
                   VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(pmid) DO UPDATE SET
                    version=excluded.version, title=excluded.title,
                    abstract=excluded.abstract, doi=excluded.doi, pmcid=excluded.pmcid,
                    journal=excluded.journal, journal_iso=excluded.journal_iso,
                    year=excluded.year, pub_date=excluded.pub_date,
                    entrez_date=excluded.entrez_date, revised_date=excluded.revised_date,
                    language=excluded.language, first_author=excluded.first_author,
                    retracted=excluded.retracted, deleted=0, is_demo=excluded.is_demo,
                    data=excluded.data, content_hash=excluded.content_hash,
                    fetched_at=excluded.fetched_at, run_id=excluded.run_id,
                    authors_text=excluded.authors_text, mesh_text=excluded.mesh_text,
                    pubtypes_text=excluded.pubtypes_text, trial_ids=excluded.trial_ids,
                    retracted_at=COALESCE(excluded.retracted_at, articles.retracted_at),
                    retracted_run=COALESCE(excluded.retracted_run, articles.retracted_run)""",
                rows,
            )
            for d in deleted_pmids:
                pmid = int(d)
                cur = c.execute("UPDATE articles SET deleted=1 WHERE pmid=? AND deleted=0", (pmid,))
                res.deleted += cur.rowcount
                if run_id is not None:
                    c.execute(
                        "UPDATE crawl_targets SET done=1 WHERE run_id=? AND pmid=?", (run_id, pmid)
                    )
            if run_id is not None:
                c.execute(
                    "UPDATE crawl_runs SET fetched=fetched+?, new=new+?, updated=updated+?, "
                    "unchanged=unchanged+?, deleted=deleted+? WHERE id=?",
                    (
                        res.new + res.updated + res.unchanged,
                        res.new,
                        res.updated,
                        res.unchanged,
                        res.deleted,
                        run_id,
                    ),
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
        return self.conn.execute(f"SELECT MAX({column}) FROM articles WHERE is_demo=0").fetchone()[
            0
        ]

    def years(self) -> list[tuple[int | None, int]]:
        return [
            (r[0], r[1])
            for r in self.conn.execute(
                "SELECT year, COUNT(*) FROM articles WHERE deleted=0 GROUP BY year ORDER BY year"
            )
        ]

    # -- crawl runs and targets --------------------------------------------
    def start_run(
        self,
        query: str,
        eutils_url: str,
        mode: str,
        *,
        is_demo: bool = False,
        since: str | None = None,
    ) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO crawl_runs(query, eutils_url, mode, status, started_at, is_demo,"
                " since) VALUES(?,?,?,?,?,?,?)",
                (query, eutils_url, mode, "running", time.time(), int(is_demo), since),
            )
            return int(cur.lastrowid)

    def unfinished_run(self, query: str, eutils_url: str) -> sqlite3.Row | None:
        """The newest run for this query and server that neither completed nor was superseded."""
        return self.conn.execute(
            "SELECT * FROM crawl_runs WHERE query=? AND eutils_url=?"
            " AND status IN ('running','failed')"
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
        allowed = {
            "status",
            "finished_at",
            "total",
            "missing",
            "requests",
            "error",
            "since",
            "mode",
        }
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

    def add_correction(
        self,
        pmid: int | str,
        field_: str,
        value: Any,
        source: str = "cli",
        author: str | None = None,
    ) -> None:
        """Record one human correction (see ``add_corrections``)."""
        self.add_corrections(pmid, {field_: value}, source=source, author=author)

    def add_corrections(
        self,
        pmid: int | str,
        changes: Mapping[str, Any],
        source: str = "cli",
        author: str | None = None,
    ) -> list[str]:
        """Record human corrections of one record and apply them to its labels at once.

        Every value is checked (``Label.check``) before anything is written, and all of
        them are written in one transaction: a bad value leaves nothing half-saved.
        ``author`` says who made them. Returns the corrected label names.
        """
        checked: dict[str, tuple[label_registry.Label, Any]] = {}
        for field_, value in changes.items():
            lab = label_registry.BY_NAME.get(field_)
            if lab is None:
                raise LabelValueError(
                    f"unknown label {field_!r}; valid: {', '.join(label_registry.LABEL_NAMES)}"
                )
            try:
                checked[field_] = (lab, lab.check(value))
            except ValueError as err:
                raise LabelValueError(f"cannot correct PMID {pmid}: {err}") from None
        pmid = int(pmid)
        if self.conn.execute("SELECT 1 FROM articles WHERE pmid=?", (pmid,)).fetchone() is None:
            raise StoreError(f"PMID {pmid} is not in the database {self.path}")
        with self.transaction() as c:
            for field_, (lab, value) in checked.items():
                c.execute(
                    "INSERT INTO corrections(pmid, field, value, source, created_at, author)"
                    " VALUES(?,?,?,?,?,?)",
                    (pmid, field_, json.dumps(value), source, time.time(), author),
                )
                row = c.execute(
                    "SELECT verified, review, needs_review FROM labels WHERE pmid=?", (pmid,)
                ).fetchone()
                if row is None:
                    c.execute("INSERT INTO labels(pmid, verified) VALUES(?, '[]')", (pmid,))
                    row = ("[]", None, 0)
                verified = json.loads(row[0] or "[]")
                if field_ not in verified:
                    verified.append(field_)
                review = None if row[1] is None else json.loads(row[1])
                if review is not None:
                    review = sorted(set(review) - {field_})
                    needs_review = label_registry.record_needs_review(review)
                else:  # no per-label flags recorded: as save_labels, a human has now looked
                    needs_review = False
                c.execute(
                    f"UPDATE labels SET {lab.name}=?, verified=?, review=?, needs_review=?"
                    " WHERE pmid=?",
                    (
                        lab.encode(value),
                        json.dumps(verified),
                        None if review is None else json.dumps(review),
                        int(needs_review),
                        pmid,
                    ),
                )
        return sorted(checked)

    def save_labels(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store classifier output; human corrections win over predictions label by label.

        Each row: pmid, model_version, content_hash, a value per registry label,
        confidence (dict), evidence (dict), needs_review (bool) and review_fields (the
        labels that need review; the human-corrected ones are dropped from it).
        """
        corrections = self.all_corrections()
        n = 0
        now = time.time()
        names = [lab.name for lab in label_registry.LABELS]
        cols = [*schema.LABELS_HEAD, *names, *schema.LABELS_TAIL]
        sql = (
            f"INSERT INTO labels({', '.join(cols)}) VALUES({', '.join('?' * len(cols))}) "
            "ON CONFLICT(pmid) DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in cols[1:])
        )
        with self.transaction() as c:
            for r in rows:
                pmid = int(r["pmid"])
                fix = corrections.get(pmid, {})
                values = [
                    lab.encode(fix[lab.name] if lab.name in fix else r.get(lab.name))
                    for lab in label_registry.LABELS
                ]
                if "review_fields" in r:
                    review: str | None = json.dumps(
                        sorted(set(r["review_fields"] or ()) - set(fix))
                    )
                else:
                    review = None
                c.execute(
                    sql,
                    (
                        pmid,
                        r.get("model_version"),
                        r.get("content_hash"),
                        *values,
                        json.dumps(r.get("confidence") or {}),
                        json.dumps(r.get("evidence") or {}),
                        int(_needs_review(r, fix)),
                        review,
                        json.dumps(sorted(fix)),
                        now,
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
    """Uncertain fields still need a human unless a human already settled each of them;
    only the record-level labels' flags (labels.RECORD_REVIEW_LABELS) flag the record."""
    fields = set(row.get("review_fields") or [])
    if fields:
        return label_registry.record_needs_review(fields - set(fix))
    return bool(row.get("needs_review")) and not fix


def decode_label_row(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A labels row as registry-named Python values.

    ``review`` is the list of labels that need review, or None when the row was written
    before per-label flags existed (schema v0); ``needs_review`` says whether any does.
    """
    d = dict(row)
    out: dict[str, Any] = {lab.name: lab.decode(d.get(lab.name)) for lab in label_registry.LABELS}
    out["confidence"] = json.loads(d.get("confidence") or "{}")
    out["evidence"] = json.loads(d.get("evidence") or "{}")
    out["needs_review"] = bool(d.get("needs_review"))
    out["review"] = None if d.get("review") is None else json.loads(d["review"])
    out["verified"] = json.loads(d.get("verified") or "[]")
    out["model_version"] = d.get("model_version")
    return out


# -- opening: what a file is, creating, upgrading ----------------------------------------
def _ro_uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro"


def _inspect(path: Path) -> int | None:
    """The kea schema version of the file at ``path`` (None: missing or empty), read-only.

    Refuses, with one line and without writing a byte, a file that is not SQLite, a SQLite
    file that is not a kea store, and a store from a newer kea.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    with closing(sqlite3.connect(_ro_uri(path), uri=True)) as conn:
        return _version(conn, path)


def _version(conn: sqlite3.Connection, path: Path) -> int | None:
    try:
        version = schema.version_of(conn)
    except ValueError as err:
        raise StoreError(f"{path} is not a kea database: {err}; kea leaves it alone") from None
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{path} is not a kea database ({err}); kea leaves it alone") from None
    if version is not None and version > schema.latest():
        raise StoreError(
            f"database {path} has schema version {version}, newer than this kea knows "
            f"({schema.latest()}): upgrade kea to open it (the file was not changed)"
        )
    return version


def _needs_upgrade(conn: sqlite3.Connection, version: int) -> bool:
    return version < schema.latest() or bool(schema.missing_label_columns(conn))


def _run_locked(
    conn: sqlite3.Connection, path: Path, step: Callable[[sqlite3.Connection, Path], Any]
) -> Any:
    """Run a schema step in one write transaction; on any error nothing is changed."""
    conn.isolation_level = None  # explicit BEGIN/COMMIT: DDL and PRAGMAs stay in the transaction
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = step(conn, path)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.isolation_level = ""
    return out


def _create(conn: sqlite3.Connection, path: Path) -> None:
    if schema.version_of(conn) is not None:  # another process created it meanwhile
        return _upgrade(conn, path)
    schema.create(conn)
    return None


def _upgrade(conn: sqlite3.Connection, path: Path) -> Path | None:
    """Migrate an older store to the latest schema; the backup's path if one was taken.

    Runs inside ``_run_locked``'s transaction, so the version is read again under the lock
    (another process may have upgraded the store meanwhile).
    """
    old = schema.version_of(conn)
    assert old is not None
    backup = None
    if old < schema.latest():
        backup = _backup(path, old)
        step = old
        try:
            for step in range(old, schema.latest()):
                schema.MIGRATIONS[step](conn)
            conn.execute(f"PRAGMA user_version = {schema.latest()}")
        except Exception as err:
            raise StoreError(
                f"upgrading database {path} from schema v{step} to v{step + 1} failed "
                f"({err}); nothing was changed, and a copy is at {backup}"
            ) from err
    schema.add_label_columns(conn)
    return backup


def _backup(path: Path, version: int) -> Path:
    """Copy the store with SQLite's backup API (consistent even mid-WAL) before a migration."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.bak-v{version}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bak-v{version}-{stamp}-{n}")
    with (
        closing(sqlite3.connect(_ro_uri(path), uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    return target


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A read-only connection to a kea store at the latest schema (dashboard, exports).

    Never creates a file. An older store is first upgraded through ``Store`` (backup
    taken) when the file is writable; if it is not, the error says how to upgrade it.
    """
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise StoreError(f"database {path} {what} (run `kea crawl` first)")
    conn = None
    try:
        conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
        version = _version(conn, path)
        if version is None:
            raise StoreError(f"database {path} is empty (run `kea crawl` first)")
        if _needs_upgrade(conn, version):
            missing = [lab.name for lab in schema.missing_label_columns(conn)]
            conn.close()
            conn = None
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                if version < schema.latest():
                    what = f"is at schema v{version} and this kea needs v{schema.latest()}"
                else:
                    what = f"has no column for the label(s) {', '.join(missing)}"
                raise StoreError(
                    f"database {path} {what}, but it is read-only here: make it writable "
                    "(or copy it to a writable folder) and open it once with kea to upgrade "
                    "it (a backup copy is kept)"
                )
            Store(path).close()
            conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
        conn.execute("SELECT 1 FROM articles LIMIT 1")
    except sqlite3.Error as err:
        if conn is not None:
            conn.close()
        raise StoreError(f"cannot read database {path}: {err}") from err
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    conn.row_factory = sqlite3.Row
    return conn
