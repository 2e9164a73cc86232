"""`kea`: one command with subcommands, each a thin wrapper over a library function.

Errors the user can act on (KeaError) become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime

from kea.filters_cli import add_filter_args, add_label_args, filter_from_args, labels_from_args
from pipeline.errors import KeaError


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=None,
        help="SQLite database (default: $KEA_DB or data/kea.sqlite)",
    )


def build_parser() -> argparse.ArgumentParser:
    from pipeline.export import FORMATS

    parser = argparse.ArgumentParser(
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
    p.add_argument("--out", default="-", help="output file, or - for standard output (default)")
    _db_arg(p)
    add_filter_args(p)

    p = sub.add_parser(
        "classify",
        help="label every record that lacks labels or has stale ones",
        epilog="example: kea classify --db data/kea.sqlite",
    )
    _db_arg(p)
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--all", action="store_true", help="relabel every record")

    p = sub.add_parser(
        "train",
        help="train the classifier on gold-labelled JSONL files",
        epilog="example: kea train --gold ../shared/corpus/dev.jsonl --out my-model.json",
    )
    p.add_argument(
        "--gold",
        action="append",
        default=None,
        help="gold JSONL file (repeatable; default ../shared/corpus/dev.jsonl)",
    )
    p.add_argument("--out", default=None, help="model file to write (default: the shipped model)")
    p.add_argument("--model-name", default=None, help="registered model name")
    p.add_argument(
        "--db", default=None, help="also train on human corrections stored in this database"
    )

    p = sub.add_parser(
        "evaluate",
        help="cross-validated metrics on gold files, with baselines",
        epilog="example: kea evaluate --gold ../shared/corpus/dev.jsonl --json",
    )
    p.add_argument("--gold", action="append", required=True, help="gold JSONL file (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--folds", type=int, default=5)
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
    p.add_argument("pmid")
    _db_arg(p)
    add_label_args(p)
    p.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="who makes the correction, kept with it (default: $USER)",
    )

    p = sub.add_parser(
        "dashboard",
        help="open the Streamlit dashboard",
        epilog="example: kea dashboard --port 8501",
    )
    _db_arg(p)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--host", default="localhost")

    p = sub.add_parser(
        "standin",
        help="serve the offline E-utilities stand-in (tests, demo)",
        epilog="example: kea standin --port 8800 --records 2000",
    )
    p.add_argument("--port", type=int, default=8800)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--records",
        type=int,
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
    return 0


def _fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline.store import Store

    with Store(args.db) as store:
        runs = store.runs(limit=5)
        info = {
            "database": str(store.path),
            "records": store.count(),
            "deleted": store.count(include_deleted=True) - store.count(),
            "demo": store.is_demo,
            "runs": [{k: r[k] for k in r.keys()} for r in runs],
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


def _cmd_export(args: argparse.Namespace) -> int:
    from pipeline.export import export_to
    from pipeline.store import Store

    with Store(args.db, readonly=True) as store:
        n = export_to(store, args.format, args.out, filter_from_args(args))
    if args.out != "-":
        print(f"wrote {n} records to {args.out}", file=sys.stderr)
    return 0


def _cmd_classify(args: argparse.Namespace) -> int:
    from pipeline.classify.service import classify_store
    from pipeline.store import Store

    with Store(args.db) as store:
        report = classify_store(store, model_path=args.model, relabel_all=args.all)
    print(report)
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


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from dashboard.launch import launch

    return launch(db=args.db, port=args.port, host=args.host)


def _cmd_standin(args: argparse.Namespace) -> int:
    from crawler.standin.server import serve_forever

    serve_forever(host=args.host, port=args.port, n_records=args.records, faults=args.faults)
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
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeaError as err:
        print(f"kea {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kea {args.command}: interrupted; run it again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
