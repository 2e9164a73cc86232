"""Saved searches: stored in the database, the filter kept as a dashboard URL, CLI verbs."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_search import ARTICLES

from kea.cli import main
from kea.follow import filter_of, params_from_link, params_of
from pipeline import saved
from pipeline.errors import KeaError
from pipeline.query import StudyFilter
from pipeline.store import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "kea.sqlite"
    with Store(path) as s:
        s.upsert_batch(ARTICLES)
    return path


def test_add_list_remove_round_trip(db: Path) -> None:
    f = StudyFilter(search='ptsd[ti] AND "randomized controlled trial"[pt]', designs=("rct",))
    s = saved.add_saved(db, "PTSD trials", params_of(f), author="ana")
    assert filter_of(s.params) == f  # the same filter state a shared link carries
    assert [x.name for x in saved.list_saved(db)] == ["PTSD trials"]
    assert saved.get_saved(db, "ptsd TRIALS").author == "ana"
    with pytest.raises(KeaError, match="exists"):
        saved.add_saved(db, "ptsd trials", "q=x")
    saved.add_saved(db, "ptsd trials", "q=x", replace=True)
    assert [(x.name, x.params) for x in saved.list_saved(db)] == [("ptsd trials", "q=x")]
    with pytest.raises(KeaError, match="share a feed file"):
        saved.add_saved(db, "PTSD-trials", "q=y")
    assert saved.remove_saved(db, "PTSD TRIALS") == "ptsd trials"
    assert saved.list_saved(db) == []
    with pytest.raises(KeaError, match="no saved search named 'gone'"):
        saved.remove_saved(db, "gone")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "needs a name"),
        ("x" * 61, "limit is 60"),
        ("a/b", "use letters"),
        ("<x>", "use letters"),
    ],
)
def test_bad_names_are_refused(db: Path, name: str, problem: str) -> None:
    with pytest.raises(KeaError, match=problem):
        saved.add_saved(db, name, "q=x")


def test_never_creates_a_database(tmp_path: Path) -> None:
    with pytest.raises(KeaError, match="does not exist"):
        saved.add_saved(tmp_path / "none.sqlite", "x", "q=x")
    assert not (tmp_path / "none.sqlite").exists()


def test_link_is_read_strictly() -> None:
    p = params_from_link("http://localhost:8501/studies?q=esketamine&d=rct&page=2")
    assert filter_of(p) == StudyFilter(search="esketamine", designs=("rct",))
    with pytest.raises(KeaError, match="d"):
        params_from_link("?d=nonsense")
    with pytest.raises(KeaError, match="q"):
        params_from_link("?q=ptsd%20AND")  # an unreadable search is not silently dropped


def test_cli_verbs(db: Path, capsys: pytest.CaptureFixture) -> None:
    d = str(db)
    assert main(["saved", "add", "esk", "--search", "esketamine", "--registered", "--db", d]) == 0
    assert main(["saved", "add", "bad", "--search", "(esketamine", "--db", d]) == 2
    err = capsys.readouterr().err
    assert (
        "kea saved: error: --search: search '(esketamine': unclosed parenthesis at character 1"
        in err
    )
    assert main(["saved", "list", "--db", d]) == 0
    out = capsys.readouterr().out
    assert out.startswith("esk\tq=esketamine&sc=all&reg=1") and "esk.atom" in out
    assert filter_of(saved.get_saved(db, "esk").params).registered is True
    assert (db.parent / "kea-feeds" / "saved-esk.atom").is_file()
    assert main(["saved", "remove", "esk", "--db", d]) == 0
    assert not (db.parent / "kea-feeds" / "saved-esk.atom").exists()
    assert main(["saved", "remove", "esk", "--db", d]) == 2
