"""Configuration of algorithm suites and partner trust: our key pairs per suite in
gateway.toml, the partner's suite, anchors and CRLs in partner.toml. Every mistake is
reported at load with its file and key and what to do, never as failing messages later.
Also the CRL-by-URL cache, against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import http.server
import threading

import pytest

from crypto import SUITES
from crypto.devpki import ensure_ca, ensure_party, issue_certificate, revoke
from crypto.keys import load_certificate
from gateway.config import load_gateway_config
from gateway.identity import LocalIdentity, MissingSuiteKeys
from partners.configfile import ConfigError
from partners.pmode import SECURITY_SUITES
from partners.registry import load_partners
from partners.trust import PartnerPki
from crypto import CrlLoadError, UntrustedCertificate
from tests.harness import add_partner, add_suite_keys, swgw, write_node

EDDSA, ECDSA = "edelivery-as4-2.0-eddsa", "edelivery-as4-2.0-ecdsa"


def only(problems: list[str], needle: str) -> str:
    found = [p for p in problems if needle in p]
    assert len(found) == 1, f"expected one problem with {needle!r} in {problems}"
    return found[0]


@pytest.fixture
def node(tmp_path, pki):
    for key_type in ("ed25519", "ec-p256"):
        ensure_party(pki, "aa-nsw", key_type=key_type)
        ensure_party(pki, "bb-nsw", key_type=key_type)
    return write_node(tmp_path, pki, "aa-nsw", "bb-nsw", 1, 2)


def test_pmode_suites_are_the_crypto_suites():
    assert set(SECURITY_SUITES) == set(SUITES)


def test_gateway_holds_one_key_pair_per_suite(node, pki):
    add_suite_keys(node, pki, EDDSA)
    add_suite_keys(node, pki, ECDSA)
    identity = LocalIdentity.from_config(load_gateway_config(node.config_path))
    assert identity.for_suite("edelivery-as4-1.15").signing_cert == load_certificate(pki / "aa-nsw" / "sign.crt")
    assert identity.for_suite(EDDSA).signing_cert == load_certificate(pki / "aa-nsw" / "sign-ed25519.crt")
    assert identity.for_suite(EDDSA).encryption_cert == load_certificate(pki / "aa-nsw" / "enc-x25519.crt")
    assert identity.for_suite(ECDSA).encryption_cert == load_certificate(pki / "aa-nsw" / "enc-ec-p256.crt")


def test_key_of_the_wrong_suite_is_named_with_file_and_key(node, pki):
    text = node.config_path.read_text()
    node.config_path.write_text(
        text.replace(str(pki / "aa-nsw" / "sign.key"), str(pki / "aa-nsw" / "sign-ed25519.key"))
        + f"""
[security.ecdsa]
signing_key = "{pki / 'aa-nsw' / 'sign-ed25519.key'}"
signing_cert = "{pki / 'aa-nsw' / 'sign-ed25519.crt'}"
encryption_key = "{pki / 'aa-nsw' / 'enc-ec-p256.key'}"
encryption_cert = "{pki / 'aa-nsw' / 'enc-x25519.crt'}"

