"""Versioned schema: a 0.1 store upgrades with nothing lost; foreign and newer files stay untouched.

The fixture ``tests/fixtures/stores/v0-release-0.1.sqlite`` was written by the 0.1 release
(see make_v0.py next to it). Every test copies it to tmp first: the fixture is never opened
in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from pipeline import labels, schema
from pipeline.errors import StoreError
from pipeline.store import Store, connect_readonly, decode_label_row

FIXTURE = Path(__file__).parent / "fixtures" / "stores" / "v0-release-0.1.sqlite"
TABLES = ("articles", "labels", "corrections", "crawl_runs", "crawl_targets", "meta")
# SQLite's backup API rewrites these header counters in the copy (file change counter,
# schema cookie, version-valid-for); they are bookkeeping, not data.
BACKUP_REWRITTEN = set(range(24, 28)) | set(range(40, 44)) | set(range(92, 96))


@pytest.fixture
def v0(tmp_path: Path) -> Path:
    p = tmp_path / "kea.sqlite"
    shutil.copyfile(FIXTURE, p)
    return p


def _plain(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _snapshot(path: Path) -> dict[str, Any]:
    """Every row of every kea table, by the fixture's (v0) columns, read with plain sqlite3."""
    with _plain(path) as conn:
        out: dict[str, Any] = {}
        for t in TABLES:
            cols = _columns(_plain(FIXTURE), t)
            out[t] = conn.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY 1, 2").fetchall()
        out["seq"] = conn.execute("SELECT * FROM sqlite_sequence ORDER BY 1").fetchall()
    return out


def _schema_shape(conn: sqlite3.Connection) -> dict[str, Any]:
    """Tables with their columns, indexes with their columns, triggers: what queries rely on."""
    shape: dict[str, Any] = {}
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    ):
        shape[f"table {name}"] = sorted(
            (r[1], r[2].upper(), r[3], r[4], r[5])
            for r in conn.execute(f"PRAGMA table_info({name})")
        )
    for name, table in conn.execute(
        "SELECT name, tbl_name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
    ):
        cols = [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
        shape[f"index {name}"] = (table, cols)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
        shape[f"trigger {name}"] = True
    return shape


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak-*"))


def _dir_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- the upgrade ------------------------------------------------------------------------
def test_fixture_is_the_0_1_release_schema() -> None:
    with _plain(FIXTURE) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0
        assert "author" not in _columns(conn, "corrections")
        assert conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == 40
        assert conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == 34
        assert conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0] == 8
        assert conn.execute("SELECT COUNT(*) FROM crawl_runs").fetchone()[0] == 2


