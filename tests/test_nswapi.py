"""The NSW HTTP API over real HTTP on 127.0.0.1: auth, submit, status, inbox, OpenAPI document."""
import json
import re
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from gateway.nswapi import NswApiConfig, make_nsw_api_site
from gateway.store.store import MessageStore
from partners.documents import sample
from tests.nswapi_helpers import AUTH, AUTH_XML, TOKEN, Backend, start_api


@pytest.fixture
def api(tmp_path):
    api = start_api(tmp_path)
    yield api.base, api.folder, api.store
    api.close()


@pytest_twisted.inlineCallbacks
def test_auth_required(api):
    base, _, _ = api
    response = yield treq.get(base + "/api/v1/inbox")
    assert response.code == 401 and response.headers.getRawHeaders("www-authenticate")
    response = yield treq.get(base + "/api/v1/inbox", headers={"Authorization": "Bearer wrong"})
    assert response.code == 401
    response = yield treq.get(base + "/openapi.json")
    doc = json.loads((yield response.content()))
    assert doc["openapi"].startswith("3.") and "/api/v1/documents" in doc["paths"]


@pytest_twisted.inlineCallbacks
def test_submit_and_status(api):
    base, _, _ = api
    url = base + "/api/v1/documents?partner=sg-nsw&type=ephyto&reference=KE-PHYTO-1"
    response = yield treq.post(url, data=sample("sps-ephyto-AR.xml"), headers=AUTH_XML)
    assert response.code == 202
    body = json.loads((yield response.content()))
    mid = body["message_id"]
    response = yield treq.get(base + body["status_url"], headers=AUTH)
    status = json.loads((yield response.content()))
    assert status["status"] == "queued" and status["reference"] == "KE-PHYTO-1"
    assert [e["step"] for e in status["events"]] == ["validate", "persist"]
    response = yield treq.get(base + "/api/v1/messages?reference=KE-PHYTO-1", headers=AUTH)
    assert [m["message_id"] for m in json.loads((yield response.content()))["messages"]] == [mid]
    response = yield treq.get(base + "/api/v1/messages/nope@x", headers=AUTH)
    assert response.code == 404


@pytest_twisted.inlineCallbacks
def test_submit_rejections(api):
    base, _, _ = api
    bad = (Path(__file__).resolve().parent.parent / "partners/schemas/samples/invalid/"
           "manifest-CC315A-schemaInvalid.xml").read_bytes()
    response = yield treq.post(base + "/api/v1/documents?partner=sg-nsw&type=manifest", data=bad, headers=AUTH_XML)
    assert response.code == 422
    assert "TotNumOfIteHEA305" in json.loads((yield response.content()))["detail"]
    response = yield treq.post(base + "/api/v1/documents?partner=zz&type=ephyto", data=b"<a/>", headers=AUTH_XML)
    assert response.code == 400 and "unknown partner" in (yield response.text())
    response = yield treq.post(base + "/api/v1/documents?type=ephyto", data=b"<a/>", headers=AUTH_XML)
    assert response.code == 400 and "partner" in (yield response.text())


@pytest_twisted.inlineCallbacks
def test_inbox_list_fetch_ack(api):
    base, folder, _ = api
    document = sample("eco-KE-SG.xml")
    path = folder.deliver(partner_id="sg-nsw", sender_party="SG-NSW", message_id="in-1@sg", reference="SG-1",
                          document_type="eco", received_at="2024-05-01T10:00:00Z", document=document,
                          mime_type="application/xml", conversation_id="c", ref_to_message_id=None)
    response = yield treq.get(base + "/api/v1/inbox?type=eco", headers=AUTH)
    [entry] = json.loads((yield response.content()))["documents"]
    assert entry["id"] == path.name and entry["message_id"] == "in-1@sg"
    response = yield treq.get(base + f"/api/v1/inbox/{entry['id']}", headers=AUTH)
    assert (yield response.content()) == document
    assert response.headers.getRawHeaders("x-swgw-reference") == ["SG-1"]
    response = yield treq.post(base + f"/api/v1/inbox/{entry['id']}/ack", headers=AUTH)
    assert json.loads((yield response.content()))["already"] is False
    response = yield treq.post(base + f"/api/v1/inbox/{entry['id']}/ack", headers=AUTH)
    assert json.loads((yield response.content()))["already"] is True
    response = yield treq.get(base + "/api/v1/inbox", headers=AUTH)
    assert json.loads((yield response.content()))["documents"] == []
    for bad in ("..%2Fsecret", "nothing.xml"):
        response = yield treq.get(base + f"/api/v1/inbox/{bad}", headers=AUTH)
        assert response.code == 404


