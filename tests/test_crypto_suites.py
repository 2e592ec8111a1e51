"""eDelivery AS4 2.0 suites (EdDSA/X25519 and ECDSA/ECDH-ES P-256, both with HKDF and
AES-128 key wrap) beside 1.15: selection by name, roundtrips, downgrade refusal both
ways, tolerated input variants and known-answer tests of the primitives."""

from __future__ import annotations

import base64
import copy

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from lxml import etree

from crypto import (
    EDELIVERY_AS4_1_15,
    EDELIVERY_AS4_2_0_ECDSA,
    EDELIVERY_AS4_2_0_EDDSA,
    SUITES,
    AlgorithmNotAllowed,
    DecryptionError,
    InvalidSignatureValue,
    SecurityPolicy,
    decrypt_parts,
    encrypt_parts,
    policy_for_signing_key,
    sign_message,
    suite,
    verify_message,
)
from crypto import wssec_primitives as primitives
from crypto.algorithms import (
    DataEncryptionAlgorithm,
    DigestAlgorithm,
    KeyAgreementAlgorithm,
    KeyWrapAlgorithm,
    PseudoRandomFunction,
    SignatureAlgorithm,
)
from crypto.wssec_common import NS_DS, NS_DSIG11, NS_DSIG_MORE, NS_XENC, NS_XENC11
from tests.crypto_helpers import make_envelope, make_identity, make_parts, reparse

EDDSA = EDELIVERY_AS4_2_0_EDDSA
ECDSA = EDELIVERY_AS4_2_0_ECDSA
NSMAP = {"ds": NS_DS, "xenc": NS_XENC, "xenc11": NS_XENC11, "dsig11": NS_DSIG11,
         "dm": NS_DSIG_MORE}
SUITE_IDS = {"eddsa": ("ed_signer", "x_recipient", EDDSA), "ecdsa": ("ec_signer", "ec_recipient", ECDSA)}


@pytest.fixture(params=sorted(SUITE_IDS))
def suite_ids(request):
    signer_name, recipient_name, policy = SUITE_IDS[request.param]
    return (request.getfixturevalue(signer_name), request.getfixturevalue(recipient_name), policy)


def one(element, path):
    (found,) = element.xpath(path, namespaces=NSMAP)
    return found


def signed(identity, policy=None, parts=None):
    envelope = make_envelope()
    parts = make_parts() if parts is None else parts
    sign_message(envelope, parts, identity.key, identity.cert, policy)
    return reparse(envelope), parts


def encrypted(identity, policy, parts=None):
    envelope = make_envelope()
    parts = make_parts() if parts is None else parts
    cipher_parts = encrypt_parts(envelope, parts, identity.cert, policy)
    return reparse(envelope), parts, cipher_parts


# --- selection ---------------------------------------------------------------------


def test_suites_by_name():
    assert set(SUITES) == {"edelivery-as4-1.15", "edelivery-as4-2.0-eddsa",
                           "edelivery-as4-2.0-ecdsa"}
    assert SUITES["edelivery-as4-1.15"] is EDELIVERY_AS4_1_15
    assert suite("edelivery-as4-2.0-eddsa") is EDDSA
    with pytest.raises(ValueError, match="edelivery-as4-2.0-ecdsa"):
        suite("edelivery-as4-2.0")


def test_suite_algorithms():
    assert EDDSA.signature_algorithm.value == "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519"
    assert EDDSA.key_agreement.value == "http://www.w3.org/2021/04/xmldsig-more#x25519"
    assert ECDSA.signature_algorithm.value == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    assert ECDSA.key_agreement.value == "http://www.w3.org/2009/xmlenc11#ECDH-ES"
    for policy in (EDDSA, ECDSA):
        assert policy.uses_key_agreement and policy.key_transport_algorithm is None
        assert policy.key_derivation.value == "http://www.w3.org/2021/04/xmldsig-more#hkdf"
        assert policy.kdf_prf.value == "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
        assert policy.key_wrap.value == "http://www.w3.org/2001/04/xmlenc#kw-aes128"
        assert policy.data_encryption_algorithm is DataEncryptionAlgorithm.AES128_GCM
        assert policy.digest_algorithm is DigestAlgorithm.SHA256
    assert not EDELIVERY_AS4_1_15.uses_key_agreement


