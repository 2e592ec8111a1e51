"""The NSW HTTP API: a second NSW connector beside the folders, on its own port.

Routes (all under ``/api/v1``; ``/openapi.json`` describes them):

* ``POST /documents?partner=&type=&reference=``  body = the canonical document -> 202 + MessageId
* ``GET  /messages/{message_id}`` and ``GET /messages?reference=`` -> status, receipt, events
* ``GET  /inbox``, ``GET /inbox/{id}``, ``POST /inbox/{id}/ack`` -> inbound documents

Authentication: ``Authorization: Bearer <token>`` against configured tokens (compared in
constant time), and/or mutual TLS, which is the listening endpoint's business (build it with
``gateway.transport.tls.server_options`` and a client CA). Blocking work (the outbound pipeline,
store queries, file reads) runs in Twisted's thread pool, never on the reactor.

The resource depends only on small callables, so the daemon wires it without this module
knowing about pipelines or stores.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote

from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import resource, server

from gateway.nswapi.inbox import InboxNotFound, InboxView
from gateway.transport.limits import LimitedRequest

log = Logger()
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
MAX_DOCUMENT = 50 * 1024 * 1024


class ApiRejected(ValueError):
    """Raised by the submit callable for a bad submission (400 with the message)."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)


# submit(partner_id, document_type, document, reference) -> message_id; raises ApiRejected
# (or any exception whose class is in ``rejections``) for a document the NSW must fix.
SubmitFn = Callable[[str, str, bytes, str | None], str]
# find(message_id, reference) -> messages (gateway.store.models.Message, events loaded)
FindFn = Callable[[str | None, str | None], Sequence[Any]]


@dataclass(frozen=True)
class NswApiConfig:
    tokens: tuple[str, ...] = ()         # empty: no bearer check (only with mutual TLS!)
    max_document_bytes: int = MAX_DOCUMENT


