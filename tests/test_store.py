"""The SQLite store: idempotent upserts, revisions, FTS, corrections that survive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.errors import StoreError
from pipeline.records import AbstractSection, Article, Author
from pipeline.store import Store


def art(
    pmid: str,
    title: str = "Ketamine for fictional depression",
    revised: str = "2024-01-01",
    abstract: str = "A fictional abstract about esketamine nasal spray.",
) -> Article:
    return Article(
        pmid=pmid,
        title=title,
        revised_date=revised,
        pub_year=2024,
        abstract_sections=[AbstractSection(abstract, "RESULTS", "RESULTS")],
        authors=[Author(last_name="Doe", initials="J"), Author(collective_name="KEA Group")],
    )


def test_upsert_is_idempotent_and_counts(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        r1 = s.upsert_batch([art("1"), art("2")])
        r2 = s.upsert_batch([art("1"), art("2")])
        assert (r1.new, r1.updated, r1.unchanged) == (2, 0, 0)
        assert (r2.new, r2.updated, r2.unchanged) == (0, 0, 2)
        assert s.count() == 2
        got = s.get_article("1")
        assert got == art("1")
        assert got.author_names == ["Doe J", "KEA Group"]


def test_newer_revision_replaces_older_never(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1", title="old", revised="2024-01-01")])
        r = s.upsert_batch([art("1", title="new", revised="2024-06-01")])
        assert r.updated == 1 and s.get_article("1").title == "new"
        r = s.upsert_batch([art("1", title="stale", revised="2023-01-01")])
        assert r.unchanged == 1 and s.get_article("1").title == "new"


def test_fts_follows_updates(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1", title="Arketamine in fictional mice", revised="2024-01-01")])
        q = "SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?"
        assert [r[0] for r in s.conn.execute(q, ("arketamine",))] == [1]
        s.upsert_batch([art("1", title="Something else entirely", revised="2025-01-01")])
        assert list(s.conn.execute(q, ("arketamine",))) == []
        assert [r[0] for r in s.conn.execute(q, ("entirely",))] == [1]


def test_deleted_citation_marks_not_removes(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1"), art("2")])
        r = s.upsert_batch([], ["2"])
        assert r.deleted == 1
        assert s.count() == 1 and s.count(include_deleted=True) == 2


def test_missing_values_are_none(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([Article(pmid="7")])
        row = s.conn.execute("SELECT title, abstract, doi, journal FROM articles").fetchone()
        assert tuple(row) == (None, None, None, None)


def test_corrections_win_and_survive_relabelling(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1")])
        pred = {
            "pmid": "1",
            "model_version": "m1",
            "relevance": "in_scope",
            "conditions": ["depression"],
            "design": "review",
            "outcome": "not_reported",
            "routes": [],
            "subgroups": [],
            "confidence": {"design": 0.4},
            "needs_review": True,
            "review_fields": ["design"],
        }
        s.save_labels([pred])
        s.add_correction("1", "design", "rct")
        lab = s.get_labels("1")
        assert lab["design"] == "rct" and lab["verified"] == ["design"]
        s.save_labels([{**pred, "model_version": "m2"}])  # reclassification
        lab = s.get_labels("1")
        assert lab["design"] == "rct" and lab["verified"] == ["design"]
        assert lab["needs_review"] is False  # the only uncertain field was settled by a human
        with pytest.raises(ValueError):
            s.add_correction("1", "nonsense", "x")
        with pytest.raises(StoreError):
            s.add_correction("999", "design", "rct")


def test_unlabelled_tracks_model_and_content(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1"), art("2")])
        from pipeline.store import content_hash

        rows = [
            {"pmid": a.pmid, "model_version": "m1", "content_hash": content_hash(a)}
            for a in s.iter_articles()
        ]
        s.save_labels(rows)
        assert list(s.unlabelled("m1")) == []
        assert len(list(s.unlabelled("m2"))) == 2
        s.upsert_batch([art("2", title="changed", revised="2030-01-01")])
        assert [a.pmid for a in s.unlabelled("m1")] == ["2"]


def test_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="kea.sqlite"):
        Store(blocker / "kea.sqlite")
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(StoreError, match="not writable"):
            Store(ro / "kea.sqlite")


def test_review_flags_are_per_label_and_cleared_by_corrections(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1"), art("2")])
        pred = {
            "pmid": "1",
            "model_version": "m1",
            "design": "review",
            "outcome": "mixed",
            "needs_review": True,
            "review_fields": ["outcome", "design"],
        }
        s.save_labels([pred, {"pmid": "2", "model_version": "m1", "design": "rct"}])
        lab = s.get_labels("1")
        assert lab["review"] == ["design", "outcome"] and lab["needs_review"] is True
        assert s.get_labels("2")["review"] is None  # no per-label flags given
        s.add_correction("1", "design", "rct")
        lab = s.get_labels("1")
        assert lab["review"] == ["outcome"] and lab["needs_review"] is True
        s.add_correction("1", "outcome", "beneficial")
        lab = s.get_labels("1")
        assert lab["review"] == [] and lab["needs_review"] is False
        s.save_labels([pred])  # relabelling keeps what humans settled out of review
        assert s.get_labels("1")["review"] == [] and s.get_labels("1")["needs_review"] is False


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("design", "banana", "design: 'banana' is not one of"),
        ("sample_size", -3, "sample_size: -3 is not a positive whole number"),
        ("sample_size", True, "sample_size: True is not a positive whole number"),
        ("psychotherapy", "yes", "psychotherapy: 'yes' is not true or false"),
        ("conditions", ["depression", "flu"], "conditions: .* is not a list of"),
        ("conditions", "depression", "conditions: .* is not a list of"),
        ("nonsense", "x", "unknown label 'nonsense'; valid: relevance, conditions"),
    ],
)
def test_correction_values_are_checked_by_the_registry(
    tmp_db: Path, field: str, value: object, message: str
) -> None:
    from pipeline.errors import KeaError

    with Store(tmp_db) as s:
        s.upsert_batch([art("1")])
        with pytest.raises(ValueError, match=message) as e:
            s.add_correction("1", field, value)
        assert isinstance(e.value, KeaError)  # the CLI prints it as one line
        assert "\n" not in str(e.value)
        assert s.all_corrections() == {}  # nothing recorded


def test_correction_author_and_normalised_value(tmp_db: Path) -> None:
    with Store(tmp_db) as s:
        s.upsert_batch([art("1")])
        s.add_correction("1", "routes", ("oral", "iv"), source="dashboard", author="J. Doe")
        s.add_correction("1", "sample_size", 12)
        rows = s.conn.execute("SELECT field, value, source, author FROM corrections").fetchall()
        assert [tuple(r) for r in rows] == [
            ("routes", '["iv", "oral"]', "dashboard", "J. Doe"),
            ("sample_size", "12", "cli", None),
        ]
        assert s.get_labels("1")["routes"] == ["iv", "oral"]


def test_create_false_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope.sqlite", create=False)
    assert not (tmp_path / "nope.sqlite").exists()


def test_several_corrections_are_all_or_nothing(tmp_db: Path) -> None:
    """The dashboard's form sends every label at once: one bad value saves none of them."""
    from pipeline.corrections import record_corrections
    from pipeline.errors import KeaError

    with Store(tmp_db) as s:
        s.upsert_batch([art("1")])
    with pytest.raises(KeaError, match="sample_size"):
        record_corrections(
            tmp_db, "1", {"design": "rct", "sample_size": -3}, source="dashboard", author="Ada"
        )
    with Store(tmp_db) as s:
        assert s.all_corrections() == {}
        assert s.get_labels("1") is None
    done = record_corrections(
        tmp_db, "1", {"design": "rct", "sample_size": 30}, source="dashboard", author="Ada"
    )
    assert done == ["design", "sample_size"]
    with Store(tmp_db) as s:
        assert s.all_corrections() == {1: {"design": "rct", "sample_size": 30}}
    with pytest.raises(StoreError, match="does not exist"):
        record_corrections(tmp_db.with_name("nope.sqlite"), "1", {"design": "rct"}, source="cli")
    assert not tmp_db.with_name("nope.sqlite").exists()


def test_one_rule_for_the_database_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """--db, then $KEA_DB, then data/kea.sqlite — the same for the crawler; "" is an error."""
    from crawler.run import CrawlConfig
    from pipeline.store import DEFAULT_DB, resolve_db_path

    monkeypatch.delenv("KEA_DB", raising=False)
    assert resolve_db_path(None) == Path(DEFAULT_DB)
    assert CrawlConfig.from_env().db == DEFAULT_DB
    monkeypatch.setenv("KEA_DB", "/tmp/elsewhere.sqlite")
    assert resolve_db_path(None) == Path("/tmp/elsewhere.sqlite")
    assert CrawlConfig.from_env().db == "/tmp/elsewhere.sqlite"
    assert CrawlConfig.from_env(db="given.sqlite").db == "given.sqlite"
    for empty in ("", "  "):
        with pytest.raises(StoreError, match="--db is empty"):
            resolve_db_path(empty)
        with pytest.raises(StoreError, match="--db is empty"):
            CrawlConfig.from_env(db=empty)
