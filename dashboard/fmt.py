"""Pure helpers that turn query results into what the pages show (no streamlit here).

Record text (titles, abstracts, journal and author names) comes from PubMed and
is untrusted: it is escaped before it goes into markdown, so markup or script in
a record is always shown as text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from functools import partial
from typing import Any

import pandas as pd

from pipeline import labels, query

RETRACTED_MARK = "⚠ RETRACTED"
REVIEW_MARK = "⚑ check"
VERIFIED_MARK = "✔"

_MD_SPECIAL = set(string.punctuation)
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def pretty(value: Any) -> str:
    """A label value as people read it ('systematic_review' -> 'Systematic review')."""
    return labels.display(value)


def _shown(field: str, value: Any) -> str:
    """A value by its own label's display name (falls back to any label's)."""
    lab = labels.BY_NAME.get(field)
    return lab.display(value) if lab is not None and not lab.is_set else pretty(value)


def md_escape(text: str | None) -> str:
    """Backslash-escape every ASCII punctuation character so markdown shows ``text`` literally.

    CommonMark lets any ASCII punctuation be escaped, which also disarms HTML
    tags (``<``), links, emphasis, math (``$``) and Streamlit's ``:color[...]``.
    """
    if not text:
        return ""
    out = []
    for ch in str(text):
        out.append("\\" + ch if ch in _MD_SPECIAL else ch)
    return "".join(out).replace("\n", "  \n")


def md_unescape(text: str) -> str:
    """Inverse of :func:`md_escape` (used by tests to prove nothing is lost)."""
    return _UNESCAPE.sub(r"\1", text.replace("  \n", "\n"))


def pct(p: float | None) -> str:
    return "?" if p is None else f"{round(float(p) * 100):d}%"


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 study', '2 studies', '1,200 participants'."""
    if many is None:
        many = one[:-1] + "ies" if one.endswith("y") and one[-2:-1] not in "aeiou" else one + "s"
    return f"{int(n):,} {one if int(n) == 1 else many}"


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def shown_confidence(rec: dict[str, Any], field: str) -> float | None:
    """The probability that the value shown for ``field`` is right.

    ``pipeline.query.shown_confidence`` owns the rule (the label-row contract, the fallback
    for rows written before it, 1.0 for a human-verified label); rows from the query carry
    its answer as ``label_confidence``.
    """
    known = rec.get("label_confidence")
    if known is not None and field in known:
        return known[field]
    return query.shown_confidence(rec).get(field)


# the labels the Studies table shows, so "Lowest confidence" is of these only
TABLE_LABELS = ("design", "sample_size", "outcome", "conditions", "comparator", "psychotherapy")


def lowest_confidence(rec: dict[str, Any], fields: Iterable[str] = TABLE_LABELS) -> float | None:
    """The least certain of the labels shown (human-verified ones count as certain)."""
    ps = [shown_confidence(rec, f) for f in fields if rec.get(f) not in (None, [], ())]
    known = [p for p in ps if p is not None]
    return min(known) if known else None


def label_mark(field: str, value: Any, confidence: dict[str, Any], verified: Iterable[str]) -> str:
    """'RCT 93%', or 'RCT ✔' when a human verified the field."""
    shown = _shown(field, value)
    if field in verified:
        return f"{shown} {VERIFIED_MARK}"
    p = shown_confidence({"confidence": confidence, field: value}, field)
    return shown if p is None else f"{shown} {pct(p)}"


def set_marks(
    field: str, values: Iterable[Any], confidence: dict[str, Any], verified: Iterable[str]
) -> str:
    """A set label once, with the confidence of the whole shown set: 'Depression, PTSD 81%'."""
    values = list(values or ())
    if not values:
        return ""
    lab = labels.BY_NAME.get(field)
    shown = lab.display(values) if lab is not None else ", ".join(pretty(v) for v in values)
    if field in verified:
        return f"{shown} {VERIFIED_MARK}"
    p = shown_confidence({"confidence": confidence, field: values}, field)
    return shown if p is None else f"{shown} {pct(p)}"


