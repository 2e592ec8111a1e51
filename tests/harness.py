"""Test harness: a generated PKI, two gateways' config trees on free ports, real daemons."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crypto.devpki import ensure_party
from gateway.config import GatewayConfig, load_gateway_config

ROOT = Path(__file__).resolve().parent.parent
PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pki(root: Path, parties=("aa-nsw", "bb-nsw")) -> Path:
    for party in parties:
        ensure_party(root, party)
    return root


@dataclass
class Node:
    name: str            # e.g. "aa-nsw"
    party_id: str        # e.g. "AA-NSW"
    home: Path
    port: int

    @property
    def config_path(self) -> Path:
        return self.home / "gateway.toml"

    def config(self) -> GatewayConfig:
        return load_gateway_config(self.config_path)


# Two canonical document types (validated against their schemas at both ends) and two that are
# not canonical families ("test-cert", "test-manifest": carried as-is, like any document type
# without a schema), so transport tests can send small made-up documents.
PMODES = """
[[pmode]]
id = "{a}-{b}-ephyto"
document_type = "ephyto"
agreement = "urn:test:agreement"
service = "urn:test:service:ephyto"
action = "DeliverPhytoCertificate"
retry = {{ max_attempts = {attempts}, initial_interval = {interval}, multiplier = 1.5, max_interval = {max_interval}, max_age = 600.0 }}

[[pmode]]
id = "{a}-{b}-manifest"
document_type = "manifest"
agreement = "urn:test:agreement"
service = "urn:test:service:ens"
action = "SubmitEntrySummary"
compress = false
retry = {{ max_attempts = {attempts}, initial_interval = {interval}, multiplier = 1.5, max_interval = {max_interval}, max_age = 600.0 }}

[[pmode]]
id = "{a}-{b}-cert"
document_type = "test-cert"
agreement = "urn:test:agreement"
service = "urn:test:service:sps"
action = "DeliverCertificate"
retry = {{ max_attempts = {attempts}, initial_interval = {interval}, multiplier = 1.5, max_interval = {max_interval}, max_age = 600.0 }}

[[pmode]]
id = "{a}-{b}-cargo"
document_type = "test-manifest"
agreement = "urn:test:agreement"
service = "urn:test:service:manifest"
action = "SubmitManifest"
compress = false
retry = {{ max_attempts = {attempts}, initial_interval = {interval}, multiplier = 1.5, max_interval = {max_interval}, max_age = 600.0 }}
"""


def write_node(tmp: Path, pki: Path, me: str, peer: str, my_port: int, peer_port: int, *,
               attempts: int = 5, interval: float = 0.3, scheme: str = "https", tls: bool = True,
               timeout: float = 20.0, max_interval: float = 2.0) -> Node:
    home = tmp / me
    (home / "partners" / peer).mkdir(parents=True, exist_ok=True)
    own, ca = pki / me, pki / "ca" / "ca.crt"
    (home / "gateway.toml").write_text(f"""
[gateway]
party_id = "{me.upper()}"
partners_dir = "partners"
state_dir = "state"

[listen]
host = "127.0.0.1"
port = {my_port}
tls = {str(tls).lower()}
cert = "{own / 'tls.crt'}"
key = "{own / 'tls.key'}"
client_ca = "{ca}"

[security]
signing_key = "{own / 'sign.key'}"
signing_cert = "{own / 'sign.crt'}"
encryption_key = "{own / 'enc.key'}"
encryption_cert = "{own / 'enc.crt'}"

[nsw.folder]
poll_interval = 0.1

[sender]
poll_interval = 0.1
timeout = {timeout}
""")
    a, b = sorted((me, peer))
    (home / "partners" / peer / "partner.toml").write_text(f"""
[partner]
party_id = "{peer.upper()}"
endpoint = "{scheme}://127.0.0.1:{peer_port}/as4"
signing_certs = ["{pki / peer / 'sign.crt'}"]
encryption_cert = "{pki / peer / 'enc.crt'}"
tls_trust = ["{ca}"]
""" + PMODES.format(a=a, b=b, attempts=attempts, interval=interval, max_interval=max_interval))
    return Node(me, me.upper(), home, my_port)


# eDelivery AS4 2.0 suites: the [security.<family>] table of gateway.toml and devpki's key type.
SUITE_KEYS = {"edelivery-as4-2.0-eddsa": ("eddsa", "ed25519"), "edelivery-as4-2.0-ecdsa": ("ecdsa", "ec-p256")}


def add_suite_keys(node: Node, pki: Path, suite: str) -> None:
    """Give ``node`` its own key pairs for a 2.0 ``suite`` ([security.eddsa] / [security.ecdsa])."""
    if suite not in SUITE_KEYS:
        return
    family, key_type = SUITE_KEYS[suite]
    text = node.config_path.read_text()
    if f"[security.{family}]" in text:
        return
    files = ensure_party(pki, node.name, key_type=key_type)
    node.config_path.write_text(text + f"""
[security.{family}]
signing_key = "{files.key('sign', key_type)}"
signing_cert = "{files.cert('sign', key_type)}"
encryption_key = "{files.key('enc', key_type)}"
encryption_cert = "{files.cert('enc', key_type)}"
""")


def add_partner(node: Node, pki: Path, peer: str, peer_port: int, *, suite: str = "edelivery-as4-1.15",
                encrypt: bool = True, partner_extra: str = "", scheme: str = "https", attempts: int = 5,
                interval: float = 0.3, max_interval: float = 2.0) -> Path:
    """(Re)write ``node``'s partner folder for ``peer`` with every PMode on ``suite`` (and
    ``encrypt``), the peer's certificates of that suite, and ``partner_extra`` lines added to
    ``[partner]`` (e.g. signing_trust, crls). The node gets its own keys for the suite."""
    add_suite_keys(node, pki, suite)
    key_type = SUITE_KEYS.get(suite, (None, "rsa"))[1]
    files = ensure_party(pki, peer, key_type=key_type)
    folder = node.home / "partners" / peer
    folder.mkdir(parents=True, exist_ok=True)
    a, b = sorted((node.name, peer))
    pmodes = PMODES.format(a=a, b=b, attempts=attempts, interval=interval, max_interval=max_interval)
    security = f'security = {{ suite = "{suite}", sign = true, encrypt = {str(encrypt).lower()} }}\n'
    pmodes = pmodes.replace("\nretry = ", "\n" + security + "retry = ")
    path = folder / "partner.toml"
    path.write_text(f"""
[partner]
party_id = "{peer.upper()}"
endpoint = "{scheme}://127.0.0.1:{peer_port}/as4"
signing_certs = ["{files.cert('sign', key_type)}"]
encryption_cert = "{files.cert('enc', key_type)}"
tls_trust = ["{pki / 'ca' / 'ca.crt'}"]
{partner_extra}
""" + pmodes)
    return path


def write_pair(tmp: Path, pki: Path, **kwargs) -> tuple[Node, Node]:
    pa, pb = free_port(), free_port()
    return (write_node(tmp, pki, "aa-nsw", "bb-nsw", pa, pb, **kwargs),
            write_node(tmp, pki, "bb-nsw", "aa-nsw", pb, pa, **kwargs))


def swgw(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check, timeout=60)


class Daemon:
    """``swgw serve`` as a real child process."""

    def __init__(self, node: Node):
        self.node = node
        self.log = node.home / "daemon.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Daemon":
        self.process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "-c",
                                         str(self.node.config_path)], cwd=ROOT,
                                        stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon {self.node.name} exited: {self.log.read_text()[-3000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.node.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"daemon {self.node.name} did not listen: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the crash the store must survive (no shutdown code runs)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
