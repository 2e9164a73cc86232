"""Following the atlas: saved searches <-> filters (through the dashboard's URL codec), the
feeds written after every crawl and classification, and `kea whatsnew`.

The application wires these because the filter of a saved search is a dashboard URL
(``dashboard.url``) and the feeds are pipeline work (``pipeline.feeds``); neither layer may
import the other.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dashboard.url import read_query_params, to_query_params
from pipeline.errors import KeaError
from pipeline.query import StudyFilter

LISTED = 50  # records listed per search by `kea whatsnew` (the counts are always complete)


def params_of(f: StudyFilter) -> str:
    """A filter as the URL query string a saved search stores."""
    return urlencode(to_query_params(f))


def filter_of(params: str) -> StudyFilter:
    """A saved search's filter (tolerant, as a shared link is read)."""
    return read_query_params(parse_qs(params))[0]


def params_from_link(link: str) -> str:
    """A dashboard link (or its query string) checked strictly: a bad value is an error."""
    text = (link or "").strip()
    query = urlsplit(text).query if "://" in text or text.startswith("/") else text.lstrip("?")
    parsed = parse_qs(query)
    page_keys = {"page", "pmid", "view", "sort"}
    f, dropped = read_query_params({k: v for k, v in parsed.items() if k not in page_keys})
    if dropped:
        raise KeaError(
            f"--url: the link's {', '.join(sorted(set(dropped)))} value(s) are not valid"
        )
    return params_of(f)


def saved_filters(conn: Any) -> dict[str, StudyFilter]:
    from pipeline.saved import list_saved

    return {s.name: filter_of(s.params) for s in list_saved(conn)}


def refresh_feeds(db: str | Path | None, *, quiet: bool = False) -> list[Path]:
    """Write every feed of the store; one line on stderr says where (feeds never fail a crawl
    that succeeded: a write error is reported, not raised)."""
    from pipeline.feeds import feeds_dir, write_feeds
    from pipeline.store import Store

    try:
        with Store(db, create=False) as store:
            paths = write_feeds(store.conn, store.path, saved_filters(store.conn))
            where = feeds_dir(store.path)
    except OSError as err:
        print(f"kea: feeds not written: {err.strerror or err}", file=sys.stderr)
        return []
    except KeaError as err:  # e.g. a store that cannot be written: the command itself succeeded
        print(f"kea: feeds not written: {err}", file=sys.stderr)
        return []
    if not quiet:
        print(f"feeds: {len(paths)} written to {where}", file=sys.stderr)
    return paths


def whatsnew_lines(db: str | Path | None, name: str | None = None) -> list[str]:
    """What the last completed crawl added or saw retracted: the atlas and each saved search
    (or only ``name``)."""
    from pipeline.feeds import last_run, news
    from pipeline.labels import display
    from pipeline.saved import get_saved
    from pipeline.store import Store

    with Store(db, readonly=True) as store:
        conn = store.conn
        run = last_run(conn)
        if run is None:
            return ["no completed crawl yet (run `kea crawl`)"]
        if name is not None:
            s = get_saved(conn, name)
            targets: list[tuple[str, StudyFilter | None]] = [(s.name, filter_of(s.params))]
        else:
            targets = [("whole atlas", None), *saved_filters(conn).items()]
        from datetime import datetime

        when = datetime.fromtimestamp(run["finished_at"]).strftime("%Y-%m-%d %H:%M")
        lines = [f"last crawl: #{run['id']} finished {when}"]
        for label, f in targets:
            events = news(conn, f, run_id=run["id"], limit=None, atlas=f is None)
            new = [e for e in events if e.kind == "new"]
            ret = [e for e in events if e.kind == "retracted"]
            lines.append(f"{label}: {len(new)} new, {len(ret)} newly retracted")
            for e in events[:LISTED]:
                st = e.study
                flag = "RETRACTED " if e.kind == "retracted" or st.get("retracted") else ""
                design = display(st.get("design")) if st.get("design") else "unclassified"
                lines.append(
                    f"  {flag}{e.pmid}  {st.get('entrez_date') or '-'}  {design}  "
                    f"{(st.get('title') or '')[:100]}  https://pubmed.ncbi.nlm.nih.gov/{e.pmid}/"
                )
            if len(events) > LISTED:
                lines.append(
                    f"  ... and {len(events) - LISTED} more (kea export --added-since last-crawl)"
                )
    return lines
