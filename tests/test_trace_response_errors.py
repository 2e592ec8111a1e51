"""`swgw trace` names the partner's HTTP *response* when that response cannot be read.

A real daemon sends to a real HTTPS endpoint on 127.0.0.1 (a tiny ``http.server``, which is
what a misrouted endpoint, a proxy or a web server's error page looks like from the
gateway) that answers without a Content-Type; the story `swgw trace` tells must say that
the partner's response had no Content-Type, not that "the HTTP request" had none.
"""
from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.harness import Daemon, swgw, wait_for, write_pair


class _NoContentType(BaseHTTPRequestHandler):
    """Reads the POST and answers 200 with a body but no Content-Type header."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1
        body = b"<html><body>OK</body></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def partner_without_content_type(pki):
    """An HTTPS endpoint with the partner's dev TLS certificate (so the daemon's per-partner
    TLS trust accepts it), answering every POST without Content-Type."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoContentType)
    server.posts = 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki / "bb-nsw" / "tls.crt", pki / "bb-nsw" / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_trace_says_the_partners_response_had_no_content_type(tmp_path, pki, partner_without_content_type):
    a, b = write_pair(tmp_path, pki, attempts=3, interval=0.2)
    partner_file = a.home / "partners" / "bb-nsw" / "partner.toml"
    port = partner_without_content_type.server_address[1]
    partner_file.write_text(partner_file.read_text().replace(
        f"https://127.0.0.1:{b.port}/as4", f"https://127.0.0.1:{port}/as4"))
    document = tmp_path / "doc.xml"
    document.write_bytes(b"<doc>no content type</doc>")
    mid = swgw("submit", "-c", str(a.config_path), "--to", "bb-nsw", "--type", "test-cert", "--ref", "NOCT",
               str(document)).stdout.strip()
    def judged() -> str | None:
        out = swgw("trace", "-c", str(a.config_path), mid).stdout
        return out if "no Content-Type" in out else None

    daemon = Daemon(a).start()
    try:
        text = wait_for(judged, what="a judged answer in the trace")
    finally:
        daemon.stop()
    assert partner_without_content_type.posts >= 1
    answer = next(line for line in text.splitlines() if "no Content-Type" in line)
    assert "HTTP request has no Content-Type" not in text, text
    assert "HTTP 200" in answer and "partner's HTTP response has no Content-Type header" in answer, answer
    assert f"https://127.0.0.1:{port}/as4" in answer and "endpoint" in answer, answer
