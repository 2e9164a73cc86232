"""`kea`: one command with subcommands, each a thin wrapper over a library function.

Errors the user can act on (KeaError, a bad flag, a file system refusing a write) become one
line on stderr, ``kea <command>: error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from kea.filters_cli import (
    add_filter_args,
    add_label_args,
    bounded_int,
    filter_from_args,
    labels_from_args,
)
from pipeline.errors import KeaError

PMID_MAX = 2**63 - 1  # SQLite's INTEGER
PORT = bounded_int("a port number", 1, 65535)
# a key embedded in a stored URL or message (`kea status` prints both)
_API_KEY = re.compile(r"(api_key=)[^&\s#'\"]+", re.IGNORECASE)


class KeaArgumentParser(argparse.ArgumentParser):
    """argparse with kea's error line: one line, ``kea <command>: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _pmid(raw: str) -> str:
    """A PubMed id as typed: ASCII digits, within SQLite's integers."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= PMID_MAX:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a PubMed id (a positive number)")
    return str(int(text))


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        help="SQLite database (default: $KEA_DB or data/kea.sqlite)",
    )


def build_parser() -> argparse.ArgumentParser:
    from pipeline.export import FORMATS

    parser = KeaArgumentParser(
        prog="kea",
        description="Ketamine Evidence Atlas: crawl, classify and explore PubMed research on "
        "ketamine for depression, PTSD and anxiety.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "crawl",
        help="fetch PubMed records into the store (incremental after the first run)",
        epilog="example: kea crawl --max-records 200",
    )
    p.add_argument("--query", default=None, help="PubMed query (default: the documented strategy)")
    _db_arg(p)
    p.add_argument(
        "--eutils-url",
        default=None,
        help="E-utilities base URL (default: $KEA_EUTILS_URL or NCBI's)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="records per efetch (default 500)")
    p.add_argument("--full", action="store_true", help="refetch everything, not only changes")
    p.add_argument("--max-records", type=int, default=None, help="stop after this many records")
    p.add_argument(
        "--mindate",
        default=None,
        help="only records entered on or after this date (YYYY, YYYY/MM or YYYY/MM/DD)",
    )
    p.add_argument("--maxdate", default=None, help="only records entered up to this date")
    p.add_argument(
        "--offline-fallback",
        action="store_true",
        help="when NCBI is unreachable, crawl the built-in stand-in's demo records",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")

    p = sub.add_parser(
        "status",
        help="what the store holds and how the last crawl went",
        epilog="example: kea status --db data/kea.sqlite",
    )
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser(
        "export",
        help=f"write the (filtered) records with labels as {', '.join(FORMATS)}",
        epilog="example: kea export --format ris --condition ptsd --design rct --out ptsd_rcts.ris",
    )
    p.add_argument("--format", required=True, choices=list(FORMATS))
    p.add_argument(
        "--out",
        default="-",
        help="output file; a folder: a file named by the filter and date in it "
        "(kea-ptsd-rct-2026-12-04.csv); - for standard output (default). Beside a CSV, "
        "JSONL, RIS, BibTeX or CSL-JSON file goes FILE.about.json (query, crawl date, "
        "model version, filter); an XLSX has an About sheet",
    )
    _db_arg(p)
    add_filter_args(p)

    p = sub.add_parser(
        "classify",
        help="label every record that lacks labels or has stale ones",
        epilog="example: kea classify --db data/kea.sqlite",
    )
    _db_arg(p)
    p.add_argument(
        "--model",
        default=None,
        help="model file (default: the one `kea train` wrote beside the database, "
        "or in $KEA_MODEL_DIR, else the shipped model)",
    )
    p.add_argument("--all", action="store_true", help="relabel every record")

    p = sub.add_parser(
        "train",
        help="train the classifier on gold-labelled JSONL files (records the development-CV "
        "and sealed-part metrics, calibrates every label, writes the model card)",
        epilog="example: kea train --gold ../shared/corpus/dev.jsonl --out my-model.json",
    )
    p.add_argument(
        "--gold",
        action="append",
        default=None,
        help="gold JSONL file (repeatable; default ../shared/corpus/dev.jsonl)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="model file to write (default: models/kea-classifier.json beside the database, "
        "or in $KEA_MODEL_DIR; never the shipped model unless named)",
    )
    p.add_argument("--model-name", default=None, help="registered model name")
    p.add_argument(
        "--db", default=None, help="also train on human corrections stored in this database"
    )

    p = sub.add_parser(
        "evaluate",
        help="development-part CV and sealed-part metrics (95%% intervals), calibration and "
        "review flags, with baselines",
        epilog="example: kea evaluate --gold ../shared/corpus/dev.jsonl --json",
    )
    p.add_argument("--gold", action="append", required=True, help="gold JSONL file (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--folds", type=bounded_int("a number of folds", 2, 1000), default=5, metavar="K"
    )
    p.add_argument("--model-name", default=None, help="registered model name")
    p.add_argument(
        "--model",
        default=None,
        help="score this trained model file on the gold files instead of "
        "cross-validating (for held-out files)",
    )

    p = sub.add_parser(
        "label",
        help="record a human correction of a record's labels",
        epilog="example: kea label 12345678 --design rct --conditions depression,ptsd",
    )
    p.add_argument("pmid", type=_pmid)
    _db_arg(p)
    add_label_args(p)
    p.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="who makes the correction, kept with it (default: $USER)",
    )

    p = sub.add_parser(
        "saved",
        help="saved searches: a name and a filter, followed by a feed after every crawl",
        epilog="also: kea saved add NAME --url 'http://localhost:8501/studies?q=esketamine',"
        " kea saved list, kea saved remove NAME\n"
        "example: kea saved add 'PTSD trials' --search 'ptsd[ti]' --design rct",
    )
    saved = p.add_subparsers(dest="saved_command", required=True, metavar="ACTION")
    sp = saved.add_parser("add", help="save a search (the export filter flags, or --url)")
    sp.add_argument("name")
    _db_arg(sp)
    sp.add_argument("--url", default=None, help="a dashboard link (or its ?query) to save")
    sp.add_argument("--replace", action="store_true", help="overwrite a search of that name")
    sp.add_argument("--by", default=None, metavar="NAME", help="who saves it (default: $USER)")
    add_filter_args(sp)
    sp = saved.add_parser("list", help="the saved searches, their filters and feed files")
    _db_arg(sp)
    sp = saved.add_parser("remove", help="delete a saved search (and its feed)")
    sp.add_argument("name")
    _db_arg(sp)

    p = sub.add_parser(
        "whatsnew",
        help="what the last crawl added or saw retracted, per saved search",
        epilog="example: kea whatsnew --saved 'PTSD trials'",
    )
    _db_arg(p)
    p.add_argument("--saved", default=None, metavar="NAME", help="only this saved search")

    p = sub.add_parser(
        "dashboard",
        help="open the Streamlit dashboard",
        epilog="example: kea dashboard --port 8501",
    )
    _db_arg(p)
    p.add_argument("--port", type=PORT, default=8501)
    p.add_argument("--host", default="localhost")

    p = sub.add_parser(
        "standin",
        help="serve the offline E-utilities stand-in (tests, demo)",
        epilog="example: kea standin --port 8800 --records 2000",
    )
    p.add_argument(
        "--port", type=bounded_int("a port number (0: any free one)", 0, 65535), default=8800
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--records",
        type=bounded_int("a number of records", 1, 1_000_000),
        default=None,
        help="serve N synthetic records instead of the demo records",
    )
    p.add_argument(
        "--faults", default=None, help="fault plan, e.g. 'efetch:2=500,efetch:4=truncate'"
    )
    for sp in sub.choices.values():
        sp.formatter_class = argparse.RawDescriptionHelpFormatter  # keep examples on one line
    return parser


def _cmd_crawl(args: argparse.Namespace) -> int:
    from crawler.run import CrawlConfig, run_crawl

    cfg = CrawlConfig.from_env(
        query=args.query,
        db=args.db,
        eutils_url=args.eutils_url,
        batch_size=args.batch_size,
        full=args.full,
        max_records=args.max_records,
        mindate=args.mindate,
        maxdate=args.maxdate,
        progress=not args.quiet,
    )
    if args.offline_fallback:
        from kea.offline import crawl_or_demo

        summary = crawl_or_demo(cfg)
    else:
        summary = run_crawl(cfg)
    print(summary.one_line())
    from kea.follow import refresh_feeds

    refresh_feeds(cfg.db)  # the atlas and every saved search, as Atom
    return 0


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _redact(value: Any) -> Any:
    """An API key never reaches the screen: ``api_key=...`` in URLs and messages, and the
    current $NCBI_API_KEY wherever it appears."""
    if not isinstance(value, str):
        return value
    from crawler.eutils import redact

    return redact(_API_KEY.sub(r"\1***", value), os.environ.get("NCBI_API_KEY") or None)


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.store import Store

    # read-only: never creates, never upgrades or converts what it reads (a read-only file
    # is fine), refuses files that are not kea stores
    with Store(args.db, readonly=True) as store:
        runs = [{k: _redact(r[k]) for k in r.keys()} for r in store.runs(limit=5)]
        info = {
            "database": str(store.path),
            "records": store.count(),
            "deleted": store.count(include_deleted=True) - store.count(),
            "demo": store.is_demo,
            "runs": runs,
            "records_per_year": {str(y): n for y, n in store.years()},
        }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"database: {info['database']}" + ("  [DEMO DATA]" if info["demo"] else ""))
    print(f"records stored: {info['records']} (marked deleted: {info['deleted']})")
    if runs:
        r = runs[0]
        print(
            f"last crawl: #{r['id']} {r['mode']} {r['status']} started {_fmt_time(r['started_at'])}"
            f" finished {_fmt_time(r['finished_at'])}"
        )
        print(f"  query: {r['query']}")
        print(
            f"  server: {r['eutils_url']}  targets {r['total']}  fetched {r['fetched']}"
            f"  new {r['new']}  updated {r['updated']}  deleted {r['deleted']}"
            f"  missing {r['missing']}  requests {r['requests']}"
        )
        if r["error"]:
            print(f"  error: {r['error']}")
    else:
        print("last crawl: none yet (run `kea crawl`)")
    if info["records_per_year"]:
        print("records per year:")
        for y, n in info["records_per_year"].items():
            print(f"  {y if y != 'None' else 'unknown'}: {n}")
    return 0


def _check_out(out: str, fmt: str) -> None:
    """Refuse an output the export could not write, before the database is opened."""
    if out == "-":
        if fmt == "xlsx":
            raise KeaError("xlsx is a binary format: give a file with --out, e.g. --out kea.xlsx")
        return
    if not out.strip():
        raise KeaError("--out is empty: give a file name, or - for standard output")
    target = os.path.abspath(out)
    folder = target if os.path.isdir(target) else os.path.dirname(target)
    if not os.path.isdir(folder):
        raise KeaError(f"--out {out}: folder {folder} does not exist")
    if os.path.exists(target) and not os.path.isfile(target):
        return  # a FIFO or device: written through by the export
    import tempfile

    try:  # can a file be created there? (access() says yes to root on read-only mounts)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise KeaError(f"--out {out}: cannot write in {folder} ({err.strerror})") from None


def _cmd_export(args: argparse.Namespace) -> int:
    from pipeline.export import export_file, export_filename
    from pipeline.store import Store

    filt = filter_from_args(args)  # every check before the database is opened
    _check_out(args.out, args.format)
    out = args.out
    if out != "-" and os.path.isdir(out):  # a folder: the file is named by filter and date
        out = os.path.join(out, export_filename(filt, args.format))
    with Store(args.db, readonly=True) as store:
        try:
            written = export_file(store, args.format, out, filt)
        except BrokenPipeError:
            raise
        except OSError as err:
            if args.out == "-":
                _silence_stdout()
            where = "standard output" if args.out == "-" else out
            raise KeaError(f"cannot write {where}: {err.strerror or err}") from None
    if args.out != "-":
        beside = f" (provenance in {written.about})" if written.about else ""
        print(f"wrote {written.records} records to {written.path}{beside}", file=sys.stderr)
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    from pipeline.classify.service import classify_store
    from pipeline.store import Store

    with Store(args.db, create=False) as store:  # a missing database is an error, not created
        report = classify_store(store, model_path=args.model, relabel_all=args.all)
    print(report)
    from kea.follow import refresh_feeds

    refresh_feeds(args.db)  # new records now carry design and outcome in their entries
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from pipeline.classify.service import train_command

    print(train_command(gold=args.gold, out=args.out, model_name=args.model_name, db=args.db))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.classify.service import evaluate_command

    print(
        evaluate_command(
            gold=args.gold,
            as_json=args.json,
            folds=args.folds,
            model_name=args.model_name,
            model_path=args.model,
        )
    )
    return 0


def _author(args: argparse.Namespace) -> str | None:
    """Who corrects: --by, else $USER (None when neither says)."""
    by = (args.by or "").strip() or os.environ.get("USER", "").strip()
    return by or None


def _cmd_label(args: argparse.Namespace) -> int:
    from pipeline.corrections import record_corrections

    fields = labels_from_args(args)
    if not fields:
        raise KeaError("give at least one label to set, e.g. --design rct")
    record_corrections(args.db, args.pmid, fields, source="cli", author=_author(args))
    print(f"PMID {args.pmid}: recorded human correction of {', '.join(fields)}")
    return 0


def _cmd_saved(args: argparse.Namespace) -> int:
    from kea.follow import params_from_link, params_of, refresh_feeds
    from pipeline.feeds import feed_path
    from pipeline.saved import add_saved, list_saved, remove_saved
    from pipeline.store import resolve_db_path

    db = resolve_db_path(args.db)
    if args.saved_command == "add":
        params = params_from_link(args.url) if args.url else params_of(filter_from_args(args))
        s = add_saved(db, args.name, params, author=_author(args), replace=args.replace)
        print(f"saved search {s.name!r}: {s.params or '(every study)'}")
        refresh_feeds(db)
        print(f"feed: {feed_path(db, s.name)}")
    elif args.saved_command == "list":
        saved = list_saved(db)
        if not saved:
            print("no saved searches (kea saved add NAME --search ...)")
        for s in saved:
            print(f"{s.name}\t{s.params or '(every study)'}\t{feed_path(db, s.name)}")
    else:
        name = remove_saved(db, args.name)
        feed_path(db, name).unlink(missing_ok=True)
        print(f"removed saved search {name!r}")
    return 0


def _cmd_whatsnew(args: argparse.Namespace) -> int:
    from kea.follow import whatsnew_lines

    for line in whatsnew_lines(args.db, args.saved):
        print(line)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.launch import launch

    return launch(db=args.db, port=args.port, host=args.host)


def _cmd_standin(args: argparse.Namespace) -> int:
    from crawler.standin.server import serve_forever

    try:
        serve_forever(host=args.host, port=args.port, n_records=args.records, faults=args.faults)
    except OSError as err:
        raise KeaError(
            f"cannot serve on {args.host}:{args.port}: {err.strerror or err}"
            + (
                " (another program uses the port; pick another with --port)"
                if err.errno == errno.EADDRINUSE
                else ""
            )
        ) from None
    except ValueError as err:  # the stand-in's own checks (StandinError)
        raise KeaError(str(err)) from None
    return 0


COMMANDS = {
    "crawl": _cmd_crawl,
    "status": _cmd_status,
    "export": _cmd_export,
    "classify": _cmd_classify,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "label": _cmd_label,
    "dashboard": _cmd_dashboard,
    "standin": _cmd_standin,
    "saved": _cmd_saved,
    "whatsnew": _cmd_whatsnew,
}


def _silence_stdout() -> None:
    """After standard output failed (full disk, closed pipe), point it at /dev/null so the
    interpreter's final flush does not print a second error."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = COMMANDS[args.command]

    def fail(message: str) -> int:
        print(f"kea {args.command}: error: {message}", file=sys.stderr)
        return 2

    try:
        rc = command(args)
        sys.stdout.flush()  # a full disk or closed pipe shows here, not at exit
        return rc
    except KeaError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        print(f"kea {args.command}: interrupted; run it again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as err:  # the system refused a read or write kea did not anticipate
        if err.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT) and err.filename is None:
            _silence_stdout()
            return fail(f"cannot write standard output: {err.strerror}")
        where = f": {err.filename}" if err.filename else ""
        return fail(f"{err.strerror or err}{where}")


if __name__ == "__main__":
    sys.exit(main())
