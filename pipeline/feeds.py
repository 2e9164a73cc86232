"""News of the atlas: records newly added or newly retracted, as Atom feeds (RFC 4287).

A record is *new* when this store first stored it (``articles.first_seen_at/_run``) and
*newly retracted* when a crawl saw it turn retracted (``retracted_at/_run``, schema v2).
``news`` lists those events for a filter, ``atom`` writes them as a feed (lxml, already a
dependency: the format is small and fixed), ``write_feeds`` writes one file per saved
search and one for the whole atlas into ``feeds_dir(db)`` after every crawl and
classification, so a clinician can subscribe in any feed reader.

A feed keeps the events of the last ``WINDOW_DAYS`` days (newest first, at most
``MAX_ENTRIES``), not only the last crawl's, so a reader that polls less often than the
crawler runs misses nothing; entry ids are stable, so readers show each event once.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from pipeline.labels import display
from pipeline.query import PUBMED_URL, StudyFilter, filtered_pmids, study_detail
from pipeline.saved import slug
from pipeline.trials import links

ATOM_NS = "http://www.w3.org/2005/Atom"
WINDOW_DAYS = 90
MAX_ENTRIES = 200
ATLAS = "atlas"


@dataclass
class Event:
    pmid: str
    kind: str  # "new" | "retracted"
    at: float  # unix time the store saw it
    run: int | None
    study: dict[str, Any] = field(default_factory=dict)


def feeds_dir(db: str | os.PathLike[str]) -> Path:
    """The folder next to the database: data/kea.sqlite -> data/kea-feeds/."""
    p = Path(db)
    return p.with_name(f"{p.stem}-feeds")


def feed_path(db: str | os.PathLike[str], name: str | None) -> Path:
    """atlas.atom for the whole atlas, saved-<slug>.atom for a saved search."""
    return feeds_dir(db) / ("atlas.atom" if name is None else f"saved-{slug(name)}.atom")


def _events(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[Event]:
    rows = conn.execute(
        "SELECT pmid, first_seen_at, first_seen_run, retracted, retracted_at, retracted_run"
        f" FROM articles WHERE deleted = 0 AND ({where})",
        params,
    ).fetchall()
    return [Event(str(r[0]), k, at, run) for r in rows for k, at, run in _kinds(r)]


def _kinds(r: sqlite3.Row | tuple) -> Iterable[tuple[str, float, int | None]]:
    pmid, seen_at, seen_run, retracted, ret_at, ret_run = tuple(r)
    if seen_at is not None:
        yield "new", float(seen_at), seen_run
    # retracted after it was first stored: news of its own (else "new" says it, flagged)
    if retracted and ret_at is not None and (seen_run is None or ret_run != seen_run):
        yield "retracted", float(ret_at), ret_run


def news(
    conn: sqlite3.Connection,
    f: StudyFilter | None,
    *,
    run_id: int | None = None,
    since: float | None = None,
    limit: int | None = MAX_ENTRIES,
    atlas: bool = False,
) -> list[Event]:
    """Events (new, newly retracted) of records matching ``f``, newest first.

    ``run_id``: only what that crawl run brought; else those at or after ``since`` (unix
    time; default WINDOW_DAYS ago). ``atlas``: every record not classified off-topic (new
    records are unlabelled until ``kea classify``, and still news).
    """
    if run_id is not None:
        where = "first_seen_run = ? OR (retracted = 1 AND retracted_run = ?)"
        params: list[Any] = [run_id, run_id]
    else:
        cut = since if since is not None else time.time() - WINDOW_DAYS * 86400
        where = "first_seen_at >= ? OR (retracted = 1 AND retracted_at >= ?)"
        params = [cut, cut]
    events = _events(conn, where, params)
    if run_id is not None:
        events = [e for e in events if e.run == run_id]
    else:
        events = [e for e in events if e.at >= params[0]]
    keep = filtered_pmids(
        conn, f if f is not None else StudyFilter(scope="all"), [int(e.pmid) for e in events]
    )
    out = []
    for e in sorted(events, key=lambda e: (-e.at, e.kind, e.pmid)):
        if int(e.pmid) not in keep:
            continue
        detail = study_detail(conn, e.pmid)
        if detail is None or (atlas and detail.get("relevance") == "off_topic"):
            continue
        e.study = detail
        out.append(e)
        if limit is not None and len(out) >= limit:
            break
    return out


def last_run(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The last completed crawl run (id, finished_at, counts), or None."""
    r = conn.execute(
        "SELECT id, finished_at, new, updated FROM crawl_runs WHERE status = 'completed'"
        " ORDER BY finished_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return dict(zip(("id", "finished_at", "new", "updated"), tuple(r), strict=True)) if r else None


# -- Atom --------------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _urn(*parts: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, "kea:" + ":".join(parts)).urn


def entry_summary(study: Mapping[str, Any]) -> str:
    """One plain line: journal, date, design, outcome, registrations, retraction."""
    bits = [
        study.get("journal") or "journal not given",
        study.get("pub_date") or (str(study["pub_year"]) if study.get("pub_year") else None),
        f"PubMed entry {study['entrez_date']}" if study.get("entrez_date") else None,
        f"design: {display(study['design'])}" if study.get("design") else "not yet classified",
        f"outcome: {display(study['outcome'])}" if study.get("outcome") else None,
    ]
    trials = links(_trial_ids(study))
    if trials:
        bits.append("registered: " + ", ".join(t["id"] for t in trials))
    if study.get("retracted"):
        bits.insert(0, "RETRACTED")
    return " · ".join(b for b in bits if b)


def _trial_ids(study: Mapping[str, Any]) -> list[str]:
    from pipeline.trials import trial_ids

    return [t.id for t in trial_ids(study.get("accession_numbers") or (), study.get("abstract"))]


def atom(
    title: str,
    feed_key: str,
    events: list[Event],
    *,
    subtitle: str | None = None,
    updated: float | None = None,
) -> bytes:
    """An Atom 1.0 document (UTF-8 bytes) of the events."""
    E = ElementMaker(namespace=ATOM_NS, nsmap={None: ATOM_NS})
    stamp = updated if updated is not None else max((e.at for e in events), default=time.time())
    feed = E.feed(
        E.id(_urn("feed", feed_key)),
        E.title(title, type="text"),
        E.updated(_iso(stamp)),
        E.author(E.name("Ketamine Evidence Atlas (kea)")),
        E.generator("kea"),
        E.link(rel="related", href="https://pubmed.ncbi.nlm.nih.gov/"),
    )
    if subtitle:
        feed.append(E.subtitle(subtitle, type="text"))
    for e in events:
        s = e.study
        url = PUBMED_URL.format(pmid=e.pmid)
        head = (
            "RETRACTED: "
            if e.kind == "retracted"
            else ("New (retracted): " if s.get("retracted") else "New: ")
        )
        entry = E.entry(
            E.id(_urn("entry", e.kind, e.pmid)),
            E.title(head + (s.get("title") or f"PMID {e.pmid}"), type="text"),
            E.updated(_iso(e.at)),
            E.link(rel="alternate", type="text/html", href=url),
            E.summary(entry_summary(s), type="text"),
        )
        for name in (s.get("author_names") or [])[:50]:
            entry.append(E.author(E.name(name)))
        for scheme, value in (("design", s.get("design")), ("outcome", s.get("outcome"))):
            if value:
                entry.append(
                    E.category(term=str(value), scheme=f"urn:kea:{scheme}", label=display(value))
                )
        if e.kind == "retracted" or s.get("retracted"):
            entry.append(E.category(term="retracted", scheme="urn:kea:status", label="Retracted"))
        feed.append(entry)
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def feed_bytes(conn: sqlite3.Connection, name: str | None, f: StudyFilter | None) -> bytes:
    """The feed of a saved search (name + its filter) or, with name None, of the atlas."""
    if name is None:
        events = news(conn, None, atlas=True)
        return atom(
            "Ketamine Evidence Atlas: new and retracted studies",
            ATLAS,
            events,
            subtitle="Records newly added to the atlas or newly retracted (off-topic ones left out).",
        )
    events = news(conn, f)
    return atom(
        f"Ketamine Evidence Atlas: {name}",
        f"saved:{name}",
        events,
        subtitle=f"Saved search {name!r}",
    )


def write_feeds(
    conn: sqlite3.Connection, db: str | os.PathLike[str], saved: Mapping[str, StudyFilter]
) -> list[Path]:
    """Write the atlas feed and one per saved search; remove feeds of deleted searches."""
    written = [feed_path(db, None)]
    _write_atomic(written[0], feed_bytes(conn, None, None))
    for name, f in saved.items():
        path = feed_path(db, name)
        _write_atomic(path, feed_bytes(conn, name, f))
        written.append(path)
    keep = {p.name for p in written}
    for old in feeds_dir(db).glob("saved-*.atom"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return written


__all__ = [
    "Event",
    "atom",
    "feed_bytes",
    "feed_path",
    "feeds_dir",
    "last_run",
    "news",
    "write_feeds",
]
