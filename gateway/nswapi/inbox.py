"""The NSW inbox folder as an API: list, fetch and acknowledge inbound documents.

Works on the folder written by ``FolderConnector.deliver`` (``<name>.xml`` + ``<name>.xml.meta.json``,
the metadata being the commit marker), so both NSW connectors see the same inbox.
Acknowledging moves both files into ``acknowledged/`` (atomic renames): an acknowledged
document is no longer listed, and is kept for audit rather than deleted.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

META_SUFFIX = ".meta.json"
ACKNOWLEDGED = "acknowledged"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
# Ids are file names the connector made (partner + 16 hex digits + ".xml"); a longer one cannot
# exist, and its metadata file name would exceed the file system's NAME_MAX (ENAMETOOLONG).
MAX_ID = 200


class InboxNotFound(KeyError):
    pass


@dataclass(frozen=True)
class InboxEntry:
    id: str                 # the document file name, e.g. "sg-nsw-1a2b3c4d5e6f7a8b.xml"
    meta: dict


class InboxView:
    def __init__(self, inbox: Path):
        self.inbox = Path(inbox)

    def _meta_path(self, entry_id: str) -> Path:
        if len(entry_id) > MAX_ID or not _SAFE.match(entry_id) or entry_id.startswith("."):
            raise InboxNotFound(entry_id)
        return self.inbox / (entry_id + META_SUFFIX)

    def list(self, partner: str | None = None, document_type: str | None = None,
             limit: int = 100) -> list[InboxEntry]:
        """Unacknowledged documents, oldest first (by the received time in their metadata)."""
        entries = []
        for meta_path in self.inbox.glob("*" + META_SUFFIX):
            try:
                meta = json.loads(meta_path.read_text("utf-8"))
            except (OSError, ValueError):
                continue   # being replaced right now; it will be listed next time
            if partner and meta.get("partner") != partner:
                continue
            if document_type and meta.get("document_type") != document_type:
                continue
            entries.append(InboxEntry(meta_path.name[: -len(META_SUFFIX)], meta))
        entries.sort(key=lambda e: (e.meta.get("received_at") or "", e.id))
        return entries[:limit]

    def meta(self, entry_id: str) -> dict:
        try:
            return json.loads(self._meta_path(entry_id).read_text("utf-8"))
        except FileNotFoundError:
            raise InboxNotFound(entry_id) from None

    def fetch(self, entry_id: str) -> tuple[dict, bytes]:
        meta = self.meta(entry_id)
        try:
            return meta, (self.inbox / entry_id).read_bytes()
        except FileNotFoundError:
            raise InboxNotFound(entry_id) from None

    def acknowledge(self, entry_id: str) -> bool:
        """Move the document out of the inbox; False if it was already acknowledged."""
        meta_path = self._meta_path(entry_id)
        target = self.inbox / ACKNOWLEDGED
        if not meta_path.exists():
            if (target / meta_path.name).exists():
                return False
            raise InboxNotFound(entry_id)
        target.mkdir(exist_ok=True)
        # Metadata first: once it is gone the entry is no longer listed (it is the commit marker).
        os.replace(meta_path, target / meta_path.name)
        doc = self.inbox / entry_id
        if doc.exists():
            os.replace(doc, target / entry_id)
        return True
