"""What the NSW hands the outbound pipeline, and how the pipeline refuses it."""
from __future__ import annotations

from dataclasses import dataclass

from crypto.content import Octets


class SubmissionRejected(ValueError):
    """The NSW handed us something we cannot send; the message says what to fix."""

    status = 400          # the NSW HTTP API's answer


class DocumentNotValid(SubmissionRejected):
    """The canonical document fails its schema; the message names the element and line.
    Nothing is recorded: the NSW fixes the document and submits it again."""

    status = 422


class DocumentRejected(SubmissionRejected):
    """The document is valid but cannot be sent as the partner needs it (its mapping failed,
    e.g. an untranslatable code). Recorded as message ``message_id`` in state ``rejected``
    with the field named, so the NSW can read the outcome like any other."""

    status = 422

    def __init__(self, message: str, *, message_id: str, field: str | None = None):
        self.message_id, self.field = message_id, field
        super().__init__(message)


@dataclass(frozen=True)
class Submission:
    partner_id: str
    document_type: str
    document: Octets       # a large document stays in its outbox file (``crypto.content``)
    nsw_reference: str | None = None
    message_id: str | None = None          # fixed by the caller for crash-safe resubmission
    conversation_id: str | None = None
    ref_to_message_id: str | None = None
