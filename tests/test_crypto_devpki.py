"""The dev PKI generator with the 2.0 key types, revocation and expired certificates,
and key loading of Ed25519/X25519/EC keys."""

from __future__ import annotations

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519

from crypto import (
    SUITES,
    TrustConfig,
    UntrustedCertificate,
    decrypt_parts,
    encrypt_parts,
    load_crl,
    sign_message,
    verify_message,
)
from crypto.devpki import ensure_party, issue_certificate, issue_expired, revoke
from crypto.keys import KeyFileError, load_certificate, load_private_key
from tests.crypto_helpers import make_envelope, make_parts, reparse


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("devpki")
    ensure_party(path, "nsw")
    ensure_party(path, "nsw", key_type="ed25519")
    ensure_party(path, "nsw", key_type="ec-p256")
    return path


def trust(root) -> TrustConfig:
    return TrustConfig(anchors=[load_certificate(root / "ca" / "ca.crt")])


def test_default_rsa_layout_unchanged(root):
    names = sorted(p.name for p in (root / "nsw").iterdir())
    assert names == sorted([
        "tls.crt", "tls.key", "sign.crt", "sign.key", "enc.crt", "enc.key",
        "sign-ed25519.crt", "sign-ed25519.key", "enc-x25519.crt", "enc-x25519.key",
        "sign-ec-p256.crt", "sign-ec-p256.key", "enc-ec-p256.crt", "enc-ec-p256.key"])
    for kind in ("tls", "sign", "enc"):
        assert isinstance(load_private_key(root / "nsw" / f"{kind}.key"), rsa.RSAPrivateKey)
        assert load_certificate(root / "nsw" / f"{kind}.crt").subject.rfc4514_string() == (
            f"CN=nsw {kind},O=nsw")


@pytest.mark.parametrize("key_type, sign_type, enc_type", [
    ("ed25519", ed25519.Ed25519PrivateKey, x25519.X25519PrivateKey),
    ("ec-p256", ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey),
])
def test_typed_keys_and_certificates(root, key_type, sign_type, enc_type):
    files = ensure_party(root, "nsw", key_type=key_type)  # idempotent
    sign_key, enc_key = load_private_key(files.key("sign", key_type)), load_private_key(
        files.key("enc", key_type))
    assert isinstance(sign_key, sign_type) and isinstance(enc_key, enc_type)
    sign_cert, enc_cert = load_certificate(files.cert("sign", key_type)), load_certificate(
        files.cert("enc", key_type))
    assert sign_cert.public_key() == sign_key.public_key()
    assert enc_cert.public_key() == enc_key.public_key()
    usage = enc_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_agreement and not usage.key_encipherment
    assert trust(root).validate(sign_cert, purpose="signing")[-1].subject == sign_cert.issuer
    trust(root).validate(enc_cert, purpose="encryption")
    assert (os.stat(files.key("enc", key_type)).st_mode & 0o077) == 0


@pytest.mark.parametrize("name", ["edelivery-as4-2.0-eddsa", "edelivery-as4-2.0-ecdsa"])
def test_roundtrip_with_generated_files(root, name):
    key_type = "ed25519" if name.endswith("eddsa") else "ec-p256"
    files = ensure_party(root, "nsw", key_type=key_type)
    policy = SUITES[name]
    envelope, parts = make_envelope(), make_parts()
    sign_message(envelope, parts, load_private_key(files.key("sign", key_type)),
                 load_certificate(files.cert("sign", key_type)), policy)
    cipher = encrypt_parts(envelope, parts, load_certificate(files.cert("enc", key_type)), policy,
                           trust=trust(root))
    envelope = reparse(envelope)
    plain = decrypt_parts(envelope, cipher, load_private_key(files.key("enc", key_type)), policy)
    verify_message(envelope, plain, [load_certificate(files.cert("sign", key_type))], policy,
                   trust=trust(root))


def test_revoke_writes_and_accumulates_crl(root):
    extra, _ = issue_certificate(root, "nsw", "sign-2", key_type="ed25519")
    crl_path = revoke(root, "nsw", "sign", key_type="ec-p256")
    assert crl_path == root / "ca" / "ca.crl"
    assert crl_path.read_bytes().startswith(b"-----BEGIN X509 CRL-----")
    revoke(root, "nsw", "sign-2")
    crl = load_crl(crl_path)
    assert len(list(crl)) == 2
    config = TrustConfig(anchors=trust(root).anchors, crls=(crl,))
    for path in (root / "nsw" / "sign-ec-p256.crt", extra):
        with pytest.raises(UntrustedCertificate, match="revoked on .* per CRL of 'CN=Single Window"):
            config.validate(load_certificate(path))
    config.validate(load_certificate(root / "nsw" / "sign-ed25519.crt"))


def test_issue_expired(root):
    crt, key = issue_expired(root, "nsw", key_type="ed25519")
    assert crt.name == "sign-ed25519-expired.crt"
    assert isinstance(load_private_key(key), ed25519.Ed25519PrivateKey)
    with pytest.raises(UntrustedCertificate, match="expired on"):
        trust(root).validate(load_certificate(crt))


def test_unknown_key_type(tmp_path):
    with pytest.raises(ValueError, match="unknown key type"):
        ensure_party(tmp_path, "p", key_type="dsa")  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())


def _write(path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def test_load_der_and_refuse_unsupported_keys(tmp_path):
    key = x25519.X25519PrivateKey.generate()
    _write(tmp_path / "k.der", key.private_bytes(serialization.Encoding.DER,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    assert isinstance(load_private_key(tmp_path / "k.der"), x25519.X25519PrivateKey)
    p384 = ec.generate_private_key(ec.SECP384R1())  # allowed here (TLS); suites check curves
    _write(tmp_path / "p384.pem", p384.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    assert isinstance(load_private_key(tmp_path / "p384.pem"), ec.EllipticCurvePrivateKey)
    weak = dsa.generate_private_key(2048)
    _write(tmp_path / "dsa.pem", weak.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="supported are RSA, Ed25519, X25519 and EC"):
        load_private_key(tmp_path / "dsa.pem")
    _write(tmp_path / "junk.key", b"junk")
    with pytest.raises(KeyFileError, match="not a usable PEM, DER or PKCS#12 key"):
        load_private_key(tmp_path / "junk.key")