def test_policy_must_pick_one_key_mechanism():
    with pytest.raises(ValueError, match="either all key transport fields"):
        SecurityPolicy(SignatureAlgorithm.ED25519, DigestAlgorithm.SHA256,
                       DataEncryptionAlgorithm.AES128_GCM)
    with pytest.raises(ValueError, match="not both"):
        SecurityPolicy(
            SignatureAlgorithm.RSA_SHA256, DigestAlgorithm.SHA256, DataEncryptionAlgorithm.AES128_GCM,
            EDELIVERY_AS4_1_15.key_transport_algorithm, DigestAlgorithm.SHA256, EDELIVERY_AS4_1_15.mgf,
            key_agreement=KeyAgreementAlgorithm.X25519, key_derivation=EDDSA.key_derivation,
            kdf_prf=PseudoRandomFunction.HMAC_SHA256, key_wrap=KeyWrapAlgorithm.KW_AES128)


def test_signing_policy_follows_key_type(signer, ed_signer, ec_signer):
    assert policy_for_signing_key(signer.key) is EDELIVERY_AS4_1_15
    assert policy_for_signing_key(ed_signer.key) is EDDSA
    assert policy_for_signing_key(ec_signer.key) is ECDSA
    with pytest.raises(AlgorithmNotAllowed, match="secp384r1"):
        policy_for_signing_key(ec.generate_private_key(ec.SECP384R1()))


# --- roundtrips --------------------------------------------------------------------


def test_sign_verify_roundtrip_two_attachments(suite_ids):
    identity, _, policy = suite_ids
    envelope, parts = signed(identity, policy)
    assert one(envelope, "//ds:SignatureMethod").get("Algorithm") == policy.signature_algorithm.value
    result = verify_message(envelope, parts, [identity.cert], policy)
    assert result.signer == identity.cert
    assert result.signed_part_ids == {p.content_id for p in parts}
    assert len(result.references) == 4


def test_signature_value_encoding(ed_signer, ec_signer):
    for identity, policy in ((ed_signer, EDDSA), (ec_signer, ECDSA)):
        envelope, _ = signed(identity, policy)
        # Ed25519 (RFC 8032) and XML-DSig ECDSA P-256 (r || s) are both 64 bytes, never DER.
        assert len(base64.b64decode(one(envelope, "//ds:SignatureValue").text)) == 64


def test_default_policy_from_key_type(ed_signer):
    envelope, parts = signed(ed_signer)  # no policy given
    verify_message(envelope, parts, [ed_signer.cert], EDDSA)


def test_tampered_2_0_signature_is_invalid(suite_ids):
    identity, _, policy = suite_ids
    envelope, parts = signed(identity, policy)
    value = one(envelope, "//ds:SignatureValue")
    raw = bytearray(base64.b64decode(value.text))
    raw[5] ^= 1
    value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(InvalidSignatureValue):
        verify_message(envelope, parts, [identity.cert], policy)


def test_encrypt_decrypt_roundtrip_two_attachments(suite_ids):
    _, identity, policy = suite_ids
    envelope, parts, cipher_parts = encrypted(identity, policy)
    assert all(p.data not in c.data for p, c in zip(parts, cipher_parts))
    key = one(envelope, "//xenc:EncryptedKey")
    assert one(key, "xenc:EncryptionMethod").get("Algorithm") == policy.key_wrap.value
    method = one(key, "ds:KeyInfo/xenc:AgreementMethod")
    assert method.get("Algorithm") == policy.key_agreement.value
    assert one(method, "xenc11:KeyDerivationMethod").get("Algorithm") == policy.key_derivation.value
    params = one(method, "xenc11:KeyDerivationMethod/dm:HKDFParams")
    assert one(params, "dm:PRF").get("Algorithm") == policy.kdf_prf.value
    assert one(params, "dm:KeyLength").text == "16"
    assert len(base64.b64decode(one(params, "dm:Salt").text)) == 32
    one(method, "xenc:RecipientKeyInfo//ds:X509IssuerSerial")
    assert len(base64.b64decode(one(key, "xenc:CipherData/xenc:CipherValue").text)) == 24
    assert decrypt_parts(envelope, cipher_parts, identity.key, policy) == parts


