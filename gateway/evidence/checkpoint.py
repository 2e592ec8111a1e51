"""Signed chain-head checkpoints, written outside the database.

The chain in ``evidence_log`` proves that nothing *inside* it was altered, but someone who
deletes the newest entries together with the rows they witness leaves a shorter chain that
is perfectly consistent. A checkpoint is what remembers how long the chain was: the head's
``seq`` and ``entry_hash`` (which, through ``prev_hash``, pins every entry before it), the
time, signed with the gateway's own signing key, in a file of its own under
``<state_dir>/evidence-checkpoints/`` beside the blob store, never in the database.

One immutable file per checkpoint (``0000000001.json``, ``0000000002.json``, ...), each
naming the SHA-256 of the one before it (``previous``), so the history is itself a chain:
altering or removing a checkpoint in the middle is noticed, and the files can be copied off
the machine as they appear (nothing is ever rewritten). A file is published atomically
(write a temporary file, fsync, hard-link to its final name, fsync the directory): a reader
never sees half a checkpoint, and two writers (two nodes, or the CLI beside the daemon)
cannot both take one number.

The file is canonical JSON (sorted keys, no spaces, ASCII) of the fields below plus
``signature``: the base64 signature over the canonical JSON of every other field, made
with the XML-DSig algorithm that fits the key (RSA PKCS#1 v1.5 SHA-256, Ed25519, or ECDSA
P-256 SHA-256 as r || s), ``signature_algorithm`` being that algorithm's URI and
``signer_cert_sha256`` the SHA-256 fingerprint of the signing certificate.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select

from crypto.algorithms import SignatureAlgorithm
from crypto.errors import AlgorithmNotAllowed
from crypto.wssec_primitives import sign as sign_bytes
from crypto.wssec_primitives import verify as verify_bytes
from gateway.evidence.canonical import canonical_json, format_time
from gateway.evidence.errors import EvidenceError
from gateway.store.models import EvidenceEntry
from gateway.store.store import MessageStore

FORMAT = "swgw-evidence-checkpoint/1"
DIRECTORY = "evidence-checkpoints"
INTERVAL, STOP, MANUAL = "interval", "stop", "manual"   # why a checkpoint was written
_NAME = re.compile(r"^(\d{10})\.json$")
_FIELDS = ("format", "number", "party_id", "seq", "entry_hash", "entry_time", "time", "reason", "previous",
           "signer_cert_sha256", "signature_algorithm")
MAX_ATTEMPTS = 20


class CheckpointError(EvidenceError):
    """A checkpoint cannot be read or must not be written; the message names file and fix."""


def checkpoint_dir(state_dir: Path) -> Path:
    """Where checkpoints live: the state directory, beside ``blobs/``, outside the database."""
    return Path(state_dir) / DIRECTORY


def certificate_sha256(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def signature_algorithm(key: object) -> SignatureAlgorithm:
    """The one signature algorithm a key (private or public) signs checkpoints with."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return SignatureAlgorithm.RSA_SHA256
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return SignatureAlgorithm.ED25519
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return SignatureAlgorithm.ECDSA_SHA256
    raise AlgorithmNotAllowed(f"a {type(key).__name__} cannot sign evidence checkpoints "
                              "(RSA, Ed25519 or EC P-256 keys can)")


@dataclass(frozen=True)
class Signer:
    """Our [security] signing key and certificate: what signs checkpoints."""
    party_id: str
    key: object
    certificate: x509.Certificate

    @classmethod
    def from_identity(cls, identity) -> "Signer":
        return cls(identity.party_id, identity.signing_key, identity.signing_cert)


def our_certificates(identity) -> tuple[x509.Certificate, ...]:
    """Every signing certificate the gateway holds (any of them may have signed a checkpoint)."""
    certs = [identity.signing_cert, *(s.signing_cert for s in identity.suites.values())]
    return tuple({certificate_sha256(c): c for c in certs}.values())


