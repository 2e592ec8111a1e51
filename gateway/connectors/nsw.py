"""The seam between the AS4 pipelines and the national single window.

The pipelines hand received documents to the NSW and tell it the outcome of what it sent
through this interface only, so a connector is any object with these two methods: the
folder connector (``folder.py``) is one; a queue or an HTTP push to the NSW would be others.
(The NSW HTTP API, ``gateway/nswapi``, takes submissions and serves the folder connector's
inbox and the store's outcomes, so it needs no connector of its own.)

Both calls must be idempotent: ``deliver`` is repeated for a message a crash interrupted
between its commit and its hand-off (identified by ``message_id``), ``report`` may be
repeated with the same outcome.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

from crypto.content import Octets


class NswConnector(Protocol):
    def deliver(self, *, partner_id: str, sender_party: str, message_id: str, reference: str | None,
                document_type: str | None, received_at: str, document: Octets, mime_type: str,
                conversation_id: str | None, ref_to_message_id: str | None,
                extra: Mapping[str, Any] | None = None) -> Any:
        """Hand one received document to the NSW, durably; returns what names it (its file)."""

    def report(self, *, message_id: str, reference: str | None, partner_id: str, status: str,
               detail: str | None, time: str, error_code: str | None = None) -> None:
        """Tell the NSW the outcome of a message it submitted (delivered, failed, rejected)."""
