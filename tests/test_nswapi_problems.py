"""Every error of the NSW HTTP API is an RFC 9457 problem document with the right status.

Real HTTP on 127.0.0.1 against the real Site (request factory, body limits, routing) over a
real SQLite store and inbox folder; each test names the defect it pins down.
"""
from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import threads

from gateway.nswapi.resource import OPENAPI
from partners.documents import sample
from tests.nswapi_helpers import AUTH, AUTH_XML, TOKEN, check_problem, http_call, start_api

SUBMIT = "/api/v1/documents?partner=sg-nsw&type=ephyto"


@pytest.fixture
def api(tmp_path):
    api = start_api(tmp_path)
    yield api
    api.close()


def call(api, method: str, target: str, headers=None, body=None):
    return threads.deferToThread(http_call, api.base, method, target, headers, body)


def deliver(api, n: int, received_at: str):
    return api.folder.deliver(partner_id="sg-nsw", sender_party="SG-NSW", message_id=f"in-{n}@sg",
                              reference=f"SG-{n}", document_type="eco", received_at=received_at,
                              document=sample("eco-KE-SG.xml"), mime_type="application/xml",
                              conversation_id="c", ref_to_message_id=None)


@pytest_twisted.inlineCallbacks
def test_invalid_utf8_in_the_query_is_a_400_problem_not_a_500_page(api):
    for method, target, headers in (("GET", "/api/v1/inbox?partner=%FF", AUTH),
                                    ("GET", "/api/v1/messages?reference=%C3%28", AUTH),
                                    ("POST", "/api/v1/documents?partner=sg-nsw&type=ephyto&reference=%E2%82",
                                     AUTH_XML)):
        reply = yield call(api, method, target, headers, sample("sps-ephyto-AR.xml") if method == "POST" else None)
        doc = check_problem(reply, 400, "invalid-parameter")
        assert "UTF-8" in doc["detail"] and "percent-encode" in doc["detail"]
    assert api.backend.count == 0
    reply = yield call(api, "GET", "/api/v1/messages/%FF%FE", AUTH)
    assert "UTF-8" in check_problem(reply, 400, "invalid-parameter")["detail"]


@pytest_twisted.inlineCallbacks
def test_limit_is_validated_so_the_newest_document_is_never_silently_dropped(api):
    first, second = deliver(api, 1, "2024-05-01T10:00:00Z"), deliver(api, 2, "2024-05-01T11:00:00Z")
    for bad in ("-1", "0", "1001", "abc", "1.5", ""):
        reply = yield call(api, "GET", f"/api/v1/inbox?limit={bad}", AUTH)
        doc = check_problem(reply, 400, "invalid-parameter")
        assert "limit" in doc["detail"]
    reply = yield call(api, "GET", "/api/v1/inbox?limit=2", AUTH)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert [d["id"] for d in json.loads(reply.body)["documents"]] == [first.name, second.name]
    reply = yield call(api, "GET", "/api/v1/inbox?limit=1", AUTH)
    assert [d["id"] for d in json.loads(reply.body)["documents"]] == [first.name]


@pytest_twisted.inlineCallbacks
def test_unknown_repeated_and_control_character_parameters_are_refused(api):
    reply = yield call(api, "GET", "/api/v1/inbox?limt=5", AUTH)
    assert "unknown query parameter 'limt'" in check_problem(reply, 400, "invalid-parameter")["detail"]
    reply = yield call(api, "GET", "/api/v1/inbox?limit=1&limit=2", AUTH)
    assert "given 2 times" in check_problem(reply, 400, "invalid-parameter")["detail"]
    reply = yield call(api, "GET", "/api/v1/messages?reference=a%00b", AUTH)
    assert "U+0000" in check_problem(reply, 400, "invalid-parameter")["detail"]
    reply = yield call(api, "GET", "/api/v1/messages?reference=" + "x" * 256, AUTH)
    assert "at most 255" in check_problem(reply, 400, "invalid-parameter")["detail"]
    reply = yield call(api, "GET", "/api/v1/messages", AUTH)
    assert "reference" in check_problem(reply, 400, "invalid-parameter")["detail"]
    reply = yield call(api, "POST", "/api/v1/documents?type=ephyto", AUTH_XML, b"<a/>")
    assert "missing query parameter(s): partner" in check_problem(reply, 400, "invalid-parameter")["detail"]
    assert api.backend.count == 0


@pytest_twisted.inlineCallbacks
def test_wrong_method_is_405_with_allow_and_unknown_path_is_404(api):
    for method, target, allow in (("PUT", "/api/v1/documents", "POST"), ("DELETE", "/api/v1/inbox/x.xml", "GET, HEAD"),
                                  ("GET", "/api/v1/documents", "POST"), ("PATCH", "/api/v1/messages/m1", "GET, HEAD"),
                                  ("POST", "/openapi.json", "GET, HEAD"), ("GET", "/api/v1/inbox/x.xml/ack", "POST")):
        reply = yield call(api, method, target, AUTH_XML, b"<a/>")
        doc = check_problem(reply, 405, "method-not-allowed")
        assert reply.headers["allow"] == allow and method in doc["detail"] and allow in doc["detail"]
    for method, target in (("GET", "/api/v2/inbox"), ("GET", "/nothing"), ("POST", "/api/v1/nothing"),
                           ("PUT", "/api/v1/messages/m1/more")):
        reply = yield call(api, method, target, AUTH_XML, b"<a/>" if method != "GET" else None)
        assert "/openapi.json" in check_problem(reply, 404, "not-found")["detail"]
    reply = yield call(api, "GET", "/api/v1/messages/nope@x", AUTH)
    assert "nope@x" in check_problem(reply, 404, "not-found")["detail"]
    reply = yield call(api, "GET", "/api/v1/inbox/..%2Fsecret", AUTH)
    check_problem(reply, 404, "not-found")
    assert api.backend.count == 0


