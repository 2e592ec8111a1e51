"""Test harness: a generated PKI, two gateways' config trees on free ports, real daemons."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crypto.devpki import ensure_party
from gateway.config import GatewayConfig, load_gateway_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PARTNERS = ROOT / "conf" / "partners"     # the demo's partner folders, with their mappings
PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"


# Ports this test process holds: chosen by the kernel (bind to port 0) and never released
# until the test ends, so no other test worker can take one between "chosen" and "used" (the
# bind-close-reuse race of picking a free port and binding it again later). A held port that
# nobody listens on refuses connections, like a partner that is down. A daemon gets its port's
# socket handed over (systemd socket activation, gateway/transport/activation.py); a test
# server in this process takes it with ``listening_socket``.
_HELD: dict[int, socket.socket] = {}


def reserve_port() -> int:
    """A loopback TCP port held for this test (bound, not yet listening: connections are refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # Set after the kernel chose the port, so that ``take_down`` can bind it again beside this
    # socket. Linux allows that to any socket of the same user that sets SO_REUSEPORT too; the
    # other test workers never set it on a port they did not reserve, and a plain bind (port 0
    # or a daemon binding its configured port) is refused while the port is held.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    port = sock.getsockname()[1]
    _HELD[port] = sock
    return port


def take_down(port: int) -> None:
    """Stop listening on held ``port`` but keep holding it, so that connections are refused again
    (a partner that is down): a fresh socket binds the port (SO_REUSEPORT) before the listening
    one closes, so the port is never free for anyone else to take."""
    if port not in _HELD:
        return
    fresh = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fresh.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    fresh.bind(("127.0.0.1", port))
    _HELD.pop(port).close()
    _HELD[port] = fresh


def listening_socket(port: int) -> socket.socket:
    """The held socket of ``port``, now listening (for a test server in this process)."""
    sock = _HELD[port]
    sock.listen(128)
    return sock


def server_socket(port: int) -> socket.socket:
    """A listening socket on held ``port`` for a test server in this process: a duplicate the
    server may close, while the port itself stays held (and later goes to a daemon, say)."""
    return socket.socket(fileno=os.dup(listening_socket(port).fileno()))


def release_ports() -> None:
    """Close every held port (conftest does it after each test)."""
    while _HELD:
        _HELD.popitem()[1].close()


def _node_ports(config_path: Path) -> dict[str, int]:
    """Listener name (as in gateway/transport/activation.py) -> port, read from gateway.toml."""
    data = tomllib.loads(config_path.read_text())
    ports = {"as4": data.get("listen", {}).get("port")}
    api = data.get("nsw", {}).get("api")
    if isinstance(api, dict):
        ports["nsw-api"] = api.get("port")
    return {name: port for name, port in ports.items() if isinstance(port, int)}


def inherited_sockets(node: "Node") -> dict[str, int]:
    """For an in-process gateway (``build_service(..., sockets=...)``): duplicates of the held
    sockets of ``node``'s listeners, which the listeners adopt (and close)."""
    return {name: os.dup(listening_socket(port).fileno())
            for name, port in _node_ports(node.config_path).items() if port in _HELD}


# Runs in the daemon's process before it becomes `swgw serve`: moves the handed-over sockets to
# fds 3, 4, ... and sets LISTEN_PID to its own pid (exec keeps the pid), as systemd does.
_ACTIVATE = """
import os, sys
fds = [int(fd) for fd in os.environ.pop("SWGW_TEST_FDS").split(",") if fd]
high = [os.dup(fd) for fd in fds]
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.set_inheritable(3 + i, True)   # dup2 onto itself (fd already 3 + i) keeps close-on-exec
for fd in {*high, *fds}:
    if fd >= 3 + len(fds):
        os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, "-m", "gateway.cli", *sys.argv[1:]])
"""


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
               attempts: int = 60, interval: float = 0.3, scheme: str = "https", tls: bool = True,
               timeout: float = 20.0, max_interval: float = 2.0, workers: int = 1,
               database_url: str | None = None) -> Node:
    home = tmp / me
    (home / "partners" / peer).mkdir(parents=True, exist_ok=True)
    own, ca = pki / me, pki / "ca" / "ca.crt"
    (home / "gateway.toml").write_text(f"""
[gateway]
party_id = "{me.upper()}"
partners_dir = "partners"
state_dir = "state"
workers = {workers}

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
""" + (f'\n[database]\nurl = "{database_url}"\n' if database_url else ""))
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
                encrypt: bool = True, partner_extra: str = "", scheme: str = "https", attempts: int = 60,
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


def write_pair(tmp: Path, pki: Path, *, database_urls: tuple[str, str] | None = None,
               **kwargs) -> tuple[Node, Node]:
    """Two nodes that are each other's partner; ``database_urls``: one database each (default:
    SQLite files in their state directories)."""
    pa, pb = reserve_port(), reserve_port()
    url_a, url_b = database_urls or (None, None)
    return (write_node(tmp, pki, "aa-nsw", "bb-nsw", pa, pb, database_url=url_a, **kwargs),
            write_node(tmp, pki, "bb-nsw", "aa-nsw", pb, pa, database_url=url_b, **kwargs))


def swgw(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``swgw ARGS`` as a child process; the deadline is for a hung command, not a slow one."""
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, check=check, timeout=180)


class Daemon:
    """``swgw serve`` as a real child process."""

    def __init__(self, node: Node):
        self.node = node
        self.log = node.home / "daemon.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> "Daemon":
        """Start ``swgw serve`` on the held sockets of the node's ports and wait until it says it
        serves (its startup line in the log), however slow the machine is today."""
        ports = {name: port for name, port in _node_ports(self.node.config_path).items() if port in _HELD}
        fds = [listening_socket(port).fileno() for port in ports.values()]
        env = dict(os.environ, SWGW_TEST_FDS=",".join(map(str, fds)), LISTEN_FDNAMES=":".join(ports))
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-c", _ACTIVATE, "serve", "-c", str(self.node.config_path)],
                                            cwd=ROOT, env=env, pass_fds=fds, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"serving AS4 on" in self.log.read_bytes()[offset:]:
                return self
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon {self.node.name} exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"daemon {self.node.name} did not start within {timeout:.0f}s: "
                           f"{self.log.read_text()[-3000:]}")

    def _take_down_ports(self) -> None:
        """Once the daemon is gone, its ports refuse connections (as without socket activation)."""
        for port in _node_ports(self.node.config_path).values():
            take_down(port)

    def kill(self) -> None:
        """SIGKILL: the crash the store must survive (no shutdown code runs)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._take_down_ports()

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._take_down_ports()
        return self.process.returncode if self.process else None


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.1, what: str = "condition"):
    """Poll ``predicate`` until it is true. ``timeout`` is only how long to wait before calling it
    a failure: generous, so that a busy machine is slow rather than red."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