def author_line(names: Iterable[str] | None, budget: int = 120) -> str | None:
    """Authors joined, cut at a name boundary with 'et al.' (never mid-name)."""
    names = [n for n in names or () if n]
    if not names:
        return None
    out = [names[0]]
    for name in names[1:]:
        if len(", ".join([*out, name])) > budget:
            return ", ".join(out) + " et al."
        out.append(name)
    return ", ".join(out)


def participants_text(participants: int, studies: int, with_n: int) -> str:
    """'125 participants', 'N not stated (2 studies)', or both: never '0 participants'."""
    missing = int(studies) - int(with_n)
    parts = []
    if with_n:
        parts.append(plural(participants, "participant"))
    if missing:
        parts.append(f"N not stated ({plural(missing, 'study')})")
    return "; ".join(parts)


def display_title(row: dict[str, Any]) -> str:
    """The title column text: retracted studies carry the mark first, untitled ones say so."""
    title = row.get("title") or "(no title)"
    return f"{RETRACTED_MARK} · {title}" if row.get("retracted") else title


def check_mark(row: dict[str, Any]) -> str:
    """Short status: retracted, needs human review, human-verified, or model label."""
    marks = []
    if row.get("retracted"):
        marks.append(RETRACTED_MARK)
    if row.get("needs_review"):
        marks.append(REVIEW_MARK)
    if row.get("verified"):
        marks.append(f"{VERIFIED_MARK} human")
    return " ".join(marks)


STUDY_COLUMNS = (
    "title",
    "year",
    "design",
    "n",
    "outcome",
    "conditions",
    "comparator",
    "psychotherapy",
    "confidence",
    "status",
    "first_author",
    "pmid_url",
    "journal",
    "doi_url",
)
_YES_NO = {True: "yes", False: "no"}


def _cell_mark(r: dict[str, Any], field: str) -> str | None:
    v = r.get(field)
    if v in (None, ""):
        return None
    return label_mark(field, v, r.get("confidence") or {}, r.get("verified") or [])


def studies_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The Studies table: one row per study, labels with the confidence of the shown value.

    Missing values stay empty cells (never the text "None").
    """
    out = []
    for r in rows:
        conf = r.get("confidence") or {}
        ver = r.get("verified") or []
        mark = partial(_cell_mark, r)
        psy = r.get("psychotherapy")
        out.append(
            {
                "pmid_url": r.get("pubmed_url"),
                "title": display_title(r),
                "first_author": r.get("first_author"),
                "year": r.get("year"),
                "journal": r.get("journal"),
                "design": mark("design"),
                "n": r.get("sample_size"),
                "outcome": mark("outcome"),
                "conditions": set_marks("conditions", r.get("conditions") or [], conf, ver) or None,
                "comparator": mark("comparator"),
                "psychotherapy": _YES_NO.get(psy) if isinstance(psy, bool) else None,
                "confidence": lowest_confidence(r) if r.get("labelled", True) else None,
                "status": check_mark(r) or None,
                "doi_url": r.get("doi_url"),
            }
        )
    frame = pd.DataFrame(out, columns=list(STUDY_COLUMNS))
    # numbers stay numbers, so the grid sorts N and Year numerically; a missing one is
    # <NA>, drawn as an empty cell by the table's placeholder="" (never a grey "None")
    for col in ("year", "n"):
        frame[col] = pd.array(
            [int(v) if isinstance(v, int | float) and v == v else None for v in frame[col]],
            dtype="Int64",
        )
    text = [c for c in STUDY_COLUMNS if c not in ("confidence", "year", "n")]
    frame[text] = frame[text].fillna("")
    frame["confidence"] = frame["confidence"].astype("Float64")
    return frame


def _href(address: str) -> str:
    """A link target markdown cannot misread: brackets, spaces and '<>' (old SICI DOIs)
    percent-encoded."""
    from urllib.parse import quote

    return quote(address, safe=":/?#=&%;.-_~+,@")


def link_line(pubmed_url: str | None, doi_url: str | None) -> str:
    """':material/open_in_new: [PubMed](…) · [DOI](…)' for a study's detail."""
    links = [f"[{name}]({_href(u)})" for name, u in (("PubMed", pubmed_url), ("DOI", doi_url)) if u]
    return ":material/open_in_new: " + " · ".join(links) if links else ""


