"""``[listen]`` inbound limits come from gateway.toml: validated with file and key, and a real
daemon started with small limits answers each over-limit message the way the limit says
(413 while the body arrives; signed ebMS errors for parts, decompressed size and depth)."""
from __future__ import annotations

import socket

import pytest

from crypto.keys import load_certificate
from gateway.connectors.folder_client import inbox_entries
from gateway.daemon import Gateway, inbound_limits
from gateway.transport.connections import ConnectionLimits
from partners.configfile import ConfigError
from tests.corpus.cases import _nest
from tests.corpus.ctx import Ctx, Wire, encode_mime, gz_attachment, soap_part
from tests.harness import Daemon, write_pair
from tests.attack_helpers import client_context, answer_of, post

LIMITS = """max_message_bytes = 262144
max_parts = 3
max_decompressed_bytes = 65536
max_xml_depth = 64
"""


def _set_listen(node, text: str) -> None:
    node.config_path.write_text(node.config_path.read_text().replace("[listen]\n", "[listen]\n" + text, 1))


def test_listen_limits_are_read_from_gateway_toml(tmp_path, pki):
    _a, b = write_pair(tmp_path, pki)
    defaults = b.config().listen
    assert (defaults.max_parts, defaults.max_decompressed_bytes, defaults.max_xml_depth) == (100, 100 * 2**20, 256)
    _set_listen(b, LIMITS)
    listen = b.config().listen
    assert (listen.max_message_bytes, listen.max_parts, listen.max_decompressed_bytes, listen.max_xml_depth) == \
        (262144, 3, 65536, 64)
    limits = inbound_limits(b.config())
    assert (limits.max_message_bytes, limits.max_parts, limits.max_decompressed_bytes, limits.max_xml_depth) == \
        (262144, 3, 65536, 64)


