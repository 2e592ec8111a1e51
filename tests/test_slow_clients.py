"""Slow and numerous clients: header and body deadlines, idle timeout, connection caps, and a
chunk-size line over the limit, on both listeners' real sites (AS4 ``make_site`` and the NSW
API's ``make_nsw_api_site``, wrapped by ``protect`` as the daemon does).

Time is a ``twisted.internet.task.Clock`` handed to the site, and the client is a
``StringTransport`` fed byte by byte, so "one byte per second for 25 s" takes no wall-clock
time at all. The per-address cap is also checked end to end against a real daemon.
"""
from __future__ import annotations

import socket
import ssl

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from gateway.nswapi import NswApiConfig, make_nsw_api_site
from gateway.transport.connections import ConnectionLimits, protect
from gateway.transport.server import make_site
from tests.harness import Daemon, reserve_port, wait_for, write_pair

MAX_BYTES = 1024 * 1024
HEAD = b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"


def _no_process(*_args, **_kwargs):
    raise AssertionError("no request in these tests reaches the inbound pipeline")


def as4_site():
    return make_site(_no_process, MAX_BYTES)


def nsw_api_site(tmp_path):
    return make_nsw_api_site(submit=_no_process, find=_no_process, inbox_dir=tmp_path,
                             config=NswApiConfig(tokens=("t" * 20,), max_document_bytes=MAX_BYTES))


@pytest.fixture(params=["as4", "nsw-api"])
def site(request, tmp_path):
    return as4_site() if request.param == "as4" else nsw_api_site(tmp_path)


class Client:
    """One connection to ``factory`` from ``host``, driven by hand."""

    def __init__(self, factory, host: str = "10.0.0.1"):
        addr = IPv4Address("TCP", host, 40000)
        self.transport = StringTransport(peerAddress=addr)
        self.protocol = factory.buildProtocol(addr)
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def trickle(self, clock: Clock, data: bytes, per_second: int = 1) -> int:
        """Send ``data`` ``per_second`` bytes per clock second until the server closes; the
        number of bytes sent."""
        sent = 0
        while sent < len(data) and not self.closed:
            self.send(data[sent:sent + per_second])
            sent += per_second
            clock.advance(1)
        return sent

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    @property
    def aborted(self) -> bool:
        return self.transport.disconnected        # StringTransport.abortConnection sets this

    def answer(self) -> bytes:
        return self.transport.value()

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))


def guarded(site, clock: Clock, **limits):
    return protect(site, ConnectionLimits(**limits), clock)


# -- header deadline --------------------------------------------------------------------------
def test_a_slow_header_client_is_cut_within_30_seconds_by_default(site):
    clock = Clock()
    client = Client(guarded(site, clock))
    head = b"POST /as4 HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n" + b"X-Pad: " + b"a" * 100
    sent = client.trickle(clock, head)             # one byte per second, never a whole head
    assert client.closed and sent <= 20, sent
    assert clock.seconds() <= 30
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"header_timeout" in answer, answer
    # A client that does not read the 408 either is aborted shortly after.
    clock.advance(5)
    assert client.aborted and clock.seconds() <= 30


def test_the_header_deadline_is_not_extended_by_each_byte(site):
    clock = Clock()
    client = Client(guarded(site, clock, header_timeout=10, idle_timeout=300))
    client.trickle(clock, HEAD[:9])                # 9 bytes, 9 s: still within the deadline
    assert not client.closed
    clock.advance(0.9)
    assert not client.closed
    clock.advance(0.2)                             # 10.1 s since the connection opened
    assert client.closed and b"within 10 s" in client.answer()


def test_a_client_that_sends_nothing_is_cut_at_the_header_deadline(site):
    clock = Clock()
    client = Client(guarded(site, clock, header_timeout=20, idle_timeout=60))
    clock.advance(19.9)
    assert not client.closed
    clock.advance(0.2)
    assert client.closed and client.answer().startswith(b"HTTP/1.1 408 ")


def test_a_prompt_request_is_answered_and_not_timed_out(site):
    clock = Clock()
    client = Client(guarded(site, clock))
    client.send(HEAD)
    assert client.answer().startswith(b"HTTP/1.1 200 ")
    assert not client.closed


