"""``gateway.toml``: the gateway's own identity, listener, keys, store and NSW connector.

Loading validates everything up front (files exist, keys load, modes are safe) and reports
every problem with its file and key, so a daemon never starts half-configured.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from crypto import (AlgorithmNotAllowed, check_decryption_key, check_signing_key, same_key, suite)
from crypto.keys import KeyFileError, load_certificate, load_certificates, load_private_key
from gateway.transport.connections import ConnectionLimits
from partners.configfile import MISSING_PATH, Problems, Section, load_or_collect, path_problem
from partners.documents import DOCUMENT_TYPES, is_known
from partners.pmode import UNREGISTERED_PARTY_TYPE


MiB = 1024 * 1024


@dataclass(frozen=True)
class ListenConfig:
    """``[listen]``: the AS4 listener and the bounds on what one inbound message may cost.

    ``max_message_bytes`` is enforced by the HTTP layer while the body arrives (413); the
    other limits are checked by the inbound pipeline before the step they protect and are
    answered with a signed ebMS error (too many MIME parts: EBMS:0004; payloads inflating
    past ``max_decompressed_bytes``: EBMS:0303; SOAP envelope nested deeper than
    ``max_xml_depth``: EBMS:0009). ``connections`` bounds slow and numerous clients (header,
    idle and body timeouts; connection caps in total and per client address)."""
    host: str
    port: int
    tls: bool
    cert: Path | None
    key: Path | None
    client_ca: Path | None
    max_message_bytes: int
    max_parts: int = 100
    max_decompressed_bytes: int = 100 * MiB
    max_xml_depth: int = 256
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)


@dataclass(frozen=True)
class KeyPair:
    key_path: Path
    cert_path: Path

    def load(self) -> tuple[object, x509.Certificate]:
        return load_private_key(self.key_path), load_certificate(self.cert_path)


#: The suite ``[security]``'s own keys serve (RSA), and the sub-table per 2.0 suite family.
BASE_SUITE = "edelivery-as4-1.15"
SUITE_KEY_TABLES = {"eddsa": "edelivery-as4-2.0-eddsa", "ecdsa": "edelivery-as4-2.0-ecdsa"}


@dataclass(frozen=True)
class SuiteKeys:
    """The gateway's signing and decryption key pairs for one algorithm suite: ``[security]``
    holds the eDelivery AS4 1.15 (RSA) pair, ``[security.eddsa]`` the Ed25519/X25519 pair and
    ``[security.ecdsa]`` the EC P-256 pair. A suite's keys cannot serve another suite, so a
    gateway talking 1.15 to one partner and 2.0 to another needs both."""
    suite: str
    signing: KeyPair
    encryption: KeyPair


@dataclass(frozen=True)
class FolderConnectorConfig:
    outbox: Path
    inbox: Path
    reports: Path
    poll_interval: float


@dataclass(frozen=True)
class SenderConfig:
    poll_interval: float
    timeout: float
    concurrency: int


@dataclass(frozen=True)
class NswApiListenConfig:
    """``[nsw.api]``: the NSW HTTP API listener (its own port, never the AS4 one). Callers
    authenticate with a bearer token from ``token_file`` and/or a TLS client certificate
    chaining to ``client_ca`` (mutual TLS); at least one of the two is required."""
    host: str
    port: int
    tls: bool
    cert: Path | None
    key: Path | None
    client_ca: Path | None
    token_file: Path | None
    tokens: tuple[str, ...]
    max_document_bytes: int
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)


@dataclass(frozen=True)
class EvidenceConfig:
    """``[evidence]``: time-stamping and retention of the non-repudiation evidence log.

    With ``tsa_url`` set the daemon time-stamps the chain head every ``timestamp_interval``
    seconds (only when entries were appended since the last time-stamp, so an idle gateway
    does not pay the TSA for nothing); with ``retention_days`` set it purges the stored
    bytes of settled messages older than that every ``purge_interval`` seconds. An interval
    of 0 leaves the job to the operator (``swgw evidence timestamp|purge``). Every
    ``checkpoint_interval`` seconds (when the chain advanced) and at stop the daemon writes a
    signed chain-head checkpoint outside the database (``gateway.evidence.checkpoint``)."""
    tsa_url: str | None = None
    tsa_certs: tuple[Path, ...] = ()        # trust anchors for the TSA's signing certificate
    ca_certs: tuple[Path, ...] = ()         # CA certificates put in exported bundles
    tsa_timeout: float = 30.0
    timestamp_interval: float = 3600.0
    retention_days: float | None = None
    purge_interval: float = 86400.0
    checkpoint_interval: float = 60.0

    @property
    def scheduled_timestamps(self) -> bool:
        return self.tsa_url is not None and self.timestamp_interval > 0

    @property
    def scheduled_purge(self) -> bool:
        return self.retention_days is not None and self.purge_interval > 0

    def tsa_trust(self) -> list[x509.Certificate] | None:
        """The TSA trust anchors, read now (a renewed file takes effect without a restart);
        None when none are configured (time-stamp tokens are then checked for integrity only)."""
        if not self.tsa_certs:
            return None
        return [c for p in self.tsa_certs for c in x509.load_pem_x509_certificates(p.read_bytes())]


@dataclass(frozen=True)
class DocumentSignerConfig:
    """``[documents.sign.<document_type>]``: the issuing authority's key that signs outbound
    documents of that type (after mapping, so the partner can verify what it receives)."""
    document_type: str
    key_path: Path
    cert_path: Path

    def load(self) -> tuple[object, x509.Certificate]:
        return load_private_key(self.key_path), load_certificate(self.cert_path)


@dataclass(frozen=True)
class GatewayConfig:
    file: Path
    party_id: str
    party_id_type: str
    partners_dir: Path
    state_dir: Path
    database_url: str
    listen: ListenConfig
    signing: KeyPair
    encryption: KeyPair
    tls_client: KeyPair | None
    tls_client_ca: Path | None
    folder: FolderConnectorConfig
    sender: SenderConfig
    nsw_api: NswApiListenConfig | None = None
    document_signers: tuple[DocumentSignerConfig, ...] = ()
    #: Key pairs for the eDelivery AS4 2.0 suites (``[security.eddsa]``, ``[security.ecdsa]``).
    suite_keys: tuple[SuiteKeys, ...] = ()
    evidence: EvidenceConfig = EvidenceConfig()
    #: ``[gateway] workers``: processes serving the AS4 listener and sending (default: one per
    #: core); the first also runs the outbox, the NSW API and the evidence jobs.
    workers: int = 1

    @property
    def blob_dir(self) -> Path:
        return self.state_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        """Where large payloads are spooled between steps: beside the blobs (same file
        system), so a finished spool file becomes its blob by a link, not a copy."""
        return self.state_dir / "spool"


def _keypair(section: Section | None, prefix: str) -> KeyPair | None:
    if section is None:
        return None
    key, cert = section.path_(f"{prefix}_key"), section.path_(f"{prefix}_cert")
    if key is None or cert is None:
        return None
    pair = KeyPair(key, cert)
    if key.exists() and cert.exists():
        try:
            pair.load()
        except KeyFileError as exc:
            section.error(f"{prefix}_key", str(exc))
    return pair


def _check_suite_pair(section: Section, prefix: str, pair: KeyPair | None, suite_name: str,
                      where: str) -> None:
    """The key must be of the suite's type and the certificate must certify that key."""
    if pair is None or not (pair.key_path.exists() and pair.cert_path.exists()):
        return
    try:
        key, cert = pair.load()
    except KeyFileError:
        return                      # already reported by _keypair
    policy = suite(suite_name)
    try:
        (check_signing_key if prefix == "signing" else check_decryption_key)(policy, key)
    except AlgorithmNotAllowed as exc:
        hint = ("; 2.0 keys go under [security.eddsa] (Ed25519/X25519) or [security.ecdsa] (EC P-256)"
                if suite_name == BASE_SUITE else "")
        section.error(f"{prefix}_key", f"{where} serves suite {suite_name}, but: {exc}{hint}")
        return
    if not same_key(key, cert):
        section.error(f"{prefix}_cert", f"{pair.cert_path} does not certify the key in {pair.key_path}; "
                      "configure the certificate issued for that key")


