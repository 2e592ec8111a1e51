"""``[nsw.api]`` in gateway.toml: validation with clear problems, and mutual TLS on the real daemon."""
from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import urllib.error
import urllib.request

import pytest

from gateway.config import load_gateway_config
from partners.configfile import ConfigError
from partners.documents import SAMPLES
from tests.nswapi_helpers import XML
from tests.harness import Daemon, reserve_port, wait_for, write_pair


@pytest.fixture
def node(tmp_path, pki):
    a, _ = write_pair(tmp_path, pki)
    return a


def _append(node, text: str) -> None:
    with open(node.config_path, "a") as fh:
        fh.write(text)


def problems(node) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(node.config_path)
    return excinfo.value.problems


def test_api_needs_authentication(node):
    _append(node, '\n[nsw.api]\nport = 18999\n')
    (problem,) = problems(node)
    assert "[nsw.api.token_file]" in problem and "client_ca" in problem


def test_token_file_must_be_private_and_hold_tokens(node):
    tokens = node.home / "tokens"
    tokens.write_text("short\n")
    os.chmod(tokens, 0o644)
    _append(node, f'\n[nsw.api]\nport = 18999\ntoken_file = "{tokens}"\n')
    (problem,) = problems(node)
    assert f"chmod 600 {tokens}" in problem
    os.chmod(tokens, 0o600)
    (problem,) = problems(node)
    assert "at least 16 characters" in problem
    tokens.write_text("# nothing but a comment\n")
    (problem,) = problems(node)
    assert "holds no token" in problem


def test_mutual_tls_needs_tls_and_unknown_keys_are_typos(node, pki):
    _append(node, f'\n[nsw.api]\nport = 18999\nclient_ca = "{pki / "ca" / "ca.crt"}"\ntokens = "x"\n')
    found = problems(node)
    assert any("[nsw.api.client_ca]" in p and "tls = true" in p for p in found)
    assert any("[nsw.api.tokens]" in p and "unknown key" in p for p in found)


def test_api_over_mutual_tls_on_the_daemon(node, pki):
    port = reserve_port()
    own, ca = pki / "aa-nsw", pki / "ca" / "ca.crt"
    _append(node, f'\n[nsw.api]\nport = {port}\ntls = true\ncert = "{own / "tls.crt"}"\nkey = "{own / "tls.key"}"\n'
                  f'client_ca = "{ca}"\n')
    config = load_gateway_config(node.config_path)
    assert config.nsw_api.tls and config.nsw_api.tokens == ()
    daemon = Daemon(node).start()
    try:
        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, what="NSW API listener")
        url = f"https://127.0.0.1:{port}/api/v1/documents?partner=bb-nsw&type=ephyto&reference=MTLS-1"
        body = (SAMPLES / "sps-ephyto-AR.xml").read_bytes()

        def context(with_cert: bool) -> ssl.SSLContext:
            ctx = ssl.create_default_context(cafile=str(ca))
            ctx.check_hostname = False          # dev certificates name the party, not 127.0.0.1
            if with_cert:
                ctx.load_cert_chain(str(pki / "bb-nsw" / "tls.crt"), str(pki / "bb-nsw" / "tls.key"))
            return ctx

        # Without a client certificate the server aborts the connection under our write; other
        # tests call gateway.cli.main in-process, which restores SIGPIPE's default (exit), so
        # ignore it here to get the EPIPE as an exception.
        previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        try:
            with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
                urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=XML),
                                       context=context(False), timeout=10).read()
        finally:
            signal.signal(signal.SIGPIPE, previous)
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=XML),
                                    context=context(True), timeout=10) as response:
            assert response.status == 202
            assert json.loads(response.read())["status"] == "queued"
    finally:
        daemon.stop()