# -- keep-alive: idle timeout, then a fresh header deadline per request ----------------------
def test_keep_alive_connection_is_closed_after_the_idle_timeout(site):
    clock = Clock()
    client = Client(guarded(site, clock, header_timeout=20, idle_timeout=45))
    client.send(HEAD)
    assert client.answer().startswith(b"HTTP/1.1 200 ")
    clock.advance(44)                              # idle between requests: the header clock is not running
    assert not client.closed
    clock.advance(2)
    assert client.closed


def test_next_request_on_keep_alive_gets_its_own_header_deadline(site):
    clock = Clock()
    client = Client(guarded(site, clock, header_timeout=20, idle_timeout=60))
    client.send(HEAD)
    client.transport.clear()
    clock.advance(30)                              # idle, then the next request starts trickling
    sent = client.trickle(clock, b"GET /health HTTP/1.1\r\nHost: gw\r\n" + b"X-Pad: " + b"a" * 100)
    assert client.closed and sent == 20, sent
    assert client.answer().startswith(b"HTTP/1.1 408 ")


def test_pipelined_requests_are_all_answered(site):
    clock = Clock()
    client = Client(guarded(site, clock, header_timeout=20, idle_timeout=60))
    client.send(HEAD + HEAD + HEAD[:10])           # two whole requests and the start of a third
    assert client.answer().count(b"HTTP/1.1 200 ") == 2
    clock.advance(19)
    assert not client.closed
    clock.advance(2)                               # the third head never completes
    last = client.answer().rpartition(b"HTTP/1.1 ")[2]             # the answer after the two 200s
    assert client.closed and last.startswith(b"408 ") and b"send the whole request promptly" in last


