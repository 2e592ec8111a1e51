"""gzip helpers: bounded decompression, EBMS:0303 on anything wrong."""

import gzip
import os
import tracemalloc
import zlib

import pytest

from gateway.as4 import EbmsException, gzip_compress, gzip_decompress


def test_round_trip():
    data = os.urandom(1000) + b"a" * 100_000
    packed = gzip_compress(data)
    assert gzip_compress(data) == packed  # reproducible (mtime 0)
    assert gzip_decompress(packed, max_size=len(data)) == data
    assert gzip.decompress(packed) == data


def test_empty_payload():
    assert gzip_decompress(gzip_compress(b""), max_size=0) == b""


def test_multi_member():
    assert gzip_decompress(gzip_compress(b"ab") + gzip_compress(b"cd"), max_size=10) == b"abcd"


def _code(fn, fragment):
    with pytest.raises(EbmsException) as ei:
        fn()
    assert ei.value.code == "EBMS:0303"
    assert ei.value.error.short_description == "DecompressionFailure"
    assert fragment in ei.value.error.description
    return ei.value


def test_gzip_bomb_rejected_without_exhausting_memory():
    # 1 GiB of zeros as 64 gzip members of 16 MiB each (~1 MiB compressed in total).
    member = gzip.compress(b"\0" * (16 << 20), compresslevel=9)
    bomb = member * 64
    assert len(bomb) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        _code(lambda: gzip_decompress(bomb, max_size=10 * 1024 * 1024), "exceeds the limit")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_single_member_bomb_rejected():
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(c.compress(b"\0" * (1 << 20)) for _ in range(64)) + c.flush()
    _code(lambda: gzip_decompress(bomb, max_size=1 << 20), "exceeds the limit")


def test_limit_exact_boundary():
    data = b"x" * 1000
    assert gzip_decompress(gzip_compress(data), max_size=1000) == data
    _code(lambda: gzip_decompress(gzip_compress(data), max_size=999), "exceeds")


def test_not_gzip():
    _code(lambda: gzip_decompress(b"plain text", max_size=100), "not gzip")


def test_truncated():
    packed = gzip_compress(os.urandom(5000))
    _code(lambda: gzip_decompress(packed[:-10], max_size=10_000), "truncated")


def test_corrupt_crc():
    packed = bytearray(gzip_compress(b"hello world" * 10))
    packed[-6] ^= 0xFF  # CRC32 trailer
    _code(lambda: gzip_decompress(bytes(packed), max_size=10_000), "corrupt")


def test_trailing_garbage():
    _code(lambda: gzip_decompress(gzip_compress(b"x") + b"garbage", max_size=10), "trailing garbage")


def test_trailing_zero_padding_tolerated():
    assert gzip_decompress(gzip_compress(b"x") + b"\0\0\0", max_size=10) == b"x"


def test_many_tiny_members_are_all_read():
    # 200,000 empty members (~4 MB) before the data: read member after member (how fast is the
    # benchmark's business, not this test's; a quadratic reader would make this test slow).
    empty = gzip_compress(b"")
    data = empty * 200_000
    assert gzip_decompress(data + gzip_compress(b"end"), max_size=10) == b"end"