def certificates_from_config(config) -> tuple[x509.Certificate, ...]:
    """Our signing certificates read from gateway.toml's paths (no private key is needed to verify)."""
    from crypto.keys import load_certificate
    paths = [config.signing.cert_path, *(k.signing.cert_path for k in config.suite_keys)]
    certs = [load_certificate(p) for p in paths]
    return tuple({certificate_sha256(c): c for c in certs}.values())


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    raw: bytes              # the file's exact bytes (``previous`` of the next one is their SHA-256)
    number: int
    party_id: str
    seq: int
    entry_hash: str
    entry_time: str
    time: str
    reason: str
    previous: str | None
    signer_cert_sha256: str
    signature_algorithm: str
    signature: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def fields(self) -> dict:
        values = {name: getattr(self, name) for name in _FIELDS if name != "format"}
        return {"format": FORMAT, **values}

    def signed_bytes(self) -> bytes:
        return canonical_json(self.fields()).encode("ascii")

    def signature_problem(self, certificates: Iterable[x509.Certificate]) -> str | None:
        """Why the signature does not prove we wrote this file (None when it does)."""
        by_fp = {certificate_sha256(c): c for c in certificates}
        cert = by_fp.get(self.signer_cert_sha256)
        if cert is None:
            return (f"is signed by a certificate (SHA-256 {self.signer_cert_sha256[:16]}…) that is not one of "
                    "this gateway's signing certificates: forged, or written before a key rollover (then a "
                    "checkpoint signed with the new key, written by the daemon at its next start, supersedes it)")
        try:
            algorithm = SignatureAlgorithm(self.signature_algorithm)
            if signature_algorithm(cert.public_key()) is not algorithm:
                return f"names signature algorithm {self.signature_algorithm}, which our certificate does not sign with"
            ok = verify_bytes(algorithm, cert.public_key(), self.signature, self.signed_bytes())
        except (ValueError, AlgorithmNotAllowed) as exc:
            return f"signature cannot be checked ({exc})"
        if not ok:
            return ("signature does not verify with our signing certificate "
                    f"({cert.subject.rfc4514_string()}): the file was altered or forged")
        return None


def parse_checkpoint(path: Path, raw: bytes) -> Checkpoint:
    """A checkpoint file's content; CheckpointError naming what is wrong with it."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"is not a {FORMAT} file")
    missing = [k for k in (*_FIELDS, "signature") if k not in data]
    if missing:
        raise CheckpointError(f"lacks {', '.join(missing)}")
    try:
        signature = base64.b64decode(data["signature"], validate=True)
    except (binascii.Error, TypeError):
        raise CheckpointError("has a signature that is not base64") from None
    if not isinstance(data["number"], int) or not isinstance(data["seq"], int):
        raise CheckpointError("has a number or seq that is not an integer")
    match = _NAME.match(path.name)
    if match and int(match.group(1)) != data["number"]:
        raise CheckpointError(f"says it is checkpoint {data['number']}, but its file name says {int(match.group(1))}")
    return Checkpoint(path=path, raw=raw, signature=signature,
                      **{k: data[k] for k in _FIELDS if k != "format"})


def checkpoint_files(directory: Path) -> list[tuple[int, Path]]:
    """The checkpoint files by number (temporary files of an unfinished write are not listed)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def load_checkpoints(directory: Path) -> list[Checkpoint | tuple[Path, str]]:
    """Every checkpoint file by number: a Checkpoint, or (path, why it cannot be read)."""
    out: list[Checkpoint | tuple[Path, str]] = []
    for _number, path in checkpoint_files(directory):
        try:
            out.append(parse_checkpoint(path, path.read_bytes()))
        except (CheckpointError, OSError) as exc:
            out.append((path, str(exc)))
    return out


def _head(store: MessageStore) -> EvidenceEntry | None:
    with store.sessions() as s:
        return s.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq.desc()).limit(1)).first()


def _hash_at(store: MessageStore, seq: int) -> str | None:
    with store.sessions() as s:
        return s.scalar(select(EvidenceEntry.entry_hash).where(EvidenceEntry.seq == seq))


