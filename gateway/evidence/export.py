"""`swgw evidence export`: one message's evidence as a self-contained zip for a third party.

The bundle holds the exact stored bytes (message as on the wire, receipt), the signer
certificates taken from those bytes, the chain entries from the message to the head, any
time-stamp tokens over them, and a README with the commands that check it all without
this gateway. Derived files (SOAP part, canonical SignedInfo, decoded SignatureValue,
attachment plaintext) are conveniences: the README says how each is recomputed or why
it is self-proving, so the bundle never asks to be trusted.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway import as4
from gateway.evidence.canonical import format_time
from gateway.evidence.certs import NS_DS, parse_soap, signature_element, signer_certificate
from gateway.evidence.chain import MESSAGE_KINDS, RECEIPT_RECEIVED, TIMESTAMP, entry_data, entry_json
from gateway.evidence.errors import EvidenceError
from gateway.evidence.readme import BundleFacts, SignedPart, render_readme
from gateway.store.models import EvidenceEntry, Message
from gateway.store.store import MessageStore

CHAIN_FORMAT = "swgw-evidence-chain/1"


@dataclass
class ExportResult:
    path: Path
    files: list[str] = field(default_factory=list)


def _pick_message(store: MessageStore, message_id: str, partner: str | None, direction: str | None) -> Message:
    with store.sessions() as s:
        q = select(Message).options(selectinload(Message.payloads), selectinload(Message.receipts)).where(
            Message.message_id == message_id)
        rows = [m for m in s.scalars(q) if (partner is None or m.partner_id == partner)
                and (direction is None or m.direction == direction)]
    if not rows:
        raise EvidenceError(f"no message with id {message_id} in this gateway's store")
    if len(rows) > 1:
        options = ", ".join(f"--direction {m.direction} --partner {m.partner_id}" for m in rows)
        raise EvidenceError(f"message id {message_id} names {len(rows)} messages; choose one with {options}")
    return rows[0]


def _blob(store: MessageStore, digest: str, what: str) -> bytes:
    try:
        return store.blobs.get(digest)
    except FileNotFoundError:
        raise EvidenceError(f"the {what} ({digest}) is no longer stored (purged or lost); "
                            "`swgw evidence verify` tells which") from None
    except OSError as exc:
        raise EvidenceError(f"the {what} cannot be exported: {exc}") from None


def _signed_part(prefix: str, content_type: str, raw: bytes, files: dict[str, bytes]) -> tuple[SignedPart, etree._Element]:
    """Files for one signed SOAP message (raw bytes, root part, SignedInfo c14n, SignatureValue)."""
    soap, mime_parts = as4.decode_message(content_type, raw)
    envelope = parse_soap(soap)
    files[f"{prefix}/raw.bin"] = raw
    files[f"{prefix}/content-type.txt"] = content_type.encode("utf-8") + b"\n"
    files[f"{prefix}/soap.xml"] = soap
    part = SignedPart(prefix=prefix, digest=hashlib.sha256(raw).hexdigest(), content_type=content_type)
    sig = signature_element(envelope)
    if sig is not None:
        signed_info = sig.find(f"{{{NS_DS}}}SignedInfo")
        files[f"{prefix}/signedinfo.c14n"] = etree.tostring(signed_info, method="c14n", exclusive=True)
        files[f"{prefix}/signature.bin"] = base64.b64decode("".join(sig.findtext(f"{{{NS_DS}}}SignatureValue").split()))
        part.signature_method = signed_info.find(f"{{{NS_DS}}}SignatureMethod").get("Algorithm")
        part.references = [(r.get("URI"), r.findtext(f"{{{NS_DS}}}DigestValue").strip())
                           for r in signed_info.iterfind(f"{{{NS_DS}}}Reference")]
    cert = signer_certificate(envelope)
    if cert is not None:
        part.signer = cert
        part.signer_file = f"certs/{prefix}-signer.pem"
        files[part.signer_file] = cert.public_bytes(Encoding.PEM)
    part.attachments = len(mime_parts)
    return part, envelope


def _attachment_name(content_id: str) -> str:
    return "attachments/" + re.sub(r"[^A-Za-z0-9._@-]", "_", content_id) + ".bin"


def _reproduce_attachments(store: MessageStore, msg: Message, part: SignedPart, envelope, raw: bytes,
                           decrypt_keys, files: dict[str, bytes]) -> None:
    """Put the signed plaintext of each attachment in the bundle, when we can show it is the signed one.

    On the wire attachments are encrypted for the recipient; the signature covers the
    plaintext (gzip'ed when the PMode compresses). We rebuild it from the stored payload
    (gzip with mtime 0 is reproducible) or, for messages we received, decrypt it with our
    key for whichever suite it came under (``decrypt_keys``: (private key, SecurityPolicy)
    pairs), and include it only if its digest equals the signed DigestValue.
    """
    from crypto import Part, decrypt_parts
    from crypto.wssec_swa import attachment_content_octets
    wanted = {uri[4:]: value for uri, value in part.references if uri and uri.startswith("cid:")}
    candidates: dict[str, list[Part]] = {}
    for p in msg.payloads:
        try:
            data = store.blobs.get(p.digest)
        except OSError:
            continue
        candidates.setdefault(p.content_id, []).extend(
            [Part(p.content_id, p.mime_type, data), Part(p.content_id, "application/gzip", as4.gzip_compress(data))])
        # messages sent before ISA-L did the compression: zlib's level 6
        candidates[p.content_id].append(Part(p.content_id, "application/gzip",
                                             gzip.compress(data, compresslevel=6, mtime=0)))
    for decrypt_key, policy in (decrypt_keys if msg.direction == "in" else ()):
        try:
            _soap, mime_parts = as4.decode_message(msg.content_type, raw)
            plain = decrypt_parts(envelope, [Part(m.content_id, m.content_type, m.data) for m in mime_parts],
                                  decrypt_key, policy)
        except Exception:  # noqa: BLE001 (best effort: the bundle says what could not be shown)
            continue
        for p in plain:
            candidates.setdefault(p.content_id, []).append(p)
        break
    for cid, digest_value in wanted.items():
        for cand in candidates.get(cid, []):
            try:
                octets = attachment_content_octets(cand)
            except Exception:  # noqa: BLE001 (e.g. not well-formed XML under an XML type)
                continue
            if base64.b64encode(hashlib.sha256(octets).digest()).decode() == digest_value:
                name = _attachment_name(cid)
                files[name] = cand.data
                part.attachment_files[cid] = (name, cand.mime_type)
                break
        else:
            part.attachment_files[cid] = (None, None)


def _pem_certs(paths: Sequence[Path]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for path in paths:
        for cert in x509.load_pem_x509_certificates(Path(path).read_bytes()):
            if cert not in out:
                out.append(cert)
    return out


def export_bundle(store: MessageStore, message_id: str, out: Path, *, partner: str | None = None,
                  direction: str | None = None, ca_certs: Sequence[Path] = (), tsa_certs: Sequence[Path] = (),
                  decrypt_keys: Sequence[tuple[object, object]] = (), exporter: str = "swgw") -> ExportResult:
    msg = _pick_message(store, message_id, partner, direction)
    with store.sessions() as s:
        own = list(s.scalars(select(EvidenceEntry).where(
            EvidenceEntry.message_id == msg.message_id, EvidenceEntry.partner_id == msg.partner_id,
            EvidenceEntry.direction == msg.direction,
            EvidenceEntry.kind.in_((*MESSAGE_KINDS, RECEIPT_RECEIVED))).order_by(EvidenceEntry.seq)))
        if not own:
            raise EvidenceError(f"message {message_id} has no evidence entries (stored before the evidence log?)")
        chain = list(s.scalars(select(EvidenceEntry).where(EvidenceEntry.seq >= own[0].seq)
                               .order_by(EvidenceEntry.seq)))
    files: dict[str, bytes] = {}
    raw = _blob(store, msg.raw_digest, "raw message")
    message_part, envelope = _signed_part("message", msg.content_type, raw, files)
    _reproduce_attachments(store, msg, message_part, envelope, raw, decrypt_keys, files)
    receipt_parts = []
    for i, rec in enumerate(msg.receipts):
        prefix = "receipt" if i == 0 else f"receipt-{i + 1}"
        rpart, _ = _signed_part(prefix, rec.content_type, _blob(store, rec.digest, "receipt"), files)
        receipt_parts.append(rpart)
    ca_files = []
    for i, cert in enumerate(_pem_certs(ca_certs), 1):
        ca_files.append(f"certs/ca-{i}.pem")
        files[ca_files[-1]] = cert.public_bytes(Encoding.PEM)
    tsa_files = []
    for i, cert in enumerate(_pem_certs(tsa_certs), 1):
        tsa_files.append(f"certs/tsa-ca-{i}.pem")
        files[tsa_files[-1]] = cert.public_bytes(Encoding.PEM)
    stamps = []
    for e in chain:
        if e.kind == TIMESTAMP:
            data = entry_data(e)
            try:
                token = store.blobs.get(data["token_digest"])
            except (OSError, KeyError):
                continue
            name = f"timestamps/seq-{e.seq}.tst"
            files[name] = token
            stamps.append((name, data["timestamped_seq"], data["timestamped_hash"], data.get("gen_time")))
    files["chain.json"] = json.dumps({
        "format": CHAIN_FORMAT,
        "canonicalization": "sha256 of JSON(entry without entry_hash; keys sorted; separators ',' ':'; ASCII)",
        "message_entries": [e.seq for e in own],
        "head": {"seq": chain[-1].seq, "entry_hash": chain[-1].entry_hash},
        "entries": [entry_json(e) for e in chain]}, indent=2).encode("utf-8") + b"\n"
    facts = BundleFacts(message_id=msg.message_id, direction=msg.direction, partner_id=msg.partner_id,
                        status=msg.status, exporter=exporter, exported_at=format_time(dt.datetime.now(dt.timezone.utc)),
                        message=message_part, receipts=receipt_parts, own_entries=[entry_json(e) for e in own],
                        first_seq=chain[0].seq, head_seq=chain[-1].seq, head_hash=chain[-1].entry_hash,
                        ca_files=ca_files, tsa_files=tsa_files, timestamps=stamps)
    files["README.txt"] = render_readme(facts).encode("utf-8")
    files["manifest.json"] = json.dumps({
        "message_id": msg.message_id, "direction": msg.direction, "partner_id": msg.partner_id,
        "status": msg.status, "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}},
        indent=2).encode("utf-8") + b"\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, out)
    return ExportResult(out, sorted(files))
