"""An exported evidence bundle verifies without the gateway, by following its own README.

After the export, nothing from ``gateway`` or ``crypto`` is used: the zip is unpacked, every
``openssl`` command the README lists is run as written (and its promised output checked
against chain.json), the README's Python snippets (chain hashes with hashlib/json, the
SignatureValue with libxmlsec1 through the ``xmlsec`` binding) are run as written, and the
remaining claims (reference digests, SwA attachment digests, NonRepudiationInformation) are
checked here with lxml, hashlib and xmlsec alone.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from tests.evidence_helpers import make_pair
from tests.harness import swgw

xmlsec = pytest.importorskip("xmlsec")
DS = "http://www.w3.org/2000/09/xmldsig#"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
EBBP = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"


def readme_commands(readme: str) -> list[tuple[str, str | None]]:
    """Every `openssl ...` command in the README, with the `-> expected` line that follows it."""
    lines = readme.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip().startswith("openssl "):
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            out.append((line.strip(), nxt[2:].strip() if nxt.startswith("->") else None))
    return out


def readme_python(readme: str) -> list[str]:
    """The README's Python snippets: indented blocks starting with an import."""
    blocks, current = [], None
    for line in readme.splitlines():
        if current is None and re.match(r"^ {4}import ", line):
            current = [line]
        elif current is not None and line.startswith("    ") and line.strip():
            current.append(line)
        elif current is not None:
            blocks.append(textwrap.dedent("\n".join(current)))
            current = None
    return blocks


def openssl(command: str, cwd: Path) -> str:
    done = subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout + done.stderr


def signed_info_refs(soap: Path) -> tuple[etree._Element, dict[str, str]]:
    env = etree.parse(str(soap)).getroot()
    si = env.find(f".//{{{DS}}}Signature/{{{DS}}}SignedInfo")
    return env, {r.get("URI"): r.findtext(f"{{{DS}}}DigestValue").strip() for r in si.iterfind(f"{{{DS}}}Reference")}


def test_exported_bundle_verifies_by_its_readme(tmp_path, pki, monkeypatch, pair_databases):
    pair = make_pair(tmp_path / "gw", pki, pair_databases)
    try:
        mid = pair.exchange(document=b"<certificate>ePhyto 42</certificate>")
        pair.exchange(document=b"<certificate>another one, after</certificate>", reference="REF-2")
    finally:
        pair.close()
    bundle = tmp_path / "evidence.zip"
    swgw("evidence", "export", mid, "-c", str(pair.a.config_path), "-o", str(bundle))

    # ---- from here on: no gateway code ------------------------------------------------
    d = tmp_path / "unpacked"
    zipfile.ZipFile(bundle).extractall(d)
    readme = (d / "README.txt").read_text()
    chain = json.loads((d / "chain.json").read_text())
    own = [e for e in chain["entries"] if e["message_id"] == mid]
    assert [e["kind"] for e in own] == ["message-sent", "receipt-received"]
    assert chain["entries"][-1]["seq"] == 4            # up to the head, past this message's entries

    # 1. every openssl command of the README, as written; promised outputs checked
    commands = readme_commands(readme)
    assert any("openssl verify" in c for c, _ in commands) and any("dgst -sha256 -verify" in c for c, _ in commands)
    for command, expected in commands:
        output = openssl(command, d)
        if expected:
            assert expected.split()[0] in output, (command, output)
    assert openssl("openssl dgst -sha256 message/raw.bin", d).split()[-1] == own[0]["message_digest"]
    assert openssl("openssl dgst -sha256 receipt/raw.bin", d).split()[-1] == own[1]["receipt_digest"]
    assert (d / "message/soap.xml").read_bytes() in (d / "message/raw.bin").read_bytes()
    # the signer is the one a's PKI folder holds, and chains to the dev CA
    assert (d / "certs/message-signer.pem").read_bytes().strip() == (pki / "aa-nsw/sign.crt").read_bytes().strip()
    assert "OK" in openssl("openssl verify -CAfile certs/ca-1.pem certs/receipt-signer.pem", d)

    # 2. the README's Python: chain hashes (hashlib/json) and SignatureValues (libxmlsec1)
    snippets = readme_python(readme)
    assert len(snippets) == 3                          # chain, message signature, receipt signature
    monkeypatch.chdir(d)
    for code in snippets:
        exec(compile(code, "README.txt", "exec"), {})  # noqa: S102 (the README's own instructions)

    # 3. what the README describes in prose
    env, refs = signed_info_refs(d / "message/soap.xml")
    for uri, value in refs.items():
        if uri.startswith("#"):      # XML references: exc-c14n of the wsu:Id element
            (target,) = env.xpath("//*[@wsu:Id=$id]", namespaces={"wsu": WSU}, id=uri[1:])
            c14n = etree.tostring(target, method="c14n", exclusive=True)
            assert base64.b64encode(hashlib.sha256(c14n).digest()).decode() == value, uri
        else:                        # attachments: SwA transform of application/gzip = the octets
            (command,) = [line.strip() for line in readme.splitlines()
                          if "openssl dgst -sha256 -binary" in line and "attachments/" in line]
            name = command.split()[4]
            assert openssl(command, d).strip() == value                  # the README's own command
            assert base64.b64encode(hashlib.sha256((d / name).read_bytes()).digest()).decode() == value
            assert gzip.decompress((d / name).read_bytes()) == b"<certificate>ePhyto 42</certificate>"
    # the receipt has no attachments: libxmlsec1 verifies its whole signature
    receipt = etree.parse(str(d / "receipt/soap.xml")).getroot()
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file(str(d / "certs/receipt-signer.pem"), xmlsec.constants.KeyDataFormatCertPem)
    for element in receipt.iter():
        if isinstance(element.tag, str) and element.get(f"{{{WSU}}}Id"):
            ctx.register_id(element, "Id", WSU)
    ctx.verify(receipt.find(f".//{{{DS}}}Signature"))
    # NonRepudiationInformation: the partner acknowledged exactly what was signed
    nri = {r.get("URI"): r.findtext(f"{{{DS}}}DigestValue").strip()
           for r in receipt.iter(f"{{{DS}}}Reference") if r.getparent().tag == f"{{{EBBP}}}MessagePartNRInformation"}
    assert nri == refs
    assert mid in readme


def test_tampered_bundle_fails_its_readme_checks(tmp_path, pki):
    pair = make_pair(tmp_path / "gw", pki)
    try:
        mid = pair.exchange()
    finally:
        pair.close()
    bundle = tmp_path / "evidence.zip"
    swgw("evidence", "export", mid, "-c", str(pair.a.config_path), "-o", str(bundle))
    d = tmp_path / "unpacked"
    zipfile.ZipFile(bundle).extractall(d)
    c14n = d / "message/signedinfo.c14n"
    c14n.write_bytes(c14n.read_bytes().replace(b"DigestValue>", b"DigestValue >", 1))
    (command,) = [c for c, _ in readme_commands((d / "README.txt").read_text())
                  if c.startswith("openssl dgst -sha256 -verify message")]
    subprocess.run("openssl x509 -in certs/message-signer.pem -pubkey -noout > message-signer.pub", shell=True,
                   cwd=d, check=True)
    done = subprocess.run(command, shell=True, cwd=d, capture_output=True, text=True)
    assert done.returncode != 0 and "Verification failure" in done.stdout + done.stderr
