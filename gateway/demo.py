"""``make demo``: the national gateway and three partner gateways on 127.0.0.1 exchange one
document of every family, mapped to each partner's dialect, delivered and traced.

Starts the national gateway (conf/gateway.toml, KE-NSW) and the partner gateways of Singapore,
Malaysia and Thailand (conf/peers/*/gateway.toml) as real daemons, ensures the dev PKI they need,
drops a cargo manifest, an ePhyto (SPS), an e-CO and an AEO operator list into the national NSW
outbox for at least two partners each (plus one manifest back from Singapore), waits for the
signed receipts, shows what each mapping did and what each receiving NSW got, and prints the
``swgw trace`` commands. Exits 0 only if every document was delivered and every receipt verified.
State stays under var/ (``make clean`` removes it).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from crypto.devpki import ensure_party
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from partners.documents import SAMPLES
from gateway.config import GatewayConfig, load_gateway_config

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90.0
PARTIES = ("ke-nsw", "sg-nsw", "my-nsw", "th-nsw", "ke-coo-authority")
GATEWAYS = (("KE-NSW", "conf/gateway.toml"), ("SG-NSW", "conf/peers/sg-nsw/gateway.toml"),
            ("MY-NSW", "conf/peers/my-nsw/gateway.toml"), ("TH-NSW", "conf/peers/th-nsw/gateway.toml"))
# (family label, document type, sample, partners it goes to). Partners differ in dialect:
# SG takes UN/CEFACT SPS and ICS manifests as-is, MY has its own e-CO and AEO dialect, TH its own
# e-CO codes and no manifests (see conf/partners/*/partner.toml).
DOCUMENTS = (
    ("manifest", "manifest", SAMPLES / "manifest-CC315A-reduced.xml", ("sg-nsw", "my-nsw")),
    ("SPS ePhyto", "ephyto", SAMPLES / "sps-ephyto-AR.xml", ("sg-nsw", "my-nsw", "th-nsw")),
    ("e-CO", "eco", SAMPLES / "eco-KE-SG.xml", ("my-nsw", "th-nsw")),
    ("AEO list", "aeo", SAMPLES / "aeo-full-KE.xml", ("my-nsw", "th-nsw")),
)


@dataclass
class Side:
    name: str
    config_path: Path
    config: GatewayConfig
    process: subprocess.Popen | None = None

    @property
    def rel_config(self) -> str:
        return os.path.relpath(self.config_path, ROOT)


@dataclass
class Send:
    sender: Side
    receiver: Side
    to: str
    family: str
    document_type: str
    document: Path
    reference: str


def _swgw(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def _wait_port(host: str, port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"demo: daemon exited early (code {process.returncode}); see {log}:\n"
                             + log.read_text(errors="replace")[-2000:])
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"demo: daemon did not listen on {host}:{port} within 20s; see {log}")


def _trace(side: Side, message_id: str) -> dict:
    result = subprocess.run(_swgw("trace", "-c", str(side.config_path), message_id, "--json"), cwd=ROOT,
                            capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def _event(trace: dict, step: str) -> dict | None:
    return next((e for e in reversed(trace.get("events", [])) if e["step"] == step), None)


def _show(send: Send, report: dict) -> bool:
    """Print what happened to one document on both sides; True if delivered and verified."""
    mid = report["message_id"]
    inbox = inbox_entry(send.receiver.config.folder.inbox, mid)
    out, inn = _trace(send.sender, mid), _trace(send.receiver, mid)
    verified = any(e["step"] == "receipt" and e["outcome"] == "verified" for e in out.get("events", []))
    ok = report["status"] == "delivered" and inbox is not None and verified
    print(f"\n=== {send.family} ({send.document_type}) {send.sender.name} -> {send.receiver.name}, "
          f"reference {send.reference}: {report['status'].upper()}"
          f"{', receipt verified' if verified else ''}")
    for label, trace, steps in (("sent    ", out, ("validate", "map", "docsig")),
                                ("received", inn, ("docsig", "map", "validate", "aeo", "deliver"))):
        for step in steps:
            e = _event(trace, step)
            if e is not None:
                print(f"  {label} {step:<9} {e['outcome']:<9} {e['detail']}")
    if inbox is not None:
        signature = f", document signature {inbox['signature']}" if inbox.get("signature") else ""
        print(f"  {send.receiver.name} NSW inbox: {inbox['document']}{signature}")
    return ok


def main() -> int:
    os.chdir(ROOT)
    started = time.monotonic()
    for party in PARTIES:
        ensure_party(ROOT / "certs", party)
    sides = {name: Side(name, ROOT / path, load_gateway_config(ROOT / path)) for name, path in GATEWAYS}
    national = sides["KE-NSW"]
    by_partner = {"sg-nsw": sides["SG-NSW"], "my-nsw": sides["MY-NSW"], "th-nsw": sides["TH-NSW"],
                  "ke-nsw": national}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ok = False
    commands: list[str] = []
    try:
        for side in sides.values():
            side.config.state_dir.mkdir(parents=True, exist_ok=True)
            log = side.config.state_dir / "daemon.log"
            side.process = subprocess.Popen(_swgw("serve", "-c", str(side.config_path)), cwd=ROOT,
                                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
        for side in sides.values():
            log = side.config.state_dir / "daemon.log"
            _wait_port(side.config.listen.host, side.config.listen.port, side.process, log)
            print(f"started {side.name} gateway on https://{side.config.listen.host}:{side.config.listen.port}/as4 "
                  f"(log: {os.path.relpath(log, ROOT)})")
        sends = [Send(national, by_partner[to], to, family, doc_type, path,
                      f"KE-{doc_type.upper()}-{to.split('-')[0].upper()}-{stamp}")
                 for family, doc_type, path, partners in DOCUMENTS for to in partners]
        sends.append(Send(sides["SG-NSW"], national, "ke-nsw", "manifest", "manifest",
                          ROOT / "conf/samples/ens-CC315A-reduced.xml", f"SG-MANIFEST-KE-{stamp}"))
        print()
        for s in sends:
            drop_document(s.sender.config.folder.outbox, f"{s.reference}.xml", s.document.read_bytes(),
                          partner=s.to, document_type=s.document_type, reference=s.reference)
            print(f"{s.sender.name} NSW dropped {s.document.name} ({s.family}) for {s.to}, reference {s.reference}")
        results: dict[str, dict] = {}
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and len(results) < len(sends):
            for s in sends:
                report = report_for(s.sender.config.folder.reports, s.reference)
                if report and report["status"] in ("delivered", "failed", "rejected") and s.reference not in results:
                    results[s.reference] = report
            time.sleep(0.2)
        ok = len(results) == len(sends)
        for s in sends:
            report = results.get(s.reference)
            if report is None:
                rejected = s.sender.config.folder.outbox / "rejected" / f"{s.reference}.xml.error.txt"
                why = rejected.read_text().strip() if rejected.exists() else f"no outcome within {TIMEOUT:.0f}s"
                print(f"\n=== {s.family} {s.sender.name} -> {s.receiver.name}, reference {s.reference}: FAILED: {why}")
                ok = False
                continue
            ok = _show(s, report) and ok
            commands += [f"swgw trace -c {s.sender.rel_config} '{report['message_id']}'",
                         f"swgw trace -c {s.receiver.rel_config} '{report['message_id']}'"]
    finally:
        for side in sides.values():
            if side.process and side.process.poll() is None:
                side.process.send_signal(signal.SIGTERM)
        for side in sides.values():
            if side.process:
                try:
                    side.process.wait(15)
                except subprocess.TimeoutExpired:
                    side.process.kill()
    print(f"\nAll gateways stopped after {time.monotonic() - started:.0f}s. State is kept under var/. "
          "See each message's whole story with (from the repository root, with .venv/bin on PATH):")
    for command in commands:
        print("  " + command)
    families = len({d[1] for d in DOCUMENTS})
    print("\nDEMO " + (f"OK: {len(commands) // 2} documents of {families} families delivered to "
                       f"{len(by_partner) - 1} partners, every receipt verified" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
