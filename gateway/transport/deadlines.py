"""An HTTP channel that gives a client a deadline for its request head and a minimum body rate.

Twisted's :class:`~twisted.web.http.HTTPChannel` has only an idle timeout, reset by every byte
received, so a client that sends its headers at one byte per second (slowloris) keeps its
connection and file descriptor for ever. :class:`DeadlineChannel` adds:

* a **header deadline**: the whole request head (request line and headers) must arrive within
  ``header_timeout`` seconds of the connection opening (the TLS handshake included) or, on a
  keep-alive connection, of the first byte of the next request;
* a **body deadline** in the manner of Apache's mod_reqtimeout (``body=20,MinRate=500``): the
  body gets ``body_timeout`` seconds, extended by one second per ``body_min_rate`` bytes
  received, so a large body at a sane rate passes and a trickle is cut.

Either way the client gets ``408 Request Timeout`` (naming the limit) and the connection is
closed; one that does not read is aborted ``abortTimeout`` seconds later. The idle timeout
(``timeOut``, from the site) stays Twisted's: no byte at all for that long, in particular on
a keep-alive connection between requests, closes the connection.

Timers run on the site's reactor (``callLater`` is set from ``Site.reactor`` by
``HTTPFactory.buildProtocol``), so tests drive them with ``twisted.internet.task.Clock``.
"""
from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.web import http

log = Logger()


class DeadlineChannel(http.HTTPChannel):
    """HTTP/1.1 channel with a header deadline and a body minimum rate (see module docstring).
    The limits are class attributes; :func:`gateway.transport.connections.protect` makes a
    subclass per listener with the configured values."""

    header_timeout: float = 20.0
    body_timeout: float = 20.0
    body_min_rate: int = 1024
    abortTimeout = 5                      # seconds from a timeout's close to a forced abort

    _head_call: IDelayedCall | None = None
    _body_call: IDelayedCall | None = None
    _between_requests = False             # keep-alive, waiting for the next request's first byte
    _body_bytes = 0                       # body bytes (chunk framing included) of this request
    _body_started = 0.0                   # when its head was complete

    # -- the head ----------------------------------------------------------------------
    def connectionMade(self) -> None:
        super().connectionMade()
        self._start_head_clock()

    def dataReceived(self, data: bytes) -> None:
        if self._between_requests:
            self._between_requests = False
            self._start_head_clock()
        super().dataReceived(data)

    def _start_head_clock(self) -> None:
        self._cancel("_head_call")
        self._head_call = self.callLater(self.header_timeout, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_call = None
        self._time_out(f"request head (request line and headers) not received within "
                       f"{self.header_timeout:g} s (header_timeout)")

    def allHeadersReceived(self) -> None:
        self._cancel("_head_call")
        super().allHeadersReceived()
        if self.length != 0 and not self._answered():
            self._body_bytes = 0
            self._body_started = self._now()
            self._body_call = self.callLater(self.body_timeout, self._body_due)

    # -- the body ----------------------------------------------------------------------
    def rawDataReceived(self, data: bytes) -> None:
        if not self._handlingRequest:
            self._body_bytes += len(data)
        super().rawDataReceived(data)

    def _body_due(self) -> None:
        """The deadline is ``body_timeout + received / body_min_rate`` seconds after the head:
        at each provisional deadline, wait for the one that what has arrived since earns, or cut."""
        self._body_call = None
        if self._answered():
            return                        # already answered (e.g. refused as too large)
        earned = self._body_bytes / self.body_min_rate if self.body_min_rate > 0 else 0.0
        left = self._body_started + self.body_timeout + earned - self._now()
        if left > 0:
            self._body_call = self.callLater(left, self._body_due)
            return
        self._time_out(f"request body arriving slower than {self.body_min_rate} bytes/s after "
                       f"{self.body_timeout:g} s (body_timeout, body_min_rate)")

    def allContentReceived(self) -> None:
        self._cancel("_body_call")
        super().allContentReceived()

    # -- between requests and at the end -----------------------------------------------
    def requestDone(self, request) -> None:
        # Bytes of the next request may be here already: buffered by HTTPChannel while this one
        # was processed, or (when it finished synchronously) still in LineReceiver's buffer.
        pipelined = bool(self._dataBuffer) or bool(getattr(self, "_buffer", b""))
        if self.persistent and pipelined:
            self._start_head_clock()      # the next request's bytes are here already; Twisted
        super().requestDone(request)      # parses them now (which may complete that head)
        if self.persistent and not pipelined:
            self._between_requests = True

    def connectionLost(self, reason) -> None:
        self._cancel("_head_call")
        self._cancel("_body_call")
        super().connectionLost(reason)

    # -- helpers -----------------------------------------------------------------------
    def _answered(self) -> bool:
        """No request is waiting for its body any more (done, or answered early: 413, 401)."""
        if not self.requests:
            return True
        request = self.requests[-1]
        return bool(request.startedWriting or request.finished)

    def _now(self) -> float:
        """The site's clock (the one ``callLater`` schedules on)."""
        reactor = getattr(self.factory, "reactor", None)
        if reactor is None:
            from twisted.internet import reactor
        return reactor.seconds()

    def _cancel(self, name: str) -> None:
        call = getattr(self, name)
        if call is not None and call.active():
            call.cancel()
        setattr(self, name, None)

    def _time_out(self, why: str) -> None:
        transport = self.transport
        if transport is None or transport.disconnecting:
            return
        peer = transport.getPeer()
        log.info("closed a connection from {peer}: {why}", peer=getattr(peer, "host", str(peer)), why=why)
        text = why + "; send the whole request promptly"
        # In the listener's own error format (the NSW API's problem documents), where it has one.
        refusal = getattr(getattr(self, "requestFactory", None), "refusal_body", None)
        content_type, body = (refusal(408, text) if refusal is not None
                              else (b"text/plain; charset=utf-8", (text + "\n").encode("ascii")))
        transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: %s\r\n"
                        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (content_type, len(body), body))
        # From now on nothing the client sends is parsed.
        self.dataReceived = lambda data: None   # type: ignore[method-assign]
        self.setTimeout(None)
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        transport.loseConnection()