def _assert_listen_line_refused(tmp_path, pki, line: str, message: str) -> None:
    """``line`` in b's [listen] table makes its config fail with ``message``, naming file and key."""
    _a, b = write_pair(tmp_path, pki)
    _set_listen(b, line + "\n")
    with pytest.raises(ConfigError) as info:
        b.config()
    assert any(p == f"{b.config_path} {message}" for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("line, message", [
    ("max_parts = 0", "[listen.max_parts]: must be at least 1, got 0"),
    ("max_parts = -5", "[listen.max_parts]: must be at least 1, got -5"),
    ("max_decompressed_bytes = 10", "[listen.max_decompressed_bytes]: must be at least 1024, got 10"),
    ('max_decompressed_bytes = "1G"', "[listen.max_decompressed_bytes]: expected an integer, got '1G'"),
    ("max_xml_depth = 2.5", "[listen.max_xml_depth]: expected an integer, got 2.5"),
    ("max_xml_depth = 3", "[listen.max_xml_depth]: must be at least 16, got 3"),
    ("max_part = 5", "[listen.max_part]: unknown key (typo?)"),
])
def test_bad_listen_limits_name_file_and_key(tmp_path, pki, line, message):
    _assert_listen_line_refused(tmp_path, pki, line, message)


SLOW_CLIENT_LIMITS = """header_timeout = 10
idle_timeout = 30.5
body_timeout = 15
body_min_rate = 0
max_connections = 64
max_connections_per_client = 8
"""


def _set_nsw_api(node, text: str) -> None:
    tokens = node.home / "nsw-api.tokens"
    tokens.write_text("t" * 20 + "\n")
    tokens.chmod(0o600)
    with open(node.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nport = 18999\ntoken_file = "{tokens}"\n{text}')


def test_slow_client_limits_are_read_for_both_listeners(tmp_path, pki):
    _a, b = write_pair(tmp_path, pki)
    _set_nsw_api(b, "")
    config = b.config()
    assert config.listen.connections == config.nsw_api.connections == ConnectionLimits()
    assert ConnectionLimits().header_timeout <= 30          # the promise: slowloris cut within 30 s
    _a, b = write_pair(tmp_path, pki)          # a fresh gateway.toml
    _set_listen(b, SLOW_CLIENT_LIMITS)
    _set_nsw_api(b, SLOW_CLIENT_LIMITS.replace("= 8", "= 4"))
    config = b.config()
    expected = ConnectionLimits(header_timeout=10.0, idle_timeout=30.5, body_timeout=15.0, body_min_rate=0,
                                max_connections=64, max_connections_per_client=8)
    assert config.listen.connections == expected
    assert config.nsw_api.connections.max_connections_per_client == 4


@pytest.mark.parametrize("line, message", [
    ("header_timeout = 0", "[listen.header_timeout]: must be at least 1.0, got 0.0"),
    ('idle_timeout = "1m"', "[listen.idle_timeout]: expected a number, got '1m'"),
    ("body_timeout = 0.5", "[listen.body_timeout]: must be at least 1.0, got 0.5"),
    ("body_min_rate = -1", "[listen.body_min_rate]: must be at least 0, got -1"),
    ("body_min_rate = 1.5", "[listen.body_min_rate]: expected an integer, got 1.5"),
    ("max_connections = 0", "[listen.max_connections]: must be at least 1, got 0"),
    ("max_connections_per_client = 0", "[listen.max_connections_per_client]: must be at least 1, got 0"),
    ("max_connections_per_client = 300",
     ("[listen.max_connections_per_client]: 300 is more than max_connections (256); lower it or raise "
      "max_connections")),
    ("header_timout = 10", "[listen.header_timout]: unknown key (typo?)"),
])
def test_bad_slow_client_limits_name_file_and_key(tmp_path, pki, line, message):
    _assert_listen_line_refused(tmp_path, pki, line, message)


def test_bad_slow_client_limits_of_the_nsw_api_name_its_table(tmp_path, pki):
    _a, b = write_pair(tmp_path, pki)
    _set_nsw_api(b, "max_connections = 4\nmax_connections_per_client = 5\nheader_timeout = -1\n")
    with pytest.raises(ConfigError) as info:
        b.config()
    assert sorted(p.removeprefix(f"{b.config_path} ") for p in info.value.problems) == [
        "[nsw.api.header_timeout]: must be at least 1.0, got -1.0",
        ("[nsw.api.max_connections_per_client]: 5 is more than max_connections (4); lower it or raise "
         "max_connections"),
    ]


def _too_many_parts(ctx: Ctx) -> Wire:
    """A valid message plus filler MIME parts: 4 parts in all, one over ``max_parts = 3``."""
    wire = ctx.submit(reference="PARTS")
    soap, parts = soap_part(wire)
    many = [(p.content_id, p.content_type, p.data) for p in parts]
    many += [(f"filler-{i}@aa-nsw.swgw", "text/plain", b"x") for i in range(2)]
    ctype, body = encode_mime(soap, many)
    return Wire(ctype, body, message_id=wire.message_id)


def _declared_chunk_answer(port: int, context, size: int) -> tuple[int, bytes]:
    """POST a chunked body's head and one chunk-size line (``size``), no body byte; the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"POST /as4 HTTP/1.1\r\nHost: gw\r\nContent-Type: multipart/related\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % size)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 40:
            chunk = tls.recv(4096)          # a socket timeout (30 s) fails the test: no answer came
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]) if head else 0, body


def test_daemon_with_small_limits_refuses_over_limit_messages(tmp_path, pki):
    a, b = write_pair(tmp_path, pki)
    _set_listen(b, LIMITS)
    gw_a = Gateway(a.config())
    ctx = Ctx(sender=gw_a, pki=pki)
    daemon = Daemon(b).start()
    try:
        context = client_context(pki)
        receiver_cert = load_certificate(pki / "bb-nsw" / "sign.crt")

        def answer(wire: Wire):
            status, ctype, body, sent = post(b.port, context, wire)
            return answer_of(status, ctype, body, receiver_cert), body, sent

        # under every limit: accepted
        ok = ctx.submit(reference="SMALL")
        assert answer(ok)[0] == "receipt"
        # max_parts: the MIME splitter stops at the 4th part
        code, body, _ = answer(_too_many_parts(ctx))
        assert code == "EBMS:0004" and b"more than 3 MIME parts" in body
        # max_decompressed_bytes: 100 KB of XML gzips to well under max_message_bytes
        big = b"<doc>" + b"x" * 100_000 + b"</doc>"
        wire = ctx.craft(attachments=[gz_attachment(document=big)])
        assert len(wire.body) < 262144
        code, body, _ = answer(wire)
        assert code == "EBMS:0303" and b"65536" in body
        # max_xml_depth: a Body nested 100 deep (the default 256 would accept it)
        code, _body, _ = answer(ctx.craft(before_sign=_nest(100)))
        assert code == "EBMS:0009"
        # max_message_bytes: refused with 413 before the whole body is sent (16 MiB, far over the
        # limit, so that the refusal is observable past the sockets' buffers), declared or chunked
        small = ctx.submit(reference="PADDED")
        for transfer in ("content-length", "chunked"):
            huge = Wire(small.content_type, small.body + b" " * (64 * 262144), transfer)
            code, body, sent = answer(huge)
            assert code == 413 and b"262144" in body and sent < len(huge.body), (transfer, sent)

        # a chunk-size line declaring more than max_message_bytes: 413 before any body byte is sent
        status, body = _declared_chunk_answer(b.port, context, 64 * 262144)
        assert status == 413 and b"declares a chunk of 16777216 bytes" in body, (status, body)

        assert [e["message_id"] for e in inbox_entries(b.config().folder.inbox)] == [ok.message_id]
        assert daemon.process.poll() is None
    finally:
        daemon.stop()
        gw_a.store.close()
    assert "Traceback" not in daemon.log.read_text()
