"""The attack corpus (tests/corpus/cases.py) against the inbound side, twice:

1. in-process, through ``InboundPipeline.process``: every case gets its expected answer, the
   error signal is signed and complete, and nothing reaches the receiver's store or inbox;
2. against one real daemon over mutual TLS, all cases in one run: every case answered with
   its code (413s while the body is still being sent), and afterwards the daemon still
   accepts a valid message, which is then the only thing in its inbox and store.
"""
from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from crypto import verify_message
from crypto.devpki import ensure_party
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.connectors.folder_client import inbox_entries
from gateway.inbound import InboundLimits, InboundPipeline
from tests.corpus.cases import CASES, MAX_MESSAGE_BYTES, Case
from tests.corpus.ctx import Ctx, Wire, issue_certificate
from tests.harness import Daemon, swgw, write_pair

TIMEOUT = 30.0
REF_CODES = {"EBMS:0010", "EBMS:0101", "EBMS:0102", "EBMS:0103", "EBMS:0303", "EBMS:0011", "EBMS:0003"}


def _setup(tmp: Path, pki: Path):
    """Nodes a (sender, in-process) and b (receiver) with: a 2 MiB message limit on b, a third
    partner cc-nsw known to b, and an expired certificate configured as one of aa-nsw's signers."""
    ensure_party(pki, "cc-nsw")
    a, b = write_pair(tmp, pki)
    cfg = b.config_path.read_text().replace("[listen]\n", f"[listen]\nmax_message_bytes = {MAX_MESSAGE_BYTES}\n", 1)
    b.config_path.write_text(cfg)
    partners = b.home / "partners"
    aa_toml = (partners / "aa-nsw" / "partner.toml").read_text()
    ca_cert, ca_key = load_certificate(pki / "ca" / "ca.crt"), load_private_key(pki / "ca" / "ca.key")
    now = dt.datetime.now(dt.timezone.utc)
    expired = issue_certificate(ca_key, ca_cert, "aa-nsw expired signer",
                                not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=30))
    (b.home / "expired.crt").write_bytes(expired.cert.public_bytes(serialization.Encoding.PEM))
    own = str(pki / "aa-nsw" / "sign.crt")
    (partners / "aa-nsw" / "partner.toml").write_text(
        aa_toml.replace(f'signing_certs = ["{own}"]', f'signing_certs = ["{own}", "{b.home / "expired.crt"}"]'))
    (partners / "cc-nsw").mkdir()
    (partners / "cc-nsw" / "partner.toml").write_text(
        aa_toml.replace('party_id = "AA-NSW"', 'party_id = "CC-NSW"').replace("/aa-nsw/", "/cc-nsw/")
        .replace('id = "aa-nsw-bb-nsw', 'id = "cc-nsw-bb-nsw'))
    return a, b, expired


@pytest.fixture
def corpus_env(tmp_path, pki):
    """A fresh receiver per test: each test asserts that its inbox and store hold nothing
    but its own valid message."""
    from gateway.daemon import Gateway
    a, b, expired = _setup(tmp_path, pki)
    gw_a = Gateway(a.config())
    ctx = Ctx(sender=gw_a, pki=pki, extra={"expired": expired})
    yield a, b, ctx
    gw_a.store.close()


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


def _check(case: Case, wire: Wire, answer, error_ref: str | None) -> None:
    assert answer == case.expect, f"{case.name}: expected {case.expect}, got {answer}"
    if answer in REF_CODES and wire.message_id:
        assert error_ref == wire.message_id, f"{case.name}: RefToMessageInError {error_ref}"


def _error_ref(status: int, body: bytes) -> str | None:
    if status != 200:
        return None
    parsed = as4.parse_envelope(as4.parse_xml(body))
    return parsed.error_signal.errors[0].ref_to_message_id if parsed.error_signal else None


def test_corpus_has_at_least_forty_cases():
    assert len(CASES) >= 40
    assert all(c.description for c in CASES)


