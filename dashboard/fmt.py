"""Pure helpers that turn query results into what the pages show (no streamlit here).

Record text (titles, abstracts, journal and author names) comes from PubMed and
is untrusted: it is escaped before it goes into markdown, so markup or script in
a record is always shown as text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any

import pandas as pd

from pipeline import labels

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


def confidence_of(confidence: dict[str, Any], field: str, value: Any = None) -> float | None:
    """A label's probability: 'field:value' for set members, else 'field'."""
    if not confidence:
        return None
    if value is not None and f"{field}:{value}" in confidence:
        return confidence[f"{field}:{value}"]
    v = confidence.get(field)
    return v if isinstance(v, int | float) else None


def label_mark(field: str, value: Any, confidence: dict[str, Any], verified: Iterable[str]) -> str:
    """'RCT 93%', or 'RCT ✔' when a human verified the field."""
    shown = _shown(field, value)
    if field in verified:
        return f"{shown} {VERIFIED_MARK}"
    p = confidence_of(confidence, field, value)
    return shown if p is None else f"{shown} {pct(p)}"


def set_marks(
    field: str, values: Iterable[Any], confidence: dict[str, Any], verified: Iterable[str]
) -> str:
    return ", ".join(label_mark(field, v, confidence, verified) for v in values or ())


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
    "pmid_url",
    "status",
    "title",
    "first_author",
    "year",
    "design",
    "n",
    "outcome",
    "conditions",
    "confidence",
    "journal",
    "doi_url",
)


def studies_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The Studies table: one row per study, labels with their confidence marks."""
    out = []
    for r in rows:
        conf = r.get("confidence") or {}
        ver = r.get("verified") or []
        out.append(
            {
                "pmid_url": r.get("pubmed_url"),
                "title": display_title(r),
                "first_author": r.get("first_author"),
                "year": r.get("year"),
                "journal": r.get("journal"),
                "design": label_mark("design", r.get("design"), conf, ver)
                if r.get("design")
                else None,
                "n": r.get("sample_size"),
                "outcome": label_mark("outcome", r.get("outcome"), conf, ver)
                if r.get("outcome")
                else None,
                "conditions": set_marks("conditions", r.get("conditions") or [], conf, ver) or None,
                "confidence": r.get("min_confidence"),
                "status": check_mark(r),
                "doi_url": r.get("doi_url"),
            }
        )
    frame = pd.DataFrame(out, columns=list(STUDY_COLUMNS))
    frame["year"] = frame["year"].astype("Int64")
    frame["n"] = frame["n"].astype("Int64")
    frame["confidence"] = frame["confidence"].astype("Float64")
    return frame


def option_label(row: dict[str, Any], width: int = 90) -> str:
    """How a study is named in the 'open a study' picker."""
    title = display_title(row)
    if len(title) > width:
        title = title[: width - 1] + "…"
    year = row.get("year") or "n.d."
    return f"{row['pmid']} · {year} · {title}"


def label_rows(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """Every label of a study with its probability, evidence sentence and status."""
    conf = detail.get("confidence") or {}
    evidence = detail.get("evidence") or {}
    verified = set(detail.get("verified") or [])
    rows = []
    for lab in labels.LABELS:
        field = lab.name
        value = detail.get(field)
        if lab.is_set:
            shown = (
                ", ".join(
                    f"{lab.values.get(v, pretty(v))} ({pct(confidence_of(conf, field, v))})"
                    if confidence_of(conf, field, v) is not None and field not in verified
                    else lab.values.get(v, pretty(v))
                    for v in value or []
                )
                or "none"
            )
            p = (
                None
                if (value and len(value) > 1)
                else confidence_of(conf, field, (value or [None])[0])
            )
        else:
            shown = lab.display(value)
            p = confidence_of(conf, field, value)
        ev = evidence.get(field)
        if isinstance(ev, list | tuple):
            ev = "; ".join(str(e) for e in ev)
        if field in verified:
            status = "✔ human-verified"
        elif p is not None and p < 0.5:
            status = "⚑ low confidence"
        elif p is None:
            status = "model (no probability recorded)"
        else:
            status = "model"
        rows.append(
            {
                "label": lab.title,
                "value": shown,
                "probability": None if field in verified else p,
                "status": status,
                "evidence": ev,
            }
        )
    return rows


OUTCOME_ORDER = labels.VOCAB["outcome"]


def outcome_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Condition × outcome direction: 'studies (participants)' per cell, plus totals."""
    if not rows:
        return pd.DataFrame(columns=["condition", *[pretty(o) for o in OUTCOME_ORDER]])
    frame = pd.DataFrame(rows)
    out = []
    for cond, grp in frame.groupby("condition", sort=True):
        rec: dict[str, Any] = {"condition": pretty(cond)}
        for o in OUTCOME_ORDER:
            sub = grp[grp["outcome"] == o]
            s = int(sub["studies"].sum()) if len(sub) else 0
            p = int(sub["participants"].fillna(0).sum()) if len(sub) else 0
            rec[pretty(o)] = f"{s} ({p:,} participants)" if s else "0"
        out.append(rec)
    return pd.DataFrame(out)


def answer_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How the RCTs and systematic reviews among ``rows`` came out, and who is behind them.

    ``rows`` are list_studies() dicts; returns counts and participants per
    design × outcome, plus the newest and largest studies.
    """
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        key = (r.get("design") or "unknown", r.get("outcome") or "not_reported")
        c = cells.setdefault(key, {"studies": 0, "participants": 0})
        c["studies"] += 1
        c["participants"] += int(r.get("sample_size") or 0)
    table = []
    for design in ("rct", "systematic_review"):
        rec: dict[str, Any] = {"design": pretty(design)}
        for o in ("beneficial", "no_benefit", "mixed"):
            c = cells.get((design, o), {"studies": 0, "participants": 0})
            rec[pretty(o)] = c["studies"]
            rec[f"{pretty(o)} participants"] = c["participants"]
        table.append(rec)
    live = [r for r in rows if not r.get("retracted")]
    newest = sorted(
        live, key=lambda r: (r.get("entrez_date") or "", r.get("year") or 0), reverse=True
    )[:3]
    largest = sorted(
        (r for r in live if r.get("sample_size")), key=lambda r: r["sample_size"], reverse=True
    )[:3]
    total = {
        o: sum(c["studies"] for (d, oo), c in cells.items() if oo == o)
        for o in ("beneficial", "no_benefit", "mixed", "not_reported")
    }
    return {
        "table": table,
        "newest": newest,
        "largest": largest,
        "totals": total,
        "studies": len(rows),
    }


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
}
SPLIT_NAMES = {"cv": "cross-validated", "sealed": "sealed test set"}
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
    rows.sort(key=lambda r: (order.get(r["label"], len(order)), r.get("split") != "cv"))
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
    """What the ⚑ check flag means in numbers, from the card's ``review`` block."""
    if not review or review.get("threshold") is None:
        return None
    parts = [
        f"A record is flagged **{REVIEW_MARK}** when one of its labels has a probability "
        f"below {_num(review['threshold'])}."
    ]
    if review.get("flagged_share") is not None:
        parts.append(f"That flags {pct(review['flagged_share'])} of the evaluated records.")
    flagged, unflagged = review.get("accuracy_flagged"), review.get("accuracy_unflagged")
    if flagged is not None and unflagged is not None:
        parts.append(
            f"Labels of flagged records were right {pct(flagged)} of the time, "
            f"those of unflagged records {pct(unflagged)}: check flagged records first."
        )
    return " ".join(parts)
