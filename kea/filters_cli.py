"""The command line's codecs for labels: `kea export` filter flags and `kea label` flags.

Both are generated from ``pipeline.labels``: a filterable label gets its
``Label.cli_flag`` on `kea export` (repeatable any-of for a vocabulary, a minimum
for an integer, ``--X/--no-X`` for a boolean), and every label gets ``--NAME`` on
`kea label`, parsed by ``Label.parse``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.errors import KeaError
from pipeline.labels import FILTERABLE, LABELS, Label

YEAR_MIN, YEAR_MAX = 1000, 9999  # publication years, as the store holds them
COUNT_MAX = 10**9  # a sample size or count that fits every integer column


def bounded_int(what: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number within [low, high], else one clear error.

    Python reads 20-digit numbers happily; SQLite and the socket layer do not, so every
    numeric flag is bounded where it is read.
    """

    def parse(raw: str) -> int:
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number ({what})")
        if len(digits) > 19 or not low <= int(text) <= high:
            shown = text if len(text) <= 24 else text[:21] + "..."
            raise argparse.ArgumentTypeError(f"{shown} is out of range for {what}: {low} to {high}")
        return int(text)

    parse.__name__ = what  # argparse names the type in its messages
    return parse


YEAR = bounded_int("a year", YEAR_MIN, YEAR_MAX)
# the sign is checked by filter_from_args (a KeaError naming the flag), the size here
AT_LEAST = bounded_int("a minimum", -COUNT_MAX, COUNT_MAX)


def filter_dest(lab: Label) -> str:
    """The argparse dest of a label's export filter flag."""
    return f"filter_{lab.name}"


def filter_flag(lab: Label) -> str:
    return f"--{lab.cli_flag or lab.name.replace('_', '-')}"


def label_flag(lab: Label) -> str:
    """`kea label --NAME` (underscores as dashes: --sample-size)."""
    return f"--{lab.name.replace('_', '-')}"


def _vocab_help(lab: Label) -> str:
    return ", ".join(lab.values)


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """The study filters of `kea export` (the dashboard's sidebar filters, as flags)."""
    for lab in FILTERABLE:
        flag = filter_flag(lab)
        if lab.has_vocabulary:
            p.add_argument(
                flag,
                action="append",
                dest=filter_dest(lab),
                metavar=(lab.cli_flag or lab.name).upper().replace("-", "_"),
                help=f"{lab.help}: {_vocab_help(lab)} (repeatable, or comma-separated; any of)",
            )
        elif lab.kind == "integer":
            p.add_argument(
                flag,
                type=AT_LEAST,
                default=None,
                dest=filter_dest(lab),
                metavar="N",
                help=f"at least N: {lab.help}",
            )
        else:
            p.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                dest=filter_dest(lab),
                help=f"only studies with (--{lab.cli_flag}) or without (--no-{lab.cli_flag}):"
                f" {lab.help}",
            )
    p.add_argument(
        "--since", type=YEAR, default=None, metavar="YEAR", help="publication year from (inclusive)"
    )
    p.add_argument(
        "--until",
        type=YEAR,
        default=None,
        metavar="YEAR",
        help="publication year up to (inclusive)",
    )
    p.add_argument(
        "--search",
        default=None,
        metavar="QUERY",
        help="PubMed-style search, e.g. 'ptsd[ti] AND \"randomized controlled trial\"[pt]'"
        " (AND, OR, NOT, parentheses, quotes, trailing *, [ti] [tiab] [au] [ta] [mh] [pt]"
        " [pmid] [doi] [dp] [si]; see the README)",
    )
    p.add_argument(
        "--added-since",
        default=None,
        metavar="DATE|last-crawl",
        help="records that entered PubMed on or after DATE (YYYY-MM-DD), or that the last"
        " crawl added (last-crawl)",
    )
    p.add_argument(
        "--registered",
        action="store_true",
        default=None,
        help="only records naming a trial registration (NCT, ISRCTN, EudraCT, ...)",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="include off-topic records (default: all stored records when no label "
        "filter is given, in-scope ones otherwise)",
    )


def _split(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return list(
        dict.fromkeys(v.strip() for item in items for v in str(item).split(",") if v.strip())
    )


def filter_from_args(args: argparse.Namespace) -> Any:
    """Strict reading of `kea export` flags: a value outside TAXONOMY.md is an error.

    Scope: ``--all`` or no label filter at all means every stored record (issue 2:
    `kea export --format jsonl` exports everything); any label filter means in-scope.
    """
    from pipeline.query import StudyFilter
    from pipeline.search import SearchSyntaxError, check_added_since, parse

    kw: dict[str, Any] = {}
    for lab in FILTERABLE:
        raw = getattr(args, filter_dest(lab), None)
        flag = filter_flag(lab)
        if lab.has_vocabulary:
            values = _split(raw)
            bad = [v for v in values if v not in lab.values]
            if bad:
                raise KeaError(
                    f"{flag}: {', '.join(repr(b) for b in bad)} not one of {_vocab_help(lab)}"
                )
            kw[lab.filter] = tuple(values)
        elif lab.kind == "integer":
            if raw is not None and raw < 1:
                raise KeaError(f"{flag} must be a positive number, not {raw}")
            kw[lab.filter] = raw
        else:
            kw[lab.filter] = raw
    kw["year_from"] = getattr(args, "since", None)
    kw["year_to"] = getattr(args, "until", None)
    if kw["year_from"] and kw["year_to"] and kw["year_from"] > kw["year_to"]:
        raise KeaError(f"--since {kw['year_from']} is after --until {kw['year_to']}")
    search = (getattr(args, "search", None) or "").strip()
    try:
        parse(search)  # an unreadable search is one error naming the problem and where
    except SearchSyntaxError as err:
        raise KeaError(f"--search: {err}") from None
    kw["search"] = search or None
    kw["added_since"] = check_added_since(getattr(args, "added_since", None))
    kw["registered"] = True if getattr(args, "registered", None) else None
    filt = StudyFilter(**kw)
    scope = "all" if getattr(args, "all", False) or not filt.has_label_filter() else "in_scope"
    return replace(filt, scope=scope)


def add_label_args(p: argparse.ArgumentParser) -> None:
    """`kea label PMID --NAME VALUE ...`: one flag per label of the registry."""
    for lab in LABELS:
        if lab.is_set:
            what = f"comma-separated, of {_vocab_help(lab)} ('' for none)"
        elif lab.has_vocabulary:
            what = f"one of {_vocab_help(lab)}"
        elif lab.kind == "integer":
            what = "a whole number, or 'none'"
        else:
            what = "true, false or none"
        p.add_argument(
            label_flag(lab),
            dest=lab.name,
            default=None,
            metavar="VALUE",
            help=f"{lab.help}: {what}",
        )


def labels_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The labels given on `kea label`, each parsed by its ``Label.parse`` (errors: KeaError)."""
    return {
        lab.name: lab.parse(raw)
        for lab in LABELS
        if (raw := getattr(args, lab.name, None)) is not None
    }