def test_every_corpus_case_is_rejected_in_process(corpus_env):
    from gateway.daemon import Gateway
    _a, b, ctx = corpus_env
    gw_b = Gateway(b.config())
    try:
        pipeline = InboundPipeline(gw_b.identity, gw_b.registry, gw_b.store, gw_b.connector,
                                   InboundLimits(max_message_bytes=MAX_MESSAGE_BYTES))
        receiver_cert = gw_b.identity.signing_cert
        inbox = gw_b.config.folder.inbox
        failures = []
        for case in [c for c in CASES if not c.after_valid]:
            wire = case.build(ctx)
            response = pipeline.process(wire.content_type, wire.body)
            try:
                answer = answer_of(response.code, response.content_type, response.body, receiver_cert)
                _check(case, wire, answer, _error_ref(response.code, response.body))
            except AssertionError as exc:
                failures.append(str(exc))
        assert not failures, "\n".join(failures)
        assert gw_b.store.list_messages() == []
        assert inbox_entries(inbox) == [] and not [p for p in inbox.iterdir() if p.is_file()]

        valid = ctx.submit(reference="VALID")
        response = pipeline.process(valid.content_type, valid.body)
        assert answer_of(response.code, response.content_type, response.body, receiver_cert) == "receipt"
        ctx.extra["valid"] = valid
        for case in [c for c in CASES if c.after_valid]:
            wire = case.build(ctx)
            r = pipeline.process(wire.content_type, wire.body)
            _check(case, wire, answer_of(r.code, r.content_type, r.body, receiver_cert), _error_ref(r.code, r.body))
        again = pipeline.process(valid.content_type, valid.body)
        assert again.body == response.body          # an identical resend gets the stored receipt
        assert [e["message_id"] for e in inbox_entries(inbox)] == [valid.message_id]
        assert [m.message_id for m in gw_b.store.list_messages()] == [valid.message_id]
    finally:
        gw_b.store.close()


# -- over the wire ------------------------------------------------------------------------
def _client_context(pki: Path) -> ssl.SSLContext:
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


def test_daemon_survives_the_whole_corpus_over_mutual_tls(corpus_env, pki):
    a, b, ctx = corpus_env
    daemon = Daemon(b).start()
    try:
        context = _client_context(pki)
        receiver_cert = load_certificate(pki / "bb-nsw" / "sign.crt")
        failures = []
        for case in [c for c in CASES if not c.after_valid]:
            wire = case.build(ctx)
            status, ctype, body, sent = post(b.port, context, wire)
            try:
                _check(case, wire, answer_of(status, ctype, body, receiver_cert), _error_ref(status, body))
                if status == 413:
                    assert sent < len(wire.body), f"{case.name}: 413 only after the whole body was sent"
            except AssertionError as exc:
                failures.append(str(exc))
        assert not failures, "\n".join(failures)
        inbox = b.config().folder.inbox
        assert inbox_entries(inbox) == []

        valid = ctx.submit(reference="VALID-OVER-TLS")
        status, ctype, first, _ = post(b.port, context, valid)
        assert answer_of(status, ctype, first, receiver_cert) == "receipt"
        ctx.extra["valid"] = valid
        for case in [c for c in CASES if c.after_valid]:
            wire = case.build(ctx)
            status, ctype, body, _ = post(b.port, context, wire)
            _check(case, wire, answer_of(status, ctype, body, receiver_cert), _error_ref(status, body))
        status, ctype, again, _ = post(b.port, context, valid)
        assert status == 200 and again == first
        assert [e["message_id"] for e in inbox_entries(inbox)] == [valid.message_id]
        listing = json.loads(swgw("messages", "-c", str(b.config_path), "--json").stdout)
        assert [m["message_id"] for m in listing] == [valid.message_id]
        assert daemon.process.poll() is None
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.log.read_text()
