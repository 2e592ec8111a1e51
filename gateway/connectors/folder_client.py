"""The NSW's side of the folder protocol (see ``folder.py``): drop a document, read outcomes.

The demo and the tests play the NSW with these functions, and an NSW written in Python
can use them as they are.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.connectors.folder import META_SUFFIX


def drop_document(outbox: Path, name: str, document: bytes, *, partner: str, document_type: str,
                  reference: str | None = None) -> None:
    """Write the document, then its metadata file: the metadata's rename commits the drop."""
    outbox.mkdir(parents=True, exist_ok=True)
    tmp = outbox / f".{name}.tmp"
    tmp.write_bytes(document)
    os.replace(tmp, outbox / name)
    meta = {"partner": partner, "document_type": document_type, "reference": reference}
    tmp = outbox / f".{name}{META_SUFFIX}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, outbox / f"{name}{META_SUFFIX}")


def reports(reports_dir: Path) -> list[dict]:
    """Every outcome report written so far."""
    found = []
    for path in sorted(reports_dir.glob("*.json")):
        try:
            found.append(json.loads(path.read_text("utf-8")))
        except ValueError:
            continue
    return found


def report_for(reports_dir: Path, reference: str) -> dict | None:
    return next((r for r in reports(reports_dir) if r.get("reference") == reference), None)


def inbox_entries(inbox: Path) -> list[dict]:
    """Metadata of every document delivered to the inbox (the metadata file commits the delivery)."""
    return [json.loads(p.read_text("utf-8")) for p in sorted(inbox.glob("*" + META_SUFFIX))]


def inbox_entry(inbox: Path, message_id: str) -> dict | None:
    return next((e for e in inbox_entries(inbox) if e.get("message_id") == message_id), None)
