"""AS4 payload compression (gzip, signalled by ``CompressionType=application/gzip``).

Decompression is incremental with a hard output cap because compressed input from a
partner is attacker-controlled: a few kilobytes of gzip can expand to gigabytes.
"""

from __future__ import annotations

import gzip
import zlib

from .errors import EbmsException

__all__ = ["gzip_compress", "gzip_decompress"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024


def gzip_compress(data: bytes, *, level: int = 6) -> bytes:
    """gzip-compress a payload; mtime is fixed at 0 so output is reproducible."""
    return gzip.compress(bytes(data), compresslevel=level, mtime=0)


def gzip_decompress(data: bytes, *, max_size: int) -> bytes:
    """Decompress gzip data, refusing output beyond ``max_size`` bytes.

    Multi-member gzip streams are accepted (RFC 1952 allows them). Raises
    :class:`EbmsException` EBMS:0303 DecompressionFailure for corrupt, truncated or
    non-gzip input, trailing garbage, or output that would exceed ``max_size``; output
    is produced at most ``_CHUNK`` bytes past the cap, so a gzip bomb cannot exhaust
    memory.
    """
    if max_size < 0:
        raise ValueError("max_size must not be negative")
    view = memoryview(bytes(data))
    n = len(view)
    if not view[:2].tobytes() == _GZIP_MAGIC:
        raise EbmsException.of("EBMS:0303", "payload is not gzip data (bad magic number)")
    out = bytearray()
    offset = 0
    try:
        while True:  # one iteration per gzip member
            # Input is fed in bounded slices so that neither unconsumed_tail nor
            # unused_data ever copies the whole remaining input (which would make
            # many tiny members quadratic).
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not d.eof:
                piece = view[offset : offset + _CHUNK]
                limit = min(_CHUNK, max_size - len(out) + 1)
                chunk = d.decompress(piece, limit)
                consumed = len(piece) - len(d.unconsumed_tail) - len(d.unused_data)
                offset += consumed
                out += chunk
                if len(out) > max_size:
                    raise EbmsException.of(
                        "EBMS:0303", f"decompressed payload exceeds the limit of {max_size} bytes"
                    )
                if not chunk and not consumed and not d.eof:
                    raise EbmsException.of("EBMS:0303", "gzip data is truncated")
            if offset >= n:
                return bytes(out)
            if view[offset : offset + 2].tobytes() != _GZIP_MAGIC:
                if not view[offset:].tobytes().strip(b"\x00"):
                    return bytes(out)  # zero padding after the last member, as gzip(1) allows
                raise EbmsException.of("EBMS:0303", "gzip data is followed by trailing garbage")
    except zlib.error as exc:
        raise EbmsException.of("EBMS:0303", f"gzip data is corrupt: {exc}") from exc