def _suite_keys(sec: Section | None) -> tuple[SuiteKeys, ...]:
    """``[security.eddsa]`` / ``[security.ecdsa]``: optional key pairs for the 2.0 suites."""
    if sec is None:
        return ()
    found = []
    for family, suite_name in SUITE_KEY_TABLES.items():
        if family not in sec.data:
            continue
        table = sec.table(family)
        if table is None:
            continue
        signing, encryption = _keypair(table, "signing"), _keypair(table, "encryption")
        _check_suite_pair(table, "signing", signing, suite_name, f"[security.{family}]")
        _check_suite_pair(table, "encryption", encryption, suite_name, f"[security.{family}]")
        table.reject_unknown()
        if signing is not None and encryption is not None:
            found.append(SuiteKeys(suite_name, signing, encryption))
    return tuple(found)


def _database_url(section: Section | None, state_dir: Path) -> str:
    default = f"sqlite:///{state_dir / 'gateway.db'}"
    if section is None:
        return default
    url = section.str("url", default)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # Relative SQLite paths are relative to the config file, like every other path here.
        path = section.resolve("url", url[len("sqlite:///"):])
        url = f"sqlite:///{path}" if path is not None else default
    section.reject_unknown()
    return url


def _read_tokens(section: Section, path: Path | None) -> tuple[str, ...]:
    """Bearer tokens, one per line (``#`` comments allowed); the file is a secret, so it must
    not be readable by group or others."""
    if path is None or not path.exists():
        return ()
    if not path.is_file():
        section.error("token_file", f"{path} is not a file; expected a file with one token per line")
        return ()
    if path.stat().st_mode & 0o077:
        section.error("token_file", f"{path} is readable by group or others; run `chmod 600 {path}`")
        return ()
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        section.error("token_file", f"{path} cannot be read ({reason}); write one token per line, UTF-8")
        return ()
    tokens = tuple(line.strip() for line in text.splitlines()
                   if line.strip() and not line.strip().startswith("#"))
    if not tokens:
        section.error("token_file", f"{path} holds no token (one token per line)")
    elif any(len(t) < 16 for t in tokens):
        section.error("token_file", f"{path}: every token must be at least 16 characters")
    return tokens


