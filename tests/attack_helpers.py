"""Talking to a real AS4 listener the way an attacker would: raw mutual-TLS POSTs, the answer judged."""
from __future__ import annotations

import http.client
import io
import socket
import ssl
from pathlib import Path

from crypto import verify_message
from gateway import as4
from tests.corpus.ctx import Wire

TIMEOUT = 30.0


def answer_of(status: int, content_type: str, body: bytes, receiver_cert) -> str | int:
    """'receipt', an HTTP status, or the single ebMS error code of a signed error signal."""
    if status != 200:
        return status
    envelope = as4.parse_xml(body)
    parsed = as4.parse_envelope(envelope)
    verify_message(envelope, [], [receiver_cert])          # error signals are signed like receipts
    if parsed.receipt is not None:
        return "receipt"
    (error,) = parsed.error_signal.errors
    assert error.severity == "failure" and error.category and error.short_description, error
    assert error.description and len(error.description) > 20, error
    return error.error_code


def client_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca" / "ca.crt"))
    context.load_cert_chain(str(pki / "aa-nsw" / "tls.crt"), str(pki / "aa-nsw" / "tls.key"))
    return context


class _Received:
    """Bytes already read from the socket, in the shape http.client.HTTPResponse parses."""

    def __init__(self, data: bytes):
        self.data = data

    def makefile(self, *_args, **_kwargs):
        return io.BytesIO(self.data)


def _parse_response(data: bytes) -> tuple[int, str, bytes] | None:
    """The complete HTTP response in ``data``, or None while it is still incomplete."""
    response = http.client.HTTPResponse(_Received(data))
    try:
        response.begin()
        body = response.read()
    except (http.client.HTTPException, ValueError):
        return None
    return response.status, response.getheader("content-type", ""), body


def _read_available(sock: ssl.SSLSocket, buf: bytearray) -> bool:
    """Read whatever application data is there without blocking; True at end of stream.
    (Mere readability is no answer: TLS 1.3 session tickets arrive unasked.)"""
    sock.setblocking(False)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
            buf += chunk
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    finally:
        sock.settimeout(TIMEOUT)


def post(port: int, context: ssl.SSLContext, wire: Wire, piece: int = 64 * 1024) -> tuple[int, str, bytes, int]:
    """POST ``wire`` the way ``wire.transfer`` says, stopping early if the server answers
    before the body is complete. Returns (status, content type, body, bytes of body sent)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    buf = bytearray()
    try:
        head = ["POST /as4 HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        if wire.content_type:
            head.append(f"Content-Type: {wire.content_type}")
        chunked = wire.transfer == "chunked"
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(wire.body)}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        try:
            while sent < len(wire.body):
                if _read_available(sock, buf) or buf:
                    break                                   # answered early: stop sending
                data = wire.body[sent:sent + piece]
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                sent += len(data)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        while (answer := _parse_response(bytes(buf))) is None:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed without a complete response: {bytes(buf[:200])!r}")
            buf += chunk
        return (*answer, sent)
    finally:
        sock.close()
