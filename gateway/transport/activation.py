"""Listening sockets handed to the daemon by whoever started it (systemd socket activation).

With a socket unit, systemd binds the AS4 port (and the NSW API port) itself and passes the
open sockets to ``swgw serve``: the port is held across restarts, connections that arrive
while the daemon restarts wait in the kernel's backlog instead of being refused, and the
daemon needs no privilege to bind. Tests use the same protocol so that a port, once chosen,
is never released and re-bound (no bind-close-reuse races between parallel test workers).

The protocol is sd_listen_fds(3): ``LISTEN_PID`` (our pid), ``LISTEN_FDS`` (how many, from fd
3) and ``LISTEN_FDNAMES`` (the socket unit's ``FileDescriptorName=`` of each). Twisted reads it
(``twisted.python.systemd``, when ``twisted.internet.endpoints`` is imported) and serves the
sockets through its ``systemd:`` endpoint; we look a listener's socket up there by name.
"""
from __future__ import annotations

import os
import socket
from typing import Mapping

from twisted.internet import defer, endpoints, interfaces
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

AS4 = "as4"                   # FileDescriptorName of the AS4 listener's socket
NSW_API = "nsw-api"           # ... and of the NSW API's


class ActivationError(ValueError):
    """An inherited socket does not fit the config; the message says what to fix."""


def inherited_endpoint(reactor, name: str, host: str):
    """Twisted's endpoint for the inherited socket called ``name``, or None if there is none."""
    family = "INET6" if ":" in host else "INET"
    try:
        return endpoints.serverFromString(reactor, f"systemd:domain={family}:name={name}")
    except KeyError:
        return None


def check_inherited(fd: int, name: str, host: str, port: int) -> None:
    """Refuse an inherited socket that is not a TCP socket bound where the config says: the
    config stays the one place that tells where the gateway listens."""
    try:
        dup = os.dup(fd)
    except OSError as exc:
        raise ActivationError(f"inherited socket {name!r} (fd {fd}) is unusable: {exc.strerror}") from None
    try:
        sock = socket.socket(fileno=dup)
    except OSError as exc:
        os.close(dup)
        raise ActivationError(f"inherited socket {name!r} (fd {fd}) is unusable: {exc.strerror}") from None
    try:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            raise ActivationError(f"inherited socket {name!r} (fd {fd}) is not a TCP socket")
        bound_host, bound_port = sock.getsockname()[:2]
        if bound_port != port or (host not in ("0.0.0.0", "::", bound_host)):
            raise ActivationError(f"inherited socket {name!r} is bound to {bound_host}:{bound_port} but the "
                                  f"config says {host}:{port}; make the socket unit and gateway.toml agree")
        sock.listen(socket.SOMAXCONN)       # harmless if already listening; needed if only bound
    finally:
        sock.close()                        # the duplicate only; ``fd`` stays open for the listener


@implementer(interfaces.IStreamServerEndpoint)
class TLSServerEndpoint:
    """TLS over any stream server endpoint (Twisted's SSL4ServerEndpoint only binds ports itself)."""

    def __init__(self, inner: interfaces.IStreamServerEndpoint, context_factory):
        self.inner, self.context_factory = inner, context_factory

    def listen(self, factory) -> defer.Deferred:
        return self.inner.listen(TLSMemoryBIOFactory(self.context_factory, False, factory))


def server_endpoint(reactor, *, name: str, host: str, port: int, tls_options,
                    handed: Mapping[str, int] | None = None) -> interfaces.IStreamServerEndpoint:
    """The listener's endpoint: the socket called ``name`` in ``handed`` (name -> fd, from an
    in-process caller) or inherited from the service manager, else a port bound from the
    config; TLS with ``tls_options`` unless it is None (plain HTTP)."""
    fd = (handed or {}).get(name)
    if fd is not None:
        inner = endpoints.AdoptedStreamServerEndpoint(reactor, fd, socket.AF_INET6 if ":" in host else socket.AF_INET)
    else:
        inner = inherited_endpoint(reactor, name, host)
    if inner is not None:
        check_inherited(inner.fileno, name, host, port)
        return TLSServerEndpoint(inner, tls_options) if tls_options is not None else inner
    if tls_options is not None:
        return endpoints.SSL4ServerEndpoint(reactor, port, tls_options, interface=host)
    return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)


_SHARED: list[socket.socket] = []    # sockets bound for worker processes, kept open for the daemon's life


def shared_listening_fd(reactor, name: str, host: str, port: int) -> int:
    """The listening socket ``name`` as an inheritable fd to share with worker processes
    (gateway/workers.py): the one the service manager passed, else one bound here now (then
    hand a duplicate to this process's own listener, which closes what it adopts).
    Raises OSError when the port cannot be bound."""
    inherited = inherited_endpoint(reactor, name, host)     # Twisted has read (and cleared) LISTEN_FDS
    if inherited is not None:
        # A duplicate: the listener that adopts the inherited socket closes its fd.
        fd = os.dup(inherited.fileno)
        os.set_inheritable(fd, True)
        return fd
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    _SHARED.append(sock)
    return sock.fileno()