@pytest_twisted.inlineCallbacks
def test_body_content_type_must_be_xml(api):
    document = sample("sps-ephyto-AR.xml")
    for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded",
                         "application/+xml", "xml", None):
        headers = {**AUTH, **({"Content-Type": content_type} if content_type else {})}
        reply = yield call(api, "POST", SUBMIT, headers, document)
        doc = check_problem(reply, 415, "unsupported-media-type")
        assert "application/xml" in doc["detail"] and "+xml" in doc["detail"]
    assert api.backend.count == 0 and api.store.find(None, None) == []
    for n, content_type in enumerate(("application/xml", "text/xml; charset=utf-8", "Application/XML",
                                      "application/vnd.un.sps+xml")):
        reply = yield call(api, "POST", SUBMIT + f"&reference=CT-{n}", {**AUTH, "Content-Type": content_type},
                           document)
        assert reply.status == 202, (content_type, reply.body)
    assert api.backend.count == 4


@pytest_twisted.inlineCallbacks
def test_authentication_and_size_refusals_are_problems(tmp_path):
    api = start_api(tmp_path, max_document_bytes=1000)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            reply = yield call(api, "GET", "/api/v1/inbox", headers)
            doc = check_problem(reply, 401, "unauthorized")
            assert reply.headers["www-authenticate"].lower().startswith("bearer")
            assert "token" in doc["detail"]
            # POST: refused from the headers by the request factory, before the body is read.
            reply = yield call(api, "POST", SUBMIT, {**headers, "Content-Type": "application/xml"}, b"<a/>")
            check_problem(reply, 401, "unauthorized")
        reply = yield call(api, "POST", SUBMIT, AUTH_XML, b"y" * 1001)
        doc = check_problem(reply, 413, "document-too-large")
        assert "1000 bytes" in doc["detail"]
        reply = yield call(api, "POST", SUBMIT, AUTH_XML, b"")
        assert "empty" in check_problem(reply, 400, "invalid-request")["detail"]
        assert api.backend.count == 0
    finally:
        yield api.close()


@pytest_twisted.inlineCallbacks
def test_rejected_documents_are_problems(api):
    bad = (OPENAPI.parent.parent.parent / "partners/schemas/samples/invalid/"
           "manifest-CC315A-schemaInvalid.xml").read_bytes()
    reply = yield call(api, "POST", "/api/v1/documents?partner=sg-nsw&type=manifest", AUTH_XML, bad)
    assert "TotNumOfIteHEA305" in check_problem(reply, 422, "document-unprocessable")["detail"]
    reply = yield call(api, "POST", "/api/v1/documents?partner=zz&type=ephyto", AUTH_XML, b"<a/>")
    assert "unknown partner" in check_problem(reply, 400, "submission-rejected")["detail"]


@pytest_twisted.inlineCallbacks
def test_an_unexpected_failure_is_a_500_problem_without_internals(tmp_path):
    def broken(mid, ref):
        raise RuntimeError("database password is hunter2")

    api = start_api(tmp_path, find=broken)
    try:
        reply = yield call(api, "GET", "/api/v1/messages/m1", AUTH)
        doc = check_problem(reply, 500, "internal-error")
        assert "gateway log" in doc["detail"] and b"hunter2" not in reply.body
    finally:
        yield api.close()


@pytest_twisted.inlineCallbacks
def test_head_and_public_routes(api):
    reply = yield call(api, "HEAD", "/api/v1/inbox", AUTH)
    assert reply.status == 200 and reply.body == b""
    reply = yield call(api, "GET", "/openapi.json")
    assert reply.status == 200 and json.loads(reply.body)["openapi"].startswith("3.")
    reply = yield call(api, "GET", "/health")
    assert reply.status == 200 and reply.body == b"ok\n"


def test_openapi_documents_every_error_as_a_problem():
    """schemathesis checks answers against openapi.json, so every status the API can give must be there."""
    doc = json.loads(OPENAPI.read_text())
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    responses = doc["components"]["responses"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if operation.get("security") != []:
                assert {"400", "401", "405", "500"} <= codes, (path, method, codes)
            if method == "post" and "requestBody" in operation:
                assert {"413", "415", "422"} <= codes, (path, method, codes)
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    response = responses[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
                    assert list(response["content"]) == ["application/problem+json"], (path, method, code)
    body = doc["paths"]["/api/v1/documents"]["post"]["requestBody"]["content"]
    assert {"application/xml", "text/xml", "application/*+xml"} <= set(body)
    assert TOKEN not in OPENAPI.read_text()


@pytest_twisted.inlineCallbacks
def test_an_overlong_inbox_id_is_not_found_rather_than_a_500(api):
    """Found by the schemathesis test: an id of 250 characters made the file name too long for
    the file system (ENAMETOOLONG), which came out as a 500."""
    long_id = "0" * 250
    reply = yield call(api, "GET", f"/api/v1/inbox/{long_id}", AUTH)
    check_problem(reply, 404, "not-found")
    reply = yield call(api, "POST", f"/api/v1/inbox/{long_id}/ack", AUTH)
    check_problem(reply, 404, "not-found")
