"""The NSW HTTP API: a second NSW connector beside the folders, on its own port.

Routes (all under ``/api/v1``; ``/openapi.json`` describes them):

* ``POST /documents?partner=&type=&reference=``  body = the canonical document -> 202 + MessageId
* ``GET  /messages/{message_id}`` and ``GET /messages?reference=`` -> status, receipt, events
* ``GET  /inbox``, ``GET /inbox/{id}``, ``POST /inbox/{id}/ack`` -> inbound documents

Authentication: ``Authorization: Bearer <token>`` against configured tokens (compared in
constant time), and/or mutual TLS, which is the listening endpoint's business (build it with
``gateway.transport.tls.server_options`` and a client CA). Blocking work (the outbound pipeline,
store queries, file reads) runs in Twisted's thread pool, never on the reactor.

Every error is an RFC 9457 problem document (``gateway.nswapi.problems``): the resource routes
every method itself, so no request reaches Twisted's HTML error pages, and every parameter is
checked as openapi.json declares it (``gateway.nswapi.params``) before any work starts.

The resource depends only on small callables, so the daemon wires it without this module
knowing about pipelines or stores.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import resource, server

from gateway.nswapi import params
from gateway.nswapi.inbox import InboxNotFound, InboxView
from gateway.nswapi.params import Integer, Text
from gateway.nswapi.problems import MEDIA_TYPE, ApiProblem, encode, problem_document, problem_for_status
from gateway.transport.limits import LimitedRequest

log = Logger()
OPENAPI = Path(__file__).resolve().parent / "openapi.json"
MAX_DOCUMENT = 50 * 1024 * 1024
_CHALLENGE = {b"www-authenticate": b'Bearer realm="swgw-nsw-api"'}
_UNAUTHORIZED = ("missing or wrong bearer token; send Authorization: Bearer <token> with a token "
                 "from the gateway's [nsw.api] token_file")


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


@dataclass(frozen=True)
class Route:
    """One path of openapi.json: its segments (None: a path parameter), and per method the
    handler name and the query parameters it takes."""

    segments: tuple[str | None, ...]
    methods: Mapping[bytes, tuple[str, tuple[params.Param, ...]]]
    path_params: tuple[Text, ...] = ()
    public: bool = False                   # no authentication (the OpenAPI document, the probe)
    allow: str = field(init=False, default="")

    def __post_init__(self) -> None:
        names = [m.decode() for m in self.methods]
        if "GET" in names:
            names.insert(names.index("GET") + 1, "HEAD")
        object.__setattr__(self, "allow", ", ".join(names))

    def match(self, parts: Sequence[str]) -> list[str] | None:
        """The path parameter values if ``parts`` is this route's path, else None."""
        if len(parts) != len(self.segments):
            return None
        values = []
        for want, got in zip(self.segments, parts):
            if want is None:
                values.append(got)
            elif want != got:
                return None
        return values


