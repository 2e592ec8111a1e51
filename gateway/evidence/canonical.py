"""The canonical serialization of an evidence entry and its hash.

This is the one definition a third party needs to recompute the chain without the
gateway, so it is deliberately plain: a JSON object of fixed keys, sorted, no spaces,
ASCII only (non-ASCII as ``\\uXXXX``), hashed with SHA-256. The export README repeats it.
It is pure (no database, no ORM) so the migration and external tools can use it as is.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Mapping

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry: there is nothing before it."""

FIELDS = ("seq", "time", "kind", "direction", "message_id", "partner_id", "message_digest",
          "receipt_digest", "data", "prev_hash")
"""Every field the entry hash covers (everything but ``entry_hash`` itself)."""


def format_time(t: dt.datetime) -> str:
    """UTC, microseconds, ``Z``: the exact text hashed, reproducible from any backend's value."""
    if t.tzinfo is None:
        raise ValueError("evidence times must be timezone-aware")
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no insignificant whitespace (also used for ``data``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_bytes(fields: Mapping[str, Any]) -> bytes:
    """The bytes hashed for one entry; ``fields`` must hold exactly :data:`FIELDS`."""
    if set(fields) != set(FIELDS):
        raise ValueError(f"evidence entry fields must be exactly {FIELDS}, got {sorted(fields)}")
    return canonical_json(dict(fields)).encode("ascii")


def entry_hash(fields: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical serialization (links the entry to all before it via prev_hash)."""
    return hashlib.sha256(canonical_bytes(fields)).hexdigest()