def test_originator_key_forms(x_recipient, ec_recipient):
    envelope, _, _ = encrypted(x_recipient, EDDSA)
    der = base64.b64decode(one(envelope, "//xenc:OriginatorKeyInfo/dsig11:DEREncodedKeyValue").text)
    assert isinstance(serialization.load_der_public_key(der), x25519.X25519PublicKey)
    envelope, _, _ = encrypted(ec_recipient, ECDSA)
    ec_value = one(envelope, "//xenc:OriginatorKeyInfo/ds:KeyValue/dsig11:ECKeyValue")
    assert one(ec_value, "dsig11:NamedCurve").get("URI") == "urn:oid:1.2.840.10045.3.1.7"
    assert base64.b64decode(one(ec_value, "dsig11:PublicKey").text)[0] == 4  # uncompressed


def test_fresh_ephemeral_key_per_message(x_recipient):
    keys = {one(encrypted(x_recipient, EDDSA)[0], "//dsig11:DEREncodedKeyValue").text
            for _ in range(2)}
    assert len(keys) == 2


def test_sign_then_encrypt_full_message(ed_signer, x_recipient):
    envelope = make_envelope()
    parts = make_parts()
    sign_message(envelope, parts, ed_signer.key, ed_signer.cert, EDDSA)
    cipher_parts = encrypt_parts(envelope, parts, x_recipient.cert, EDDSA)
    envelope = reparse(envelope)
    plain = decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)
    assert verify_message(envelope, plain, [ed_signer.cert], EDDSA).signer == ed_signer.cert


# --- wrong keys ----------------------------------------------------------------------


def test_signing_key_must_fit_policy(signer, ed_signer):
    envelope = make_envelope()
    before = etree.tostring(envelope)
    with pytest.raises(AlgorithmNotAllowed, match="needs an Ed25519 private key, got RSAPrivateKey"):
        sign_message(envelope, make_parts(), signer.key, signer.cert, EDDSA)
    assert etree.tostring(envelope) == before
    with pytest.raises(AlgorithmNotAllowed, match="EC P-256"):
        sign_message(make_envelope(), make_parts(), ed_signer.key, ed_signer.cert, ECDSA)


def test_verify_refuses_certificate_of_wrong_type(ed_signer, ec_signer):
    # An ECDSA signature "verified" with an Ed25519 certificate: a config mix-up,
    # reported as such rather than as a bad signature.
    envelope, parts = signed(ec_signer, ECDSA)
    bst = one(envelope, "//*[local-name()='BinarySecurityToken']")
    bst.text = base64.b64encode(ed_signer.cert.public_bytes(serialization.Encoding.DER)).decode()
    with pytest.raises(AlgorithmNotAllowed, match="needs an EC P-256 certificate"):
        verify_message(envelope, parts, [ed_signer.cert], ECDSA)


def test_recipient_certificate_must_fit_policy(recipient, x_recipient):
    with pytest.raises(AlgorithmNotAllowed, match="needs an X25519 key for the recipient"):
        encrypt_parts(make_envelope(), make_parts(), recipient.cert, EDDSA)
    with pytest.raises(AlgorithmNotAllowed, match="needs an EC P-256 key"):
        encrypt_parts(make_envelope(), make_parts(), x_recipient.cert, ECDSA)
    with pytest.raises(AlgorithmNotAllowed, match="needs an RSA recipient"):
        encrypt_parts(make_envelope(), make_parts(), x_recipient.cert, EDELIVERY_AS4_1_15)