_PARTNER, _TYPE = Text("partner", 128), Text("type", 128)
_MESSAGE_ID, _INBOX_ID = Text("message_id", 255), Text("id", 255)
ROUTES = (
    Route(("openapi.json",), {b"GET": ("openapi", ())}, public=True),
    Route(("health",), {b"GET": ("health", ())}, public=True),
    Route(("api", "v1", "documents"), {b"POST": ("submit_document", (
        Text("partner", 128, required=True), Text("type", 128, required=True), Text("reference", 255)))}),
    Route(("api", "v1", "messages"), {b"GET": ("messages_by_reference", (Text("reference", 255, required=True),))}),
    Route(("api", "v1", "messages", None), {b"GET": ("message", ())}, (_MESSAGE_ID,)),
    Route(("api", "v1", "inbox"), {b"GET": ("list_inbox", (_PARTNER, _TYPE, Integer("limit", 1, 1000, 100)))}),
    Route(("api", "v1", "inbox", None), {b"GET": ("fetch_inbox", ())}, (_INBOX_ID,)),
    Route(("api", "v1", "inbox", None, "ack"), {b"POST": ("acknowledge", ())}, (_INBOX_ID,)),
)


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
        self._openapi_bytes = OPENAPI.read_bytes()

    # -- plumbing --------------------------------------------------------------------
    def _authorized(self, request) -> bool:
        return bearer_ok(self.config.tokens, request.getHeader(b"authorization"))

    @staticmethod
    def _json(request, status: int, body: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(body, indent=2).encode("utf-8") + b"\n"

    @staticmethod
    def _problem(request, problem: ApiProblem) -> bytes:
        request.setResponseCode(problem.status)
        for name, value in problem.headers.items():
            request.setHeader(name, value)
        request.setHeader(b"content-type", MEDIA_TYPE.encode())
        return encode(problem.document())

    def _rejection(self, exc: BaseException) -> ApiProblem:
        status = getattr(exc, "status", None) or next(
            code for cls, code in self.statuses.items() if isinstance(exc, cls))
        return problem_for_status(status, str(exc))

    def _defer(self, request, work: Callable[[], tuple[int, Any, dict]]):
        """Run ``work`` in a thread; it returns (status, body, headers) or raises ApiProblem.
        Body dict -> JSON, bytes as-is."""
        def done(result):
            if request._disconnected:
                return
            if isinstance(result, ApiProblem):
                payload = self._problem(request, result)
            else:
                status, body, headers = result
                for name, value in headers.items():
                    request.setHeader(name.encode(), value.encode("latin-1", "replace"))
                payload = body if isinstance(body, bytes) else self._json(request, status, body)
                request.setResponseCode(status)
            request.write(payload)
            request.finish()

        def failed(failure):
            if failure.check(ApiProblem):
                return done(failure.value)
            if failure.check(*self.rejections):
                return done(self._rejection(failure.value))
            if failure.check(InboxNotFound):
                return done(ApiProblem("not-found", f"no inbox document {failure.value.args[0]!r}; "
                                                    f"GET /api/v1/inbox lists them"))
            log.failure("NSW API request failed", failure)
            return done(ApiProblem("internal-error", "internal error; see the gateway log"))

        threads.deferToThread(work).addCallbacks(done, failed)
        return server.NOT_DONE_YET

    # -- routing ---------------------------------------------------------------------
    def render(self, request):
        """Every method of every path comes here (not to render_<METHOD>), so that an unknown
        path, a wrong method or a bad parameter is a problem document, never Twisted's HTML."""
        try:
            return self._dispatch(request)
        except ApiProblem as problem:
            return self._problem(request, problem)

    def _dispatch(self, request):
        try:
            parts = params.path_segments(request.path.split(b"?", 1)[0])
        except ApiProblem:
            if not self._authorized(request):
                raise ApiProblem("unauthorized", _UNAUTHORIZED, _CHALLENGE) from None
            raise
        route, values = next(((r, v) for r in ROUTES if (v := r.match(parts)) is not None), (None, None))
        if not (route and route.public) and not self._authorized(request):
            raise ApiProblem("unauthorized", _UNAUTHORIZED, _CHALLENGE)
        if route is None:
            raise ApiProblem("not-found", f"no such path {'/' + '/'.join(parts)!r}; see /openapi.json "
                                          f"for the API's paths")
        method = b"GET" if request.method == b"HEAD" else request.method
        if method not in route.methods:
            raise ApiProblem("method-not-allowed", f"{request.method.decode('latin-1')[:20]} is not allowed on "
                                                   f"this path; use {route.allow}",
                             {b"allow": route.allow.encode()})
        handler, query_params = route.methods[method]
        path_values = [p.parse("path", v) for p, v in zip(route.path_params, values)]
        query = {} if route.public else params.query(request.args, query_params)
        return getattr(self, "_" + handler)(request, query, *path_values)

    # -- operations --------------------------------------------------------------------
    def _openapi(self, request, query):
        request.setHeader(b"content-type", b"application/json")
        return self._openapi_bytes

    def _health(self, request, query):
        request.setHeader(b"content-type", b"text/plain")
        return b"ok\n"

    def _messages_by_reference(self, request, query):
        reference = query["reference"]
        return self._defer(request, lambda: (200, {"messages": [message_json(m) for m in
                                                                self.find(None, reference)]}, {}))

    def _message(self, request, query, message_id: str):
        def one():
            found = self.find(message_id, None)
            if not found:
                raise ApiProblem("not-found", f"no message {message_id!r}; use the message_id a submission "
                                              f"answered, or GET /api/v1/messages?reference=")
            return 200, message_json(found[0]), {}
        return self._defer(request, one)

    def _list_inbox(self, request, query):
        partner, doc_type, limit = query["partner"], query["type"], query["limit"]
        return self._defer(request, lambda: (200, {"documents": [
            {"id": e.id, **e.meta} for e in self.inbox.list(partner, doc_type, limit)]}, {}))

    def _fetch_inbox(self, request, query, entry_id: str):
        def fetch():
            meta, data = self.inbox.fetch(entry_id)
            headers = {"content-type": meta.get("mime_type") or "application/xml",
                       "x-swgw-partner": meta.get("partner") or "",
                       "x-swgw-message-id": meta.get("message_id") or "",
                       "x-swgw-document-type": meta.get("document_type") or "",
                       "x-swgw-reference": meta.get("reference") or ""}
            if meta.get("signature"):
                headers["x-swgw-signature"] = str(meta["signature"])
            return 200, data, headers
        return self._defer(request, fetch)

    def _acknowledge(self, request, query, entry_id: str):
        def ack():
            first = self.inbox.acknowledge(entry_id)
            return 200, {"id": entry_id, "acknowledged": True, "already": not first}, {}
        return self._defer(request, ack)

    def _submit_document(self, request, query):
        partner, doc_type, reference = query["partner"], query["type"], query["reference"]
        params.document_media_type(request.getHeader(b"content-type"))
        request.content.seek(0, 2)
        size = request.content.tell()
        if size > self.config.max_document_bytes:
            raise ApiProblem("document-too-large", f"document of {size} bytes exceeds this gateway's limit of "
                                                   f"{self.config.max_document_bytes} bytes")
        if size == 0:
            raise ApiProblem("invalid-request", "empty body; POST the document itself as the body")
        content = request.content

        def submit():
            content.seek(0)
            message_id = self.submit(partner, doc_type, content.read(), reference)
            return 202, {"message_id": message_id, "status": "queued", "partner": partner,
                         "document_type": doc_type, "reference": reference,
                         "status_url": f"/api/v1/messages/{message_id}"}, {}
        return self._defer(request, submit)


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

    def __init__(self, *args, **kwargs):
        # The body is a document, never a form: Twisted would otherwise parse a body sent as
        # application/x-www-form-urlencoded or multipart/form-data into request.args (in memory),
        # where it would pass for query parameters.
        kwargs.setdefault("parsePOSTFormSubmission", False)
        super().__init__(*args, **kwargs)

    def early_refusal(self, length):
        if self.pending_method() in (b"GET", b"HEAD"):
            return None          # no body to spool; the resource checks the token per route
        if bearer_ok(self.tokens, self.requestHeaders.getRawHeaders(b"authorization", [None])[0]):
            return None
        return 401, _UNAUTHORIZED, dict(_CHALLENGE)

    @classmethod
    def refusal_body(cls, code, text):
        return MEDIA_TYPE.encode(), encode(problem_for_status(code, text).document())

    def processingFailed(self, reason):
        """An exception out of ``render`` (a bug): a 500 problem rather than Twisted's HTML page."""
        log.failure("NSW API request failed", reason)
        if self.finished or self._disconnected or self.startedWriting:
            return reason
        body = encode(problem_document("internal-error", "internal error; see the gateway log"))
        self.setResponseCode(500)
        self.setHeader(b"content-type", MEDIA_TYPE.encode())
        self.setHeader(b"content-length", b"%d" % len(body))
        self.write(body)
        self.finish()
        return reason
