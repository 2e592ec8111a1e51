"""Tampering with stored evidence wherever the store keeps it (a database row or a file), the
way an attacker with access to the state directory or the database would."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import update

from gateway.store.models import BlobRow
from gateway.store.store import MessageStore


def alter_blob(store: MessageStore, digest: str, change: Callable[[bytes], bytes]) -> str:
    """Replace the stored bytes of a blob by ``change(old)``; returns where it lives (as reports name it)."""
    where = store.blobs.where(digest)
    old = store.blobs._read(digest)
    assert old is not None, f"blob {digest} is not stored"
    if where.startswith("file "):
        store.blobs.path(digest).write_bytes(change(old))
    else:
        with store.engine.begin() as conn:
            conn.execute(update(BlobRow.__table__).where(BlobRow.__table__.c.digest == digest)
                         .values(data=change(old)))
    return where


def flip_a_bit(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 1
    return bytes(changed)


def remove_blob(store: MessageStore, digest: str) -> None:
    assert store.blobs.delete(digest), f"blob {digest} was not stored"


def blob_present(store: MessageStore, digest: str) -> bool:
    return store.blobs.exists(digest)


class moved_aside:
    """``with moved_aside(store, digest):`` the blob is gone from the store inside, back after."""

    def __init__(self, store: MessageStore, digest: str):
        self.store, self.digest = store, digest

    def __enter__(self):
        self.data = self.store.blob(self.digest)
        remove_blob(self.store, self.digest)
        return self

    def __exit__(self, *exc):
        assert self.store.blobs.put(self.data) == self.digest
        return False