def _publish(directory: Path, name: str, data: bytes) -> bool:
    """Write ``data`` as ``directory/name`` durably and atomically; False if the name is taken."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, target)            # fails if another writer took the number: never overwrites
        except FileExistsError:
            return False
        except OSError:                     # a file system without hard links
            if target.exists():
                return False
            os.replace(tmp, target)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)                    # the new name itself is durable
        finally:
            os.close(fd)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _latest_usable(directory: Path, certificates: Iterable[x509.Certificate]) -> Checkpoint | None:
    """The newest checkpoint, or CheckpointError when it must not be chained onto."""
    files = checkpoint_files(directory)
    if not files:
        return None
    path = files[-1][1]
    try:
        latest = parse_checkpoint(path, path.read_bytes())
    except (CheckpointError, OSError) as exc:
        raise CheckpointError(f"the newest evidence checkpoint {path} {exc}; no checkpoint is written after it "
                              f"until this is resolved: run `swgw evidence verify`, and once the cause is "
                              f"understood move {path.name} out of {path.parent} to resume") from None
    problem = latest.signature_problem(certificates)
    if problem and latest.signer_cert_sha256 in {certificate_sha256(c) for c in certificates}:
        raise CheckpointError(f"the newest evidence checkpoint {path}: {problem}; no checkpoint is written "
                              f"after it until this is resolved: run `swgw evidence verify`, and once the cause "
                              f"is understood move {path.name} out of {path.parent} to resume")
    return latest


def write_checkpoint(store: MessageStore, directory: Path, signer: Signer,
                     certificates: Iterable[x509.Certificate], reason: str = MANUAL, *,
                     now: dt.datetime | None = None) -> Checkpoint | None:
    """Sign and publish a checkpoint of the current chain head (blocking).

    None when there is nothing new to vouch for: the chain is empty, or its head is the
    newest checkpoint's and that one is signed with our current certificate. Refused
    (CheckpointError) when the chain no longer holds the newest checkpoint's entry: a
    checkpoint over a truncated or rewritten chain would launder the damage.
    """
    certificates = tuple(certificates)
    cert_fp = certificate_sha256(signer.certificate)
    algorithm = signature_algorithm(signer.key)
    for _ in range(MAX_ATTEMPTS):
        latest = _latest_usable(directory, certificates)
        head = _head(store)
        if latest is not None:
            have = _hash_at(store, latest.seq)
            if have != latest.entry_hash:
                what = ("the chain ends before it" if have is None and (head is None or head.seq < latest.seq)
                        else "the entry there has another hash" if have else "that entry is missing")
                raise CheckpointError(
                    f"evidence checkpoint {latest.path} records the chain at seq {latest.seq} with hash "
                    f"{latest.entry_hash[:16]}…, but {what}: evidence entries were deleted or rewritten. No "
                    "checkpoint is written over a damaged chain: run `swgw evidence verify` for the details, "
                    "then restore the database from a backup, or, once the loss is understood and recorded, "
                    f"move {directory} aside to start a new checkpoint history")
            if head.seq == latest.seq and latest.signer_cert_sha256 == cert_fp:
                return None
        if head is None:
            return None
        when = now or dt.datetime.now(dt.timezone.utc)
        number = latest.number + 1 if latest else 1
        draft = Checkpoint(path=directory / f"{number:010d}.json", raw=b"", number=number,
                           party_id=signer.party_id, seq=head.seq, entry_hash=head.entry_hash,
                           entry_time=format_time(head.time), time=format_time(when), reason=reason,
                           previous=latest.digest if latest else None, signer_cert_sha256=cert_fp,
                           signature_algorithm=algorithm.value, signature=b"")
        signature = sign_bytes(algorithm, signer.key, draft.signed_bytes())
        raw = (canonical_json({**draft.fields(), "signature": base64.b64encode(signature).decode("ascii")})
               + "\n").encode("ascii")
        if _publish(directory, draft.path.name, raw):
            return parse_checkpoint(draft.path, raw)
    raise CheckpointError(f"could not publish an evidence checkpoint in {directory} after {MAX_ATTEMPTS} "
                          "attempts (another writer kept taking the next number)")
