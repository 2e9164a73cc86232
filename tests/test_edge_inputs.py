"""Hostile and unlucky inputs (issue 11): crafted dashboard links, special export targets,
oversized records, foreign databases. Each case names the defect it guards against.
"""

from __future__ import annotations

import csv
import gc
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from factories import make_store
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from dashboard import url
from dashboard.filters import EXTRA_PARAMS
from pipeline.errors import ExportError
from pipeline.export import export_to
from pipeline.query import StudyFilter, connect, count_studies
from pipeline.store import Store

ALL = StudyFilter(scope="all")

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
TIMEOUT = 60

# -- #6 dashboard URL input ------------------------------------------------------------------
EVIL_LINK = "[Session expired – log in](https://evil.example/login)"
HOSTILE = {
    "markdown link": EVIL_LINK,
    "html": '<a href="https://evil.example/x">x</a><img src=x onerror=alert(1)>',
    "20 digits": "9" * 20,
    "negative": "-5",
    "unicode digits": "٢٠٢٠",
    "fullwidth digits": "１２３",
    "repeated keys": ["1", EVIL_LINK],
    "huge": "7" * 5000,
}
URL_KEYS = [*url.url_keys().values(), *EXTRA_PARAMS]
MARKDOWN_ELEMENTS = ("markdown", "caption", "warning", "error", "info", "success", "title")
_MD = MarkdownIt("commonmark")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("edge") / "kea.sqlite", n=40, seed=3)


