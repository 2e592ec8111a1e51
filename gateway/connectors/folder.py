"""NSW connector over folders: the NSW drops documents in an outbox, reads them from an inbox.

Protocol with the NSW (all file writes are write-to-temp-then-rename, so a reader never sees
half a file):

* Outbox: the NSW writes ``NAME.xml`` (any name) and then ``NAME.xml.meta.json`` with
  ``{"partner": ..., "document_type": ..., "reference": ...}``. The metadata file is the commit
  marker: the gateway only looks at documents whose metadata exists. It claims a document by
  renaming its metadata into ``.processing/`` (atomic; one claimer wins), and archives it to
  ``sent/`` or ``rejected/`` (with ``NAME.error.txt`` saying why) when done. The MessageId of
  a claim is derived from the claimed metadata file's identity (device, inode, mtime, size):
  a claim resumed after a crash gets the same one, a new document under a reused name a new
  one, and nothing is written to fix it.
* Inbox: the gateway writes ``<id>.xml`` and then ``<id>.xml.meta.json`` (sender, message id,
  reference, received time). Names derive from partner and MessageId, so a redelivery after a
  crash overwrites the same file instead of creating a second copy.
* Reports: ``reports/<message-id>.json`` tells the outcome of each outbound message.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import uuid
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from crypto import content
from crypto.content import FileContent, Octets
from gateway.config import FolderConnectorConfig

META_SUFFIX = ".meta.json"
_CLAIM_NAMESPACE = uuid.UUID("6c1f3b0e-8a4d-5f2e-9b7c-2d4e6f8a0b1c")   # swgw outbox claims
PROCESSING, SENT, REJECTED = ".processing", "sent", "rejected"
_OWN_FOLDERS = frozenset((PROCESSING, SENT, REJECTED))


def atomic_write(path: Path, data: Octets, *, link_stored: bool = False) -> None:
    """Write, fsync and rename: the file appears whole or not at all.

    ``link_stored``: when ``data`` is a whole stored file (a large blob), the new name is a
    read-only hard link to it rather than a copy (``crypto.content.link_read_only``)."""
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # unique per writer thread
    try:
        linked = link_stored and content.link_read_only(data, str(tmp))
        if not linked:
            with open(tmp, "wb") as fh:
                content.write_into(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if linked:
            # rename(2) does nothing when both names are links to one file (a redelivery whose
            # first inbox file is still there): the temporary name would stay behind.
            tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)   # a full disk must not leave half-written files behind
        raise


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox document, with the MessageId fixed at claim time (crash-safe resubmit)."""
    name: str
    document: Octets
    partner: str
    document_type: str
    reference: str | None
    claim_identity: str        # the claimed metadata file: device, inode, mtime, size


class OutboxError(ValueError):
    """An outbox entry the gateway will not send; the message says what is wrong and how to fix it."""