[security.ed448]
signing_key = "x"
""")
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(node.config_path)
    problems = excinfo.value.problems
    base = only(problems, "[security.signing_key]")
    assert base.startswith(str(node.config_path.resolve()))
    assert "needs an RSA private key" in base and "[security.eddsa]" in base
    assert "does not certify the key" not in base
    assert "needs an EC P-256 private key" in only(problems, "[security.ecdsa.signing_key]")
    assert "does not certify the key" in only(problems, "[security.ecdsa.encryption_cert]")
    assert "unknown key" in only(problems, "[security.ed448]")


def test_partner_certificates_must_fit_the_pmode_suite(node, pki):
    path = add_partner(node, pki, "bb-nsw", 2, suite=EDDSA)
    # RSA certificates for an EdDSA PMode: both the signer and the encryption certificate.
    path.write_text(path.read_text().replace("sign-ed25519.crt", "sign.crt").replace("enc-x25519.crt", "enc.crt"))
    with pytest.raises(ConfigError) as excinfo:
        load_partners(node.home / "partners")
    problems = [p for p in excinfo.value.problems if "[pmode[0].security.suite]" in p]
    assert len(problems) == 2 and all(p.startswith(str(path)) for p in problems), excinfo.value.problems
    assert any("need an Ed25519 certificate" in p and "signing_certs" in p for p in problems)
    assert any("X25519" in p and "encryption_cert" in p for p in problems)


def test_partner_on_a_suite_we_hold_no_keys_for_is_refused_at_start(node, pki):
    from gateway.daemon import Gateway
    add_partner(node, pki, "bb-nsw", 2, suite=ECDSA)
    text = node.config_path.read_text()
    node.config_path.write_text(text[:text.index("[security.ecdsa]")])    # keys removed again
    with pytest.raises(ConfigError) as excinfo:
        Gateway(load_gateway_config(node.config_path))
    problem = only(excinfo.value.problems, "[pmode[0].security.suite]")
    assert "partner.toml" in problem and "add [security.ecdsa]" in problem
    result = swgw("checkconfig", "-c", str(node.config_path), check=False)
    assert result.returncode != 0 and "add [security.ecdsa]" in result.stdout + result.stderr
    with pytest.raises(MissingSuiteKeys):
        LocalIdentity.from_config(load_gateway_config(node.config_path)).for_suite(ECDSA)


def test_trust_keys_are_validated(node, pki, tmp_path):
    path = node.home / "partners" / "bb-nsw" / "partner.toml"
    text = path.read_text()
    bad_crl = tmp_path / "bad.crl"
    bad_crl.write_bytes(b"not a crl")
    path.write_text(text.replace("[partner]\n", f'[partner]\ncrls = ["{bad_crl}", "http:///nohost"]\n'))
    with pytest.raises(ConfigError) as excinfo:
        load_partners(node.home / "partners")
    problems = [p for p in excinfo.value.problems if "[partner.crls]" in p]
    assert any("not a valid PEM or DER CRL" in p for p in problems)
    assert any("not a usable URL" in p for p in problems)
    assert any("also set signing_trust" in p for p in problems)

    path.write_text(text.replace("[partner]\n", f'[partner]\nsigning_trust = ["{pki / "ca" / "ca.crt"}"]\n'))
    partner = load_partners(node.home / "partners").get("bb-nsw")
    trust = partner.signing_trust()
    assert trust is not None and trust.anchors == (load_certificate(pki / "ca" / "ca.crt"),)
    assert not trust.require_crl          # no CRL configured: revocation not checked


# -- CRLs by URL ----------------------------------------------------------------------
class _CrlServer:
    def __init__(self, data: bytes):
        self.data, self.hits = data, 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.end_headers()
                self.wfile.write(outer.data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ca.crl"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_crl_from_url_is_fetched_cached_and_enforced(tmp_path):
    root = tmp_path / "pki"
    ensure_party(root, "zz-nsw")
    good = load_certificate(root / "zz-nsw" / "sign.crt")
    crt, _ = issue_certificate(root, "zz-nsw", "sign-revoked")
    crl_path = revoke(root, "zz-nsw", "sign-revoked")
    anchors = (load_certificate(root / "ca" / "ca.crt"),)
    server = _CrlServer(crl_path.read_bytes())
    try:
        pki = PartnerPki(anchors, (), (server.url,))
        pki.signing_trust().validate(good)
        with pytest.raises(UntrustedCertificate, match="revoked on"):
            pki.signing_trust().validate(load_certificate(crt))
        assert server.hits == 1              # cached until its nextUpdate
    finally:
        server.close()

    # The distribution point is down and nothing was ever fetched: fail closed, and say why.
    down = PartnerPki(anchors, (), (server.url,))
    with pytest.raises(UntrustedCertificate, match="revocation checking is required"):
        down.signing_trust().validate(good)
    assert server.url in down.explain() and "CRL download failed" in down.explain()


def _spoofed_crl(tmp_path, victim) -> bytes:
    """A CRL with the dev CA's issuer name and a far-future thisUpdate/nextUpdate, revoking
    ``victim``, but signed by another key (another dev CA of the same name)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    evil_ca, evil_key = ensure_ca(tmp_path / "evil")
    now = dt.datetime.now(dt.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(evil_ca.subject)
           .last_update(now + dt.timedelta(days=365)).next_update(now + dt.timedelta(days=3650))
           .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(victim.serial_number)
                                    .revocation_date(now - dt.timedelta(days=1)).build())
           .sign(evil_key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.DER)


