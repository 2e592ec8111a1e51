"""TLS 1.2 cipher suites: only ECDHE with an AEAD cipher (AES-GCM, ChaCha20-Poly1305), on every
listener and on our client side (BSI TR-02102-2, eDelivery TLS guidance); TLS 1.3 unchanged.

The listeners are a real daemon's (the AS4 listener and the NSW API over TLS); the clients
are Python's ssl module, which lowers its own security level so that a refusal can only come
from the server. Our client is the sender's ``PartnerTLSPolicy`` under a Twisted ``Agent``,
against a Python ssl server that offers only CBC suites.
"""
from __future__ import annotations

import socket
import ssl
import threading

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from crypto.keys import load_certificate
from gateway.transport.tls import PartnerTLSPolicy, private_certificate, server_options
from tests.harness import Daemon, reserve_port, server_socket, wait_for, write_pair

# What an independent scanner (testssl.sh) found offered before: CBC with HMAC, LUCKY13-prone.
CBC_SUITES = ["ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA",
              "ECDHE-RSA-AES256-SHA384"]
AEAD_SUITES = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"]
TLS13_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}


def _client(pki, ciphers: str | None, maximum=ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(pki / "ca" / "ca.crt"))
    ctx.load_cert_chain(str(pki / "bb-nsw" / "tls.crt"), str(pki / "bb-nsw" / "tls.key"))
    if ciphers:
        ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    ctx.maximum_version = maximum
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> tuple[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, ctx.wrap_socket(raw) as tls:
        return tls.version(), tls.cipher()[0]


def _refused(port: int, ctx: ssl.SSLContext) -> str:
    with pytest.raises(ssl.SSLError) as excinfo:
        _handshake(port, ctx)
    return excinfo.value.reason or str(excinfo.value)


def test_server_options_list_only_ecdhe_aead_and_tls13_suites(pki):
    """The context both listeners are built with (gateway.transport.tls.server_options)."""
    own = pki / "aa-nsw"
    context = server_options(own / "tls.crt", own / "tls.key", pki / "ca" / "ca.crt").getContext()
    offered = set(SSL.Connection(context, None).get_cipher_list())
    tls12 = offered - TLS13_SUITES
    assert tls12 and all(name.startswith("ECDHE-") and ("-GCM-" in name or "CHACHA20" in name)
                         for name in tls12), sorted(tls12)
    assert TLS13_SUITES <= offered


@pytest.fixture
def listeners(tmp_path, pki):
    """A daemon with both TLS listeners: name -> port."""
    _a, b = write_pair(tmp_path, pki)
    api_port = reserve_port()
    own, ca = pki / "bb-nsw", pki / "ca" / "ca.crt"
    with open(b.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nport = {api_port}\ntls = true\ncert = "{own / "tls.crt"}"\n'
                 f'key = "{own / "tls.key"}"\nclient_ca = "{ca}"\n')
    daemon = Daemon(b).start()

    def api_up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", api_port)) == 0
    wait_for(api_up, what="NSW API listener")
    yield {"as4": b.port, "nsw-api": api_port}
    daemon.stop()


def test_every_listener_refuses_cbc_and_accepts_ecdhe_aead(listeners, pki):
    for name, port in listeners.items():
        # Each suite the scanner flagged, and all of them together: the server's alert.
        for suite in CBC_SUITES + [":".join(CBC_SUITES)]:
            reason = _refused(port, _client(pki, suite))
            assert "HANDSHAKE_FAILURE" in reason, (name, suite, reason)
        # No forward secrecy either (static RSA key exchange, even with GCM).
        assert "HANDSHAKE_FAILURE" in _refused(port, _client(pki, "AES128-GCM-SHA256")), name
        for suite in AEAD_SUITES:
            assert _handshake(port, _client(pki, suite)) == ("TLSv1.2", suite), (name, suite)
        # A client offering CBC first still gets an AEAD suite.
        assert _handshake(port, _client(pki, ":".join(CBC_SUITES + AEAD_SUITES)))[1] in AEAD_SUITES, name
        # TLS 1.3 as before.
        version, suite = _handshake(port, _client(pki, None, ssl.TLSVersion.TLSv1_3))
        assert version == "TLSv1.3" and suite in TLS13_SUITES, name


class _OneShotServer:
    """A Python ssl HTTPS server for one connection, in a thread, offering ``ciphers`` at TLS 1.2."""

    def __init__(self, pki, ciphers: str):
        self.port = reserve_port()
        self.sock = server_socket(self.port)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki / "bb-nsw" / "tls.crt"), str(pki / "bb-nsw" / "tls.key"))
        self.ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.cipher: str | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.cipher = tls.cipher()[0]
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except Exception as exc:  # noqa: BLE001 (the test reads what went wrong)
            self.error = exc
        finally:
            self.sock.close()


def _agent(pki) -> Agent:
    policy = PartnerTLSPolicy([load_certificate(pki / "ca" / "ca.crt")],
                              private_certificate(pki / "aa-nsw" / "tls.key", pki / "aa-nsw" / "tls.crt"))
    return Agent(reactor, contextFactory=policy)


@pytest_twisted.inlineCallbacks
def test_our_client_refuses_a_server_offering_only_cbc(pki):
    server = _OneShotServer(pki, ":".join(CBC_SUITES))
    with pytest.raises(Exception) as excinfo:
        yield _agent(pki).request(b"GET", f"https://127.0.0.1:{server.port}/".encode())
    server.thread.join(30)
    # The server found nothing it offers in our hello: the refusal is our client's cipher list.
    assert server.cipher is None and "NO_SHARED_CIPHER" in str(server.error), (server.error, excinfo.value)


@pytest_twisted.inlineCallbacks
def test_our_client_talks_to_a_tls12_aead_server(pki):
    server = _OneShotServer(pki, "ECDHE-RSA-AES128-GCM-SHA256")
    response = yield _agent(pki).request(b"GET", f"https://127.0.0.1:{server.port}/".encode())
    body = yield readBody(response)
    server.thread.join(30)
    assert response.code == 200 and body == b"ok\n"
    assert server.cipher == "ECDHE-RSA-AES128-GCM-SHA256" and server.error is None



def test_crl_and_time_stamp_fetches_offer_only_the_same_suites():
    """CRL and TSA downloads go through urllib, not Twisted: the same policy applies."""
    from crypto.tlspolicy import https_context
    context = https_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 and all(n.startswith("ECDHE-") and ("GCM" in n or "CHACHA20" in n) for n in tls12), tls12