def _kind(mode: int) -> str | None:
    """What a non-regular directory entry is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def read_entry(path: Path, label: str) -> Octets:
    """The bytes of an outbox entry that must be a regular file the gateway can read (a large
    one as a ``FileContent`` over the opened file, streamed by the outbound steps: the
    protocol is that the NSW does not touch a document once its metadata file is written).

    Why not ``Path.read_bytes``: opening a FIFO blocks until a writer appears (the poller
    would hang on it for good), a symbolic link would let anyone who can write to the outbox
    send any file the gateway can read (its own keys), and a directory or an unreadable file
    raises an OSError that must not be mistaken for a store that is not writable. So the
    entry is opened without following links and without blocking, and checked to be a
    regular file on the open descriptor (no swap between check and read). OutboxError says
    what the entry is and what to do; FileNotFoundError is left to the caller.
    """
    fix = "the outbox takes regular files only: write the file itself (not a link to it) and drop it again"
    kind = _kind(os.lstat(path).st_mode)
    if kind is not None:
        raise OutboxError(f"{label} is {kind}; {fix}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise                    # gone since lstat: the caller says what that means
    except PermissionError:
        raise OutboxError(f"{label} cannot be read by the gateway (permission denied); give the gateway's user "
                          "read access (chmod or chown) and drop it again") from None
    except OSError as exc:       # ELOOP: replaced by a link since lstat; ENXIO: a socket; ...
        raise OutboxError(f"{label} cannot be opened ({exc.strerror}); {fix}") from None
    fh = os.fdopen(fd, "rb")
    try:
        st = os.fstat(fh.fileno())
        kind = _kind(st.st_mode)
        if kind is not None:
            raise OutboxError(f"{label} is {kind}; {fix}")
        try:
            if st.st_size > content.SPOOL_THRESHOLD:
                os.pread(fh.fileno(), 1, 0)       # readable at all (EISDIR, EIO): say so now
                large, fh = FileContent(fh, 0, st.st_size), None
                return large
            return fh.read()
        except OSError as exc:
            raise OutboxError(f"{label} cannot be read ({exc.strerror}); check the file and drop it again") from None
    finally:
        if fh is not None:
            fh.close()


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "null" if value is None else "a string"


def _move(src: Path, dst: Path) -> None:
    """Move an outbox entry into an archive folder, whatever it is (file, directory, link,
    FIFO). If an earlier entry of the same name is in the way and cannot be replaced (a
    directory over a file or the reverse), this one is kept beside it under a unique name:
    an archive collision must never leave the entry in the outbox to be claimed again."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if not _collision(exc):
            raise
        os.replace(src, dst.with_name(f"{dst.name}.{uuid.uuid4().hex[:8]}"))


def _collision(exc: OSError) -> bool:
    """A rename failed only because the target is an entry of the other kind (or a non-empty directory)."""
    return isinstance(exc, (IsADirectoryError, NotADirectoryError)) or exc.errno in (errno.ENOTEMPTY, errno.EEXIST)


