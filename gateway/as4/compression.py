"""AS4 payload compression (gzip, signalled by ``CompressionType=application/gzip``).

Decompression is incremental with a hard output cap because compressed input from a
partner is attacker-controlled: a few kilobytes of gzip can expand to gigabytes.
"""

from __future__ import annotations

import gzip
import zlib

from crypto import content
from crypto.content import FileContent, Octets

from .errors import EbmsException

__all__ = ["gzip_compress", "gzip_decompress"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024


def gzip_compress(data: Octets, *, level: int = 6) -> Octets:
    """gzip-compress a payload; mtime is fixed at 0 so output is reproducible.

    A payload in a file is compressed chunk by chunk into a spool file (same octets as the
    one-shot call: one member, no file name, mtime 0).
    """
    if not isinstance(data, FileContent):
        return gzip.compress(bytes(data), compresslevel=level, mtime=0)
    out = content.SpoolWriter(0)
    with gzip.GzipFile(fileobj=_Sink(out), mode="wb", compresslevel=level, mtime=0, filename="") as gz:
        for piece in data.chunks():
            gz.write(piece)
    return out.result()


class _Sink:
    """The file-like object ``GzipFile`` writes to: a SpoolWriter."""

    def __init__(self, writer: content.SpoolWriter):
        self.write = writer.write

    def flush(self) -> None:
        pass


def gzip_decompress(data: Octets, *, max_size: int) -> Octets:
    """Decompress gzip data, refusing output beyond ``max_size`` bytes.

    Multi-member gzip streams are accepted (RFC 1952 allows them). Raises
    :class:`EbmsException` EBMS:0303 DecompressionFailure for corrupt, truncated or
    non-gzip input, trailing garbage, or output that would exceed ``max_size``; output
    is produced at most ``_CHUNK`` bytes past the cap, so a gzip bomb cannot exhaust
    memory. Input in a file is read in chunks, and output beyond
    ``content.SPOOL_THRESHOLD`` goes to a spool file.
    """
    if max_size < 0:
        raise ValueError("max_size must not be negative")
    if isinstance(data, FileContent):
        read, n = data.read_at, data.length
    else:
        view = memoryview(bytes(data))
        n = len(view)

        def read(offset: int, size: int) -> bytes:
            return view[offset:offset + size]
    if not bytes(read(0, 2)) == _GZIP_MAGIC:
        raise EbmsException.of("EBMS:0303", "payload is not gzip data (bad magic number)")
    out = content.SpoolWriter()
    offset = 0
    try:
        while True:  # one iteration per gzip member
            # Input is fed in bounded slices so that neither unconsumed_tail nor
            # unused_data ever copies the whole remaining input (which would make
            # many tiny members quadratic).
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not d.eof:
                piece = read(offset, _CHUNK)
                limit = min(_CHUNK, max_size - out.size + 1)
                chunk = d.decompress(piece, limit)
                consumed = len(piece) - len(d.unconsumed_tail) - len(d.unused_data)
                offset += consumed
                out.write(chunk)
                if out.size > max_size:
                    raise EbmsException.of(
                        "EBMS:0303", f"decompressed payload exceeds the limit of {max_size} bytes"
                    )
                if not chunk and not consumed and not d.eof:
                    raise EbmsException.of("EBMS:0303", "gzip data is truncated")
            if offset >= n:
                return out.result()
            if bytes(read(offset, 2)) != _GZIP_MAGIC:
                if not _only_zeros(read, offset, n):
                    raise EbmsException.of("EBMS:0303", "gzip data is followed by trailing garbage")
                return out.result()  # zero padding after the last member, as gzip(1) allows
    except zlib.error as exc:
        raise EbmsException.of("EBMS:0303", f"gzip data is corrupt: {exc}") from exc


def _only_zeros(read, offset: int, end: int) -> bool:
    while offset < end:
        piece = bytes(read(offset, _CHUNK))
        if piece.strip(b"\x00"):
            return False
        offset += len(piece)
    return True
