"""``gateway.toml``: the gateway's own identity, listener, keys, store and NSW connector.

Loading validates everything up front (files exist, keys load, modes are safe) and reports
every problem with its file and key, so a daemon never starts half-configured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from crypto.keys import KeyFileError, load_certificate, load_certificates, load_private_key
from partners.configfile import Problems, Section, load_or_collect
from partners.pmode import UNREGISTERED_PARTY_TYPE


@dataclass(frozen=True)
class ListenConfig:
    host: str
    port: int
    tls: bool
    cert: Path | None
    key: Path | None
    client_ca: Path | None
    max_message_bytes: int


@dataclass(frozen=True)
class KeyPair:
    key_path: Path
    cert_path: Path

    def load(self) -> tuple[object, x509.Certificate]:
        return load_private_key(self.key_path), load_certificate(self.cert_path)


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

    @property
    def blob_dir(self) -> Path:
        return self.state_dir / "blobs"


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


def _database_url(section: Section | None, state_dir: Path) -> str:
    default = f"sqlite:///{state_dir / 'gateway.db'}"
    if section is None:
        return default
    url = section.str("url", default)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # Relative SQLite paths are relative to the config file, like every other path here.
        url = f"sqlite:///{(section.file.parent / url[len('sqlite:///'):]).resolve()}"
    section.reject_unknown()
    return url


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """Load and validate ``gateway.toml``; raise ConfigError listing all problems."""
    file = Path(path).resolve()

    def load(problems: Problems) -> GatewayConfig | None:
        root = Section.load(file, problems)
        if root is None:
            return None
        gw = root.table("gateway")
        party_id = gw.str("party_id") if gw else None
        party_id_type = gw.str("party_id_type", UNREGISTERED_PARTY_TYPE) if gw else None
        partners_dir = gw.path_("partners_dir", "partners") if gw else None
        state_dir = gw.path_("state_dir", "../var", must_exist=False) if gw else None
        if gw:
            gw.reject_unknown()
        state_dir = state_dir or file.parent / "var"

        ls = root.table("listen")
        listen = None
        if ls:
            tls = ls.bool("tls", True)
            listen = ListenConfig(
                host=ls.str("host", "127.0.0.1"), port=ls.int("port", 8443, minimum=0),
                tls=tls,
                cert=ls.path_("cert") if tls else ls.path_("cert", None),
                key=ls.path_("key") if tls else ls.path_("key", None),
                client_ca=ls.path_("client_ca") if tls else ls.path_("client_ca", None),
                max_message_bytes=ls.int("max_message_bytes", 100 * 1024 * 1024, minimum=1024))
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
        if sec:
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
        if nsw:
            nsw.reject_unknown()

        sd = root.table("sender", required=False)
        sender = SenderConfig(poll_interval=sd.float("poll_interval", 0.5, minimum=0.01),
                              timeout=sd.float("timeout", 60.0, minimum=0.1),
                              concurrency=sd.int("concurrency", 4, minimum=1))
        sd.reject_unknown()
        root.reject_unknown()
        if problems.items:
            return None
        return GatewayConfig(file=file, party_id=party_id, party_id_type=party_id_type,
                             partners_dir=partners_dir, state_dir=state_dir, database_url=database_url,
                             listen=listen, signing=signing, encryption=encryption,
                             tls_client=tls_client, tls_client_ca=tls_client_ca, folder=folder,
                             sender=sender)

    return load_or_collect(load)
