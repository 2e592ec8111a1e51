"""AS4 payload compression (gzip, signalled by ``CompressionType=application/gzip``).

Deflate and inflate come from ISA-L (the ``isal`` package, Intel's Intelligent Storage Acceleration
Library): at its level 1 it compresses 10-15x faster than zlib's default level at the same
ratio (base64 of random data: 445 against 34 MiB/s, 0.752 against 0.757; XML: 2.7 GB/s
against 290 MB/s), which turns gzip from the slowest step of a large payload into one of
the cheapest. The output is plain RFC 1952 gzip: any inflater reads it.

Decompression is incremental with a hard output cap because compressed input from a
partner is attacker-controlled: a few kilobytes of gzip can expand to gigabytes.
"""

from __future__ import annotations

from isal import isal_zlib

from crypto import content
from crypto.content import FileContent, Octets

from .errors import EbmsException

__all__ = ["LEVEL", "gzip_compress", "gzip_decompress"]

_GZIP_MAGIC = b"\x1f\x8b"
#: Decompression: the first input slice of each gzip member, the largest slice it grows to
#: within a long member, and the output step (so the most produced past the cap).
_FIRST_SLICE = 64 * 1024
_MAX_SLICE = 1 << 20
_OUT_STEP = 1 << 20
_GZIP_WBITS = 16 + isal_zlib.MAX_WBITS

#: ISA-L level (0-3) of what we send; 1 is the fastest at zlib's default ratio (measured).
LEVEL = 1

#: The compressor is fed in pieces of this size whatever holds the payload, so the octets
#: are a function of the payload alone (the evidence export rebuilds the signed gzip from the
#: stored plaintext, in memory, of a payload that was sent from a file).
_FEED = 1 << 20


def gzip_compress(data: Octets, *, level: int = LEVEL) -> Octets:
    """gzip-compress a payload (mtime 0, no name: reproducible); a large payload in a file is
    compressed chunk by chunk into a spool file."""
    deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, _GZIP_WBITS)
    out = content.SpoolWriter() if isinstance(data, FileContent) else _Joined()
    if isinstance(data, FileContent):
        pieces = data.chunks(_FEED)
    else:
        view = memoryview(data)
        pieces = (view[i:i + _FEED] for i in range(0, len(view), _FEED))
    for piece in pieces:
        out.write(deflate.compress(piece))
    out.write(deflate.flush())
    return out.result()


class _Joined(list):
    """The in-memory sink of :func:`gzip_compress`."""

    write = list.append

    def result(self) -> bytes:
        return b"".join(self)


def gzip_decompress(data: Octets, *, max_size: int) -> Octets:
    """Decompress gzip data, refusing output beyond ``max_size`` bytes.

    Multi-member gzip streams are accepted (RFC 1952 allows them). Raises
    :class:`EbmsException` EBMS:0303 DecompressionFailure for corrupt, truncated or
    non-gzip input, trailing garbage, or output that would exceed ``max_size``; output
    is produced at most ``_OUT_STEP`` bytes past the cap, so a gzip bomb cannot exhaust
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
            # many tiny members quadratic); each member starts with a small slice that
            # doubles while the member goes on, so a long one is read in large steps.
            d = isal_zlib.decompressobj(_GZIP_WBITS)
            size = _FIRST_SLICE
            while not d.eof:
                piece = read(offset, size)
                size = min(2 * size, _MAX_SLICE)
                limit = min(_OUT_STEP, max_size - out.size + 1)
                chunk = d.decompress(piece, limit)
                # At the end of a member the leftover input is in unused_data, and may be in
                # unconsumed_tail as well (when the output limit was given): count it once.
                consumed = len(piece) - len(d.unused_data if d.eof else d.unconsumed_tail)
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
    except isal_zlib.error as exc:
        raise EbmsException.of("EBMS:0303", f"gzip data is corrupt: {exc}") from exc


def _only_zeros(read, offset: int, end: int) -> bool:
    while offset < end:
        piece = bytes(read(offset, _MAX_SLICE))
        if piece.strip(b"\x00"):
            return False
        offset += len(piece)
    return True