def test_spoofed_crl_from_url_is_refused_and_keeps_the_real_one(tmp_path):
    root = tmp_path / "pki"
    ensure_party(root, "zz-nsw")
    good = load_certificate(root / "zz-nsw" / "sign.crt")
    crt, _ = issue_certificate(root, "zz-nsw", "sign-revoked")
    revoked = load_certificate(crt)
    real = revoke(root, "zz-nsw", "sign-revoked").read_bytes()
    anchors = (load_certificate(root / "ca" / "ca.crt"),)
    spoofed = _spoofed_crl(tmp_path, good)
    assert x509_issuer(spoofed) == anchors[0].subject        # same name, other key

    server = _CrlServer(real)
    try:
        pki = PartnerPki(anchors, (), (server.url,), retry_after=0)
        pki.signing_trust().validate(good)
        # The distribution point now answers with the spoofed CRL: refused, the real one stays.
        server.data = spoofed
        with pytest.raises(CrlLoadError, match=f"CRL from {server.url} is not signed by a configured CA"):
            pki.cache.refresh_from_url(server.url)
        pki.signing_trust().validate(good)
        with pytest.raises(UntrustedCertificate, match="revoked on"):
            pki.signing_trust().validate(revoked)

        # A partner whose first download is spoofed: nothing is cached, fail closed, say why.
        fresh = PartnerPki(anchors, (), (server.url,), retry_after=0)
        with pytest.raises(UntrustedCertificate, match="revocation checking is required"):
            fresh.signing_trust().validate(good)
        assert fresh.cache.crls() == []
        assert server.url in fresh.explain() and "not signed by a configured CA" in fresh.explain()
        # The real CRL is published again: the next attempt picks it up and revocation works.
        server.data = real
        fresh.signing_trust().validate(good)
        with pytest.raises(UntrustedCertificate, match="revoked on"):
            fresh.signing_trust().validate(revoked)
        assert fresh.fetch_errors() == {}
    finally:
        server.close()


def test_spoofed_crl_file_from_config_is_left_out(tmp_path):
    from crypto import load_crl
    root = tmp_path / "pki"
    ensure_party(root, "zz-nsw")
    good = load_certificate(root / "zz-nsw" / "sign.crt")
    anchors = (load_certificate(root / "ca" / "ca.crt"),)
    pki = PartnerPki(anchors, (load_crl(_spoofed_crl(tmp_path, good)),), ())
    assert pki.crls == () and pki.checks_revocation
    (problem,) = pki.crl_problems
    assert "configured CRL file #1 is not signed by a configured CA" in problem
    with pytest.raises(UntrustedCertificate, match="revocation checking is required"):
        pki.signing_trust().validate(good)          # fail closed, not "revoked" by a forgery
    assert "not signed by a configured CA" in pki.explain()
    real = load_crl(revoke(root, "zz-nsw", "sign"))
    assert PartnerPki(anchors, (real,), ()).crls == (real,)


def test_spoofed_crl_file_is_a_config_error_at_load(node, pki, tmp_path):
    spoofed = tmp_path / "spoofed.crl"
    spoofed.write_bytes(_spoofed_crl(tmp_path, load_certificate(pki / "bb-nsw" / "sign.crt")))
    path = add_partner(node, pki, "bb-nsw", 2,
                       partner_extra=f'signing_trust = ["{pki / "ca" / "ca.crt"}"]\ncrls = ["{spoofed}"]\n')
    with pytest.raises(ConfigError) as excinfo:
        load_partners(node.home / "partners")
    (problem,) = [p for p in excinfo.value.problems if "[partner.crls]" in p]
    assert problem.startswith(str(path)) and "not signed by a configured CA" in problem


def x509_issuer(der: bytes):
    from cryptography import x509
    return x509.load_der_x509_crl(der).issuer
