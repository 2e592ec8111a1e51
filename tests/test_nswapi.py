"""The NSW HTTP API over real HTTP on 127.0.0.1: auth, submit, status, inbox, OpenAPI document."""
import json
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor

from gateway.connectors.folder import FolderConnector
from gateway.config import FolderConnectorConfig
from gateway.nswapi import ApiRejected, NswApiConfig, make_nsw_api_site
from gateway.store.store import MessageStore, PayloadData, StepEvent
from partners.documents import DocumentInvalid, sample, validate_document

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Backend:
    """Stands in for OutboundPipeline.submit: validates, then records the message in a real store."""

    def __init__(self, store: MessageStore):
        self.store, self.count = store, 0

    def submit(self, partner, document_type, document, reference):
        if partner != "sg-nsw":
            raise ApiRejected(f"unknown partner {partner!r}")
        validate_document(document_type, document)
        self.count += 1
        mid = f"m{self.count}@ke-nsw.swgw"
        self.store.record_outbound(
            message_id=mid, partner_id=partner, document_type=document_type, pmode_id="p", nsw_reference=reference,
            conversation_id=mid, ref_to_message_id=None, content_type="multipart/related", raw=b"raw",
            signed_references={}, payloads=[PayloadData("c", "application/xml", document)],
            events=[StepEvent("validate", "ok", "valid")])
        return mid


@pytest.fixture
def api(tmp_path):
    store = MessageStore(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path / "blobs")
    folder = FolderConnector(FolderConnectorConfig(tmp_path / "out", tmp_path / "in", tmp_path / "rep", 1.0))
    backend = Backend(store)
    site = make_nsw_api_site(submit=backend.submit, find=lambda mid, ref: store.find(mid, ref),
                             inbox_dir=folder.config.inbox, config=NswApiConfig(tokens=(TOKEN,)),
                             rejections={DocumentInvalid: 422})
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    yield f"http://127.0.0.1:{port.getHost().port}", folder, store
    port.stopListening()
    store.close()


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
    response = yield treq.post(url, data=sample("sps-ephyto-AR.xml"), headers=AUTH)
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
    response = yield treq.post(base + "/api/v1/documents?partner=sg-nsw&type=manifest", data=bad, headers=AUTH)
    assert response.code == 422
    assert "TotNumOfIteHEA305" in json.loads((yield response.content()))["error"]
    response = yield treq.post(base + "/api/v1/documents?partner=zz&type=ephyto", data=b"<a/>", headers=AUTH)
    assert response.code == 400 and "unknown partner" in (yield response.text())
    response = yield treq.post(base + "/api/v1/documents?type=ephyto", data=b"<a/>", headers=AUTH)
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
