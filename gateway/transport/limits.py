"""A request factory that refuses a request body before Twisted spools it.

A plain :class:`twisted.web.server.Site` reads the whole body (into memory, or a temp file
once it is large) before ``render_*`` runs, so any check made there comes after the disk was
filled. :class:`LimitedRequest` decides from the headers (``gotLength``) and while the body
arrives (``handleContentChunk``). Shared by the AS4 listener and the NSW HTTP API.
"""
from __future__ import annotations

import io
from typing import Optional

from twisted.logger import Logger
from twisted.web import http, server

from crypto import content

log = Logger()


class LimitedRequest(server.Request):
    """Refuses a body larger than the configured limit without reading (or storing) the rest.

    With a Content-Length the refusal comes as soon as the headers say so; a chunked body
    without Content-Length is refused as soon as a chunk-size line declares more than the
    limit allows (chunks so far included), and counted as it arrives in any case. Either way
    the client gets ``413`` at once, the rest of its body is discarded unread, and the
    connection is closed shortly after (a short grace period rather than an immediate close,
    so that a client still writing its body can read the 413 instead of meeting a TCP reset).

    Subclasses may refuse a request from its headers alone (e.g. a missing credential) by
    overriding :meth:`early_refusal`, and shape the refusal body with :meth:`refusal_body`.
    """
    max_bytes = 100 * 1024 * 1024
    grace_seconds = 2.0
    what = "message"                  # what the body is, for the refusal text
    _received = 0
    _declared = 0
    _refused = False

    # -- hooks -------------------------------------------------------------------------
    def early_refusal(self, length: Optional[int]) -> Optional[tuple[int, str, dict[bytes, bytes]]]:
        """(status, text, extra headers) to refuse this request before any body byte is read,
        or None. Called from ``gotLength``: headers are in ``requestHeaders``; method and path
        are still only on the channel (see :meth:`pending_method` / :meth:`pending_path`)."""
        return None

    @classmethod
    def refusal_body(cls, code: int, text: str) -> tuple[bytes, bytes]:
        """(content type, body) of a refusal: of this request, or of a connection cut before
        it became one (a timeout, ``gateway.transport.deadlines``), hence a classmethod."""
        return b"text/plain; charset=utf-8", (text + "\n").encode()

    def pending_method(self) -> bytes:
        return getattr(self.channel, "_command", None) or b"POST"

    def pending_path(self) -> bytes:
        return (getattr(self.channel, "_path", None) or b"/").split(b"?", 1)[0]

    # -- Twisted -----------------------------------------------------------------------
    def gotLength(self, length):
        refusal = self.early_refusal(length)
        if refusal is not None:
            super().gotLength(0)          # a throw-away content file; nothing will be written to it
            code, text, headers = refusal
            self._refuse(text, code, headers)
            return
        if length is not None and length > self.max_bytes:
            super().gotLength(0)
            self._refuse(f"{self.what} of {length} bytes exceeds this gateway's limit of {self.max_bytes} bytes")
            return
        super().gotLength(length)
        if not isinstance(self.content, io.BytesIO):
            # A large body: spooled where the daemon keeps payloads (``crypto.content``), not
            # in /tmp, which may be a small tmpfs.
            self.content.close()
            self.content = content.new_spool()
        if length is None:
            _declare_chunk_sizes(self)

    def chunk_declared(self, size: int) -> bool:
        """A chunk-size line said ``size`` bytes follow: refuse at once (False) if that takes
        the body past the limit, rather than reading up to ``max_bytes`` first."""
        if self._refused:
            return False
        self._declared += size
        if self._declared > self.max_bytes:
            self._refuse(f"{self.what} declares a chunk of {size} bytes, taking it to {self._declared} "
                         f"bytes, over this gateway's limit of {self.max_bytes} bytes")
            return False
        return True

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_bytes:
            self._refuse(f"{self.what} exceeds this gateway's limit of {self.max_bytes} bytes "
                         f"(refused after {self._received} bytes)")
            return
        super().handleContentChunk(data)

    def _refuse(self, text: str, code: int = 413, headers: Optional[dict[bytes, bytes]] = None) -> None:
        self._refused = True
        channel = self.channel
        # Refused before the request line was handed over (that happens only once the
        # body is complete), so take method and protocol from the channel for the reply.
        self.method = self.pending_method()
        self.clientproto = getattr(channel, "_version", None) or b"HTTP/1.1"
        log.warn("refused an inbound request ({code}): {text}", code=code, text=text)
        # From now on the channel swallows whatever the client still sends: no parsing, no
        # buffering, no second request on this connection, and no "100 Continue" after the
        # refusal for a client that sent "Expect: 100-continue".
        discard = lambda *args: None  # noqa: E731
        for name in ("dataReceived", "rawDataReceived", "lineReceived", "allContentReceived",
                     "_send100Continue"):
            setattr(channel, name, discard)
        content_type, body = self.refusal_body(code, text)
        self.setResponseCode(code)
        for name, value in (headers or {}).items():
            self.setHeader(name, value)
        self.setHeader(b"content-type", content_type)
        self.setHeader(b"connection", b"close")
        self.write(body)
        self.finish()
        transport = channel.transport
        if transport is not None:
            channel.callLater(self.grace_seconds, transport.loseConnection)   # the site's reactor

    def process(self):
        if not self._refused:
            super().process()


class _DeclaredSizeDecoder(http._ChunkedTransferDecoder):
    """Twisted's chunked decoder, telling the request each chunk's declared size as soon as
    the size line is parsed (Twisted would stream that chunk to the end first)."""

    def __init__(self, request: LimitedRequest, finish) -> None:
        super().__init__(request.handleContentChunk, finish)
        self._request = request

    def _dataReceived_CHUNK_LENGTH(self) -> bool:
        parsed = super()._dataReceived_CHUNK_LENGTH()
        if parsed and self.length and not self._request.chunk_declared(self.length):
            del self._buffer[:]           # refused: the channel discards the rest from now on
            return False
        return parsed


def _declare_chunk_sizes(request: LimitedRequest) -> None:
    """Swap the channel's chunked decoder (chosen from the headers, before any body byte is
    decoded) for one that reports declared chunk sizes. Relies on Twisted's HTTPChannel
    internals (``_transferDecoder``); tests/test_slow_clients.py pins the behaviour."""
    channel = request.channel
    decoder = getattr(channel, "_transferDecoder", None)
    if type(decoder) is http._ChunkedTransferDecoder and not request._refused:
        channel._transferDecoder = _DeclaredSizeDecoder(request, decoder.finishCallback)
