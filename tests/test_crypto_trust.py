"""Certificate path validation (crypto.trust) and its use in verify_message/encrypt_parts:
validity, chain to an anchor, CA constraints, key usage, CRLs, rollover, and the rule
that a valid certificate of someone else is still not the partner.

The PKI is built in memory with EC P-256 keys (fast); leaf types vary where it matters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from crypto import (
    EDELIVERY_AS4_2_0_ECDSA,
    EDELIVERY_AS4_2_0_EDDSA,
    CrlCache,
    CrlLoadError,
    SecurityError,
    SignatureError,
    SignerCertificateRejected,
    TrustConfig,
    UntrustedCertificate,
    UntrustedSigner,
    encrypt_parts,
    load_crl,
    sign_message,
    validate_certificate,
    verify_message,
)
from tests.crypto_helpers import make_envelope, make_parts, reparse

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    key: object
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def usage(**flags) -> x509.KeyUsage:
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def issue(cn: str, issuer: Issued | None = None, *, ca: bool = False, key=None,
          key_usage: x509.KeyUsage | None = None, start: dt.datetime = NOW - 30 * DAY,
          end: dt.datetime = NOW + 30 * DAY, path_length: int | None = None,
          eku: list | None = None, issuer_name: x509.Name | None = None) -> Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    if key_usage is None:
        key_usage = usage(key_cert_sign=True, crl_sign=True) if ca else usage(
            digital_signature=True, content_commitment=True)
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn))
               .issuer_name(issuer_name or (issuer.cert.subject if issuer else _name(cn)))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(key_usage, critical=True))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    digest = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(key, builder.sign(signer_key, digest))


def crl_of(issuer: Issued, revoked: list[tuple[x509.Certificate, dt.datetime]] = (), *,
           signer=None, this_update: dt.datetime = NOW - DAY,
           next_update: dt.datetime = NOW + 7 * DAY) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
               .last_update(this_update).next_update(next_update))
    for cert, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(when).build())
    return builder.sign(signer or issuer.key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    root = issue("Root CA", ca=True)
    sub = issue("Issuing CA", root, ca=True)
    leaf = issue("partner-a sign", sub)
    return root, sub, leaf


def reason(exc_info) -> str:
    return str(exc_info.value)


# --- validate_certificate ---------------------------------------------------------------


def test_valid_chain_through_intermediate(pki):
    root, sub, leaf = pki
    chain = validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)
    assert chain == [leaf.cert, sub.cert, root.cert]


def test_pinned_certificate_is_its_own_anchor():
    pinned = issue("self-signed partner")
    assert validate_certificate(pinned.cert, [pinned.cert], at=NOW) == [pinned.cert]


def test_naive_time_is_utc(pki):
    root, sub, leaf = pki
    validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert],
                         at=NOW.replace(tzinfo=None))


def test_expired(pki):
    root, sub, _ = pki
    leaf = issue("old", sub, start=NOW - 60 * DAY, end=NOW - 2 * DAY)
    with pytest.raises(UntrustedCertificate) as info:
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)
    assert "'CN=old,O=Test PKI'" in reason(info)
    assert f"expired on {(NOW - 2 * DAY):%Y-%m-%dT%H:%M:%SZ}" in reason(info)


def test_not_yet_valid(pki):
    root, sub, _ = pki
    leaf = issue("future", sub, start=NOW + DAY, end=NOW + 9 * DAY)
    with pytest.raises(UntrustedCertificate, match="is not yet valid: valid from 2030-06-02T12:00:00Z"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)


def test_expired_intermediate(pki):
    root, _, _ = pki
    sub = issue("Old Issuing CA", root, ca=True, end=NOW - DAY)
    leaf = issue("leaf", sub)
    with pytest.raises(UntrustedCertificate, match="'CN=Old Issuing CA,O=Test PKI'.*expired on"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)


def test_wrong_anchor(pki):
    _, sub, leaf = pki
    other_root = issue("Other Root", ca=True)
    with pytest.raises(UntrustedCertificate, match="not issued by any configured anchor.*"
                       "issuer 'CN=Root CA,O=Test PKI'"):
        validate_certificate(leaf.cert, [other_root.cert], intermediates=[sub.cert], at=NOW)


def test_missing_intermediate(pki):
    root, _, leaf = pki
    with pytest.raises(UntrustedCertificate, match="not issued by any configured anchor.*"
                       "'CN=Issuing CA,O=Test PKI'"):
        validate_certificate(leaf.cert, [root.cert], at=NOW)


def test_issuer_signature_invalid(pki):
    root, _, _ = pki
    impostor = issue("Root CA", ca=True)  # same name, other key
    forged = issue("forged", impostor)
    with pytest.raises(UntrustedCertificate, match="issuer signature invalid"):
        validate_certificate(forged.cert, [root.cert], at=NOW)


def test_ca_without_key_cert_sign(pki):
    root, _, _ = pki
    sub = issue("Weak CA", root, ca=True, key_usage=usage(crl_sign=True))
    leaf = issue("leaf", sub)
    with pytest.raises(UntrustedCertificate, match="CA without keyCertSign"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)


def test_issuer_that_is_not_a_ca(pki):
    root, _, _ = pki
    not_ca = issue("end entity", root, key_usage=usage(digital_signature=True, key_cert_sign=True))
    leaf = issue("leaf", not_ca)
    with pytest.raises(UntrustedCertificate, match="is not a CA"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[not_ca.cert], at=NOW)


def test_path_length_constraint(pki):
    root = issue("Strict Root", ca=True, path_length=0)
    sub = issue("Sub", root, ca=True)
    leaf = issue("leaf", sub)
    with pytest.raises(UntrustedCertificate, match="path length constraint 0 exceeded"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW)


@pytest.mark.parametrize("purpose, flags, missing", [
    ("signing", {"key_encipherment": True}, "digitalSignature or nonRepudiation"),
    ("encryption", {"digital_signature": True}, "keyEncipherment or keyAgreement"),
])
def test_wrong_key_usage(pki, purpose, flags, missing):
    root, sub, _ = pki
    leaf = issue("wrong usage", sub, key_usage=usage(**flags))
    with pytest.raises(UntrustedCertificate, match=f"leaf key usage lacks {missing}, required for "
                       f"{purpose}"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], at=NOW,
                             purpose=purpose)


def test_key_usage_for_each_purpose(pki):
    root, sub, _ = pki
    enc = issue("enc", sub, key_usage=usage(key_agreement=True))
    validate_certificate(enc.cert, [root.cert], intermediates=[sub.cert], at=NOW,
                         purpose="encryption")
    tls = issue("tls", sub, key_usage=usage(digital_signature=True),
                eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    validate_certificate(tls.cert, [root.cert], intermediates=[sub.cert], at=NOW,
                         purpose="tls-server")
    with pytest.raises(UntrustedCertificate, match="extended key usage lacks clientAuth"):
        validate_certificate(tls.cert, [root.cert], intermediates=[sub.cert], at=NOW,
                             purpose="tls-client")


def test_revoked_per_crl(pki):
    root, sub, _ = pki
    leaf = issue("revoked leaf", sub)
    when = NOW - 3 * DAY
    crl = crl_of(sub, [(leaf.cert, when)])
    with pytest.raises(UntrustedCertificate) as info:
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=[crl], at=NOW)
    assert (f"was revoked on {when:%Y-%m-%dT%H:%M:%SZ} per CRL of 'CN=Issuing CA,O=Test PKI'"
            in reason(info))
    # Before the revocation date the certificate was fine (evidence re-verification).
    validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=[crl],
                         at=when - DAY)


def test_revoked_intermediate(pki):
    root, sub, leaf = pki
    crl = crl_of(root, [(sub.cert, NOW - DAY)])
    with pytest.raises(UntrustedCertificate, match="'CN=Issuing CA,O=Test PKI'.*was revoked"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=[crl], at=NOW)


def test_crl_not_signed_by_issuer(pki):
    root, sub, leaf = pki
    forger = ec.generate_private_key(ec.SECP256R1())
    crl = crl_of(sub, [], signer=forger)  # issuer name right, signature by someone else
    with pytest.raises(UntrustedCertificate, match="CRL of 'CN=Issuing CA,O=Test PKI' is not "
                       "signed by the issuer"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=[crl], at=NOW)


def test_crl_expired(pki):
    root, sub, leaf = pki
    crl = crl_of(sub, [], this_update=NOW - 10 * DAY, next_update=NOW - DAY)
    with pytest.raises(UntrustedCertificate, match=r"CRL of 'CN=Issuing CA,O=Test PKI' expired on "
                       r"2030-05-31T12:00:00Z \(nextUpdate\)"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=[crl], at=NOW)


def test_unrelated_crl_is_ignored_and_missing_crl_optional(pki):
    root, sub, leaf = pki
    other = issue("Other CA", ca=True)
    crls = [crl_of(other, [(leaf.cert, NOW - DAY)])]  # same serial, other issuer
    validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=crls, at=NOW)
    with pytest.raises(UntrustedCertificate, match="no CRL of issuer 'CN=Issuing CA"):
        validate_certificate(leaf.cert, [root.cert], intermediates=[sub.cert], crls=crls, at=NOW,
                             require_crl=True)


def test_no_anchors_configured(pki):
    with pytest.raises(UntrustedCertificate, match="no trust anchors"):
        validate_certificate(pki[2].cert, [], at=NOW)


def test_untrusted_certificate_is_security_error():
    assert issubclass(UntrustedCertificate, SecurityError)
    assert issubclass(SignerCertificateRejected, UntrustedSigner)
    assert issubclass(SignerCertificateRejected, UntrustedCertificate)


# --- CRL loading and cache --------------------------------------------------------------


def test_load_crl_pem_der_and_garbage(pki, tmp_path):
    _, sub, _ = pki
    crl = crl_of(sub)
    pem, der = (crl.public_bytes(serialization.Encoding.PEM),
                crl.public_bytes(serialization.Encoding.DER))
    assert load_crl(pem) == crl and load_crl(der) == crl
    (tmp_path / "ca.crl").write_bytes(der)
    assert load_crl(tmp_path / "ca.crl") == crl
    assert load_crl(str(tmp_path / "ca.crl")) == crl
    with pytest.raises(CrlLoadError, match="not a valid PEM or DER CRL"):
        load_crl(b"not a crl")
    with pytest.raises(CrlLoadError, match="cannot be read"):
        load_crl(tmp_path / "missing.crl")


def test_crl_cache_refreshes_from_file_and_url(pki, tmp_path):
    root, sub, _ = pki
    leaf = issue("cached", sub)
    path = tmp_path / "sub.crl"
    path.write_bytes(crl_of(sub).public_bytes(serialization.Encoding.PEM))
    published = {"http://crl.example/root.crl": crl_of(root).public_bytes(serialization.Encoding.DER)}
    fetched = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return published[url]

    cache = CrlCache(fetch, issuers=(root.cert, sub.cert))
    cache.refresh_from_file(path)
    cache.refresh_from_url("http://crl.example/root.crl")
    assert {c.issuer for c in cache.crls()} == {sub.cert.subject, root.cert.subject}
    trust = TrustConfig(anchors=(root.cert,), intermediates=(sub.cert,), crl_cache=cache, at=NOW)
    trust.validate(leaf.cert)

    # The CA publishes a newer CRL revoking the leaf; one refresh picks it up.
    path.write_bytes(crl_of(sub, [(leaf.cert, NOW - DAY)], this_update=NOW - DAY / 2)
                     .public_bytes(serialization.Encoding.PEM))
    assert cache.refresh_all() == []
    assert fetched == ["http://crl.example/root.crl"] * 2
    with pytest.raises(UntrustedCertificate, match="was revoked"):
        trust.validate(leaf.cert)

    # An older CRL does not replace a newer one.
    cache.add(crl_of(sub, this_update=NOW - 5 * DAY))
    assert cache.for_issuer(sub.cert.subject).last_update_utc == NOW - DAY / 2
    assert cache.stale(NOW + 30 * DAY) and not cache.stale(NOW)

    del published["http://crl.example/root.crl"]
    (error,) = cache.refresh_all()
    assert error.startswith("http://crl.example/root.crl: KeyError")
    assert cache.for_issuer(root.cert.subject) is not None  # the previous CRL stays
    with pytest.raises(CrlLoadError, match="no fetch callable"):
        CrlCache().refresh_from_url("http://crl.example/root.crl")


def test_crl_cache_refuses_a_crl_not_signed_by_a_configured_ca(pki, tmp_path):
    """A spoofed CRL (the CA's issuer name, another key, a far-future thisUpdate/nextUpdate)
    on a plain http:// URL is refused, is never cached, and does not replace the real one."""
    root, sub, _ = pki
    good_leaf, revoked_leaf = issue("innocent", sub), issue("revoked", sub)
    impostor = issue("Impostor CA", ca=True)
    url = "http://crl.example/sub.crl"
    real = crl_of(sub, [(revoked_leaf.cert, NOW - DAY)])
    spoofed = crl_of(sub, [(good_leaf.cert, NOW - 2 * DAY)], signer=impostor.key,
                     this_update=NOW + 300 * DAY, next_update=NOW + 3000 * DAY)
    published = {url: real.public_bytes(serialization.Encoding.DER)}
    cache = CrlCache(published.__getitem__, issuers=(root.cert, sub.cert))
    cache.refresh_from_url(url)
    trust = TrustConfig(anchors=(root.cert,), intermediates=(sub.cert,), crl_cache=cache, at=NOW,
                        require_crl=False)

    published[url] = spoofed.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CrlLoadError, match=rf"CRL from {url} is not signed by a configured CA "
                                           r"\(issuer 'CN=Issuing CA"):
        cache.refresh_from_url(url)
    (error,) = cache.refresh_all()
    assert error.startswith(f"{url}: CrlLoadError") and "not signed by a configured CA" in error
    with pytest.raises(CrlLoadError, match="not signed by a configured CA"):
        cache.add(spoofed)
    assert cache.crls() == [real] and cache.for_issuer(sub.cert.subject) == real
    # Revocation still works with the real CRL; the spoofed one blocks no one.
    trust.validate(good_leaf.cert)
    with pytest.raises(UntrustedCertificate, match="was revoked"):
        trust.validate(revoked_leaf.cert)

    # CRL files likewise, named by path; and a CRL whose issuer no configured CA has.
    path = tmp_path / "spoofed.crl"
    path.write_bytes(spoofed.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CrlLoadError, match=rf"CRL file {path} is not signed by a configured CA"):
        cache.refresh_from_file(path)
    with pytest.raises(CrlLoadError, match="no configured CA certificate has that name"):
        cache.add(crl_of(impostor))
    with pytest.raises(CrlLoadError, match="no configured CA certificate has that name"):
        CrlCache().add(real)                # nothing configured: nothing can be verified
    assert cache.crls() == [real]