def _open(monkeypatch: pytest.MonkeyPatch, db: Path, page: str, params: dict[str, Any]) -> AppTest:
    monkeypatch.setenv("KEA_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.switch_page(page)
    at.query_params.update(params)
    return at.run()


def _markdown_bodies(at: AppTest) -> list[str]:
    return [el.value for kind in MARKDOWN_ELEMENTS for el in getattr(at, kind)]


OUR_LINKS = ("https://pubmed.ncbi.nlm.nih.gov/", "https://doi.org/")


def assert_inert(at: AppTest) -> None:
    """No exception, no traceback, and nothing from the URL rendered as a link or HTML."""
    assert not at.exception, [e.value for e in at.exception]
    for body in _markdown_bodies(at):
        assert "Traceback" not in body and 'File "' not in body, body
        html = _MD.render(body)
        assert "<img" not in html, body
        # the only links are the ones the app makes: a study's PubMed and DOI pages
        hrefs = re.findall(r'<a href="([^"]*)"', html)
        assert html.count("<a ") == len(hrefs), body
        assert all(h.startswith(OUR_LINKS) for h in hrefs), body
        assert "evil.example" not in body, f"hostile text shown unescaped: {body!r}"


def notice_keys(at: AppTest) -> set[str]:
    """The URL keys the page said it ignored."""
    notes = [w.value for w in at.warning if "were ignored" in w.value]
    assert len(notes) <= 1
    return set(re.findall(r"`([^`]+)`", notes[0])) if notes else set()


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("page", ["views/studies.py", "views/export.py"])
def test_every_url_key_with_a_hostile_value_is_inert(
    monkeypatch: pytest.MonkeyPatch, store_path: Path, page: str, value: Any
) -> None:
    at = _open(monkeypatch, store_path, page, {k: value for k in URL_KEYS})
    assert_inert(at)
    assert at.title and at.title[0].value in ("Studies", "Export")
    if page == "views/studies.py":
        keys = notice_keys(at)
        # 'q' takes any short text and booleans take '1' of a repeated key: the rest is named
        assert {"pmid", "sort", "yf", "yt", "sc", "pop"} <= keys


@pytest.mark.parametrize("key", URL_KEYS)
def test_one_key_of_twenty_digits_is_dropped_with_a_notice(
    monkeypatch: pytest.MonkeyPatch, store_path: Path, key: str
) -> None:
    at = _open(monkeypatch, store_path, "views/studies.py", {key: "9" * 20})
    assert_inert(at)
    if key != url.OTHER_KEYS["search"]:  # twenty digits are a fine search phrase
        assert notice_keys(at) == {key}
        assert at.query_params.get(key) != "9" * 20, "the bad value leaves the URL"


def test_phishing_pmid_link_is_shown_as_text_only(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    at = _open(monkeypatch, store_path, "views/studies.py", {"pmid": EVIL_LINK})
    assert_inert(at)
    assert notice_keys(at) == {"pmid"}
    assert at.selectbox(key="st_pmid").value == ""  # no study opened from a bad id


def test_valid_link_values_still_apply(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    """Bounds must not cost good links: a year, a minimum N and a page survive."""
    at = _open(monkeypatch, store_path, "views/studies.py", {"yf": "2010", "n": "20", "page": "1"})
    assert_inert(at)
    assert not notice_keys(at)
    assert at.number_input(key="f_year_from").value == 2010
    assert at.number_input(key="f_min_n").value == 20


def test_url_codec_bounds_numbers() -> None:
    f, dropped = url.read_query_params(
        {"yf": "9" * 20, "yt": "٢٠٢٠", "n": "-4", "d": ["rct", "<b>"], "q": "x" * 600}
    )
    assert (f.year_from, f.year_to, f.min_n) == (None, None, None)
    assert f.designs == ("rct",) and f.search is None
    assert set(dropped) == {"yf", "yt", "n", "d", "q"}
    assert url.read_query_params({"yf": "2001", "n": "9"})[0].year_from == 2001
    assert url.read_pmid("0012345") == ("12345", True)
    assert url.read_pmid("2147483648") == (None, False)
    assert url.read_pmid(None) == (None, True)


def test_an_unexpected_error_is_one_plain_line(
    monkeypatch: pytest.MonkeyPatch, store_path: Path
) -> None:
    from dashboard import data

    def boom(*_a: Any, **_k: Any) -> int:
        raise RuntimeError("/very/secret/path/module.py line 12")

    monkeypatch.setattr(data, "count_studies", boom)
    at = _open(monkeypatch, store_path, "views/studies.py", {})
    assert not at.exception
    assert len(at.error) == 1 and "went wrong" in at.error[0].value
    assert all("secret" not in b for b in _markdown_bodies(at))


# -- #9 export targets that are not regular files ----------------------------------------------
@pytest.fixture(scope="module")
def export_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("exp") / "kea.sqlite", n=25, seed=5)


def _export(db: Path, fmt: str, out: Path | str) -> int:
    with Store(db, readonly=True) as store:
        return export_to(store, fmt, str(out), ALL)


def _expected_count(db: Path) -> int:
    return count_studies(connect(db), ALL)


@pytest.mark.parametrize("fmt", ["jsonl", "xlsx"])
def test_export_to_a_fifo_writes_through(export_db: Path, tmp_path: Path, fmt: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    n = _export(export_db, fmt, fifo)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert got, "the reader got nothing"
    assert n == _expected_count(export_db) > 0
    if fmt == "jsonl":
        assert len(got[0].decode().splitlines()) == n
    else:
        assert openpyxl.load_workbook(io.BytesIO(got[0])).sheetnames == ["Studies", "About"]
    assert not list(tmp_path.glob("*.part"))


def test_export_to_a_symlink_replaces_its_target_not_the_link(
    export_db: Path, tmp_path: Path
) -> None:
    real = tmp_path / "data" / "studies.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    n = _export(export_db, "csv", link)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert len(list(csv.DictReader(io.StringIO(real.read_text())))) == n
    assert stat.S_IMODE(real.stat().st_mode) == 0o640, "the target keeps its permissions"
    dangling = tmp_path / "new.csv"
    dangling.symlink_to(tmp_path / "data" / "created.csv")
    _export(export_db, "csv", dangling)
    assert dangling.is_symlink() and (tmp_path / "data" / "created.csv").is_file()
    assert not list(tmp_path.rglob("*.part"))


def _full_device(tmp_path: Path) -> Path:
    """A private node of the 'full' device (1, 7), else /dev/full; the test is skipped
    when neither can be written (a private node keeps /dev/full safe from a regression)."""
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with open(node, "wb"):
            pass
        return node
    except OSError:
        node.unlink(missing_ok=True)
    dev = Path("/dev/full")
    if dev.exists() and os.access(dev, os.W_OK):
        return dev
    pytest.skip("no writable full device here")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_to_a_full_device_is_one_clear_line(
    export_db: Path, tmp_path: Path, fmt: str
) -> None:
    dev = _full_device(tmp_path)
    with pytest.raises(ExportError) as err:
        _export(export_db, fmt, dev)
    assert str(err.value) == f"no space left on device writing {dev}"
    assert stat.S_ISCHR(os.lstat(dev).st_mode), "the device node was replaced"


def test_a_failed_xlsx_export_leaves_no_open_archive(
    export_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openpyxl leaves its zip archive open when the write fails; collected later, it printed
    'Exception ignored in ZipFile.__del__ … seek of closed file' after the one error line."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    dev = _full_device(tmp_path)
    with pytest.raises(ExportError):
        _export(export_db, "xlsx", dev)
    gc.collect()
    assert not seen, [repr(u.exc_value) for u in seen]


def test_export_into_a_folder_path_is_refused(export_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a folder"):
        _export(export_db, "csv", tmp_path)


def _as_nobody(action: Any) -> tuple[int, str]:
    """Run ``action`` in a forked child as user 'nobody' (root ignores a folder's 0555);
    the child's exit code and what it wrote. Without root, run it as we are."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no cleanup, just the one export
        code = 1
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            action()
            code = 0
        except ExportError as err:
            os.write(w, str(err).encode())
            code = 2
        except BaseException as err:  # noqa: BLE001 - reported to the parent as text
            os.write(w, f"{type(err).__name__}: {err}".encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh:
        said = fh.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), said


def test_export_into_a_read_only_folder_is_one_clear_line(export_db: Path) -> None:
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o777)  # nobody may read the store (and make its -shm) here
        db = Path(top) / "kea.sqlite"
        shutil.copy(export_db, db)
        os.chmod(db, 0o644)
        ro = Path(top) / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "studies.csv"
        code, said = _as_nobody(lambda: _export(db, "csv", out))
        assert (code, said) == (2, f"cannot write {out}: permission denied")
        assert list(ro.iterdir()) == []


# -- #10 size limits -------------------------------------------------------------------------
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def _big_record(pmid: str, *, abstract: int = 0, title: int = 0, authors: int = 0) -> str:
    """A team-written, fictional record with over-long parts."""
    people = "".join(
        f"<Author><LastName>Fictional{i}</LastName><Initials>F</Initials></Author>"
        for i in range(authors)
    )
    return (
        "<PubmedArticle><MedlineCitation Status='MEDLINE' Owner='NLM'>"
        f"<PMID Version='1'>{pmid}</PMID><Article PubModel='Print'><Journal><JournalIssue>"
        "<PubDate><Year>2031</Year></PubDate></JournalIssue><Title>Journal of Fiction</Title>"
        f"</Journal><ArticleTitle>A fictional record{' long' * (title // 5)}.</ArticleTitle>"
        f"<Abstract><AbstractText Label='BACKGROUND'>{'Ketamine words. ' * (abstract // 16)}"
        "</AbstractText><AbstractText Label='RESULTS'>More fictional text.</AbstractText>"
        f"</Abstract><AuthorList>{people}</AuthorList></Article>"
        "</MedlineCitation><PubmedData><ArticleIdList/></PubmedData></PubmedArticle>"
    )


def _answer(*records: str) -> bytes:
    return f"<?xml version='1.0'?><PubmedArticleSet>{''.join(records)}</PubmedArticleSet>".encode()


def test_oversized_fields_are_cut_with_a_marker_and_a_warning() -> None:
    from pipeline.parse import ABSTRACT_MAX, LIST_MAX, TITLE_MAX, parse_efetch

    xml = _answer(
        _big_record("90000001", abstract=300),
        _big_record("90000002", abstract=10_000_000, title=50_000, authors=LIST_MAX + 7),
        _big_record("90000003", abstract=300),
    )
    batch = parse_efetch(xml)
    small1, big, small3 = batch.articles
    assert [a.pmid for a in batch.articles] == ["90000001", "90000002", "90000003"]
    assert small1.abstract == small3.abstract and "cut by kea" not in small1.abstract
    mark = "cut by kea"
    assert len(big.abstract) < ABSTRACT_MAX + 200 and mark in big.abstract
    assert [s.label for s in big.abstract_sections] == ["BACKGROUND"], "the rest is dropped"
    assert len(big.title) < TITLE_MAX + 100 and mark in big.title
    assert len(big.authors) == LIST_MAX
    assert len(batch.warnings) == 1
    warning = batch.warnings[0]
    assert warning.startswith("PMID 90000002: ") and "\n" not in warning
    assert "<AbstractText> of 9,999,99" in warning and "cut to 100,000" in warning
    assert "authors: 5,007 items" in warning
    assert not batch.rejected


def _shared_efetch_answers() -> list[Path]:
    root = SHARED / "eutils-samples"
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail("../shared/eutils-samples is missing")
        pytest.skip("../shared/eutils-samples is not here")
    return [p for p in root.rglob("*.xml") if b"<PubmedArticleSet" in p.read_bytes()[:5000]]


def test_real_records_are_never_cut() -> None:
    """The caps sit far above any real record in ../shared (largest abstract 6,669 characters)."""
    from pipeline.errors import ParseError
    from pipeline.parse import parse_efetch

    seen = 0
    for path in _shared_efetch_answers():
        try:
            batch = parse_efetch(path.read_bytes())
        except ParseError:
            continue  # samples of broken answers
        seen += len(batch.articles)
        assert batch.warnings == [], path
    assert seen >= 10


def test_a_huge_abstract_in_the_store_renders_lazily(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A store written before the caps may hold a 10 MB abstract: the detail view shows the
    first part at once and the rest only when asked, in a bounded time."""
    import time

    from pipeline.records import AbstractSection, Article

    db = make_store(tmp_path / "big.sqlite", n=5, seed=2)
    text = "Fictional words about ketamine. " * 330_000  # ~10.5 MB
    with Store(db) as store:
        store.upsert_batch(
            [Article(pmid="90012345", title="Huge", abstract_sections=[AbstractSection(text)])]
        )
    t0 = time.perf_counter()
    at = _open(monkeypatch, db, "views/studies.py", {"pmid": "90012345", "sc": "all"})
    assert_inert(at)
    shown = sum(len(t.value) for t in at.text)
    assert shown < 20_000, "the whole abstract was sent to the page"
    toggle = at.toggle(key="st_more_90012345")
    toggle.set_value(True).run()
    assert not at.exception
    assert sum(len(t.value) for t in at.text) > 100_000
    assert time.perf_counter() - t0 < 60


# -- #7 the store side: foreign files untouched, read-only opening never creates ---------------
def test_query_connect_never_creates_or_changes_a_file(tmp_path: Path) -> None:
    """pipeline.query.connect is the dashboard's and the exports' door (Store's write side is
    covered in test_migrations: a foreign file gets no tables and no WAL switch)."""
    import sqlite3

    from pipeline.errors import StoreError

    missing = tmp_path / "sub" / "kea.sqlite"
    with pytest.raises(StoreError, match="does not exist"):
        connect(missing)
    assert not missing.parent.exists()
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes(body TEXT)")
    conn.close()
    before = other.read_bytes()
    for opener in (connect, lambda p: Store(p), lambda p: Store(p, readonly=True)):
        with pytest.raises(StoreError, match="not a kea database"):
            opener(other)
    assert other.read_bytes() == before and sorted(tmp_path.iterdir()) == [other]