def option_label(row: dict[str, Any], width: int = 90) -> str:
    """How a study is named in the 'open a study' picker."""
    title = display_title(row)
    if len(title) > width:
        title = title[: width - 1] + "…"
    year = row.get("year") or "n.d."
    return f"{row['pmid']} · {year} · {title}"


def verified_text(correction: dict[str, Any] | None) -> str:
    """'✔ human-verified by Ana on 2026-12-03' (who/when as far as they were recorded)."""
    c = correction or {}
    text = f"{VERIFIED_MARK} human-verified"
    if c.get("author"):
        text += f" by {c['author']}"
    when = c.get("at") or c.get("created")
    if when:
        text += f" on {str(when)[:10]}"
    return text


def under_review(detail: dict[str, Any], field: str, p: float | None) -> bool:
    """Is ``field`` on the row's review list (older rows: a low probability)?"""
    review = detail.get("review")
    if review is None:
        review = detail.get("review_fields")
    if review is not None:
        return field in review
    return p is not None and p < 0.5


def label_rows(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Every label of a study: its value, the confidence of that value, status, evidence.

    A human-verified label shows who verified it and when, and neither the model's old
    probability nor its evidence sentence.
    """
    evidence = detail.get("evidence") or {}
    verified = set(detail.get("verified") or [])
    fixes = detail.get("verified_by") or detail.get("corrections") or {}
    rows = []
    for lab in labels.LABELS:
        field = lab.name
        value = detail.get(field)
        if value in (None, [], ()):
            shown = "none" if lab.is_set else "not stated"
        else:
            shown = lab.display(value)
        if field in verified:
            rows.append(
                {
                    "label": lab.title,
                    "value": shown,
                    "probability": None,
                    "status": verified_text(fixes.get(field)),
                    "evidence": None,
                }
            )
            continue
        p = shown_confidence(detail, field)
        ev = evidence.get(field)
        if isinstance(ev, list | tuple):
            ev = "; ".join(str(e) for e in ev)
        if under_review(detail, field, p):
            status = "⚑ under review (low confidence)"
        elif p is None:
            status = "model (no probability recorded)"
        else:
            status = "model"
        rows.append(
            {
                "label": lab.title,
                "value": shown,
                "probability": p,
                "status": status,
                "evidence": ev or None,
            }
        )
    return rows


LABEL_TABLE_COLUMNS = {
    "label": "Label",
    "value": "Value",
    "probability": "Confidence of this value",
    "status": "Status",
    "evidence": "Evidence (sentence or terms)",
}


def label_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """:func:`label_rows` as the study's label table shows them: text only, no empty 'None'."""
    return pd.DataFrame(
        [
            {
                LABEL_TABLE_COLUMNS[k]: (
                    ("" if v is None else pct(v)) if k == "probability" else (v or "")
                )
                for k, v in r.items()
            }
            for r in rows
        ],
        columns=list(LABEL_TABLE_COLUMNS.values()),
    )


OUTCOME_ORDER = labels.VOCAB["outcome"]


def cell_text(studies: int, participants: int, with_n: int) -> str:
    """One summary cell: '3 studies · 125 participants; N not stated (1 study)'; '—' for none."""
    if not studies:
        return "—"
    return f"{plural(studies, 'study')} · {participants_text(participants, studies, with_n)}"


def outcome_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Condition × outcome direction, one cell text per pair (see :func:`cell_text`).

    ``rows`` are ``query.outcome_summary`` rows; without a ``with_n`` count a row's
    participants are taken as stated only when they are positive.
    """
    columns = ["Condition", *[pretty(o) for o in OUTCOME_ORDER]]
    if not rows:
        return pd.DataFrame(columns=columns)
    cond_lab = labels.BY_NAME["conditions"]
    cells: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        c = cells.setdefault((r["condition"], r["outcome"]), [0, 0, 0])
        n = int(r.get("studies") or 0)
        c[0] += n
        c[1] += int(r.get("participants") or 0)
        with_n = r.get("with_n")
        c[2] += int(with_n) if with_n is not None else (n if r.get("participants") else 0)
    out = []
    for cond in sorted({k[0] for k in cells}, key=lambda c: cond_lab.values.get(c, c)):
        rec: dict[str, Any] = {"Condition": cond_lab.values.get(cond, pretty(cond))}
        for o in OUTCOME_ORDER:
            rec[pretty(o)] = cell_text(*cells.get((cond, o), [0, 0, 0]))
        out.append(rec)
    return pd.DataFrame(out, columns=columns)


def answer_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the RCTs and systematic reviews among ``rows`` came out, and who is behind them.

    ``rows`` are list_studies() dicts. Retracted studies are never counted as evidence:
    they are left out of every number and listed apart (``retracted``). Returns cell
    texts per design × outcome (with 'N not stated' where sizes are missing), totals,
    and the newest and largest studies.
    """
    live = [r for r in rows if not r.get("retracted")]
    retracted = [r for r in rows if r.get("retracted")]
    cells: dict[tuple[str, str], list[int]] = {}
    for r in live:
        key = (r.get("design") or "unknown", r.get("outcome") or "not_reported")
        c = cells.setdefault(key, [0, 0, 0])
        c[0] += 1
        if r.get("sample_size"):
            c[1] += int(r["sample_size"])
            c[2] += 1
    table = []
    for design in ("rct", "systematic_review"):
        rec: dict[str, Any] = {"Design": pretty(design)}
        for o in ("beneficial", "no_benefit", "mixed"):
            rec[pretty(o)] = cell_text(*cells.get((design, o), [0, 0, 0]))
        table.append(rec)
    newest = sorted(
        live, key=lambda r: (r.get("entrez_date") or "", r.get("year") or 0), reverse=True
    )[:3]
    largest = sorted(
        (r for r in live if r.get("sample_size")), key=lambda r: r["sample_size"], reverse=True
    )[:3]
    total = {
        o: sum(c[0] for (d, oo), c in cells.items() if oo == o)
        for o in ("beneficial", "no_benefit", "mixed", "not_reported")
    }
    return {
        "table": table,
        "newest": newest,
        "largest": largest,
        "totals": total,
        "studies": len(live),
        "retracted": retracted,
        "cells": cells,
    }


def retracted_note(k: int) -> str | None:
    """'1 retracted study not counted' (None when there is none)."""
    if not k:
        return None
    return f"{RETRACTED_MARK}: {plural(k, 'retracted study', 'retracted studies')} not counted"


def prisma_dot(flow: dict[str, Any]) -> str:
    """A graphviz DOT flow: retrieved -> screened -> in scope -> per condition, exclusions aside.

    Every label is one of our numbers or fixed words, never record text.
    """

    def box(name: str, label: str, n: int | None, colour: str = "#eef3f8") -> str:
        count = "?" if n is None else f"{int(n):,}"
        return f'{name} [label="{label}\\n{count}", fillcolor="{colour}"];'

    lines = [
        "digraph prisma {",
        "rankdir=TB; nodesep=0.3; ranksep=0.35;",
        'node [shape=box, style="rounded,filled", fontname="sans-serif", fontsize=11];',
        box("retrieved", "Records retrieved", flow.get("retrieved")),
        box("deleted", "Deleted or withdrawn by PubMed", flow.get("deleted"), "#f8eeee"),
        box("screened", "Records screened by the classifier", flow.get("screened")),
        box("unlabelled", "Not yet classified", flow.get("unlabelled"), "#f8eeee"),
        box("off_topic", "Off-topic", flow.get("off_topic"), "#f8eeee"),
        box("in_scope", "In scope", flow.get("in_scope"), "#e8f4ea"),
        "retrieved -> screened; retrieved -> deleted;",
        "screened -> in_scope; screened -> unlabelled; screened -> off_topic;",
        "{rank=same; screened; deleted;}",
    ]
    for i, (cond, n) in enumerate(sorted((flow.get("in_scope_by_condition") or {}).items())):
        lines.append(box(f"c{i}", pretty(cond), n, "#e8f4ea"))
        lines.append(f"in_scope -> c{i} [style=dashed];")
    lines.append("}")
    return "\n".join(lines)


def prisma_rows(flow: dict[str, Any]) -> list[dict[str, Any]]:
    """The same flow as a small table (screen readers, copying numbers)."""
    rows = [
        ("Records retrieved", flow.get("retrieved")),
        ("Duplicates", flow.get("duplicates")),
        ("Deleted or withdrawn by PubMed", flow.get("deleted")),
        ("Records screened by the classifier", flow.get("screened")),
        ("Not yet classified", flow.get("unlabelled")),
        ("Off-topic", flow.get("off_topic")),
        ("In scope", flow.get("in_scope")),
    ]
    for cond, n in sorted((flow.get("in_scope_by_condition") or {}).items()):
        rows.append((f"In scope: {pretty(cond)} (a study can have several)", n))
    return [{"step": s, "records": n} for s, n in rows if n is not None]


# -- the model card (About) ---------------------------------------------------------------
METRIC_NAMES = {
    "f1": "F1",
    "macro_f1": "macro-F1",
    "micro_f1": "micro-F1",
    "exact": "exact match",
    "accuracy": "accuracy",
    "ece": "calibration error (ECE)",
    "brier": "Brier score",
}
SPLIT_NAMES = {
    "sealed": "sealed test set (never read while building)",
    "dev_cv": "cross-validated, development part",
    "cv": "cross-validated",
}
SPLIT_ORDER = {"sealed": 0, "dev_cv": 1, "cv": 2}
METRIC_COLUMNS = ("label", "metric", "value", "interval", "n", "split")


def _num(x: Any) -> str:
    return "—" if x is None else f"{float(x):.2f}"


def metric_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The model card's ``metrics`` rows as the About table shows them, in registry order.

    Each card row is ``{label, metric, value, ci_low, ci_high, n, split}``; a row that
    lacks ``label``, ``metric`` or a numeric ``value`` is left out rather than guessed.
    """
    order = {name: i for i, name in enumerate(labels.LABEL_NAMES)}
    rows = [
        r
        for r in card.get("metrics") or []
        if isinstance(r, dict)
        and r.get("label")
        and r.get("metric")
        and isinstance(r.get("value"), int | float)
    ]
    rows.sort(
        key=lambda r: (
            SPLIT_ORDER.get(r.get("split"), len(SPLIT_ORDER)),
            str(r.get("split")),
            order.get(r["label"], len(order)),
            str(r["metric"]),
        )
    )
    out = []
    for r in rows:
        lab = labels.BY_NAME.get(r["label"])
        lo, hi = r.get("ci_low"), r.get("ci_high")
        out.append(
            {
                "label": lab.title if lab else str(r["label"]),
                "metric": METRIC_NAMES.get(r["metric"], str(r["metric"])),
                "value": _num(r["value"]),
                "interval": "—" if lo is None or hi is None else f"{_num(lo)}–{_num(hi)}",
                "n": r.get("n"),
                "split": SPLIT_NAMES.get(r.get("split"), str(r.get("split") or "—")),
            }
        )
    return out


def review_text(review: dict[str, Any] | None) -> str | None:
    """What the ⚑ flag means in numbers, from the card's ``review`` block."""
    if not review:
        return None
    threshold = review.get("threshold")
    per_label = review.get("thresholds") or review.get("review_thresholds")
    if isinstance(per_label, dict) and per_label:
        nums = [float(v) for v in per_label.values() if _number(v) is not None]
        lo, hi = min(nums), max(nums)
        rule = f"below its label's review threshold ({_num(lo)}–{_num(hi)})"
    elif _number(threshold) is not None:
        rule = f"below {_num(threshold)}"
    else:
        return None
    parts = [
        f"A label is flagged **{REVIEW_MARK}** (under review) when the probability that its "
        f"shown value is right is {rule}."
    ]
    record_labels = review.get("record_labels")
    if record_labels:
        parts.append(
            f"A record is flagged when one of its evidence labels ({', '.join(record_labels)}) "
            "is; the others are flagged per label only."
        )
    if review.get("flagged_share") is not None:
        parts.append(f"That flags {pct(review['flagged_share'])} of the evaluated records.")
    flagged, unflagged = review.get("accuracy_flagged"), review.get("accuracy_unflagged")
    if flagged is not None and unflagged is not None:
        parts.append(
            f"Flagged records were fully right {pct(flagged)} of the time, "
            f"unflagged records {pct(unflagged)}: check flagged records first."
        )
    return " ".join(parts)


def review_rows(review: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flagged vs unflagged, as a two-row table: share of records and how often right."""
    if not review:
        return []
    share = _number(review.get("flagged_share"))
    rows = []
    for name, key, part in (
        ("flagged ⚑", "accuracy_flagged", share),
        ("not flagged", "accuracy_unflagged", None if share is None else 1 - share),
    ):
        acc = _number(review.get(key))
        if acc is None:
            continue
        rows.append({"records": name, "share of records": pct(part), "fully right": pct(acc)})
    return rows


def label_review_rows(review: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per label rather than per record: how often flagged and unflagged labels are right."""
    if not review:
        return []
    share = _number(review.get("label_flagged_share"))
    rows = []
    for name, key, part in (
        ("labels flagged ⚑", "label_precision_flagged", share),
        ("labels not flagged", "label_precision_unflagged", None if share is None else 1 - share),
    ):
        right = _number(review.get(key))
        if right is not None:
            rows.append({"labels": name, "share of labels": pct(part), "right": pct(right)})
    return rows


def _pct_or_dash(p: Any) -> str:
    return "—" if _number(p) is None else pct(p)


def calibration_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card's per-label calibration (sealed first): error, threshold, flagged, right."""
    order = {name: i for i, name in enumerate(labels.LABEL_NAMES)}
    rows = [r for r in card.get("calibration") or [] if isinstance(r, dict) and r.get("label")]
    rows.sort(key=lambda r: (SPLIT_ORDER.get(r.get("split"), 9), order.get(r["label"], 99)))
    out = []
    for r in rows:
        lab = labels.BY_NAME.get(r["label"])
        lo, hi = r.get("ece_ci_low"), r.get("ece_ci_high")
        ece = _number(r.get("ece"))
        out.append(
            {
                "Label": lab.title if lab else str(r["label"]),
                "Scored on": SPLIT_NAMES.get(r.get("split"), str(r.get("split") or "—")),
                "Calibration error (ECE)": "—"
                if ece is None
                else f"{ece:.3f}"
                + ("" if lo is None or hi is None else f" ({float(lo):.3f}–{float(hi):.3f})"),
                "Review below": _num(r.get("threshold")),
                "Flagged": _pct_or_dash(r.get("flagged_share")),
                "Right when flagged": _pct_or_dash(r.get("precision_flagged")),
                "Right when not flagged": _pct_or_dash(r.get("precision_unflagged")),
                "n": r.get("n"),
            }
        )
    return out