def _connection_limits(section: Section) -> ConnectionLimits:
    """The slow-client keys shared by ``[listen]`` and ``[nsw.api]``; defaults from ConnectionLimits."""
    d = ConnectionLimits()
    limits = ConnectionLimits(
        header_timeout=section.float("header_timeout", d.header_timeout, minimum=1.0),
        idle_timeout=section.float("idle_timeout", d.idle_timeout, minimum=1.0),
        body_timeout=section.float("body_timeout", d.body_timeout, minimum=1.0),
        body_min_rate=section.int("body_min_rate", d.body_min_rate, minimum=0),
        max_connections=section.int("max_connections", d.max_connections, minimum=1),
        max_connections_per_client=section.int("max_connections_per_client", d.max_connections_per_client,
                                               minimum=1))
    total, per_client = limits.max_connections, limits.max_connections_per_client
    if isinstance(total, int) and isinstance(per_client, int) and per_client > total:
        section.error("max_connections_per_client", f"{per_client} is more than max_connections ({total}); "
                      "lower it or raise max_connections")
    return limits


def _nsw_api(section: Section | None) -> NswApiListenConfig | None:
    if section is None or not section.data:
        return None
    tls = section.bool("tls", False)
    cert = section.path_("cert") if tls else section.path_("cert", None)
    key = section.path_("key") if tls else section.path_("key", None)
    client_ca = section.path_("client_ca", None)
    token_file = section.path_("token_file", None)
    if client_ca is not None and not tls:
        section.error("client_ca", "mutual TLS needs tls = true (with cert and key)")
    if token_file is None and client_ca is None:
        section.error("token_file", "the NSW API needs authentication: set token_file (bearer tokens) "
                      "and/or tls = true with client_ca (mutual TLS)")
    api = NswApiListenConfig(
        host=section.str("host", "127.0.0.1"), port=section.int("port", 8444, minimum=0, maximum=65535),
        tls=bool(tls),
        cert=cert, key=key, client_ca=client_ca, token_file=token_file,
        tokens=_read_tokens(section, token_file),
        max_document_bytes=section.int("max_document_bytes", 50 * 1024 * 1024, minimum=1024),
        connections=_connection_limits(section))
    if tls and key is not None and key.exists():
        try:
            load_private_key(key)
        except KeyFileError as exc:
            section.error("key", str(exc))
    section.reject_unknown()
    return api


