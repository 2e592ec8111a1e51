"""The attack corpus (tests/corpus/cases.py) against the inbound side, twice:

1. in-process, through ``InboundPipeline.process``: every case gets its expected answer, the
   error signal is signed and complete, and nothing reaches the receiver's store or inbox;
2. against one real daemon over mutual TLS, all cases in one run: every case answered with
   its code (413s while the body is still being sent), and afterwards the daemon still
   accepts a valid message, which is then the only thing in its inbox and store.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from crypto.devpki import ensure_party
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.connectors.folder_client import inbox_entries
from gateway.inbound import InboundLimits, InboundPipeline
from tests.corpus.cases import CASES, MAX_MESSAGE_BYTES, Case
from tests.corpus.ctx import Ctx, Wire, issue_certificate
from tests.harness import Daemon, swgw, write_pair
from tests.attack_helpers import answer_of, client_context, post

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


def test_daemon_survives_the_whole_corpus_over_mutual_tls(corpus_env, pki):
    a, b, ctx = corpus_env
    daemon = Daemon(b).start()
    try:
        context = client_context(pki)
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