def test_decrypt_with_other_key_fails_opaquely(x_recipient):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    other = make_identity("other", "x25519")
    with pytest.raises(DecryptionError, match="encrypted for another key"):
        decrypt_parts(envelope, cipher_parts, other.key, EDDSA)


def test_decrypt_with_private_key_of_wrong_type(x_recipient, ec_recipient):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    with pytest.raises(AlgorithmNotAllowed, match="needs an X25519 private key"):
        decrypt_parts(envelope, cipher_parts, ec_recipient.key, EDDSA)


@pytest.mark.parametrize("path", ["//dm:Salt", "//dm:Info", "//xenc:CipherValue"])
def test_altered_key_material_fails_opaquely(x_recipient, path):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    element = one(envelope, path)
    raw = bytearray(base64.b64decode(element.text))
    raw[0] ^= 1
    element.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError):
        decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)


def test_altered_ciphertext_fails(ec_recipient):
    envelope, _, cipher_parts = encrypted(ec_recipient, ECDSA)
    bad = cipher_parts[1].__class__(cipher_parts[1].content_id, cipher_parts[1].mime_type,
                                    cipher_parts[1].data[:-1] + b"\x00")
    with pytest.raises(DecryptionError):
        decrypt_parts(envelope, [cipher_parts[0], bad], ec_recipient.key, ECDSA)


def test_small_order_x25519_point_fails_opaquely(x_recipient):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    der_value = one(envelope, "//dsig11:DEREncodedKeyValue")
    spki = base64.b64decode(der_value.text)
    der_value.text = base64.b64encode(spki[:-32] + bytes(32)).decode()  # the zero point
    with pytest.raises(DecryptionError, match="could not be decrypted"):
        decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)


# --- downgrade and suite mix-up ---------------------------------------------------------


@pytest.mark.parametrize("policy", [EDDSA, ECDSA])
def test_1_15_signature_refused_under_2_0(signer, policy):
    envelope, parts = signed(signer, EDELIVERY_AS4_1_15)
    with pytest.raises(AlgorithmNotAllowed, match="rsa-sha256 is not permitted by the security"):
        verify_message(envelope, parts, [signer.cert], policy)


def test_2_0_signature_refused_under_1_15_and_other_2_0(suite_ids):
    identity, _, policy = suite_ids
    envelope, parts = signed(identity, policy)
    other = ECDSA if policy is EDDSA else EDDSA
    for refusing in (EDELIVERY_AS4_1_15, other):
        with pytest.raises(AlgorithmNotAllowed, match="not permitted by the security policy"):
            verify_message(envelope, parts, [identity.cert], refusing)


@pytest.mark.parametrize("policy", [EDDSA, ECDSA])
def test_1_15_encryption_refused_under_2_0(recipient, policy):
    envelope, _, cipher_parts = encrypted(recipient, EDELIVERY_AS4_1_15)
    with pytest.raises(AlgorithmNotAllowed, match="rsa-oaep is not permitted by the security"):
        decrypt_parts(envelope, cipher_parts, recipient.key, policy)


def test_2_0_encryption_refused_under_1_15(suite_ids, recipient):
    _, identity, policy = suite_ids
    envelope, _, cipher_parts = encrypted(identity, policy)
    with pytest.raises(AlgorithmNotAllowed, match="kw-aes128 is not permitted by the security"):
        decrypt_parts(envelope, cipher_parts, recipient.key, EDELIVERY_AS4_1_15)


def test_x25519_message_refused_under_ecdh_es_policy(x_recipient, ec_recipient):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    with pytest.raises(AlgorithmNotAllowed, match="x25519 is not permitted"):
        decrypt_parts(envelope, cipher_parts, ec_recipient.key, ECDSA)


