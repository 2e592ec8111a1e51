"""Real daemons: canonical samples end to end, the NSW HTTP API, and partner hot reload."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import urllib.error
import urllib.request

import pytest

from crypto.devpki import ensure_party
from gateway.connectors.folder_client import drop_document, inbox_entry, report_for
from partners.documents import SAMPLES, sample, validate_document
from tests.harness import ROOT, Daemon, reserve_port, swgw, wait_for, write_node, write_pair

TOKEN = "nsw-api-token-for-the-tests-0123456789"


@pytest.fixture
def pair(tmp_path, pki):
    a, b = write_pair(tmp_path, pki)
    daemons = []
    yield a, b, daemons
    for d in daemons:
        d.stop()


def test_real_sps_samples_arrive_unchanged_and_invalid_manifests_are_refused(pair):
    a, b, daemons = pair
    daemons += [Daemon(a).start(), Daemon(b).start()]
    ca, cb = a.config(), b.config()
    samples = {"AR": SAMPLES / "sps-ephyto-AR.xml", "CHED": SAMPLES / "sps-traces-CHEDPP.xml"}
    for ref, path in samples.items():
        drop_document(ca.folder.outbox, f"{ref}.xml", path.read_bytes(), partner="bb-nsw", document_type="ephyto",
                      reference=ref)
    drop_document(ca.folder.outbox, "ens.xml", (SAMPLES / "invalid" / "manifest-CC315A-schemaInvalid.xml").read_bytes(),
                  partner="bb-nsw", document_type="manifest", reference="ENS-BAD")
    for ref, path in samples.items():
        report = wait_for(lambda: (r := report_for(ca.folder.reports, ref)) and r["status"] != "queued" and r,
                          what=f"report for {ref}")
        assert report["status"] == "delivered", report
        entry = inbox_entry(cb.folder.inbox, report["message_id"])
        assert (cb.folder.inbox / entry["document"]).read_bytes() == path.read_bytes()
        assert entry["signature"] == "unsigned"
    error = wait_for(lambda: (p := ca.folder.outbox / "rejected" / "ens.xml.error.txt").exists() and p.read_text(),
                     what="the invalid manifest's rejection")
    assert error.startswith("invalid manifest: line ") and "Element 'TotNumOfIteHEA305'" in error


def _api_config(node, port: int) -> None:
    token_file = node.home / "nsw-api.tokens"
    token_file.write_text(f"# NSW API tokens\n{TOKEN}\n")
    os.chmod(token_file, 0o600)
    with open(node.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nhost = "127.0.0.1"\nport = {port}\ntoken_file = "{token_file}"\n')


def _call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = TOKEN):
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/xml"} if body else {})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_nsw_api_on_the_running_daemon(pair):
    a, b, daemons = pair
    api_a, api_b = reserve_port(), reserve_port()
    _api_config(a, api_a)
    _api_config(b, api_b)
    daemons += [Daemon(a).start(), Daemon(b).start()]
    wait_for(lambda: _listening(api_a) and _listening(api_b), what="NSW API listeners")
    base_a, base_b = f"http://127.0.0.1:{api_a}", f"http://127.0.0.1:{api_b}"

    assert _call(base_a + "/api/v1/messages?reference=X", token=None)[0] == 401
    assert _call(base_a + "/api/v1/messages?reference=X", token="wrong-token-wrong-token")[0] == 401
    status, body, _ = _call(base_a + "/openapi.json", token=None)
    assert status == 200 and "/api/v1/documents" in json.loads(body)["paths"]

    ephyto = (SAMPLES / "sps-ephyto-AR.xml").read_bytes()
    status, body, _ = _call(base_a + "/api/v1/documents?partner=bb-nsw&type=ephyto&reference=API-1", "POST", ephyto)
    assert status == 202, body
    mid = json.loads(body)["message_id"]
    # Status back by the NSW's own reference, through the API...
    message = wait_for(lambda: (m := json.loads(_call(base_a + "/api/v1/messages?reference=API-1")[1])["messages"])
                       and m[0]["status"] == "delivered" and m[0], what="API status delivered")
    assert message["message_id"] == mid and message["receipt"]["time"]
    assert ("receipt", "verified") in [(e["step"], e["outcome"]) for e in message["events"]]
    # ... and through the folder connector.
    assert report_for(a.config().folder.reports, "API-1")["status"] == "delivered"

    # A document that fails its schema: 422 naming element and line; nothing recorded.
    bad = (SAMPLES / "invalid" / "manifest-CC315A-schemaInvalid.xml").read_bytes()
    status, body, _ = _call(base_a + "/api/v1/documents?partner=bb-nsw&type=manifest&reference=API-BAD", "POST", bad)
    assert status == 422 and "line " in json.loads(body)["detail"] and "Element '" in json.loads(body)["detail"]
    assert json.loads(_call(base_a + "/api/v1/messages?reference=API-BAD")[1])["messages"] == []
    status, body, _ = _call(base_a + "/api/v1/documents?partner=zz-nsw&type=ephyto", "POST", ephyto)
    assert status == 400 and "unknown partner 'zz-nsw'" in json.loads(body)["detail"]

    # The receiving NSW lists, fetches and acknowledges the document over its own API.
    listing = wait_for(lambda: json.loads(_call(base_b + "/api/v1/inbox")[1])["documents"], what="b's inbox")
    (doc,) = listing
    assert doc["message_id"] == mid and doc["reference"] == "API-1" and doc["signature"] == "unsigned"
    status, data, headers = _call(base_b + f"/api/v1/inbox/{doc['id']}")
    assert status == 200 and data == ephyto
    assert {k.lower(): v for k, v in headers.items()}["x-swgw-signature"] == "unsigned"
    assert _call(base_b + f"/api/v1/inbox/{doc['id']}/ack", "POST", b"")[0] == 200
    assert json.loads(_call(base_b + "/api/v1/inbox")[1])["documents"] == []


def _partner_folder_for(tmp_path, pki, me, peer, my_port: int, peer_port: int):
    """The partner folder ``me`` needs for ``peer``, written the way the harness writes them."""
    scratch = tmp_path / f"scratch-{me}-{peer}"
    node = write_node(scratch, pki, me, peer, my_port, peer_port)
    return node.home / "partners" / peer


ECO_PMODE = """
[[pmode]]
id = "aa-cc-eco"
document_type = "eco"
agreement = "urn:test:agreement"
service = "urn:test:service:eco"
action = "DeliverCertificateOfOrigin"
"""


def test_new_partner_works_after_reload_without_restart(tmp_path, pki, pair):
    a, b, daemons = pair
    ensure_party(pki, "cc-nsw")
    c = write_node(tmp_path, pki, "cc-nsw", "aa-nsw", reserve_port(), a.port)
    # cc speaks Thailand's e-CO dialect (conf/peers/th-nsw holds its side of the mapping).
    c_side = c.home / "partners" / "aa-nsw"
    shutil.copytree(ROOT / "conf" / "peers" / "th-nsw" / "partners" / "ke-nsw" / "mappings", c_side / "mappings")
    (c_side / "partner.toml").write_text((c_side / "partner.toml").read_text() + ECO_PMODE)
    daemons += [Daemon(a).start(), Daemon(c).start()]
    ca = a.config()
    before = (a.home / "state" / "swgw.pid").read_text().strip()
    assert before == str(daemons[0].process.pid)

    # Not yet a partner: refused.
    drop_document(ca.folder.outbox, "early.xml", b"<doc>too early</doc>", partner="cc-nsw",
                  document_type="test-cert", reference="EARLY")
    wait_for(lambda: (ca.folder.outbox / "rejected" / "early.xml.error.txt").exists(), what="refusal")

    # A broken folder: the reload is refused, the old partners stay.
    broken = a.home / "partners" / "cc-nsw"
    shutil.copytree(_partner_folder_for(tmp_path, pki, "aa-nsw", "cc-nsw", a.port, c.port), broken)
    good = (broken / "partner.toml").read_text()
    (broken / "partner.toml").write_text(good.replace("party_id =", "party_idd ="))
    result = swgw("partners", "reload", "-c", str(a.config_path), "--timeout", "110", check=False)
    assert result.returncode == 1 and "party_idd" in result.stderr and "keeps" in result.stderr

    # Fixed (config, certificate, mappings): reloaded, and messages flow both ways.
    (broken / "partner.toml").write_text(good + ECO_PMODE)
    shutil.copytree(ROOT / "conf" / "partners" / "th-nsw" / "mappings", broken / "mappings",
                    ignore=shutil.ignore_patterns("fixtures"))
    result = swgw("partners", "reload", "-c", str(a.config_path), "--timeout", "110")
    assert "bb-nsw, cc-nsw" in result.stdout
    status = json.loads((a.home / "state" / "partners-reload.json").read_text())
    assert status["ok"] and status["partners"] == ["bb-nsw", "cc-nsw"]

    drop_document(ca.folder.outbox, "hello.xml", b"<doc>hello cc</doc>", partner="cc-nsw",
                  document_type="test-cert", reference="HELLO-CC")
    report = wait_for(lambda: (r := report_for(ca.folder.reports, "HELLO-CC")) and r["status"] != "queued" and r,
                      what="delivery to the new partner")
    assert report["status"] == "delivered", report
    cc = c.config()
    drop_document(cc.folder.outbox, "back.xml", b"<doc>hello aa</doc>", partner="aa-nsw",
                  document_type="test-cert", reference="HELLO-AA")
    report = wait_for(lambda: (r := report_for(cc.folder.reports, "HELLO-AA")) and r["status"] != "queued" and r,
                      what="delivery from the new partner")
    assert report["status"] == "delivered", report
    assert inbox_entry(ca.folder.inbox, report["message_id"])["partner"] == "cc-nsw"

    # The new partner's mappings are live too: an e-CO leaves in Thai codes and arrives canonical.
    drop_document(ca.folder.outbox, "eco.xml", sample("eco-KE-SG.xml"), partner="cc-nsw", document_type="eco",
                  reference="ECO-CC")
    report = wait_for(lambda: (r := report_for(ca.folder.reports, "ECO-CC")) and r["status"] != "queued" and r,
                      what="e-CO delivery to the new partner")
    assert report["status"] == "delivered", report
    trace = json.loads(swgw("trace", "-c", str(a.config_path), report["message_id"], "--json").stdout)
    assert any(e["step"] == "map" and "eco.out.xsl" in e["detail"] for e in trace["events"])
    entry = inbox_entry(cc.folder.inbox, report["message_id"])
    validate_document("eco", (cc.folder.inbox / entry["document"]).read_bytes())

    # Plain SIGHUP does the same (here: nothing changed, still both partners).
    status_file = a.home / "state" / "partners-reload.json"
    before = json.loads(status_file.read_text())
    os.kill(daemons[0].process.pid, signal.SIGHUP)
    after = wait_for(lambda: (s := json.loads(status_file.read_text())) != before and s, what="the SIGHUP reload")
    assert after["ok"] and after["partners"] == ["bb-nsw", "cc-nsw"]
    assert daemons[0].process.poll() is None