def test_upgrade_keeps_every_record_label_correction_and_run(v0: Path) -> None:
    before = _snapshot(v0)
    original = v0.read_bytes()
    with _plain(v0) as conn:
        labels_before = {
            r["pmid"]: decode_label_row(r)
            for r in _rows(conn, "SELECT * FROM labels ORDER BY pmid")
        }
        word = conn.execute("SELECT title FROM articles WHERE title != '' LIMIT 1").fetchone()[0]
        word = max(word.split(), key=len).strip(".,:;()")
        fts_q = "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ? ORDER BY rowid"
        hits_before = [r[0] for r in conn.execute(fts_q, (word,))]
        fixes_before = conn.execute(
            "SELECT pmid, field, value FROM corrections ORDER BY id"
        ).fetchall()
    assert hits_before and len(before["articles"]) == 40

    with Store(v0) as s:
        assert s.backup_path is not None
        # every record, by every column (the JSON data included), label, correction, run, target
        assert _snapshot(v0) == before
        for pmid, lab in labels_before.items():
            got = s.get_labels(pmid)
            assert got == {**lab, "review": None}, pmid
        latest_fix: dict[int, dict[str, Any]] = {}
        for pmid, field, value in fixes_before:
            latest_fix.setdefault(pmid, {})[field] = json.loads(value)
        assert s.all_corrections() == latest_fix
        assert s.corrections_for(90000005) == {"psychotherapy": True, "outcome": "no_benefit"}
        for pmid, fix in latest_fix.items():
            assert sorted(s.get_labels(pmid)["verified"]) == sorted(fix)
        runs = s.runs()
        assert [r["status"] for r in runs] == ["failed", "completed"]
        failed = s.unfinished_run(runs[0]["query"], runs[0]["eutils_url"])
        assert failed is not None and failed["id"] == runs[0]["id"]
        assert len(s.pending_targets(failed["id"])) == 3
        assert [r[0] for r in s.conn.execute(fts_q, (word,))] == hits_before
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        s.conn.execute("INSERT INTO articles_fts(articles_fts) VALUES('integrity-check')")
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == schema.latest()
        assert s.conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert "author" in _columns(s.conn, "corrections")
        assert "review" in _columns(s.conn, "labels")

    # the backup is the original: SQLite's backup API rewrites three header counters only
    (backup,) = _backups(v0)
    assert backup.name.startswith("kea.sqlite.bak-v0-")
    copy = backup.read_bytes()
    assert len(copy) == len(original)
    assert [i for i in range(len(copy)) if copy[i] != original[i]] == [
        i for i in sorted(BACKUP_REWRITTEN) if copy[i] != original[i]
    ]
    assert copy[100:] == original[100:]
    assert _snapshot(backup) == before
    with _plain(backup) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0

    # a second open finds nothing to do: no second backup, same version
    with Store(v0) as s:
        assert s.backup_path is None
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == schema.latest()
    assert _backups(v0) == [backup]


def test_save_labels_after_upgrade_and_corrections_still_win(v0: Path) -> None:
    with Store(v0) as s:
        fixes = s.all_corrections()
        pmids = sorted(fixes)
        rows = []
        for pmid in pmids:
            rows.append({
                "pmid": pmid, "model_version": "after-upgrade", "content_hash": "x",
                "relevance": "off_topic", "conditions": ["anxiety"], "subgroups": [],
                "design": "preclinical", "outcome": "beneficial", "sample_size": 7,
                "drug": "ketamine", "routes": ["oral"], "comparator": "placebo",
                "psychotherapy": False, "confidence": {}, "evidence": {},
                "needs_review": True, "review_fields": sorted({"design", "outcome", "drug"}),
            })  # fmt: skip
        assert s.save_labels(rows) == len(pmids)
        for pmid in pmids:
            got = s.get_labels(pmid)
            assert got["model_version"] == "after-upgrade"
            for field, value in fixes[pmid].items():
                assert got[field] == value, (pmid, field)
            assert got["drug"] == "ketamine"  # predictions fill what no human corrected
            assert got["review"] == sorted({"design", "outcome", "drug"} - set(fixes[pmid]))
            assert got["needs_review"] is bool(got["review"])
        assert s.get_labels(90000005)["outcome"] == "no_benefit"  # the later of two fixes
        assert s.get_labels(90000005)["psychotherapy"] is True
        assert s.get_labels(90000004)["sample_size"] == 42
        assert s.get_labels(90000003)["conditions"] == ["depression", "ptsd"]
        s.add_correction(90000001, "drug", "esketamine", author="A. Reviewer")
        row = s.conn.execute("SELECT author FROM corrections ORDER BY id DESC LIMIT 1").fetchone()
        assert row[0] == "A. Reviewer"
        old = s.conn.execute("SELECT COUNT(*) FROM corrections WHERE author IS NULL").fetchone()
        assert old[0] == 8  # rows from before v1 have no author


