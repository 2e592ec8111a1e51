"""The AS4 listener speaks TLS 1.2 or newer only (eDelivery AS4 common profile, transport layer).

A real daemon; a client that offers at most TLS 1.1 must be refused by the *server* (an alert
from the peer), while the same client allowed TLS 1.2 completes the mutual-TLS handshake. The
client lowers its own OpenSSL security level so that, where the local OpenSSL still has TLS 1.1,
the refusal can only come from the listener.
"""
from __future__ import annotations

import socket
import warnings
import ssl

import pytest

from tests.harness import Daemon, reserve_port, write_node


@pytest.fixture
def listener(tmp_path, pki):
    node = write_node(tmp_path, pki, "aa-nsw", "bb-nsw", reserve_port(), reserve_port())
    daemon = Daemon(node).start()
    yield node, pki
    daemon.stop()


def _client(pki, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(pki / "ca" / "ca.crt"))
    ctx.load_cert_chain(str(pki / "bb-nsw" / "tls.crt"), str(pki / "bb-nsw" / "tls.key"))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # naming old versions is the point here
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            return tls.version()


def test_tls_1_2_handshake_succeeds(listener):
    node, pki = listener
    assert _handshake(node.port, _client(pki, ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"


def test_tls_1_1_client_is_refused_by_the_listener(listener):
    node, pki = listener
    with pytest.raises(ssl.SSLError) as excinfo:
        _handshake(node.port, _client(pki, ssl.TLSVersion.TLSv1_1))
    reason = excinfo.value.reason or str(excinfo.value)
    if reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all, so the listener's floor cannot be probed")
    # The server's protocol_version alert: the refusal came from the listener, not from us.
    assert "ALERT_PROTOCOL_VERSION" in reason, reason