#: Where ``[evidence]`` lived before gateway.toml had the table; refused so it is not silently ignored.
OLD_EVIDENCE_FILE = "evidence.toml"


def _certificate_files(section: Section, key: str) -> tuple[Path, ...]:
    names = section.str_list(key, [])
    paths = tuple(p for n in names or () if (p := section.resolve(key, n)) is not None)
    for path in paths:
        if path_problem(path) not in (None, MISSING_PATH):
            section.error(key, path_problem(path))
            continue
        if not path.is_file():
            section.error(key, f"file {path} does not exist")
            continue
        try:
            load_certificates(path)
        except KeyFileError as exc:
            section.error(key, str(exc))
    return paths


def _evidence(section: Section | None, file: Path) -> EvidenceConfig:
    old = file.parent / OLD_EVIDENCE_FILE
    if old.exists() and section is not None:
        section.problems.add(str(old), f"no longer read: move its [evidence] table into {file} "
                             f"and delete {old.name}")
    if section is None or not section.data:
        return EvidenceConfig()
    tsa_url = section.str("tsa_url", None)
    if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
        section.error("tsa_url", f"expected an http(s) URL of an RFC 3161 time-stamp authority, got {tsa_url!r}")
    if tsa_url is None and "timestamp_interval" in section.data:
        section.error("timestamp_interval", "scheduled time-stamps need tsa_url (the time-stamp authority)")
    retention = section.float("retention_days", None, minimum=1)
    if retention is None and "purge_interval" in section.data:
        section.error("purge_interval", "a scheduled purge needs retention_days (how long evidence is kept)")
    evidence = EvidenceConfig(
        tsa_url=tsa_url, tsa_certs=_certificate_files(section, "tsa_certs"),
        ca_certs=_certificate_files(section, "ca_certs"),
        tsa_timeout=section.float("tsa_timeout", 30.0, minimum=0.1),
        timestamp_interval=section.float("timestamp_interval", 3600.0, minimum=0),
        retention_days=retention, purge_interval=section.float("purge_interval", 86400.0, minimum=0),
        checkpoint_interval=section.float("checkpoint_interval", 60.0, minimum=1))
    section.reject_unknown()
    return evidence


