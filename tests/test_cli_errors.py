"""Issue 11 #8, #7, #12: every bad input to `kea` is one line on stderr and exit code 2.

Each case runs a bad command line (in process through ``kea.cli.main`` where it cannot
start a server or a crawl, in a child process otherwise) and asserts: exit 2, exactly one
line on stderr, starting ``kea <command>: error:``, no traceback, and nothing created or
changed in the test's folder (the working directory, so default paths land there too).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kea.cli import main
from pipeline.records import Article
from pipeline.store import Store

ROOT = Path(__file__).resolve().parent.parent
BIG = "9" * 20  # 20 digits: more than SQLite's 64-bit integers hold
RO_DIR = "/sys"  # even root cannot create files there (sysfs)

GOOD_LABELS = {
    "relevance": "in_scope",
    "conditions": ["depression"],
    "subgroups": [],
    "design": "rct",
    "outcome": "beneficial",
    "sample_size": 40,
    "drug": "ketamine",
    "routes": ["iv"],
    "comparator": "placebo",
    "psychotherapy": False,
}


def make_article(pmid: str) -> Article:
    return Article(pmid=pmid, title=f"An invented ketamine record {pmid}", pub_year=2020)


def _gold_line(**over: object) -> str:
    rec = {"pmid": "99900001", "title": "An invented ketamine trial", "labels": GOOD_LABELS}
    rec.update(over)
    return json.dumps(rec) + "\n"


def _five_records() -> str:
    return "".join(
        _gold_line(pmid=f"9990000{i}", title=f"Invented ketamine trial {i}") for i in range(5)
    )


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The files the bad inputs point at, in a folder that is also the working directory."""
    monkeypatch.chdir(tmp_path)
    for var in ("KEA_DB", "KEA_MODEL_DIR", "NCBI_API_KEY", "KEA_EUTILS_URL"):
        monkeypatch.delenv(var, raising=False)
    kea_db = tmp_path / "kea.sqlite"
    with Store(kea_db) as store:
        store.upsert_batch([make_article("1001"), make_article("1002")])
    foreign = tmp_path / "other-app.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('not kea')")
    conn.close()
    (tmp_path / "notes.txt").write_text("just some text, not a database\n")
    gold = tmp_path / "gold"
    gold.mkdir()
    (gold / "labels-string.jsonl").write_text(_gold_line(labels="rct"))
    (gold / "no-labels.jsonl").write_text(json.dumps({"pmid": "99900001", "title": "x"}) + "\n")
    no_design = {k: v for k, v in GOOD_LABELS.items() if k != "design"}
    (gold / "no-design.jsonl").write_text(_gold_line(labels=no_design))
    (gold / "bad-value.jsonl").write_text(_gold_line(labels={**GOOD_LABELS, "design": "nope"}))
    (gold / "bad-utf8.jsonl").write_bytes(_gold_line().encode() + b'{"pmid": "\xff\xfe"}\n')
    (gold / "not-json.jsonl").write_text("{this is not json\n")
    (gold / "array.jsonl").write_text("[1, 2, 3]\n")
    (gold / "empty.jsonl").write_text("\n")
    (gold / "five.jsonl").write_text(_five_records())
    (gold / "a-folder.jsonl").mkdir()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    place = {
        "db": str(kea_db),
        "foreign": str(foreign),
        "text": str(tmp_path / "notes.txt"),
        "missing": str(tmp_path / "nowhere" / "missing.sqlite"),
        "missing_here": str(tmp_path / "missing.sqlite"),
        "gold": str(gold),
        "busy_port": str(busy.getsockname()[1]),
        "tmp": str(tmp_path),
    }
    yield place
    busy.close()


