"""``make demo``: two gateways on 127.0.0.1 exchange a document each way through the folder connector.

Starts the national gateway (conf/gateway.toml, KE-NSW) and a partner gateway
(conf/peers/sg-nsw/gateway.toml, SG-NSW) as real daemons, drops one document in each NSW
outbox, waits for the signed receipts, shows both sides' traces and exits 0 only if both
documents reached the other side's inbox and both receipts verified.
"""
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
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from gateway.config import GatewayConfig, load_gateway_config

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


@dataclass
class Side:
    name: str
    config_path: Path
    config: GatewayConfig
    process: subprocess.Popen | None = None

    @property
    def rel_config(self) -> str:
        return os.path.relpath(self.config_path, ROOT)


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


def main() -> int:
    os.chdir(ROOT)
    for party in ("ke-nsw", "sg-nsw"):
        ensure_party(ROOT / "certs", party)
    national = Side("KE-NSW", ROOT / "conf/gateway.toml", load_gateway_config(ROOT / "conf/gateway.toml"))
    partner = Side("SG-NSW", ROOT / "conf/peers/sg-nsw/gateway.toml",
                   load_gateway_config(ROOT / "conf/peers/sg-nsw/gateway.toml"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ok = False
    try:
        for side in (national, partner):
            side.config.state_dir.mkdir(parents=True, exist_ok=True)
            log = side.config.state_dir / "daemon.log"
            side.process = subprocess.Popen(_swgw("serve", "-c", str(side.config_path)), cwd=ROOT,
                                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
            _wait_port(side.config.listen.host, side.config.listen.port, side.process, log)
            print(f"started {side.name} gateway on https://{side.config.listen.host}:{side.config.listen.port}/as4 "
                  f"(log: {os.path.relpath(log, ROOT)})")
        sends = [
            (national, partner, "sg-nsw", "ephyto", ROOT / "conf/samples/ephyto-AR-sample.xml", f"KE-PHYTO-{stamp}"),
            (partner, national, "ke-nsw", "manifest", ROOT / "conf/samples/ens-CC315A-reduced.xml", f"SG-ENS-{stamp}"),
        ]
        for sender, _receiver, to, doc_type, document, reference in sends:
            drop_document(sender.config.folder.outbox, f"{reference}.xml", document.read_bytes(),
                          partner=to, document_type=doc_type, reference=reference)
            print(f"{sender.name} NSW dropped {document.name} ({doc_type}) for {to}, reference {reference}")
        results = {}
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and len(results) < len(sends):
            for sender, receiver, _to, _t, _d, reference in sends:
                report = report_for(sender.config.folder.reports, reference)
                if report and report["status"] in ("delivered", "failed") and reference not in results:
                    results[reference] = (sender, receiver, report)
            time.sleep(0.2)
        ok = len(results) == len(sends)
        commands = []
        for sender, receiver, _to, _t, _d, reference in sends:
            if reference not in results:
                print(f"\nFAILED: no outcome for {reference} within {TIMEOUT:.0f}s")
                continue
            _s, _r, report = results[reference]
            mid = report["message_id"]
            inbox = inbox_entry(receiver.config.folder.inbox, mid)
            delivered = report["status"] == "delivered" and inbox is not None
            ok = ok and delivered
            print(f"\n=== {reference}: {sender.name} -> {receiver.name}: {report['status'].upper()}"
                  f"{', in ' + receiver.name + ' NSW inbox as ' + inbox['document'] if inbox else ''}")
            print(f"--- sender's trace ({sender.name})")
            subprocess.run(_swgw("trace", "-c", str(sender.config_path), mid), cwd=ROOT)
            print(f"--- receiver's trace ({receiver.name})")
            subprocess.run(_swgw("trace", "-c", str(receiver.config_path), mid), cwd=ROOT)
            commands += [f"swgw trace -c {sender.rel_config} '{mid}'",
                         f"swgw trace -c {receiver.rel_config} '{mid}'"]
    finally:
        for side in (national, partner):
            if side.process and side.process.poll() is None:
                side.process.send_signal(signal.SIGTERM)
        for side in (national, partner):
            if side.process:
                try:
                    side.process.wait(15)
                except subprocess.TimeoutExpired:
                    side.process.kill()
    print("\nBoth gateways stopped. State is kept under var/. See each trace again with "
          "(from the repository root, with .venv/bin on PATH):")
    for command in commands:
        print("  " + command)
    print("\nDEMO " + ("OK: both documents delivered, both receipts verified" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
