"""Saved searches: a name and a filter, stored in the database (table ``saved_searches``).

The filter is kept as the dashboard's URL query string (``q=ptsd%5Bti%5D&ds=rct``), the same
state a shared link carries, so a saved search opens as a link and a link can be saved.
Turning that string into a ``StudyFilter`` is the URL codec's job (``dashboard.url``); the
application wires the two (``kea saved``, the feeds after a crawl). Like corrections, this
is a write a reader may make: it opens the store itself and never creates a database.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from pipeline.errors import KeaError
from pipeline.store import Store

MAX_NAME = 60
MAX_PARAMS = 4_000
_NAME = re.compile(r"^[\w][\w .,()+&'-]*$", re.UNICODE)


@dataclass(frozen=True)
class SavedSearch:
    name: str
    params: str  # URL query string (dashboard.url keys)
    created_at: float
    author: str | None = None

    @property
    def slug(self) -> str:
        """The feed file's name part: lower-case letters, digits and hyphens."""
        return slug(self.name)


def slug(name: str) -> str:
    """'PTSD trials (2024+)' -> 'ptsd-trials-2024'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "search"


def check_name(name: str) -> str:
    """The name stripped, or KeaError saying what is wrong with it."""
    n = (name or "").strip()
    if not n:
        raise KeaError("a saved search needs a name")
    if len(n) > MAX_NAME:
        raise KeaError(f"saved search name is {len(n)} characters; the limit is {MAX_NAME}")
    if not _NAME.match(n):
        raise KeaError(
            f"saved search name {n!r}: use letters, digits, spaces and . , ( ) + & ' - only"
        )
    return n


def check_params(params: str) -> str:
    """A URL query string (no '?', no fragment), or KeaError."""
    p = (params or "").strip().lstrip("?")
    if len(p) > MAX_PARAMS:
        raise KeaError(f"saved search filter is {len(p)} characters; the limit is {MAX_PARAMS}")
    if "#" in p or any(ch < " " for ch in p):
        raise KeaError("saved search filter must be a URL query string (key=value&...)")
    parse_qsl(p, strict_parsing=False)
    return p


def _row(r: tuple) -> SavedSearch:
    return SavedSearch(name=r[0], params=r[1], created_at=float(r[2]), author=r[3])


def list_saved(conn_or_db: object) -> list[SavedSearch]:
    """Every saved search, by name (a connection, or a database path opened read-only)."""
    if isinstance(conn_or_db, str | Path):
        with Store(conn_or_db, readonly=True) as store:
            return list_saved(store.conn)
    rows = conn_or_db.execute(  # type: ignore[attr-defined]
        "SELECT name, params, created_at, author FROM saved_searches ORDER BY name COLLATE NOCASE"
    )
    return [_row(tuple(r)) for r in rows]


def get_saved(conn_or_db: object, name: str) -> SavedSearch:
    """One saved search by name (case-insensitive), or KeaError listing the names there are."""
    saved = list_saved(conn_or_db)
    for s in saved:
        if s.name.lower() == (name or "").strip().lower():
            return s
    names = ", ".join(repr(s.name) for s in saved) or "none yet (kea saved add NAME ...)"
    raise KeaError(f"no saved search named {name!r}; saved: {names}")


def add_saved(
    db: str | Path | None,
    name: str,
    params: str,
    *,
    author: str | None = None,
    replace: bool = False,
) -> SavedSearch:
    """Save (or with ``replace``, overwrite) a search; names and feed files stay unique."""
    n = check_name(name)
    p = check_params(params)
    with Store(db, create=False) as store, store.transaction() as c:
        for (other,) in c.execute("SELECT name FROM saved_searches"):
            same = other.lower() == n.lower()
            if same and not replace:
                raise KeaError(f"a saved search named {other!r} exists (use --replace)")
            if not same and slug(other) == slug(n):
                raise KeaError(f"{n!r} would share a feed file with saved search {other!r}")
        c.execute("DELETE FROM saved_searches WHERE lower(name) = lower(?)", (n,))
        now = time.time()
        c.execute(
            "INSERT INTO saved_searches(name, params, created_at, author) VALUES (?, ?, ?, ?)",
            (n, p, now, author),
        )
    return SavedSearch(n, p, now, author)


def remove_saved(db: str | Path | None, name: str) -> str:
    """Delete a saved search; its name as stored, or KeaError when there is none."""
    with Store(db, create=False) as store:
        found = get_saved(store.conn, name)
        with store.transaction() as c:
            c.execute("DELETE FROM saved_searches WHERE name = ?", (found.name,))
    return found.name


__all__ = [
    "SavedSearch",
    "add_saved",
    "check_name",
    "get_saved",
    "list_saved",
    "remove_saved",
    "slug",
]
