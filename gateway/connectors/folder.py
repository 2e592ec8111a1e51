"""NSW connector over folders: the NSW drops documents in an outbox, reads them from an inbox.

Protocol with the NSW (all file writes are write-to-temp-then-rename, so a reader never sees
half a file):

* Outbox: the NSW writes ``NAME.xml`` (any name) and then ``NAME.xml.meta.json`` with
  ``{"partner": ..., "document_type": ..., "reference": ...}``. The metadata file is the commit
  marker: the gateway only looks at documents whose metadata exists. It claims a document by
  renaming its metadata into ``.processing/`` (atomic; one claimer wins), and archives it to
  ``sent/`` or ``rejected/`` (with ``NAME.error.txt`` saying why) when done.
* Inbox: the gateway writes ``<id>.xml`` and then ``<id>.xml.meta.json`` (sender, message id,
  reference, received time). Names derive from partner and MessageId, so a redelivery after a
  crash overwrites the same file instead of creating a second copy.
* Reports: ``reports/<message-id>.json`` tells the outcome of each outbound message.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gateway.config import FolderConnectorConfig

META_SUFFIX = ".meta.json"
PROCESSING, SENT, REJECTED = ".processing", "sent", "rejected"


def atomic_write(path: Path, data: bytes) -> None:
    """Write, fsync and rename: the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique per writer thread
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)   # a full disk must not leave half-written files behind
        raise


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox document, with the MessageId fixed at claim time (crash-safe resubmit)."""
    name: str
    document: bytes
    partner: str
    document_type: str
    reference: str | None
    message_id_file: Path


class OutboxError(ValueError):
    pass


class FolderConnector:
    def __init__(self, config: FolderConnectorConfig):
        self.config = config
        for folder in (config.outbox, config.outbox / PROCESSING, config.outbox / SENT,
                       config.outbox / REJECTED, config.inbox, config.reports):
            folder.mkdir(parents=True, exist_ok=True)

    # -- outbox ------------------------------------------------------------------
    def claim_new(self) -> list[str]:
        """Claim every committed document in the outbox; return their names."""
        names = []
        for meta in sorted(self.config.outbox.glob("*" + META_SUFFIX)):
            name = meta.name[: -len(META_SUFFIX)]
            # A MessageId file without a claimed metadata file is left from an archive that a
            # crash interrupted; this is a new document under a reused name: it gets a new id.
            (self.config.outbox / PROCESSING / (name + ".msgid")).unlink(missing_ok=True)
            try:
                os.rename(meta, self.config.outbox / PROCESSING / meta.name)
            except FileNotFoundError:
                continue  # another node claimed it first
            names.append(name)
        return names

    def claimed(self) -> list[str]:
        """Documents claimed but not archived (e.g. after a crash): to be resumed."""
        return sorted(m.name[: -len(META_SUFFIX)]
                      for m in (self.config.outbox / PROCESSING).glob("*" + META_SUFFIX))

    def read_claimed(self, name: str) -> OutboxItem:
        processing = self.config.outbox / PROCESSING
        try:
            meta = json.loads((processing / (name + META_SUFFIX)).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise OutboxError(f"metadata file {name}{META_SUFFIX} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise OutboxError(f"metadata file {name}{META_SUFFIX} must hold a JSON object")
        missing = [k for k in ("partner", "document_type") if not isinstance(meta.get(k), str)]
        if missing:
            raise OutboxError(f"metadata file {name}{META_SUFFIX} lacks {', '.join(missing)} "
                              f"(expected {{\"partner\": ..., \"document_type\": ..., \"reference\": ...}})")
        doc_path = self.config.outbox / name
        try:
            document = doc_path.read_bytes()
        except FileNotFoundError:
            raise OutboxError(f"document {name} named by its metadata file is not in the outbox") from None
        reference = meta.get("reference")
        return OutboxItem(name=name, document=document, partner=meta["partner"],
                          document_type=meta["document_type"],
                          reference=str(reference) if reference is not None else None,
                          message_id_file=processing / (name + ".msgid"))

    def message_id_for(self, item: OutboxItem, new_id) -> str:
        """The MessageId for this claim: fixed on first use so a resumed claim is not sent twice."""
        try:
            return item.message_id_file.read_text("utf-8").strip()
        except FileNotFoundError:
            message_id = new_id()
            atomic_write(item.message_id_file, message_id.encode())
            return message_id

    def archive(self, name: str, *, error: str | None = None) -> None:
        target = self.config.outbox / (REJECTED if error else SENT)
        processing = self.config.outbox / PROCESSING
        if error:
            atomic_write(target / (name + ".error.txt"), error.encode("utf-8") + b"\n")
        for src, dst in ((self.config.outbox / name, target / name),
                         (processing / (name + META_SUFFIX), target / (name + META_SUFFIX))):
            if src.exists():
                os.replace(src, dst)
        (processing / (name + ".msgid")).unlink(missing_ok=True)

    # -- inbox -------------------------------------------------------------------
    @staticmethod
    def inbox_name(partner_id: str, message_id: str) -> str:
        digest = hashlib.sha256(f"{partner_id}\0{message_id}".encode()).hexdigest()[:16]
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", partner_id)[:40]
        return f"{safe}-{digest}"

    def deliver(self, *, partner_id: str, sender_party: str, message_id: str, reference: str | None,
                document_type: str | None, received_at: str, document: bytes, mime_type: str,
                conversation_id: str | None, ref_to_message_id: str | None,
                extra: Mapping[str, Any] | None = None) -> Path:
        """Write one inbound document and then its metadata (the NSW's commit marker).

        ``extra`` adds what the document stage found out (document signature verdict, the
        message a business response answers, AEO registry update) to the metadata."""
        name = self.inbox_name(partner_id, message_id)
        ext = ".xml" if "xml" in mime_type else ".bin"
        doc_path = self.config.inbox / (name + ext)
        atomic_write(doc_path, document)
        meta = {"partner": partner_id, "sender": sender_party, "message_id": message_id,
                "reference": reference, "document_type": document_type, "received_at": received_at,
                "mime_type": mime_type, "conversation_id": conversation_id,
                "ref_to_message_id": ref_to_message_id, "document": doc_path.name, **(extra or {})}
        atomic_write(self.config.inbox / (doc_path.name + META_SUFFIX),
                     json.dumps(meta, indent=2).encode("utf-8"))
        return doc_path

    # -- reports -----------------------------------------------------------------
    def report(self, *, message_id: str, reference: str | None, partner_id: str, status: str,
               detail: str | None, time: str, error_code: str | None = None) -> None:
        safe = re.sub(r"[^A-Za-z0-9._@-]", "_", message_id)
        report = {"message_id": message_id, "reference": reference, "partner": partner_id,
                  "status": status, "detail": detail, "time": time}
        if error_code is not None:
            report["error_code"] = error_code     # the ebMS code behind a failure, e.g. EBMS:0301
        atomic_write(self.config.reports / f"{safe}.json", json.dumps(report, indent=2).encode("utf-8"))
