"""Human corrections: the one write a reader (the dashboard, `kea label`) makes to the store.

Kept apart from ``pipeline.query`` (every read) so the dashboard reaches the store's write
path through one small door, and the import contracts can say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.store import Store


def record_corrections(
    db: str | Path | None,
    pmid: str | int,
    changes: dict[str, Any],
    *,
    source: str,
    author: str | None = None,
) -> list[str]:
    """Check every value, then write them all in one transaction; never creates a database."""
    with Store(db, create=False) as store:
        return store.add_corrections(pmid, changes, source=source, author=author)
