"""The AS4 HTTP endpoint: ``POST /as4`` and a ``GET /health`` probe.

The resource only moves bytes: the body is handed to the inbound pipeline on a worker
thread, so parsing, crypto and database work never block the reactor, and /health keeps
answering while a large message is processed.
"""
from __future__ import annotations

from typing import Callable, Optional

from cryptography import x509
from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import resource, server

from gateway.inbound import Response

log = Logger()


class _LimitedRequest(server.Request):
    """Refuses a body larger than the configured limit without reading (or storing) the rest.

    With a Content-Length the refusal comes as soon as the headers say so; a chunked body
    without Content-Length is counted as it arrives and refused at the first byte over the
    limit. Either way the client gets ``413`` at once, the rest of its body is discarded
    unread, and the connection is closed shortly after (a short grace period rather than an
    immediate close, so that a client still writing its body can read the 413 instead of
    meeting a TCP reset).
    """
    max_bytes = 100 * 1024 * 1024
    grace_seconds = 2.0
    _received = 0
    _refused = False

    def gotLength(self, length):
        if length is not None and length > self.max_bytes:
            super().gotLength(0)          # a throw-away content file; nothing will be written to it
            self._refuse(f"message of {length} bytes exceeds this gateway's limit of {self.max_bytes} bytes")
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_bytes:
            self._refuse(f"message exceeds this gateway's limit of {self.max_bytes} bytes "
                         f"(refused after {self._received} bytes)")
            return
        super().handleContentChunk(data)

    def _refuse(self, text: str) -> None:
        self._refused = True
        channel = self.channel
        # Refused before the request line was handed over (that happens only once the
        # body is complete), so take method and protocol from the channel for the reply.
        self.method = getattr(channel, "_command", None) or b"POST"
        self.clientproto = getattr(channel, "_version", None) or b"HTTP/1.1"
        log.warn("refused an inbound request: {text}", text=text)
        # From now on the channel swallows whatever the client still sends: no parsing, no
        # buffering, no second request on this connection.
        discard = lambda *args: None  # noqa: E731
        for name in ("dataReceived", "rawDataReceived", "lineReceived", "allContentReceived"):
            setattr(channel, name, discard)
        self.setResponseCode(413)
        self.setHeader(b"content-type", b"text/plain; charset=utf-8")
        self.setHeader(b"connection", b"close")
        self.write((text + "\n").encode())
        self.finish()
        transport = channel.transport
        if transport is not None:
            from twisted.internet import reactor
            reactor.callLater(self.grace_seconds, transport.loseConnection)

    def process(self):
        if not self._refused:
            super().process()


class HealthResource(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"


def peer_chain(request) -> Optional[tuple[x509.Certificate, ...]]:
    """The TLS client's certificate chain as OpenSSL verified it at the handshake (leaf
    first, ending at our ``client_ca``), or None on a plain-HTTP listener. Read on the
    reactor thread, while the connection is certainly open."""
    transport = getattr(request.channel, "transport", None)
    get_handle = getattr(transport, "getHandle", None)
    handle = get_handle() if get_handle else None
    verified = getattr(handle, "get_verified_chain", None)
    chain = verified() if verified else None
    if not chain:
        return None
    return tuple(c.to_cryptography() for c in chain)


class AS4Resource(resource.Resource):
    isLeaf = True

    def __init__(self, process: Callable[..., Response]):
        super().__init__()
        self.process = process

    def render_GET(self, request):
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        return b"this is an AS4 endpoint: POST ebMS 3.0 messages here\n"

    def render_POST(self, request):
        content_type = (request.getHeader(b"content-type") or b"").decode("latin-1")
        content = request.content   # complete by now; Twisted spools large bodies to a temp file
        chain = peer_chain(request)

        def read_and_process() -> Response:
            content.seek(0)
            if chain is None:
                return self.process(content_type, content.read())
            # The partner's CRLs are only known once the message names its sender.
            return self.process(content_type, content.read(), tls_chain=chain)

        d = threads.deferToThread(read_and_process)

        def done(response: Response):
            if request.finished or request._disconnected:
                return
            request.setResponseCode(response.code)
            request.setHeader(b"content-type", response.content_type.encode("latin-1"))
            request.write(response.body)
            request.finish()

        def failed(failure):
            log.failure("inbound pipeline crashed", failure)
            if not request.finished and not request._disconnected:
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/plain")
                request.write(b"internal error; the message was not accepted, please retry\n")
                request.finish()

        d.addCallbacks(done, failed)
        return server.NOT_DONE_YET


def make_site(process: Callable[..., Response], max_bytes: int) -> server.Site:
    root = resource.Resource()
    root.putChild(b"as4", AS4Resource(process))
    root.putChild(b"health", HealthResource())
    site = server.Site(root)

    class Request(_LimitedRequest):
        pass

    Request.max_bytes = max_bytes
    site.requestFactory = Request
    site.displayTracebacks = False
    return site
