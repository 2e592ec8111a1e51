"""Shared by the NSW API tests: a real in-process API listener on 127.0.0.1 over a real store."""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from twisted.internet import reactor

from gateway.config import FolderConnectorConfig
from gateway.connectors.folder import FolderConnector
from gateway.nswapi import ApiRejected, NswApiConfig, make_nsw_api_site
from gateway.store.store import MessageStore, PayloadData, StepEvent
from partners.documents import DocumentInvalid, validate_document

TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
XML = {"Content-Type": "application/xml"}
AUTH_XML = {**AUTH, **XML}


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


@dataclass
class Api:
    base: str
    folder: FolderConnector
    store: MessageStore
    backend: Backend
    port: object

    def close(self):
        """Stop listening (a Deferred) and close the store."""
        d = self.port.stopListening()
        self.store.close()
        return d


def start_api(tmp: Path, *, find: Callable | None = None, **config) -> Api:
    """An NSW API Site on a free 127.0.0.1 port, over a real SQLite store and inbox folder."""
    store = MessageStore(f"sqlite:///{tmp / 'gw.db'}", tmp / "blobs")
    folder = FolderConnector(FolderConnectorConfig(tmp / "out", tmp / "in", tmp / "rep", 1.0))
    backend = Backend(store)
    site = make_nsw_api_site(submit=backend.submit, find=find or (lambda mid, ref: store.find(mid, ref)),
                             inbox_dir=folder.config.inbox, config=NswApiConfig(tokens=(TOKEN,), **config),
                             rejections={DocumentInvalid: 422})
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    return Api(f"http://127.0.0.1:{port.getHost().port}", folder, store, backend, port)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]          # lower-case names
    body: bytes


def http_call(base: str, method: str, target: str, headers: dict[str, str] | None = None,
              body: bytes | None = None) -> Reply:
    """One request with ``target`` sent exactly as written (http.client does not re-encode it, so
    invalid percent-encodings reach the server). Blocking: call it with deferToThread."""
    host, port = base.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


PROBLEM_KEYS = {"type", "title", "status", "detail"}


def check_problem(reply: Reply, expected_status: int, kind: str) -> dict:
    """Assert an RFC 9457 problem answer of ``expected_status`` and type ``kind``; return it."""
    assert reply.status == expected_status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type") == "application/problem+json", reply.headers
    doc = json.loads(reply.body)
    assert PROBLEM_KEYS <= set(doc), doc
    assert doc["status"] == expected_status and doc["type"] == f"urn:swgw:problem:{kind}", doc
    assert doc["title"] and doc["detail"], doc
    return doc
