"""AS4 payload compression (gzip, signalled by ``CompressionType=application/gzip``).

Decompression is incremental with a hard output cap because compressed input from a
partner is attacker-controlled: a few kilobytes of gzip can expand to gigabytes.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from crypto import content
from crypto.content import FileContent, Octets

from .errors import EbmsException

__all__ = ["BLOCK", "gzip_compress", "gzip_decompress"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 64 * 1024


#: Payloads larger than this are compressed block by block on every core (see
#: :func:`_blocked_gzip`); smaller ones in one call.
BLOCK = 4 << 20
_WINDOW = 32 * 1024
_THREADS = max(1, os.cpu_count() or 1)
_POOL: ThreadPoolExecutor | None = None


def gzip_compress(data: Octets, *, level: int = 6) -> Octets:
    """gzip-compress a payload; mtime is fixed at 0 so output is reproducible.

    The octets depend only on the payload and the level, never on whether it is in memory or
    in a file: the evidence export rebuilds the signed gzip from the stored plaintext.
    """
    if len(data) <= BLOCK:
        return gzip.compress(content.as_bytes(data), compresslevel=level, mtime=0)
    return _blocked_gzip(data, level)


def _blocked_gzip(data: Octets, level: int) -> Octets:
    """One gzip member whose deflate stream is made of independently compressed 4 MiB blocks.

    Written by hand because neither the standard library nor a maintained package compresses
    in parallel: this is what pigz does. Each block is raw deflate, primed with the last
    32 KiB of the block before it (the decompressor has those in its window anyway), ended
    by a sync flush so the next block starts byte-aligned; the last block ends the stream.
    The blocks are compressed in threads (zlib releases the GIL), the CRC-32 over the
    plaintext runs alongside, and the output goes to a spool file when it is large. Any
    inflater reads it as the single-member gzip it is; the ratio is within a fraction of a
    percent of the one-shot call's.
    """
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="gzip")
    out = content.SpoolWriter()
    # RFC 1952 header: deflate, no flags, mtime 0, XFL as zlib sets it, OS unknown (255).
    out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([2 if level == 9 else 4 if level == 1 else 0, 255]))
    crc, blocks, pending, previous = 0, -(-len(data) // BLOCK), deque(), b""
    for index, block in enumerate(content.chunks(data, BLOCK) if isinstance(data, FileContent)
                                  else (data[i:i + BLOCK] for i in range(0, len(data), BLOCK))):
        crc = zlib.crc32(block, crc)
        pending.append(_POOL.submit(_deflate_block, block, previous[-_WINDOW:], level, index == blocks - 1))
        previous = block
        while len(pending) > _THREADS:   # bounded: a few blocks in memory
            out.write(pending.popleft().result())
    while pending:
        out.write(pending.popleft().result())
    out.write(struct.pack("<II", crc & 0xFFFFFFFF, len(data) & 0xFFFFFFFF))
    return out.result()


def _deflate_block(block: bytes, primer: bytes, level: int, last: bool) -> bytes:
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=primer) if primer else \
        zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflate.compress(block) + deflate.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


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
    except zlib.error as exc:
        raise EbmsException.of("EBMS:0303", f"gzip data is corrupt: {exc}") from exc


def _only_zeros(read, offset: int, end: int) -> bool:
    while offset < end:
        piece = bytes(read(offset, _CHUNK))
        if piece.strip(b"\x00"):
            return False
        offset += len(piece)
    return True