def _set(envelope, path, value, attribute="Algorithm"):
    element = one(envelope, path)
    element.set(attribute, value)


@pytest.mark.parametrize("path, uri, reason", [
    ("//ds:SignatureMethod", "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "SHA1"),
    ("(//ds:Reference)[1]/ds:DigestMethod", "http://www.w3.org/2000/09/xmldsig#sha1", "SHA-1"),
    ("//ds:CanonicalizationMethod", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315", "inclusive"),
])
def test_weak_signature_algorithms_refused_under_2_0(ed_signer, path, uri, reason):
    envelope, parts = signed(ed_signer, EDDSA)
    _set(envelope, path, uri)
    with pytest.raises(AlgorithmNotAllowed, match=reason):
        verify_message(envelope, parts, [ed_signer.cert], EDDSA)


@pytest.mark.parametrize("path, uri, reason", [
    ("//xenc:EncryptedKey/xenc:EncryptionMethod", "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
     "padding-oracle"),
    ("(//xenc:EncryptedData)[1]/xenc:EncryptionMethod", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
     "integrity"),
    ("//dm:PRF", "http://www.w3.org/2000/09/xmldsig#hmac-sha1", "not supported"),
    ("//xenc11:KeyDerivationMethod", "http://www.w3.org/2009/xmlenc11#ConcatKDF", "not supported"),
    ("//xenc:EncryptedKey/xenc:EncryptionMethod", "http://www.w3.org/2001/04/xmlenc#kw-aes256",
     "not supported"),
])
def test_weak_or_foreign_encryption_algorithms_refused_under_2_0(x_recipient, path, uri, reason):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    _set(envelope, path, uri)
    with pytest.raises(AlgorithmNotAllowed, match=reason):
        decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)


def test_2_0_policy_requires_agreement_method(x_recipient, recipient):
    # An RSA-style EncryptedKey relabelled kw-aes128: no AgreementMethod to derive from.
    envelope, _, cipher_parts = encrypted(recipient, EDELIVERY_AS4_1_15)
    method = one(envelope, "//xenc:EncryptedKey/xenc:EncryptionMethod")
    method.set("Algorithm", KeyWrapAlgorithm.KW_AES128.value)
    with pytest.raises(DecryptionError, match="AgreementMethod"):
        decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)