# (id, argv, where): where "in" = in process, "child" = subprocess (servers, crawls, fds)
CASES: list[tuple[str, list[str], str]] = [
    # kea label
    ("label-pmid-abc", ["label", "abc", "--design", "rct", "--db", "{db}"], "in"),
    ("label-pmid-20-digits", ["label", BIG, "--design", "rct", "--db", "{db}"], "in"),
    ("label-pmid-zero", ["label", "0", "--design", "rct", "--db", "{db}"], "in"),
    ("label-no-label", ["label", "1001", "--db", "{db}"], "in"),
    ("label-sample-size-20-digits", ["label", "1001", "--sample-size", BIG, "--db", "{db}"], "in"),
    ("label-bad-design", ["label", "1001", "--design", "nope", "--db", "{db}"], "in"),
    ("label-missing-db", ["label", "1001", "--design", "rct", "--db", "{missing}"], "in"),
    ("label-missing-default-db", ["label", "1001", "--design", "rct"], "in"),
    ("label-foreign-db", ["label", "1001", "--design", "rct", "--db", "{foreign}"], "in"),
    ("label-text-db", ["label", "1001", "--design", "rct", "--db", "{text}"], "in"),
    # kea export: filters
    ("export-since-20-digits", ["export", "--format", "csv", "--since", BIG, "--db", "{db}"], "in"),
    ("export-until-20-digits", ["export", "--format", "csv", "--until", BIG, "--db", "{db}"], "in"),
    ("export-since-negative", ["export", "--format", "csv", "--since", "-" + BIG, "--db", "{db}"], "in"),
    ("export-min-n-20-digits", ["export", "--format", "csv", "--min-n", BIG, "--db", "{db}"], "in"),
    ("export-min-n-zero", ["export", "--format", "csv", "--min-n", "0", "--db", "{db}"], "in"),
    ("export-since-abc", ["export", "--format", "csv", "--since", "abc", "--db", "{db}"], "in"),
    ("export-bad-design", ["export", "--format", "csv", "--design", "nope", "--db", "{db}"], "in"),
    ("export-bad-format", ["export", "--format", "docx", "--db", "{db}"], "in"),
    ("export-empty-search", ["export", "--format", "csv", "--search", "!!", "--db", "{db}"], "in"),
    # kea export: files
    ("export-text-file-db", ["export", "--format", "jsonl", "--db", "{text}"], "in"),
    ("export-foreign-db", ["export", "--format", "jsonl", "--db", "{foreign}"], "in"),
    ("export-missing-db", ["export", "--format", "jsonl", "--db", "{missing}"], "in"),
    ("export-folder-db", ["export", "--format", "jsonl", "--db", "{gold}"], "in"),
    ("export-empty-db-arg", ["export", "--format", "jsonl", "--db", ""], "in"),
    ("export-read-only-folder", ["export", "--format", "jsonl", "--db", "{db}", "--out", RO_DIR + "/x.jsonl"], "in"),
    ("export-out-in-missing-folder", ["export", "--format", "jsonl", "--db", "{db}", "--out", "{tmp}/no/such/x.jsonl"], "in"),
    ("export-out-read-only-folder", ["export", "--format", "jsonl", "--db", "{db}", "--out", RO_DIR], "in"),
    ("export-xlsx-to-stdout", ["export", "--format", "xlsx", "--db", "{db}"], "in"),
    ("export-stdout-full-disk", ["export", "--format", "jsonl", "--db", "{db}", ">/dev/full"], "child"),
    # kea status
    ("status-foreign-db", ["status", "--db", "{foreign}"], "in"),
    ("status-missing-db", ["status", "--db", "{missing}"], "in"),
    ("status-missing-default-db", ["status"], "in"),
    ("status-text-db", ["status", "--db", "{text}"], "in"),
    ("status-folder-db", ["status", "--db", "{gold}"], "in"),
    ("status-json-foreign-db", ["status", "--json", "--db", "{foreign}"], "in"),
    # kea classify
    ("classify-missing-db", ["classify", "--db", "{missing}"], "in"),
    ("classify-foreign-db", ["classify", "--db", "{foreign}"], "in"),
    ("classify-missing-model", ["classify", "--db", "{db}", "--model", "{tmp}/nope.json"], "in"),
    ("classify-model-is-text", ["classify", "--db", "{db}", "--model", "{text}"], "in"),
    # kea train / evaluate: gold files
    ("train-labels-string", ["train", "--gold", "{gold}/labels-string.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-no-labels", ["train", "--gold", "{gold}/no-labels.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-missing-design", ["train", "--gold", "{gold}/no-design.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-bad-value", ["train", "--gold", "{gold}/bad-value.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-bad-utf8", ["train", "--gold", "{gold}/bad-utf8.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-not-json", ["train", "--gold", "{gold}/not-json.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-array-record", ["train", "--gold", "{gold}/array.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-empty-file", ["train", "--gold", "{gold}/empty.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-five-records", ["train", "--gold", "{gold}/five.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-gold-folder", ["train", "--gold", "{gold}/a-folder.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-gold-missing", ["train", "--gold", "{tmp}/nope.jsonl", "--out", "{tmp}/m.json"], "in"),
    ("train-out-read-only", ["train", "--gold", "{gold}/five.jsonl", "--out", RO_DIR + "/m.json"], "in"),
    ("train-out-folder", ["train", "--gold", "{gold}/five.jsonl", "--out", "{gold}"], "in"),
    ("train-bad-model-name", ["train", "--gold", "{gold}/five.jsonl", "--out", "{tmp}/m.json", "--model-name", "nope"], "in"),
    ("evaluate-labels-string", ["evaluate", "--gold", "{gold}/labels-string.jsonl"], "in"),
    ("evaluate-no-labels", ["evaluate", "--gold", "{gold}/no-labels.jsonl"], "in"),
    ("evaluate-bad-utf8", ["evaluate", "--gold", "{gold}/bad-utf8.jsonl"], "in"),
    ("evaluate-five-records", ["evaluate", "--gold", "{gold}/five.jsonl"], "in"),
    ("evaluate-gold-folder", ["evaluate", "--gold", "{gold}/a-folder.jsonl"], "in"),
    ("evaluate-folds-1000", ["evaluate", "--gold", "{gold}/five.jsonl", "--folds", "1000"], "in"),
    ("evaluate-folds-1", ["evaluate", "--gold", "{gold}/five.jsonl", "--folds", "1"], "in"),
    ("evaluate-folds-0", ["evaluate", "--gold", "{gold}/five.jsonl", "--folds", "0"], "in"),
    ("evaluate-folds-20-digits", ["evaluate", "--gold", "{gold}/five.jsonl", "--folds", BIG], "in"),
    ("evaluate-missing-model", ["evaluate", "--gold", "{gold}/five.jsonl", "--model", "{tmp}/nope.json"], "in"),
    # kea dashboard / standin: servers, so in a child (a missed error would serve forever)
    ("dashboard-port-99999", ["dashboard", "--db", "{db}", "--port", "99999"], "child"),
    ("dashboard-port-negative", ["dashboard", "--db", "{db}", "--port", "-1"], "child"),
    ("dashboard-missing-db", ["dashboard", "--db", "{missing}", "--port", "{busy_port}"], "child"),
    ("dashboard-foreign-db", ["dashboard", "--db", "{foreign}", "--port", "{busy_port}"], "child"),
    ("dashboard-text-db", ["dashboard", "--db", "{text}", "--port", "{busy_port}"], "child"),
    ("dashboard-port-in-use", ["dashboard", "--db", "{db}", "--port", "{busy_port}", "--host", "127.0.0.1"], "child"),
    ("dashboard-port-abc", ["dashboard", "--db", "{db}", "--port", "abc"], "child"),
    ("standin-records-negative", ["standin", "--records", "-5", "--port", "0"], "child"),
    ("standin-records-20-digits", ["standin", "--records", BIG, "--port", "0"], "child"),
    ("standin-port-in-use", ["standin", "--port", "{busy_port}"], "child"),
    ("standin-port-99999", ["standin", "--port", "99999"], "child"),
    ("standin-bad-faults", ["standin", "--port", "0", "--faults", "efetch:x=boom"], "child"),
    # kea crawl: the crawler validates its configuration; the CLI prints it as one line
    ("crawl-bad-url", ["crawl", "--quiet", "--db", "{tmp}/c.sqlite", "--eutils-url", "http://[::1"], "child"),
    ("crawl-empty-db-arg", ["crawl", "--quiet", "--db", "", "--eutils-url", "http://127.0.0.1:9/"], "child"),
    ("crawl-foreign-db", ["crawl", "--quiet", "--db", "{foreign}", "--eutils-url", "http://127.0.0.1:9/"], "child"),
]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every path under the folder with its mode and content hash.

    Left out: the -wal/-shm files SQLite keeps beside the kea store (a WAL database) when
    a command reads it; the store's own bytes are compared.
    """
    out: dict[str, tuple[int, str]] = {}
    for p in sorted(folder.rglob("*")):
        if p.name in ("kea.sqlite-wal", "kea.sqlite-shm"):
            continue
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        out[str(p.relative_to(folder))] = (st.st_mode, digest)
    return out


def _fill(argv: list[str], place: dict[str, str]) -> list[str]:
    return [a.format(**place) for a in argv]


def _run(argv: list[str], where: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stderr) of one command line."""
    if where == "in":
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else 1
        return rc, capsys.readouterr().err
    stdout = None
    if argv[-1].startswith(">"):
        stdout = open(argv.pop()[1:], "w")  # noqa: SIM115 - closed below
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEA_", "NCBI_"))}
    env["PYTHONPATH"] = str(ROOT)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "kea", *argv],
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return -1, err + "\n(timed out: no error within 60 s)"
    finally:
        if stdout is not None:
            stdout.close()
    return res.returncode, res.stderr


def _params() -> list[Any]:
    return [pytest.param(argv, where, id=cid) for cid, argv, where in CASES]


@pytest.mark.parametrize(("argv", "where"), _params())
def test_a_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    where: str,
    place: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = Path(place["tmp"])
    before = _snapshot(folder)
    rc, err = _run(_fill(argv, place), where, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert rc == 2, f"exit {rc}: {err}"
    assert len(lines) == 1, err
    assert lines[0].startswith(f"kea {argv[0]}: error: "), err
    assert _snapshot(folder) == before, "the bad command created or changed files"


def test_every_case_names_its_command() -> None:
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len(CASES) >= 35


# --------------------------------------------------------------------------- kea status
@pytest.fixture
def crawled(tmp_path: Path) -> Iterator[Path]:
    """A kea store with one finished crawl whose server URL carries an API key."""
    db = tmp_path / "kea.sqlite"
    with Store(db) as store:
        store.upsert_batch([make_article("1001")])
        run = store.start_run(
            "ketamine", "https://eutils.example/entrez/eutils/?api_key=SECRET123&tool=kea", "full"
        )
        store.update_run(run, status="failed", error="GET ...&api_key=SECRET123 failed")
    yield db


def test_status_never_prints_an_api_key(crawled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11 #1: a key embedded in a stored --eutils-url is redacted, in text and JSON."""
    for argv in (["status", "--db", str(crawled)], ["status", "--json", "--db", str(crawled)]):
        assert main(argv) == 0
        out = capsys.readouterr()
        assert "SECRET123" not in out.out + out.err
        assert "api_key=***" in out.out


def test_status_reads_a_read_only_database_and_changes_nothing(
    crawled: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 #12 and #7: status opens read-only: a read-only file works, bytes unchanged."""
    before = _snapshot(crawled.parent)
    crawled.chmod(0o444)
    real_access = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        # root may write anything: answer as the file's mode does for everyone else
        if mode & os.W_OK and Path(path).resolve() == crawled.resolve():
            return False
        return real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    try:
        assert main(["status", "--db", str(crawled)]) == 0
        assert "records stored: 1" in capsys.readouterr().out
        # as an unprivileged user the file cannot be written at all; root can, so check
        # that nothing was (no WAL switch, no -wal/-shm files, no new tables)
        assert {k: v[1] for k, v in _snapshot(crawled.parent).items()} == {
            k: v[1] for k, v in before.items()
        }
    finally:
        crawled.chmod(0o644)


def test_status_leaves_another_apps_database_byte_for_byte(
    place: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = Path(place["foreign"])
    before = foreign.read_bytes()
    assert main(["status", "--db", str(foreign)]) == 2
    assert "not a kea database" in capsys.readouterr().err
    assert foreign.read_bytes() == before
    assert not Path(str(foreign) + "-wal").exists()