def bearer_ok(tokens: Sequence[str], header: bytes | None) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens`` (no tokens: no check)."""
    if not tokens:
        return True
    scheme, _, token = (header or b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return any(hmac.compare_digest(token.strip().encode(), t.encode()) for t in tokens)


def _iso(t) -> str | None:
    return t.isoformat().replace("+00:00", "Z") if t is not None else None


def message_json(msg: Any, with_events: bool = True) -> dict:
    """The status view of one message: what the declarant wants to know."""
    receipt = msg.receipts[0] if getattr(msg, "receipts", None) else None
    out = {"message_id": msg.message_id, "direction": msg.direction, "partner": msg.partner_id,
           "document_type": msg.document_type, "reference": msg.nsw_reference, "status": msg.status,
           "conversation_id": msg.conversation_id, "ref_to_message_id": msg.ref_to_message_id,
           "attempts": msg.attempts, "created_at": _iso(msg.created_at), "updated_at": _iso(msg.updated_at),
           "last_error": msg.last_error,
           "receipt": {"message_id": receipt.receipt_message_id, "time": _iso(receipt.time)} if receipt else None}
    if with_events:
        out["events"] = [{"time": _iso(e.time), "step": e.step, "outcome": e.outcome, "detail": e.detail}
                         for e in msg.events]
    return out


class NswApiResource(resource.Resource):
    isLeaf = True

    def __init__(self, *, submit: SubmitFn, find: FindFn, inbox: InboxView, config: NswApiConfig,
                 rejections: Mapping[type[BaseException], int] | Iterable[type[BaseException]] = ()):
        """``rejections``: exception classes the submit callable raises for a document the NSW must
        fix (e.g. SubmissionRejected: 400, DocumentInvalid/MappingError: 422), answered with their message."""
        super().__init__()
        self.submit, self.find, self.inbox, self.config = submit, find, inbox, config
        statuses = dict(rejections) if isinstance(rejections, Mapping) else {cls: 400 for cls in rejections}
        self.statuses = {ApiRejected: 400, **statuses}
        self.rejections = tuple(self.statuses)
        self._openapi = OPENAPI.read_bytes()

    # -- plumbing --------------------------------------------------------------------
    def _authorized(self, request) -> bool:
        return bearer_ok(self.config.tokens, request.getHeader(b"authorization"))

    @staticmethod
    def _json(request, status: int, body: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body, indent=2).encode("utf-8") + b"\n"

    def _error(self, request, status: int, message: str) -> bytes:
        return self._json(request, status, {"error": message})

    def _defer(self, request, work: Callable[[], tuple[int, Any, dict]]):
        """Run ``work`` in a thread; it returns (status, body, headers). Body dict -> JSON, bytes as-is."""
        def done(result):
            status, body, headers = result
            if request._disconnected:
                return
            for name, value in headers.items():
                request.setHeader(name.encode(), value.encode("latin-1", "replace"))
            payload = body if isinstance(body, bytes) else self._json(request, status, body)
            request.setResponseCode(status)
            request.write(payload)
            request.finish()

        def failed(failure):
            matched = failure.check(*self.rejections)
            if matched:
                status = getattr(failure.value, "status", None) or next(
                    code for cls, code in self.statuses.items() if isinstance(failure.value, cls))
                return done((status, {"error": str(failure.value)}, {}))
            if failure.check(InboxNotFound):
                return done((404, {"error": f"no inbox document {failure.value.args[0]!r}"}, {}))
            log.failure("NSW API request failed", failure)
            return done((500, {"error": "internal error; see the gateway log"}, {}))

        threads.deferToThread(work).addCallbacks(done, failed)
        return server.NOT_DONE_YET

    def _route(self, request) -> list[str]:
        path = request.path.decode("latin-1").rstrip("/")
        return [unquote(p) for p in path.split("/") if p]

    @staticmethod
    def _arg(request, name: str) -> str | None:
        values = request.args.get(name.encode())
        return values[0].decode("utf-8") if values else None

    # -- GET ---------------------------------------------------------------------------
    def render_GET(self, request):
        parts = self._route(request)
        if parts == ["openapi.json"]:
            request.setHeader(b"content-type", b"application/json")
            return self._openapi
        if parts == ["health"]:
            request.setHeader(b"content-type", b"text/plain")
            return b"ok\n"
        if not self._authorized(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="swgw-nsw-api"')
            return self._error(request, 401, "missing or wrong bearer token")
        if parts[:2] != ["api", "v1"]:
            return self._error(request, 404, "not found; see /openapi.json")
        rest = parts[2:]
        if rest == ["messages"]:
            reference = self._arg(request, "reference")
            if not reference:
                return self._error(request, 400, "give ?reference=<your reference> or use /messages/{message_id}")
            return self._defer(request, lambda: (200, {"messages": [message_json(m) for m in
                                                                    self.find(None, reference)]}, {}))
        if len(rest) == 2 and rest[0] == "messages":
            def one():
                found = self.find(rest[1], None)
                if not found:
                    return 404, {"error": f"no message {rest[1]!r}"}, {}
                return 200, message_json(found[0]), {}
            return self._defer(request, one)
        if rest == ["inbox"]:
            partner, doc_type = self._arg(request, "partner"), self._arg(request, "type")
            try:
                limit = int(self._arg(request, "limit") or 100)
            except ValueError:
                return self._error(request, 400, "limit must be an integer")
            return self._defer(request, lambda: (200, {"documents": [
                {"id": e.id, **e.meta} for e in self.inbox.list(partner, doc_type, limit)]}, {}))
        if len(rest) == 2 and rest[0] == "inbox":
            def fetch():
                meta, data = self.inbox.fetch(rest[1])
                headers = {"content-type": meta.get("mime_type") or "application/xml",
                           "x-swgw-partner": meta.get("partner") or "",
                           "x-swgw-message-id": meta.get("message_id") or "",
                           "x-swgw-document-type": meta.get("document_type") or "",
                           "x-swgw-reference": meta.get("reference") or ""}
                if meta.get("signature"):
                    headers["x-swgw-signature"] = str(meta["signature"])
                return 200, data, headers
            return self._defer(request, fetch)
        return self._error(request, 404, "not found; see /openapi.json")

    # -- POST --------------------------------------------------------------------------
    def render_POST(self, request):
        if not self._authorized(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="swgw-nsw-api"')
            return self._error(request, 401, "missing or wrong bearer token")
        parts = self._route(request)
        if parts[:2] != ["api", "v1"]:
            return self._error(request, 404, "not found; see /openapi.json")
        rest = parts[2:]
        if rest == ["documents"]:
            partner, doc_type = self._arg(request, "partner"), self._arg(request, "type")
            reference = self._arg(request, "reference")
            missing = [n for n, v in (("partner", partner), ("type", doc_type)) if not v]
            if missing:
                return self._error(request, 400, f"missing query parameter(s): {', '.join(missing)}")
            request.content.seek(0, 2)
            size = request.content.tell()
            if size > self.config.max_document_bytes:
                return self._error(request, 413, f"document of {size} bytes exceeds "
                                                 f"{self.config.max_document_bytes} bytes")
            if size == 0:
                return self._error(request, 400, "empty body; POST the document itself")
            content = request.content

            def submit():
                content.seek(0)
                message_id = self.submit(partner, doc_type, content.read(), reference)
                return 202, {"message_id": message_id, "status": "queued", "partner": partner,
                             "document_type": doc_type, "reference": reference,
                             "status_url": f"/api/v1/messages/{message_id}"}, {}
            return self._defer(request, submit)
        if len(rest) == 3 and rest[0] == "inbox" and rest[2] == "ack":
            def ack():
                first = self.inbox.acknowledge(rest[1])
                return 200, {"id": rest[1], "acknowledged": True, "already": not first}, {}
            return self._defer(request, ack)
        return self._error(request, 404, "not found; see /openapi.json")


def make_nsw_api_site(*, submit: SubmitFn, find: FindFn, inbox_dir: Path, config: NswApiConfig,
                      rejections: Mapping[type[BaseException], int] | Iterable[type[BaseException]] = ()
                      ) -> server.Site:
    """The Site to listen with on the API port (TCP or SSL endpoint chosen by the daemon).

    Its requests refuse a body before it is spooled: without a valid bearer token (when tokens
    are configured) with 401 as soon as the headers are in, and over ``max_document_bytes``
    (the body is the document itself, no wrapping) with 413."""
    res = NswApiResource(submit=submit, find=find, inbox=InboxView(inbox_dir), config=config,
                         rejections=rejections)
    site = server.Site(res)

    class Request(_ApiRequest):
        pass

    Request.max_bytes = config.max_document_bytes
    Request.tokens = tuple(config.tokens)
    site.requestFactory = Request
    site.displayTracebacks = False
    return site


class _ApiRequest(LimitedRequest):
    """Refuses an unauthenticated body-carrying request (anything but GET/HEAD, whose
    public routes /openapi.json and /health stay open) from its headers, before reading it."""
    what = "document"
    tokens: tuple[str, ...] = ()

    def early_refusal(self, length):
        if self.pending_method() in (b"GET", b"HEAD"):
            return None          # no body to spool; render_GET checks the token per route
        if bearer_ok(self.tokens, self.requestHeaders.getRawHeaders(b"authorization", [None])[0]):
            return None
        return 401, "missing or wrong bearer token", {b"www-authenticate": b'Bearer realm="swgw-nsw-api"'}

    def refusal_body(self, code, text):
        return b"application/json", json.dumps({"error": text}, indent=2).encode("utf-8") + b"\n"