# --- trust in verify_message and encrypt_parts -------------------------------------------


@pytest.fixture(scope="module")
def partner_pki():
    root = issue("Partner Root", ca=True)
    first = issue("partner sign 2029", root, key=ed25519.Ed25519PrivateKey.generate())
    second = issue("partner sign 2030", root, key=ed25519.Ed25519PrivateKey.generate())
    other = issue("other partner sign", root, key=ed25519.Ed25519PrivateKey.generate())
    return root, first, second, other


def signed_by(identity: Issued):
    envelope = make_envelope()
    parts = make_parts()
    sign_message(envelope, parts, identity.key, identity.cert, EDELIVERY_AS4_2_0_EDDSA)
    return reparse(envelope), parts


def test_rollover_two_configured_signing_certificates(partner_pki):
    root, first, second, _ = partner_pki
    trust = TrustConfig(anchors=[root.cert], at=NOW)
    for identity in (first, second):
        envelope, parts = signed_by(identity)
        result = verify_message(envelope, parts, [first.cert, second.cert],
                                EDELIVERY_AS4_2_0_EDDSA, trust=trust)
        assert result.signer == identity.cert
        assert result.chain == (identity.cert, root.cert)


def test_valid_certificate_of_someone_else_is_untrusted_signer(partner_pki):
    root, first, second, other = partner_pki
    envelope, parts = signed_by(other)
    with pytest.raises(UntrustedSigner, match="not a trusted signer for this partner") as info:
        verify_message(envelope, parts, [first.cert, second.cert], EDELIVERY_AS4_2_0_EDDSA,
                       trust=TrustConfig(anchors=[root.cert], at=NOW))
    assert not isinstance(info.value, UntrustedCertificate)