# -- body minimum rate -------------------------------------------------------------------------
def _post_head(length: int) -> bytes:
    return (b"POST /health HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + b"t" * 20 +
            b"\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % length)


def test_a_body_trickling_below_the_minimum_rate_is_cut(site):
    clock = Clock()
    client = Client(guarded(site, clock, body_timeout=20, body_min_rate=1024))
    client.send(_post_head(100_000))
    sent = client.trickle(clock, b"x" * 100_000, per_second=10)
    assert client.closed and sent <= 30 * 10, sent
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 408 ") and b"body_min_rate" in answer, answer


def test_a_large_body_at_a_sane_rate_outlasts_body_timeout(site):
    clock = Clock()
    client = Client(guarded(site, clock, body_timeout=20, body_min_rate=1024))
    client.send(_post_head(120_000))
    client.trickle(clock, b"x" * 120_000, per_second=2000)      # 60 s, three times body_timeout
    assert clock.seconds() >= 60
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 405 "), answer            # complete: /health refuses POST
    assert b" 408 " not in answer


# -- chunk-size line over the limit -------------------------------------------------------------
CHUNKED = (b"POST /as4 HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")


def test_a_chunk_size_over_the_limit_is_refused_at_once_with_413():
    clock = Clock()
    site = as4_site()
    site.reactor = clock                           # no protect(): the refusal is the request's own
    client = Client(site)
    client.send(CHUNKED + b"%x\r\n" % (MAX_BYTES + 1))             # the size line only, no body byte
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert b"declares a chunk of 1048577 bytes" in answer and b"1048576" in answer
    client.send(b"x" * 65536)                      # whatever still comes is discarded unread
    assert client.answer() == answer
    clock.advance(2)                               # closed after the grace period, on the site's clock
    assert client.closed


def test_chunks_adding_up_past_the_limit_are_refused_at_the_size_line(site):
    clock = Clock()
    client = Client(guarded(site, clock))
    half = MAX_BYTES // 2
    chunked = CHUNKED.replace(b"/as4", b"/api/v1/documents?partner=x&type=y").replace(
        b"\r\n\r\n", b"\r\nAuthorization: Bearer " + b"t" * 20 + b"\r\n\r\n")
    client.send(chunked + b"%x\r\n" % half + b"x" * half + b"\r\n")
    assert client.answer() == b""                  # 512 KiB so far: fine
    client.send(b"%x\r\n" % (half + 1))            # this one would end at 1 MiB + 1
    assert client.answer().startswith(b"HTTP/1.1 413 ")


def test_chunked_body_within_the_limit_is_read_to_the_end(site):
    clock = Clock()
    client = Client(guarded(site, clock))
    body = b"x" * 1000
    client.send(_post_head(0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked") +
                b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert client.answer().startswith(b"HTTP/1.1 405 ")


# -- connection caps -----------------------------------------------------------------------------
def test_connections_over_the_caps_are_closed_at_once(site):
    clock = Clock()
    factory = guarded(site, clock, max_connections=3, max_connections_per_client=2)
    first, second = Client(factory, "10.0.0.1"), Client(factory, "10.0.0.1")
    third = Client(factory, "10.0.0.1")
    assert third.aborted and third.answer() == b""  # over the per-address cap: nothing parsed or sent
    other = Client(factory, "10.0.0.2")             # another address still gets in...
    assert not other.closed
    fourth = Client(factory, "10.0.0.3")            # ...until the total cap
    assert fourth.aborted
    assert not (first.closed or second.closed)
    first.lose()                                    # a slot frees up
    again = Client(factory, "10.0.0.1")
    assert not again.closed
    again.send(HEAD)
    assert again.answer().startswith(b"HTTP/1.1 200 ")


# -- end to end: the daemon applies the [listen] and [nsw.api] caps ---------------------------------
def _tls_context(pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(str(pki / "ca" / "ca.crt"))
    ctx.load_cert_chain(str(pki / "bb-nsw" / "tls.crt"), str(pki / "bb-nsw" / "tls.key"))
    return ctx


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Blocks until the server closes (EOF or reset); a socket timeout fails the test."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _health(port: int, source: str, context: ssl.SSLContext | None) -> bytes:
    with _connect(port, source) as raw:
        sock = context.wrap_socket(raw) if context else raw
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def test_daemon_closes_a_connection_over_the_per_address_cap(tmp_path, pki):
    _a, b = write_pair(tmp_path, pki)
    caps = "header_timeout = 120\nidle_timeout = 120\nmax_connections_per_client = 2\n"
    b.config_path.write_text(b.config_path.read_text().replace("[listen]\n", "[listen]\n" + caps, 1))
    tokens = b.home / "nsw-api.tokens"
    tokens.write_text("t" * 20 + "\n")
    tokens.chmod(0o600)
    api_port = reserve_port()
    with open(b.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nport = {api_port}\ntoken_file = "{tokens}"\n{caps}')
    daemon = Daemon(b).start()
    try:
        wait_for(lambda: b"200 OK" in _health(api_port, "127.0.0.1", None), what="NSW API listener")
        for port, context in ((b.port, _tls_context(pki)), (api_port, None)):
            # 127.0.0.2 is loopback too, and no other test traffic comes from it.
            held = [_connect(port, "127.0.0.2"), _connect(port, "127.0.0.2")]
            over = _connect(port, "127.0.0.2")
            assert _closed_by_server(over), port
            over.close()
            # The cap is per address: 127.0.0.1 is still served meanwhile.
            assert b"200 OK" in _health(port, "127.0.0.1", context)
            held.pop().close()
            # Once the server has seen that close, 127.0.0.2 gets a slot again.
            wait_for(lambda port=port, context=context: _try_health(port, "127.0.0.2", context),
                     what=f"a free slot on {port}")
            for sock in held:
                sock.close()
    finally:
        daemon.stop()
    log = b.home.joinpath("daemon.log").read_text()
    assert "max_connections_per_client" in log and "Traceback" not in log


def _try_health(port: int, source: str, context: ssl.SSLContext | None) -> bool:
    try:
        return b"200 OK" in _health(port, source, context)
    except (ConnectionError, ssl.SSLError):
        return False


def test_the_nsw_apis_408_is_a_problem_document_like_its_other_errors(tmp_path):
    import json
    clock = Clock()
    client = Client(guarded(nsw_api_site(tmp_path), clock))
    client.trickle(clock, b"GET /api/v1/inbox HTTP/1.1\r\nHost: gw\r\n" + b"X-Pad: " + b"a" * 100)
    head, _, body = client.answer().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"content-type: application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["type"] == "urn:swgw:problem:request-timeout" and problem["status"] == 408
    assert "header_timeout" in problem["detail"]
