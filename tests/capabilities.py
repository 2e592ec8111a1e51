"""Run a block of test code without root's power to read any file (Linux capabilities).

Tests run as root on CI, and root reads a ``chmod 000`` file anyway (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH), so "the gateway cannot read this file" cannot be set up by permissions
alone. Capabilities are per thread on Linux: ``without_file_read_override()`` clears the two
from the calling thread's *effective* set and raises them again afterwards (they stay in the
permitted set), so only the code inside the block runs as an unprivileged reader would.
The ``capget``/``capset`` system calls have no Python binding; ctypes is enough for two calls.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from contextlib import contextmanager

_CAP_V3 = 0x20080522
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _call(name: str, data) -> None:
    header = _Header(_CAP_V3, 0)            # pid 0: the calling thread
    if getattr(_libc(), name)(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


@contextmanager
def without_file_read_override():
    """Inside the block this thread cannot read what file permissions forbid, even as root."""
    data = (_Data * 2)()
    _call("capget", data)
    saved = data[0].effective
    data[0].effective &= ~((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH))
    _call("capset", data)
    try:
        yield
    finally:
        data[0].effective = saved
        _call("capset", data)
