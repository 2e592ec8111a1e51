"""What one client may hold of a listener: time (deadlines) and connections (caps).

:func:`protect` is applied to both listeners' sites (AS4 and NSW API): the site's channels
become :class:`~gateway.transport.deadlines.DeadlineChannel` with the configured header and
body deadlines, the idle timeout is set, and the site is wrapped in :class:`ConnectionCaps`,
which closes a connection over the total or per-client-address cap at once, before any TLS
handshake or HTTP parsing is spent on it. The result is the factory to listen with (plain TCP,
or wrapped in TLS by the endpoint).
"""
from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web import server

from gateway.transport.deadlines import DeadlineChannel

log = Logger()


@dataclass(frozen=True)
class ConnectionLimits:
    """A listener's limits on slow and numerous clients (``[listen]`` / ``[nsw.api]`` keys).

    The defaults cut a slow-header client within 30 s (20 s, plus at most ``abortTimeout``
    for one that does not read the 408), let a keep-alive connection idle for a minute, and
    leave a file-descriptor budget far below the usual 1024 for the rest of the daemon."""
    header_timeout: float = 20.0          # seconds for the whole request head
    idle_timeout: float = 60.0            # seconds without any byte (keep-alive idle included)
    body_timeout: float = 20.0            # seconds for the body, plus 1 s per body_min_rate bytes
    body_min_rate: int = 1024             # bytes/s a body must keep up (0: body_timeout is a hard cap)
    max_connections: int = 256            # open connections in all
    max_connections_per_client: int = 32  # open connections from one client address


class _Refused(Protocol):
    """The protocol for a connection over a cap: aborted as soon as it is made. (Under TLS this
    runs before the handshake, so no key exchange is spent on it; a 503 would need one.)"""

    def connectionMade(self) -> None:
        self.transport.abortConnection()


class ConnectionCaps(WrappingFactory):
    """Counts open connections in total and per client address (the peer's IP; behind a
    reverse proxy that is the proxy's) and refuses those over a cap."""

    def __init__(self, wrapped: server.Site, max_total: int, max_per_client: int) -> None:
        super().__init__(wrapped)
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self.per_client: dict[str, int] = {}
        self._client_of: dict[ProtocolWrapper, str] = {}
        self._warned: set[str] = set()

    def buildProtocol(self, addr: IAddress | None):
        client = str(getattr(addr, "host", addr))
        if self.total >= self.max_total:
            self._warn("*", "all {total} connections of this listener are open (max_connections); "
                       "refusing new ones from {client} until some close", total=self.total, client=client)
            return _Refused()
        if self.per_client.get(client, 0) >= self.max_per_client:
            self._warn(client, "{client} already holds {n} connections (max_connections_per_client); "
                       "refusing more until some close", n=self.per_client[client], client=client)
            return _Refused()
        wrapper = super().buildProtocol(addr)
        if wrapper is not None:
            # Counted from here (not from makeConnection), so a burst of accepts cannot overshoot.
            self.total += 1
            self.per_client[client] = self.per_client.get(client, 0) + 1
            self._client_of[wrapper] = client
        return wrapper

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)
        client = self._client_of.pop(p, None)
        if client is None:
            return
        self.total -= 1
        left = self.per_client[client] - 1
        if left:
            self.per_client[client] = left
        else:
            del self.per_client[client]
        self._warned.discard(client)
        if self.total < self.max_total:
            self._warned.discard("*")

    def _warn(self, key: str, text: str, **fields) -> None:
        """Log the first refusal of a run at the cap, not every one of a flood."""
        if key not in self._warned:
            self._warned.add(key)
            log.warn(text, **fields)  # noqa: G010 (twisted.logger's name)


def protect(site: server.Site, limits: ConnectionLimits, reactor: IReactorTime | None = None
            ) -> ConnectionCaps:
    """Apply ``limits`` to ``site`` (deadlines, idle timeout; timers on ``reactor``, the global
    one by default) and return the factory to listen with. HTTP/1.1 only: the site no longer
    offers HTTP/2 (our TLS contexts never negotiate it through ALPN anyway)."""
    if reactor is not None:
        site.reactor = reactor
    site.timeOut = limits.idle_timeout
    site.protocol = type("Channel", (DeadlineChannel,), {
        "header_timeout": limits.header_timeout, "body_timeout": limits.body_timeout,
        "body_min_rate": limits.body_min_rate})
    return ConnectionCaps(site, limits.max_connections, limits.max_connections_per_client)
