"""Reading mutation decisions from fuzz input bytes.

The fuzzers hand us bytes; structured targets read them as a stream of decisions (which
seed, which element, which value) instead of using them as the message itself. libFuzzer's
byte mutations then become structural mutations, and hypothesis shrinks a failing stream to
a short one. Past the end of the input every draw is 0, so a short input means few changes.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Draw:
    """A cursor over fuzz input bytes that hands out bounded choices."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def below(self, n: int) -> int:
        """A number in ``range(n)`` (n >= 1); one byte for small n, two for larger."""
        if n <= 1:
            return 0
        if n <= 256:
            return self.byte() % n
        return ((self.byte() << 8) | self.byte()) % n

    def bool(self) -> bool:
        return bool(self.byte() & 1)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def blob(self, max_len: int) -> bytes:
        """Up to ``max_len`` raw bytes (length first, then the bytes)."""
        n = min(self.below(max_len + 1), len(self.data) - self.pos)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out