def test_configured_signer_that_fails_validation(partner_pki):
    root, first, second, _ = partner_pki
    envelope, parts = signed_by(first)
    crl = crl_of(root, [(first.cert, NOW - DAY)])
    with pytest.raises(SignerCertificateRejected, match="signing certificate is not trusted: .*"
                       "revoked") as info:
        verify_message(envelope, parts, [first.cert, second.cert], EDELIVERY_AS4_2_0_EDDSA,
                       trust=TrustConfig(anchors=[root.cert], crls=[crl], at=NOW))
    assert isinstance(info.value, SignatureError)  # still maps to EBMS:0101
    with pytest.raises(SignerCertificateRejected, match="expired on"):
        verify_message(envelope, parts, [first.cert], EDELIVERY_AS4_2_0_EDDSA,
                       trust=TrustConfig(anchors=[root.cert], at=NOW + 365 * DAY))
    with pytest.raises(SignerCertificateRejected, match="not issued by any configured anchor"):
        verify_message(envelope, parts, [first.cert], EDELIVERY_AS4_2_0_EDDSA,
                       trust=TrustConfig(anchors=[issue("Elsewhere", ca=True).cert], at=NOW))


def test_without_trust_config_only_the_pinned_match_counts(partner_pki):
    _, first, _, _ = partner_pki
    envelope, parts = signed_by(first)
    verify_message(envelope, parts, [first.cert], EDELIVERY_AS4_2_0_EDDSA)  # unchanged behaviour


def test_encrypt_refuses_untrusted_recipient_certificate():
    root = issue("Recipient Root", ca=True)
    enc = issue("partner enc", root, key_usage=usage(key_agreement=True))
    trust = TrustConfig(anchors=[root.cert], at=NOW)
    encrypt_parts(make_envelope(), make_parts(), enc.cert, EDELIVERY_AS4_2_0_ECDSA, trust=trust)
    revoked = TrustConfig(anchors=[root.cert], crls=[crl_of(root, [(enc.cert, NOW - DAY)])], at=NOW)
    with pytest.raises(UntrustedCertificate, match="revoked"):
        encrypt_parts(make_envelope(), make_parts(), enc.cert, EDELIVERY_AS4_2_0_ECDSA,
                      trust=revoked)
    sign_only = issue("partner sign as enc", root)
    with pytest.raises(UntrustedCertificate, match="keyEncipherment or keyAgreement"):
        encrypt_parts(make_envelope(), make_parts(), sign_only.cert, EDELIVERY_AS4_2_0_ECDSA,
                      trust=trust)
