"""The one split of the gold corpus into a development part and a sealed part.

The sealed part (about 30%) is fixed by a hash of each record's stable `id`, so it
never moves when records are added or reordered. Its errors are not read while
writing rules or choosing features: rules are tuned on the development part only,
and the sealed part scores the result once (model card, `kea evaluate`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

SALT = "kea-sealed-v1:"
SEALED_PERCENT = 30


def record_key(rec: dict[str, Any]) -> str:
    """The identity the split hashes: the corpus `id`, else the PMID (human corrections)."""
    key = rec.get("id") or rec.get("pmid")
    if not key:
        raise ValueError("a gold record without an id or pmid cannot be assigned to a split")
    return str(key)


def is_sealed(rec: dict[str, Any]) -> bool:
    digest = hashlib.sha256((SALT + record_key(rec)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < SEALED_PERCENT


def split_gold(
    recs: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(development, sealed), each in the input order."""
    dev: list[dict[str, Any]] = []
    sealed: list[dict[str, Any]] = []
    for r in recs:
        (sealed if is_sealed(r) else dev).append(r)
    return dev, sealed