def _document_signers(section: Section | None) -> tuple[DocumentSignerConfig, ...]:
    if section is None or not section.data:
        return ()
    sign = section.table("sign", required=False)
    signers = []
    for doc_type in sorted(sign.data) if sign else ():
        table = sign.table(doc_type)
        if table is None:
            continue
        if not is_known(doc_type):
            sign.error(doc_type, f"no canonical document type {doc_type!r} (known: {', '.join(DOCUMENT_TYPES)})")
        key, cert = table.path_("key"), table.path_("cert")
        if key is not None and cert is not None:
            signer = DocumentSignerConfig(doc_type, key, cert)
            if key.exists() and cert.exists():
                try:
                    signer.load()
                except KeyFileError as exc:
                    table.error("key", str(exc))
            signers.append(signer)
        table.reject_unknown()
    if sign:
        sign.reject_unknown()
    section.reject_unknown()
    return tuple(signers)


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Load and validate ``gateway.toml``; raise ConfigError listing all problems."""
    try:
        file = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):     # a symlink loop, a NUL: Section.load says so
        file = Path(os.path.abspath(path))

    def load(problems: Problems) -> GatewayConfig | None:
        root = Section.load(file, problems)
        if root is None:
            return None
        gw = root.table("gateway")
        party_id = gw.str("party_id") if gw else None
        party_id_type = gw.str("party_id_type", UNREGISTERED_PARTY_TYPE) if gw else None
        partners_dir = gw.path_("partners_dir", "partners") if gw else None
        state_dir = gw.path_("state_dir", "../var", must_exist=False) if gw else None
        workers = gw.int("workers", os.cpu_count() or 1, minimum=1, maximum=64) if gw else 1
        if gw:
            gw.reject_unknown()
        state_dir = state_dir or file.parent / "var"

        ls = root.table("listen")
        listen = None
        if ls:
            tls = ls.bool("tls", True)
            listen = ListenConfig(
                host=ls.str("host", "127.0.0.1"), port=ls.int("port", 8443, minimum=0, maximum=65535),
                tls=tls,
                cert=ls.path_("cert") if tls else ls.path_("cert", None),
                key=ls.path_("key") if tls else ls.path_("key", None),
                client_ca=ls.path_("client_ca") if tls else ls.path_("client_ca", None),
                max_message_bytes=ls.int("max_message_bytes", 100 * MiB, minimum=1024),
                max_parts=ls.int("max_parts", 100, minimum=1),
                max_decompressed_bytes=ls.int("max_decompressed_bytes", 100 * MiB, minimum=1024),
                max_xml_depth=ls.int("max_xml_depth", 256, minimum=16),
                connections=_connection_limits(ls))
            if tls and listen.key is not None and listen.key.exists():
                try:
                    load_private_key(listen.key)
                except KeyFileError as exc:
                    ls.error("key", str(exc))
            if listen.client_ca is not None and listen.client_ca.exists():
                try:
                    load_certificates(listen.client_ca)
                except KeyFileError as exc:
                    ls.error("client_ca", str(exc))
            ls.reject_unknown()

        sec = root.table("security")
        signing = _keypair(sec, "signing")
        encryption = _keypair(sec, "encryption")
        suite_keys = _suite_keys(sec)
        if sec:
            _check_suite_pair(sec, "signing", signing, BASE_SUITE, "[security]")
            _check_suite_pair(sec, "encryption", encryption, BASE_SUITE, "[security]")
            sec.reject_unknown()

        tc = root.table("tls_client", required=False)
        tls_client = _keypair(tc, "tls") if tc and tc.data else None
        tls_client_ca = tc.path_("ca", None) if tc else None
        if tc:
            tc.reject_unknown()
        if tls_client is None and listen and listen.cert and listen.key:
            tls_client = KeyPair(listen.key, listen.cert)

        db = root.table("database", required=False)
        database_url = _database_url(db, state_dir)

        nsw = root.table("nsw", required=False)
        fc = nsw.table("folder", required=False) if nsw else None
        nsw_root = state_dir / "nsw"
        folder = FolderConnectorConfig(
            outbox=fc.path_("outbox", str(nsw_root / "outbox"), must_exist=False),
            inbox=fc.path_("inbox", str(nsw_root / "inbox"), must_exist=False),
            reports=fc.path_("reports", str(nsw_root / "reports"), must_exist=False),
            poll_interval=fc.float("poll_interval", 1.0, minimum=0.05))
        fc.reject_unknown()
        nsw_api = _nsw_api(nsw.table("api", required=False) if nsw else None)
        if nsw:
            nsw.reject_unknown()

        sd = root.table("sender", required=False)
        sender = SenderConfig(poll_interval=sd.float("poll_interval", 0.5, minimum=0.01),
                              timeout=sd.float("timeout", 60.0, minimum=0.1),
                              concurrency=sd.int("concurrency", 4, minimum=1))
        sd.reject_unknown()
        document_signers = _document_signers(root.table("documents", required=False))
        evidence = _evidence(root.table("evidence", required=False), file)
        root.reject_unknown()
        if problems.items:
            return None
        return GatewayConfig(file=file, party_id=party_id, party_id_type=party_id_type,
                             partners_dir=partners_dir, state_dir=state_dir, database_url=database_url,
                             listen=listen, signing=signing, encryption=encryption,
                             tls_client=tls_client, tls_client_ca=tls_client_ca, folder=folder,
                             sender=sender, nsw_api=nsw_api, document_signers=document_signers,
                             suite_keys=suite_keys, evidence=evidence, workers=workers)

    return load_or_collect(load)
