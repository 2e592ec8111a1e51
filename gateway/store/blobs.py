"""Content-addressed blobs: raw signed messages, receipts, payloads, time-stamp tokens, by SHA-256.

Content addressing makes writes idempotent (a retried write of the same bytes is a no-op)
and lets evidence be checked later by re-hashing.

Where the bytes live: blobs up to ``inline_max`` go into the ``blobs`` table, inserted in the
transaction of the rows that name them, so a message, its receipt and its evidence entry cost
one commit (and one fsync, shared by every message of a group commit) instead of a file
create, write, fsync and rename each. Larger blobs are files under the blob directory, written
and fsynced *before* that transaction (a row never names bytes that are not durable); blobs
stored before migration 0005 are files too, and are read from there.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.engine import Engine

from crypto import content
from crypto.content import FileContent, Octets
from gateway.store.models import BlobRow

MiB = 1024 * 1024
INLINE_MAX = 1 * MiB

OK, MISSING, CORRUPT = "ok", "missing", "corrupt"
_TABLE = BlobRow.__table__


def digest_of(data: Octets) -> str:
    return content.hexdigest(data)


_IGNORING: dict[tuple[str, str], object] = {}     # (dialect, table) -> prebuilt INSERT ... DO NOTHING


def insert_ignoring_duplicates(conn: Connection, table, rows: list[dict]) -> None:
    """INSERT rows whose primary key may already exist (the same content stored again)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        statement = _IGNORING.get((dialect, table.name))
        if statement is None:
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            statement = _IGNORING[(dialect, table.name)] = dialect_insert(table).on_conflict_do_nothing()
        conn.execute(statement, rows)
        return
    key = list(table.primary_key.columns)[0]
    present = set(conn.scalars(select(key).where(key.in_([r[key.name] for r in rows]))))
    fresh = [r for r in rows if r[key.name] not in present]
    if fresh:
        conn.execute(insert(table), fresh)


class BlobStore:
    def __init__(self, root: Path, engine: Engine, inline_max: int = INLINE_MAX):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.engine = engine
        self.inline_max = inline_max

    def path(self, digest: str) -> Path:
        """Where a blob lives when it is a file (larger than ``inline_max``, or stored before 0005)."""
        return self.root / digest[:2] / digest

    # -- writing -------------------------------------------------------------------
    def stage(self, data: Octets) -> tuple[str, dict | None]:
        """Before the transaction: a large blob is written to its file durably now; a small one
        becomes the row to insert with :meth:`insert` (returned, None for a file)."""
        digest = digest_of(data)
        if len(data) > self.inline_max:
            self._write_file(digest, data)
            return digest, None
        return digest, {"digest": digest, "size": len(data), "data": content.as_bytes(data)}

    @staticmethod
    def insert(conn: Connection, rows: list[dict | None]) -> None:
        """Inside the transaction: the staged rows (None entries, files, are skipped)."""
        insert_ignoring_duplicates(conn, _TABLE, [r for r in rows if r is not None])

    def put(self, data: Octets) -> str:
        """Store ``data`` durably in a transaction of its own and return its hex SHA-256."""
        digest, row = self.stage(data)
        if row is not None:
            with self.engine.begin() as conn:
                self.insert(conn, [row])
        return digest

    def _write_file(self, digest: str, data: Octets) -> None:
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{digest}.{uuid.uuid4().hex}.tmp")  # unique per writer thread
        try:
            if not content.link_whole_spool(data, str(tmp)):
                with open(tmp, "wb") as fh:
                    content.write_into(data, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)   # a full disk must not leave half-written files behind
            raise

    # -- reading -------------------------------------------------------------------
    def _read(self, digest: str) -> bytes | None:
        with self.engine.connect() as conn:
            data = conn.scalar(select(_TABLE.c.data).where(_TABLE.c.digest == digest))
        if data is not None:
            return bytes(data)
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None

    def get(self, digest: str) -> bytes:
        data = self._read(digest)
        if data is None:
            raise FileNotFoundError(f"blob {digest} is not in the store (neither in the database nor at "
                                    f"{self.path(digest)})")
        if digest_of(data) != digest:
            raise IOError(f"blob {digest} is corrupt: its content no longer matches its digest")
        return data

    def content(self, digest: str) -> Octets:
        """A blob to stream: a large file blob as a ``FileContent`` over the open file (not read
        into memory, and not re-hashed: the reader is the partner or the NSW, and `swgw
        evidence verify` checks every blob's digest), else its bytes, checked as by :meth:`get`."""
        try:
            fh = open(self.path(digest), "rb")
        except FileNotFoundError:
            return self.get(digest)
        size = os.fstat(fh.fileno()).st_size   # a file blob is never also a row (stage writes one)
        if size <= content.SPOOL_THRESHOLD:
            fh.close()
            return self.get(digest)
        return FileContent(fh, 0, size)

    def exists(self, digest: str) -> bool:
        with self.engine.connect() as conn:
            if conn.scalar(select(_TABLE.c.size).where(_TABLE.c.digest == digest)) is not None:
                return True
        return self.path(digest).is_file()

    def state(self, digest: str) -> str:
        """ok, missing or corrupt (re-hashed), for `swgw evidence verify`."""
        with self.engine.connect() as conn:
            data = conn.scalar(select(_TABLE.c.data).where(_TABLE.c.digest == digest))
        if data is not None:
            return OK if digest_of(bytes(data)) == digest else CORRUPT
        try:
            fh = open(self.path(digest), "rb")
        except FileNotFoundError:
            return MISSING
        with fh:   # a file blob is re-hashed in chunks: it may be a gigabyte
            return OK if digest_of(FileContent(fh, 0, os.fstat(fh.fileno()).st_size)) == digest else CORRUPT

    def where(self, digest: str) -> str:
        """How a report names the blob's location: its row, its file, or both places it is not."""
        with self.engine.connect() as conn:
            if conn.scalar(select(_TABLE.c.size).where(_TABLE.c.digest == digest)) is not None:
                return f"blob {digest} (database)"
        if self.path(digest).is_file():
            return f"file {self.path(digest)}"
        return f"blob {digest} (neither in the database nor at {self.path(digest)})"

    def delete(self, digest: str) -> bool:
        """Remove a blob (retention purge); True if there was one."""
        with self.engine.begin() as conn:
            removed = conn.execute(delete(_TABLE).where(_TABLE.c.digest == digest)).rowcount
        try:
            self.path(digest).unlink()
            removed += 1
        except FileNotFoundError:
            pass
        return bool(removed)