class FolderConnector:
    def __init__(self, config: FolderConnectorConfig):
        self.config = config
        self._outbox_key = str(config.outbox.resolve())    # part of every claim's MessageId
        for folder in (config.outbox, config.outbox / PROCESSING, config.outbox / SENT,
                       config.outbox / REJECTED, config.inbox, config.reports):
            folder.mkdir(parents=True, exist_ok=True)

    # -- outbox ------------------------------------------------------------------
    def claim_new(self) -> list[str]:
        """Claim every committed document in the outbox; return their names."""
        names = []
        for meta in sorted(self.config.outbox.glob("*" + META_SUFFIX)):
            name = meta.name[: -len(META_SUFFIX)]
            try:
                os.rename(meta, self.config.outbox / PROCESSING / meta.name)
            except FileNotFoundError:
                continue  # another node claimed it first
            except OSError as exc:
                if not _collision(exc):
                    raise
                # A directory cannot replace the stale claim of the same name (or be replaced by
                # this entry): that claim is resumed and archived in this poll, this one in the next.
                continue
            names.append(name)
        return names

    def claimed(self) -> list[str]:
        """Documents claimed but not archived (e.g. after a crash): to be resumed."""
        return sorted(m.name[: -len(META_SUFFIX)]
                      for m in (self.config.outbox / PROCESSING).glob("*" + META_SUFFIX))

    def read_claimed(self, name: str) -> OutboxItem:
        processing = self.config.outbox / PROCESSING
        label = f"metadata file {name}{META_SUFFIX}"
        try:
            raw = read_entry(processing / (name + META_SUFFIX), label)
            claimed = os.stat(processing / (name + META_SUFFIX), follow_symlinks=False)
        except FileNotFoundError:
            raise OutboxError(f"{label} disappeared from {PROCESSING}/ after it was claimed") from None
        try:
            meta = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise OutboxError(f"{label} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise OutboxError(f"{label} must hold a JSON object")
        expected = '(expected {"partner": "...", "document_type": "...", "reference": "..."})'
        missing = [k for k in ("partner", "document_type") if k not in meta or meta[k] is None]
        if missing:
            raise OutboxError(f"{label} lacks {', '.join(missing)} {expected}")
        for key in ("partner", "document_type"):
            if not isinstance(meta[key], str):
                raise OutboxError(f"{label} lacks {key} as a JSON string: it is {_json_type(meta[key])} "
                                  f"({json.dumps(meta[key])[:200]}) {expected}")
        reference = meta.get("reference")
        if reference is not None and not isinstance(reference, str):
            # Never str() it: an object or array would be sent to the partner as Python's repr.
            raise OutboxError(f"{label}: reference must be a JSON string (or null), but it is "
                              f"{_json_type(reference)} ({json.dumps(reference)[:200]}); give your reference "
                              'as a string, e.g. "reference": "KE-123"')
        if name in _OWN_FOLDERS:
            raise OutboxError(f"metadata file {name}{META_SUFFIX} names {name}/, one of the gateway's own folders, as "
                              "its document; give the document another name")
        try:
            document = read_entry(self.config.outbox / name, f"document {name}")
        except FileNotFoundError:
            raise OutboxError(f"document {name} named by its metadata file is not in the outbox") from None
        return OutboxItem(name=name, document=document, partner=meta["partner"],
                          document_type=meta["document_type"], reference=reference,
                          claim_identity=f"{claimed.st_dev}:{claimed.st_ino}:{claimed.st_mtime_ns}:{claimed.st_size}")

    def message_id_for(self, item: OutboxItem, domain: str) -> str:
        """The MessageId of this claim, ``<uuid>@<domain>``: a name-based UUID (RFC 4122 v5) of
        the outbox, the document's name and the claimed metadata file's identity, so a claim
        resumed after a crash is queued under the same id (and de-duplicated by the store)
        without a file written and fsynced per document to remember it."""
        key = f"{self._outbox_key}\0{item.name}\0{item.claim_identity}"
        return f"{uuid.uuid5(_CLAIM_NAMESPACE, key)}@{domain}"

    def archive(self, name: str, *, error: str | None = None) -> None:
        target = self.config.outbox / (REJECTED if error else SENT)
        processing = self.config.outbox / PROCESSING
        if error:
            atomic_write(target / (name + ".error.txt"), error.encode("utf-8") + b"\n")
        entries = [(processing / (name + META_SUFFIX), target / (name + META_SUFFIX))]
        if name not in _OWN_FOLDERS:          # never archive sent/ or rejected/ into themselves
            entries.insert(0, (self.config.outbox / name, target / name))
        for src, dst in entries:
            if os.path.lexists(src):          # a dangling link is an entry too
                _move(src, dst)
        (processing / (name + ".msgid")).unlink(missing_ok=True)   # left by versions before 0.9

    # -- inbox -------------------------------------------------------------------
    @staticmethod
    def inbox_name(partner_id: str, message_id: str) -> str:
        digest = hashlib.sha256(f"{partner_id}\0{message_id}".encode()).hexdigest()[:16]
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", partner_id)[:40]
        return f"{safe}-{digest}"

    def deliver(self, *, partner_id: str, sender_party: str, message_id: str, reference: str | None,
                document_type: str | None, received_at: str, document: Octets, mime_type: str,
                conversation_id: str | None, ref_to_message_id: str | None,
                extra: Mapping[str, Any] | None = None) -> Path:
        """Write one inbound document and then its metadata (the NSW's commit marker).

        ``extra`` adds what the document stage found out (document signature verdict, the
        message a business response answers, AEO registry update) to the metadata."""
        name = self.inbox_name(partner_id, message_id)
        ext = ".xml" if "xml" in mime_type else ".bin"
        doc_path = self.config.inbox / (name + ext)
        atomic_write(doc_path, document, link_stored=True)   # a large document: written once, by the store
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