def test_ecdh_es_originator_on_other_curve_refused(ec_recipient):
    envelope, _, cipher_parts = encrypted(ec_recipient, ECDSA)
    ec_value = one(envelope, "//dsig11:ECKeyValue")
    ec_value.getparent().remove(ec_value)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    etree.SubElement(one(envelope, "//xenc:OriginatorKeyInfo/ds:KeyValue"),
                     f"{{{NS_DSIG11}}}DEREncodedKeyValue").text = base64.b64encode(
        p384.public_bytes(serialization.Encoding.DER,
                          serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with pytest.raises(AlgorithmNotAllowed, match="EC P-256 key for the originator"):
        decrypt_parts(envelope, cipher_parts, ec_recipient.key, ECDSA)


# --- variants other implementations emit ------------------------------------------------


def test_tolerates_salt_specified_keylength_in_bits_and_eckeyvalue_for_x25519(x_recipient):
    envelope, parts, cipher_parts = encrypted(x_recipient, EDDSA)
    salt = one(envelope, "//dm:Salt")
    etree.SubElement(salt, f"{{{NS_DSIG_MORE}}}Specified").text = salt.text
    salt.text = None
    one(envelope, "//dm:KeyLength").text = "128"
    der_value = one(envelope, "//dsig11:DEREncodedKeyValue")
    raw = serialization.load_der_public_key(base64.b64decode(der_value.text)).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    originator = der_value.getparent()
    originator.remove(der_value)
    ec_value = etree.SubElement(etree.SubElement(originator, f"{{{NS_DS}}}KeyValue"),
                                f"{{{NS_DSIG11}}}ECKeyValue")
    etree.SubElement(ec_value, f"{{{NS_DSIG11}}}NamedCurve", URI="urn:oid:1.3.101.110")
    etree.SubElement(ec_value, f"{{{NS_DSIG11}}}PublicKey").text = base64.b64encode(raw).decode()
    assert decrypt_parts(reparse(envelope), cipher_parts, x_recipient.key, EDDSA) == parts


def test_tolerates_der_encoded_p256_originator(ec_recipient):
    envelope, parts, cipher_parts = encrypted(ec_recipient, ECDSA)
    ec_value = one(envelope, "//dsig11:ECKeyValue")
    point = base64.b64decode(one(ec_value, "dsig11:PublicKey").text)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    originator = one(envelope, "//xenc:OriginatorKeyInfo")
    for c in list(originator):
        originator.remove(c)
    etree.SubElement(originator, f"{{{NS_DSIG11}}}DEREncodedKeyValue").text = base64.b64encode(
        key.public_bytes(serialization.Encoding.DER,
                         serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    assert decrypt_parts(envelope, cipher_parts, ec_recipient.key, ECDSA) == parts


def test_wrong_key_length_refused(x_recipient):
    envelope, _, cipher_parts = encrypted(x_recipient, EDDSA)
    one(envelope, "//dm:KeyLength").text = "32"
    with pytest.raises(DecryptionError, match="KeyLength '32'"):
        decrypt_parts(envelope, cipher_parts, x_recipient.key, EDDSA)


def test_explicit_curve_parameters_refused(ec_recipient):
    envelope, _, cipher_parts = encrypted(ec_recipient, ECDSA)
    named = one(envelope, "//dsig11:NamedCurve")
    named.getparent().remove(named)
    with pytest.raises(DecryptionError, match="must name its curve"):
        decrypt_parts(envelope, cipher_parts, ec_recipient.key, ECDSA)


# --- known-answer tests of the primitives (independent of our own encoder) ---------------


def test_ed25519_rfc8032_test_1():
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    expected = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
    assert primitives.sign(SignatureAlgorithm.ED25519, key, b"") == expected
    assert primitives.verify(SignatureAlgorithm.ED25519, key.public_key(), expected, b"")
    assert not primitives.verify(SignatureAlgorithm.ED25519, key.public_key(), expected, b"x")


def test_x25519_rfc7748_section_6_1():
    alice = x25519.X25519PrivateKey.from_private_bytes(bytes.fromhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    bob_public = x25519.X25519PublicKey.from_public_bytes(bytes.fromhex(
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
    assert primitives.agree(KeyAgreementAlgorithm.X25519, alice, bob_public) == bytes.fromhex(
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_hkdf_rfc5869_test_case_1():
    okm = primitives.hkdf(PseudoRandomFunction.HMAC_SHA256, bytes.fromhex("0b" * 22),
                          bytes.fromhex("000102030405060708090a0b0c"),
                          bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm == bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")


def test_aes_key_wrap_rfc3394_4_1():
    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    wrapped = bytes.fromhex("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5")
    assert primitives.wrap_with_kek(KeyWrapAlgorithm.KW_AES128, kek, key) == wrapped
    assert primitives.unwrap_with_kek(KeyWrapAlgorithm.KW_AES128, kek, wrapped) == key
    assert primitives.unwrap_with_kek(KeyWrapAlgorithm.KW_AES128, bytes(16), wrapped) is None


def test_ecdsa_raw_signature_roundtrip_and_der_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    raw = primitives.sign(SignatureAlgorithm.ECDSA_SHA256, key, b"data")
    assert len(raw) == 64
    assert primitives.verify(SignatureAlgorithm.ECDSA_SHA256, key.public_key(), raw, b"data")
    from cryptography.hazmat.primitives import hashes
    der = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    assert not primitives.verify(SignatureAlgorithm.ECDSA_SHA256, key.public_key(), der, b"data")


def test_deep_copy_of_policy_is_equal():
    assert copy.deepcopy(EDDSA) == EDDSA