def test_new_store_and_upgraded_store_have_the_same_schema(v0: Path, tmp_path: Path) -> None:
    Store(v0).close()
    Store(tmp_path / "new.sqlite").close()
    with _plain(v0) as up, _plain(tmp_path / "new.sqlite") as new:
        assert _schema_shape(up) == _schema_shape(new)
        for conn in (up, new):
            indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert {"articles_live", "labels_relevance_design", "crawl_runs_finished"} <= indexes
        assert new.execute("PRAGMA user_version").fetchone()[0] == schema.latest()
        assert new.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert _backups(tmp_path / "new.sqlite") == []  # a new store needs no backup


def test_upgrade_of_a_wal_store_with_uncheckpointed_writes(v0: Path) -> None:
    """A real 0.1 store is in WAL mode; the backup must hold what is still in the -wal file."""
    conn = sqlite3.connect(v0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO meta(key, value) VALUES('only-in-wal', 'yes')")
    conn.commit()
    assert Path(str(v0) + "-wal").stat().st_size > 0
    with Store(v0) as s:
        assert s.get_meta("only-in-wal") == "yes"
        backup = s.backup_path
    conn.close()
    assert backup is not None
    with _plain(backup) as b:
        assert b.execute("SELECT value FROM meta WHERE key='only-in-wal'").fetchone()[0] == "yes"


def test_failing_migration_rolls_back_everything(v0: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(v0)
    original = v0.read_bytes()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE articles ADD COLUMN half_done TEXT")
        conn.execute("UPDATE articles SET title = 'overwritten'")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(
        StoreError,
        match=rf"from schema v{len(schema.MIGRATIONS) - 1} to v{len(schema.MIGRATIONS)} failed.*nothing was changed",
    ) as e:
        Store(v0)
    assert "\n" not in str(e.value)
    assert v0.read_bytes() == original  # v0 -> v1 ran and was rolled back with the failure
    assert _snapshot(v0) == before
    with _plain(v0) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert "half_done" not in _columns(conn, "articles")
        assert "author" not in _columns(conn, "corrections")
    monkeypatch.undo()
    with Store(v0) as s:  # the real migrations still work afterwards
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == schema.latest()


# -- refusals ---------------------------------------------------------------------------
def _newer(tmp_path: Path) -> Path:
    p = tmp_path / "newer.sqlite"
    Store(p).close()
    with sqlite3.connect(p) as conn:
        conn.execute(f"PRAGMA user_version = {schema.latest() + 1}")
        conn.execute("PRAGMA journal_mode=DELETE")
    return p


@pytest.mark.parametrize("how", ["write", "readonly", "connect_readonly"])
def test_newer_store_is_refused_and_never_modified(tmp_path: Path, how: str) -> None:
    p = _newer(tmp_path)
    state = _dir_state(tmp_path)
    with pytest.raises(StoreError, match="newer than this kea knows") as e:
        _open(p, how)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    assert _dir_state(tmp_path) == state  # same bytes, no backup, no -wal or -shm left


def _foreign_tables(tmp_path: Path) -> Path:
    p = tmp_path / "other.sqlite"
    with sqlite3.connect(p) as conn:
        conn.execute("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes(body) VALUES('not ours')")
    return p


def _foreign_id(tmp_path: Path) -> Path:
    p = tmp_path / "other.sqlite"
    shutil.copyfile(FIXTURE, p)  # kea's very tables, but another application's id
    with sqlite3.connect(p) as conn:
        conn.execute("PRAGMA application_id = 0x12345678")
    return p


def _not_sqlite(tmp_path: Path) -> Path:
    p = tmp_path / "notes.txt"
    p.write_text("plain text, long enough to be taken for a database header? no.\n" * 20)
    return p


@pytest.mark.parametrize("make", [_foreign_tables, _foreign_id, _not_sqlite])
@pytest.mark.parametrize("how", ["write", "readonly", "connect_readonly"])
def test_non_kea_file_is_refused_and_never_modified(tmp_path: Path, make: Any, how: str) -> None:
    p = make(tmp_path)
    state = _dir_state(tmp_path)
    with pytest.raises(StoreError, match="is not a kea database") as e:
        _open(p, how)
    assert "\n" not in str(e.value)
    assert _dir_state(tmp_path) == state  # no kea tables, no WAL switch, nothing beside it


@pytest.mark.parametrize("how", ["readonly", "connect_readonly", "no-create"])
def test_missing_path_read_only_is_refused_and_not_created(tmp_path: Path, how: str) -> None:
    p = tmp_path / "sub" / "kea.sqlite"
    with pytest.raises(StoreError, match="does not exist"):
        _open(p, how)
    assert not p.exists() and not p.parent.exists()


def _open(p: Path, how: str) -> None:
    if how == "write":
        Store(p).close()
    elif how == "readonly":
        Store(p, readonly=True).close()
    elif how == "no-create":
        Store(p, create=False).close()
    else:
        connect_readonly(p).close()


# -- read-only opening that knows the version -------------------------------------------
def test_connect_readonly_upgrades_a_writable_older_store_first(v0: Path) -> None:
    conn = connect_readonly(v0)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.latest()
        assert isinstance(conn.execute("SELECT pmid FROM articles LIMIT 1").fetchone(), sqlite3.Row)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM articles")
    finally:
        conn.close()
    assert len(_backups(v0)) == 1


def test_connect_readonly_refuses_an_older_read_only_store_with_how_to_upgrade(
    v0: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v0.chmod(0o444)
    real_access = os.access
    # root may write to a 0444 file: make the check see what any other user would
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode & os.W_OK else real_access(p, mode)
    )
    original = v0.read_bytes()
    for opener in (connect_readonly, lambda p: Store(p, readonly=True)):
        with pytest.raises(
            StoreError,
            match=f"schema v0 and this kea needs v{schema.latest()}, but it is read-only here: make it writable",
        ):
            opener(v0)
    assert v0.read_bytes() == original and _backups(v0) == []


def test_read_only_file_at_latest_version_opens_read_only(tmp_path: Path) -> None:
    p = tmp_path / "kea.sqlite"
    Store(p).close()
    p.chmod(0o444)
    with Store(p, readonly=True) as s:
        assert s.count() == 0


# -- label columns follow the registry --------------------------------------------------
EXTRA = labels.Label(
    "blinding",
    "single",
    "Blinding",
    "who was kept unaware of the allocation (a test-only label)",
    {"open": "Open label", "single": "Single-blind", "double": "Double-blind"},
)


def _register_extra(monkeypatch: pytest.MonkeyPatch) -> labels.Label:
    """Add EXTRA to the registry for one test, as a new Label(...) entry would."""
    monkeypatch.setattr(labels, "LABELS", (*labels.LABELS, EXTRA))
    monkeypatch.setattr(labels, "BY_NAME", {**labels.BY_NAME, EXTRA.name: EXTRA})
    monkeypatch.setattr(labels, "LABEL_NAMES", (*labels.LABEL_NAMES, EXTRA.name))
    return EXTRA


def test_new_registry_label_reaches_new_and_existing_stores(
    tmp_path: Path, v0: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    existing = tmp_path / "existing.sqlite"
    Store(existing).close()  # at the latest version, before the label exists
    lab = _register_extra(monkeypatch)
    for p in (tmp_path / "new.sqlite", existing, v0):
        with Store(p) as s:
            assert lab.name in _columns(s.conn, "labels"), p
            s.upsert_batch([_article("5")])
            s.save_labels([{"pmid": "5", "model_version": "m", lab.name: "double"}])
            assert s.get_labels("5")[lab.name] == "double"
            s.add_correction("5", lab.name, "open")
            s.save_labels([{"pmid": "5", "model_version": "m2", lab.name: "double"}])
            assert s.get_labels("5")[lab.name] == "open"  # the human still wins
            with pytest.raises(ValueError, match="blinding"):
                s.add_correction("5", lab.name, "triple")
    assert _backups(existing) == []  # a new column is not a version upgrade
    with Store(existing) as s:  # idempotent: the second open adds nothing
        assert _columns(s.conn, "labels").count(lab.name) == 1


def test_connect_readonly_adds_a_missing_label_column_when_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "kea.sqlite"
    Store(p).close()
    lab = _register_extra(monkeypatch)
    conn = connect_readonly(p)
    try:
        assert lab.name in _columns(conn, "labels")
    finally:
        conn.close()


def test_store_ddl_has_one_column_per_registry_label(tmp_path: Path) -> None:
    p = tmp_path / "kea.sqlite"
    Store(p).close()
    with _plain(p) as conn:
        info = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(labels)")}
    for lab in labels.LABELS:
        assert info[lab.name] == lab.sql_type
    assert set(info) - {lab.name for lab in labels.LABELS} == schema.LABELS_RESERVED


def test_a_label_named_like_a_bookkeeping_column_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = dataclasses.replace(EXTRA, name="verified")
    monkeypatch.setattr(labels, "LABELS", (*labels.LABELS, bad))
    with pytest.raises(ValueError, match="verified"):
        schema.schema_sql()


# -- helpers ----------------------------------------------------------------------------
def _rows(conn: sqlite3.Connection, sql: str) -> list[sqlite3.Row]:
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.row_factory = None


def _article(pmid: str) -> Any:
    from pipeline.records import Article

    return Article(pmid=pmid, title="A fictional ketamine record", revised_date="2024-01-01")


def test_connect_readonly_names_missing_label_columns_of_a_read_only_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "kea.sqlite"
    Store(p).close()
    lab = _register_extra(monkeypatch)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda q, mode: False if mode & os.W_OK else real_access(q, mode)
    )
    with pytest.raises(StoreError, match=f"no column for the label\\(s\\) {lab.name}, but it is"):
        connect_readonly(p)


# -- v1 -> v2: search columns, trial ids, first-seen / retraction tracking, saved searches ---
def test_v2_fills_search_columns_and_first_seen_from_the_0_1_records(v0: Path) -> None:
    """Every 0.1 record becomes searchable by author, MeSH and publication type, counts as
    first seen by the run that stored it, and the index answers field-tagged searches."""
    from pipeline import query as q
    from pipeline.records import Article

    with _plain(v0) as conn:
        before = {
            r["pmid"]: (Article.from_dict(json.loads(r["data"])), r["run_id"], r["fetched_at"])
            for r in _rows(conn, "SELECT pmid, data, run_id, fetched_at, retracted FROM articles")
        }
        n_fixes = conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0]
    Store(v0).close()
    with _plain(v0) as conn:
        rows = {r["pmid"]: r for r in _rows(conn, "SELECT * FROM articles")}
        assert conn.execute("SELECT COUNT(*) FROM corrections").fetchone()[0] == n_fixes
        assert conn.execute("SELECT COUNT(*) FROM saved_searches").fetchone()[0] == 0
    assert set(rows) == set(before)
    for pmid, (art, run_id, fetched) in before.items():
        r = rows[pmid]
        assert r["authors_text"] == ("; ".join(art.author_names) or None), pmid
        assert r["mesh_text"] == ("; ".join(art.mesh_terms) or None)
        assert r["pubtypes_text"] == ("; ".join(art.publication_types) or None)
        assert (r["first_seen_run"], r["first_seen_at"]) == (run_id, fetched)
        assert r["retracted_run"] == (run_id if art.retracted else None)
    conn = q.connect(v0)
    art = next(a for a, _, _ in before.values() if a.authors and a.authors[0].last_name)
    hits = q.list_studies(
        conn, q.StudyFilter(search=f"{art.authors[0].last_name}[au]", scope="all"), limit=None
    )
    expected = {
        str(p)
        for p, (a, _, _) in before.items()
        if any(x.last_name == art.authors[0].last_name for x in a.authors)
    }
    assert {h["pmid"] for h in hits} == expected
    conn.close()
