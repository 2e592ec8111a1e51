"""The AS4 HTTP endpoint: ``POST /as4`` and a ``GET /health`` probe.

The resource only moves bytes: the body is handed to the inbound pipeline on a worker
thread, so parsing, crypto and database work never block the reactor, and /health keeps
answering while a large message is processed.
"""
from __future__ import annotations

import io
import os
from typing import BinaryIO, Callable, Optional

from cryptography import x509
from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import resource, server

from crypto import content
from crypto.content import FileContent, Octets
from gateway.inbound import Response
from gateway.transport.limits import LimitedRequest as _LimitedRequest

log = Logger()


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


def request_body(body: BinaryIO) -> Octets:
    """The POSTed body: bytes, or (large, already spooled to a file by Twisted) a range of that
    file, which the pipeline streams through instead of reading it into memory."""
    body.seek(0, os.SEEK_END)
    size = body.tell()
    body.seek(0)
    if size > content.SPOOL_THRESHOLD:
        try:
            body.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return body.read()
        body.flush()
        return FileContent(body, 0, size)
    return body.read()


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
            body = request_body(content)
            if chain is None:
                return self.process(content_type, body)
            # The partner's CRLs are only known once the message names its sender.
            return self.process(content_type, body, tls_chain=chain)

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
