"""Attachment octets that may live in a file rather than in memory.

A customs payload can be a gigabyte (a scanned dossier, a vessel's full manifest); holding
it as ``bytes`` costs one copy per pipeline step. An attachment is therefore either
``bytes`` (the fast path: almost every document is a few kilobytes) or a
:class:`FileContent`, a byte range of an open file: the spooled HTTP request body, or a
spool file a step wrote its output to. Every step that touches attachment octets (digest,
encrypt, decrypt, gzip, MIME, the store) works chunk by chunk on a ``FileContent`` and
writes its output to a new spool file, so memory stays bounded whatever the size.

Spool files are anonymous (``tempfile.TemporaryFile``: unlinked at creation, O_TMPFILE
where the kernel has it), so they vanish with the last reference, also after a crash.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Union

#: Chunk size of every streaming step: large enough that per-call overhead vanishes next
#: to the work on the octets, small enough that a few in flight cost nothing.
CHUNK = 1 << 20

#: Attachments above this size are spooled to files by the steps that produce them (MIME
#: decoding of a spooled body, decryption, decompression, the outbox reader).
SPOOL_THRESHOLD = 4 << 20

#: Where spool files go; ``None`` is the system temporary directory. The daemon points it
#: into its state directory, which is sized for payloads (``/tmp`` may be a small tmpfs).
spool_dir: str | None = None

#: The process's umask, read once at import (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@dataclass(frozen=True, eq=False)
class FileContent:
    """``length`` octets of ``file`` from ``offset``.

    Read with ``os.pread`` (no shared file position), so several threads may read one
    file at once. The file object is kept so the file stays open (and, for an anonymous
    spool file, in existence) for as long as the content is referenced.
    """

    file: BinaryIO
    offset: int
    length: int
    _digest: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return self.length

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        fd, pos, end = self.file.fileno(), self.offset, self.offset + self.length
        while pos < end:
            data = os.pread(fd, min(size, end - pos), pos)
            if not data:
                raise OSError(f"spooled content ends early at byte {pos - self.offset} of {self.length}")
            pos += len(data)
            yield data

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` octets from ``offset`` (relative to this range)."""
        size = max(0, min(size, self.length - offset))
        return os.pread(self.file.fileno(), size, self.offset + offset) if size else b""

    def sub(self, offset: int, length: int) -> "FileContent":
        return FileContent(self.file, self.offset + offset, length)


Octets = Union[bytes, FileContent]


def chunks(data: Octets, size: int = CHUNK) -> Iterator[bytes]:
    """The octets in pieces (``bytes`` as one piece: no copy)."""
    if isinstance(data, FileContent):
        yield from data.chunks(size)
    elif data:
        yield bytes(data)


def as_bytes(data: Octets) -> bytes:
    """All octets in memory; for the few consumers that need a whole document (XML c14n,
    schema validation of a canonical document)."""
    return data if isinstance(data, bytes) else b"".join(chunks(data))


def hexdigest(data: Octets, name: str = "sha256") -> str:
    """The digest of the octets, computed once per ``FileContent`` (a 1 GB payload is
    hashed by dedupe, the store and the hand-off; it is read once for all of them)."""
    if not isinstance(data, FileContent):
        return hashlib.new(name, data).hexdigest()
    cached = data._digest.get(name)
    if cached is None:
        h = hashlib.new(name)
        for piece in data.chunks():
            h.update(piece)
        cached = data._digest[name] = h.hexdigest()
    return cached


def digest(data: Octets, name: str = "sha256") -> bytes:
    return bytes.fromhex(hexdigest(data, name))


