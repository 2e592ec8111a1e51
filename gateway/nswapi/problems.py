"""RFC 9457 problem documents: the one shape of every error the NSW HTTP API answers.

An NSW developer's client should need one error path: whatever went wrong (a token, a path,
a parameter, the body's type or size, the document itself), the answer is
``application/problem+json`` with ``type`` (stable, to switch on), ``title`` (per type),
``status`` (the HTTP status, repeated) and ``detail`` (this occurrence: what to fix).
The catalogue below is the list openapi.json documents.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:swgw:problem:"

# slug -> (status, title). The title is the same for every occurrence of a type (RFC 9457 §3.1.3).
CATALOGUE: dict[str, tuple[int, str]] = {
    "invalid-parameter": (400, "Invalid request parameter"),
    "invalid-request": (400, "Invalid request"),
    "submission-rejected": (400, "Submission rejected"),
    "unauthorized": (401, "Authentication required"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "request-timeout": (408, "Request too slow"),
    "document-too-large": (413, "Document too large"),
    "unsupported-media-type": (415, "Unsupported media type"),
    "document-unprocessable": (422, "Document cannot be processed"),
    "internal-error": (500, "Internal error"),
}
# The type of a refusal that only carries a status (a pipeline rejection, the body limit).
BY_STATUS = {400: "submission-rejected", 401: "unauthorized", 404: "not-found", 405: "method-not-allowed",
             408: "request-timeout", 413: "document-too-large", 415: "unsupported-media-type", 422: "document-unprocessable",
             500: "internal-error"}


@dataclass
class ApiProblem(Exception):
    """Raised while handling a request to answer it with this problem (and ``headers``)."""

    kind: str
    detail: str
    headers: Mapping[bytes, bytes] = field(default_factory=dict)
    status: int | None = None          # only to override the catalogue's (a rejection's own status)

    def __post_init__(self) -> None:
        if self.kind not in CATALOGUE:
            raise ValueError(f"unknown problem type {self.kind!r}")
        if self.status is None:
            self.status = CATALOGUE[self.kind][0]
        super().__init__(self.detail)

    def document(self) -> dict:
        return problem_document(self.kind, self.detail, self.status)


def problem_document(kind: str, detail: str, status: int | None = None) -> dict:
    """The JSON object of one problem; ``status`` defaults to the catalogue's for ``kind``."""
    default_status, title = CATALOGUE[kind]
    return {"type": TYPE_PREFIX + kind, "title": title, "status": status or default_status, "detail": detail}


def problem_for_status(status: int, detail: str) -> ApiProblem:
    """A problem for a refusal known only by its status (e.g. from an exception's ``status``)."""
    kind = BY_STATUS.get(status) or ("invalid-request" if 400 <= status < 500 else "internal-error")
    return ApiProblem(kind, detail, status=status)


def encode(document: dict) -> bytes:
    return json.dumps(document, indent=2).encode("utf-8") + b"\n"