def _raw_exchange(base: str, head: bytes, body: bytes = b"", timeout: float = 60.0) -> bytes:
    """Send ``head`` and (part of) a body on a raw socket; return the whole response (headers and
    the body its Content-Length announces). The server answering while the body is incomplete
    is the proof that it refused without reading it. Blocking: run it in a thread."""
    import socket
    host, port = base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        headers, _, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", headers)
        while length and len(rest) < int(length.group(1)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return headers + b"\r\n\r\n" + rest


def _post_head(length: int | str, token: str | None = None, path: str = "/api/v1/documents?partner=sg-nsw&type=ephyto",
               extra: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    size = f"Transfer-Encoding: chunked\r\n" if length == "chunked" else f"Content-Length: {length}\r\n"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{size}{extra}"
            f"Content-Type: application/xml\r\n\r\n").encode()


@pytest_twisted.inlineCallbacks
def test_unauthenticated_post_is_refused_before_its_body_is_read(api):
    """A plain Site spooled the whole body (to disk) before render_POST checked the token:
    now the 401 comes from the headers alone, while the client has sent 3 bytes of 1 GB."""
    from twisted.internet import threads
    base, _, _ = api
    for token in (None, "wrong-token"):
        data = yield threads.deferToThread(
            _raw_exchange, base, _post_head(10**9, token, extra="Expect: 100-continue\r\n"), b"<a/")
        assert data.startswith(b"HTTP/1.1 401 "), data[:200]
        assert b"100 Continue" not in data
        assert b"www-authenticate: bearer" in data.lower()
        assert b"missing or wrong bearer token" in data
    # Chunked, without Content-Length: refused just the same, before any chunk.
    data = yield threads.deferToThread(_raw_exchange, base, _post_head("chunked"), b"3\r\n<a/\r\n")
    assert data.startswith(b"HTTP/1.1 401 ")
    # Public GET routes stay open; authenticated requests still work.
    response = yield treq.get(base + "/health")
    assert response.code == 200
    response = yield treq.post(base + "/api/v1/documents?partner=sg-nsw&type=ephyto",
                               data=sample("sps-ephyto-AR.xml"), headers=AUTH_XML)
    assert response.code == 202


@pytest_twisted.inlineCallbacks
def test_authenticated_oversize_post_gets_413_before_its_body_is_read(api, tmp_path):
    from twisted.internet import threads
    base, _, _ = api
    # Default limit (50 MB): a Content-Length over it is answered at once, body unread.
    data = yield threads.deferToThread(_raw_exchange, base, _post_head(60 * 1024 * 1024, TOKEN), b"<a/")
    assert data.startswith(b"HTTP/1.1 413 "), data[:200]
    assert b"exceeds" in data
    # A small limit, and a chunked body that crosses it: refused at the first byte over.
    store = MessageStore(f"sqlite:///{tmp_path / 'small.db'}", tmp_path / "small-blobs")
    site = make_nsw_api_site(submit=Backend(store).submit, find=lambda mid, ref: store.find(mid, ref),
                             inbox_dir=tmp_path / "small-in",
                             config=NswApiConfig(tokens=(TOKEN,), max_document_bytes=1000))
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        small = f"http://127.0.0.1:{port.getHost().port}"
        chunk = b"x" * 1500
        data = yield threads.deferToThread(
            _raw_exchange, small, _post_head("chunked", TOKEN), b"%x\r\n%s\r\n" % (len(chunk), chunk))
        assert data.startswith(b"HTTP/1.1 413 "), data[:200]
        assert b"application/problem+json" in data and b'"status": 413' in data
        assert b"limit of 1000 bytes" in data
        response = yield treq.post(small + "/api/v1/documents?partner=sg-nsw&type=ephyto",
                                   data=b"y" * 1001, headers=AUTH_XML)
        assert response.code == 413
    finally:
        yield port.stopListening()
        store.close()