def write_into(data: Octets, out: BinaryIO) -> None:
    """Append the octets to ``out``; a file range is copied by the kernel (copy_file_range:
    no trip through Python, and on file systems that can, no copy of the blocks at all)."""
    if not isinstance(data, FileContent):
        out.write(data)
        return
    out.flush()
    src, dst, pos, end = data.file.fileno(), out.fileno(), data.offset, data.offset + data.length
    try:
        while pos < end:
            done = os.copy_file_range(src, dst, end - pos, pos)
            if done == 0:
                raise OSError(f"spooled content ends early at byte {pos - data.offset} of {data.length}")
            pos += done
    except OSError as exc:
        if pos != data.offset or "ends early" in str(exc):
            raise
        for piece in data.chunks():      # no copy_file_range here (another kernel, a pipe): copy
            out.write(piece)
        return
    out.seek(0, os.SEEK_END)


def link_whole_spool(data: Octets, target: str) -> bool:
    """Give an anonymous spool file that holds exactly ``data`` the name ``target`` (durably:
    fsync first; with the permissions a file the process creates gets), so a step's output
    becomes a stored file without being copied. False when it cannot (not a whole spool
    file, another file system, no O_TMPFILE): then the caller copies."""
    fd = _whole_file(data)
    if fd is None:
        return False
    try:
        if os.fstat(fd).st_nlink != 0:           # a named file (the outbox's, a blob): not ours to name
            return False
        os.fsync(fd)
        os.fchmod(fd, 0o666 & ~_UMASK)
        _link(fd, target)
    except OSError:
        return False
    return True


def link_read_only(data: Octets, target: str) -> bool:
    """Give the stored file that holds exactly ``data`` a second name, ``target``, and make
    the file read-only: the NSW's copy of a large inbound document is the gateway's stored
    copy (written once), which the NSW may read, move or delete but not change in place.
    False when it cannot (not a whole file, another file system): then the caller copies."""
    fd = _whole_file(data)
    if fd is None:
        return False
    try:
        st = os.fstat(fd)
        if st.st_nlink == 0:                     # a spool file: not durable yet
            return False
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~0o222)
        _link(fd, target)
    except OSError:
        return False
    return True


def _whole_file(data: Octets) -> int | None:
    """The descriptor of the file ``data`` is all of, else None."""
    if not isinstance(data, FileContent) or data.offset != 0:
        return None
    fd = data.file.fileno()
    try:
        return fd if os.fstat(fd).st_size == data.length else None
    except OSError:
        return None


def _link(fd: int, target: str) -> None:
    # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N, as open(2) documents for O_TMPFILE; os.link
    # calls linkat (rather than link, which would not follow /proc's link) when given a dir_fd.
    directory = os.open(os.path.dirname(target) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", os.path.basename(target), dst_dir_fd=directory)
    finally:
        os.close(directory)


def new_spool() -> BinaryIO:
    """An anonymous read-write file for a step's output.

    Opened with O_TMPFILE but, unlike ``tempfile.TemporaryFile``, without O_EXCL, so that
    :func:`link_whole_spool` may give it a name once it is complete."""
    directory = spool_dir or tempfile.gettempdir()
    flags = getattr(os, "O_TMPFILE", 0)
    if flags:
        try:
            fd = os.open(directory, flags | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            pass                          # a file system without O_TMPFILE
        else:
            return os.fdopen(fd, "w+b")
    return tempfile.TemporaryFile(dir=directory)


class SpoolWriter:
    """Collects a step's output: in memory while small, in a spool file once it passes
    ``threshold``; ``result()`` is ``bytes`` or a ``FileContent`` accordingly."""

    def __init__(self, threshold: int | None = None):
        self.threshold = SPOOL_THRESHOLD if threshold is None else threshold
        self._buffer = bytearray()
        self._file: BinaryIO | None = None
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self._file is None:
            self._buffer += data
            if len(self._buffer) > self.threshold:
                self._file = new_spool()
                self._file.write(self._buffer)
                self._buffer = bytearray()
        else:
            self._file.write(data)

    def result(self) -> Octets:
        if self._file is None:
            return bytes(self._buffer)
        self._file.flush()
        return FileContent(self._file, 0, self.size)

