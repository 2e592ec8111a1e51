"""RFC 3161 time-stamp protocol over bytes: build a request, read a response, check a token.

No network and no store here, so the parsing and the signature check can be tested and
reused by ``evidence verify`` on tokens kept for years.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ

from gateway.evidence import asn1

HASHES = {asn1.ID_SHA1: hashes.SHA1, asn1.ID_SHA256: hashes.SHA256, asn1.ID_SHA384: hashes.SHA384,
          asn1.ID_SHA512: hashes.SHA512}
_RSA = {"1.2.840.113549.1.1.1", "1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12",
        "1.2.840.113549.1.1.13"}
_ECDSA = {"1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}
_ED25519 = "1.3.101.112"
STATUS = {0: "granted", 1: "grantedWithMods", 2: "rejection", 3: "waiting", 4: "revocationWarning",
          5: "revocationNotification"}


class TimestampError(Exception):
    """A time-stamp response or token that is refused, with the reason."""


@dataclass(frozen=True)
class TimestampRequest:
    der: bytes
    nonce: int
    digest: bytes


@dataclass(frozen=True)
class TokenInfo:
    """What a verified token says: which hash it covers, when, by whom."""
    hash_algorithm: str
    hashed_message: bytes
    gen_time: dt.datetime
    serial_number: int
    policy: str
    nonce: int | None
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]


def make_request(sha256_digest: bytes, *, nonce: int | None = None, cert_req: bool = True) -> TimestampRequest:
    """A TimeStampReq for a SHA-256 digest; ``certReq`` so the token carries the TSA's certificate."""
    if len(sha256_digest) != 32:
        raise ValueError("expected a 32-byte SHA-256 digest")
    nonce = secrets.randbits(63) if nonce is None else nonce
    req = asn1.TimeStampReq()
    req["version"] = 1
    imprint = req["messageImprint"]
    imprint["hashAlgorithm"]["algorithm"] = univ.ObjectIdentifier(asn1.ID_SHA256)
    imprint["hashedMessage"] = sha256_digest
    req["nonce"] = nonce
    req["certReq"] = cert_req
    return TimestampRequest(encoder.encode(req), nonce, sha256_digest)


def parse_response(der: bytes) -> bytes:
    """The token (ContentInfo DER, exactly as sent) from a granted TimeStampResp."""
    try:
        resp, rest = decoder.decode(der, asn1Spec=asn1.TimeStampResp())
    except PyAsn1Error as exc:
        raise TimestampError(f"the TSA's answer is not a TimeStampResp ({exc})") from None
    if rest:
        raise TimestampError("the TSA's answer has trailing bytes after the TimeStampResp")
    status = int(resp["status"]["status"])
    if status not in (0, 1):
        text = "; ".join(str(t) for t in resp["status"]["statusString"]) if resp["status"]["statusString"].isValue else ""
        raise TimestampError(f"the TSA refused the request: status {status} ({STATUS.get(status, '?')})"
                             + (f": {text}" if text else ""))
    if not resp["timeStampToken"].isValue:
        raise TimestampError("the TSA granted the request but sent no token")
    return resp["timeStampToken"].asOctets()


def _certificates(signed) -> list[x509.Certificate]:
    out = []
    if signed["certificates"].isValue:
        for any_ in signed["certificates"]:
            raw = any_.asOctets()
            if raw[:1] == b"\x30":          # a plain Certificate (other CertificateChoices are ignored)
                out.append(x509.load_der_x509_certificate(raw))
    return out


def _signer_cert(sid, certs: list[x509.Certificate]) -> x509.Certificate:
    name = sid.getName()
    for cert in certs:
        if name == "issuerAndSerialNumber":
            ias = sid["issuerAndSerialNumber"]
            if (cert.serial_number == int(ias["serialNumber"])
                    and cert.issuer.public_bytes() == ias["issuer"].asOctets()):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid["subjectKeyIdentifier"].asOctets():
                return cert
    raise TimestampError("the token does not carry its signer's certificate (request it with certReq)")


def _attr(attrs, oid) -> bytes | None:
    for attribute in attrs:
        if attribute["attrType"] == oid:
            values = list(attribute["attrValues"])
            if len(values) != 1:
                raise TimestampError(f"signed attribute {oid} must have exactly one value")
            return values[0].asOctets()
    return None


def _check_signature(cert: x509.Certificate, algorithm: str, digest_cls, signature: bytes, data: bytes) -> None:
    key = cert.public_key()
    try:
        if algorithm in _RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), digest_cls())
        elif algorithm in _ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(digest_cls()))
        elif algorithm == _ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            raise TimestampError(f"signature algorithm {algorithm} with a {type(key).__name__} is not supported")
    except InvalidSignature:
        raise TimestampError("the token's signature does not verify with its signer certificate") from None


def _check_ess_binding(attrs, cert: x509.Certificate) -> None:
    """RFC 5816/2634: the signed attributes name the signer certificate by hash (no substitution)."""
    der = cert.public_bytes(Encoding.DER)
    v2 = _attr(attrs, asn1.ID_SIGNING_CERTIFICATE_V2)
    if v2 is not None:
        value, _ = decoder.decode(v2, asn1Spec=asn1.SigningCertificateV2())
        first = value["certs"][0]
        oid = str(first["hashAlgorithm"]["algorithm"]) if first["hashAlgorithm"].isValue else asn1.ID_SHA256
        expected = hashlib.new({asn1.ID_SHA256: "sha256", asn1.ID_SHA384: "sha384",
                                asn1.ID_SHA512: "sha512", asn1.ID_SHA1: "sha1"}[oid], der).digest()
    else:
        v1 = _attr(attrs, asn1.ID_SIGNING_CERTIFICATE)
        if v1 is None:
            raise TimestampError("the token has no signing-certificate attribute binding it to its signer")
        value, _ = decoder.decode(v1, asn1Spec=asn1.SigningCertificate())
        first = value["certs"][0]
        expected = hashlib.sha1(der).digest()
    if first["certHash"].asOctets() != expected:
        raise TimestampError("the token's signing-certificate attribute names another certificate")


def verify_token(token_der: bytes, trust: list[x509.Certificate] | None = None) -> TokenInfo:
    """Parse a TimeStampToken and check its CMS signature; raise TimestampError when it is not valid.

    ``trust``: when given, the signer certificate must be one of them or be issued by one of them
    (one level, as TSAs are usually issued directly by their CA).
    """
    try:
        token, rest = decoder.decode(token_der, asn1Spec=asn1.TimeStampToken())
    except PyAsn1Error as exc:
        raise TimestampError(f"not a time-stamp token ({exc})") from None
    if rest or token["contentType"] != asn1.ID_SIGNED_DATA:
        raise TimestampError("the token is not a CMS SignedData")
    signed = token["content"]
    encap = signed["encapContentInfo"]
    if encap["eContentType"] != asn1.ID_CT_TSTINFO or not encap["eContent"].isValue:
        raise TimestampError("the token's content is not a TSTInfo")
    tst_der = encap["eContent"].asOctets()
    tst, _ = decoder.decode(tst_der, asn1Spec=asn1.TSTInfo())
    if len(signed["signerInfos"]) != 1:
        raise TimestampError("a time-stamp token must have exactly one signer")
    signer_info = signed["signerInfos"][0]
    certs = _certificates(signed)
    cert = _signer_cert(signer_info["sid"], certs)
    digest_oid = str(signer_info["digestAlgorithm"]["algorithm"])
    digest_cls = HASHES.get(digest_oid)
    if digest_cls is None:
        raise TimestampError(f"digest algorithm {digest_oid} is not supported")
    if not signer_info["signedAttrs"].isValue:
        raise TimestampError("the token has no signed attributes")
    attrs = signer_info["signedAttrs"]
    content_type = _attr(attrs, asn1.ID_CONTENT_TYPE)
    if content_type is None or decoder.decode(content_type)[0] != asn1.ID_CT_TSTINFO:
        raise TimestampError("the signed content-type attribute is not id-ct-TSTInfo")
    md = _attr(attrs, asn1.ID_MESSAGE_DIGEST)
    h = hashes.Hash(digest_cls())
    h.update(tst_der)
    if md is None or decoder.decode(md)[0].asOctets() != h.finalize():
        raise TimestampError("the signed message-digest attribute does not match the TSTInfo")
    # The signature covers the DER of the attributes as a SET OF (universal tag, not [0]).
    plain = asn1.SignedAttributes()
    for i, attribute in enumerate(attrs):
        plain.setComponentByPosition(i, attribute)
    _check_signature(cert, str(signer_info["signatureAlgorithm"]["algorithm"]), digest_cls,
                     signer_info["signature"].asOctets(), encoder.encode(plain))
    _check_ess_binding(attrs, cert)
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = []
    if ExtendedKeyUsageOID.TIME_STAMPING not in eku:
        raise TimestampError(f"signer {cert.subject.rfc4514_string()} is not a time-stamping certificate "
                             "(no timeStamping extended key usage)")
    if trust is not None and not _trusted(cert, trust):
        raise TimestampError(f"TSA certificate {cert.subject.rfc4514_string()} is not issued by a configured "
                             "evidence.tsa_certs anchor")
    imprint = tst["messageImprint"]
    gen_time = tst["genTime"].asDateTime
    return TokenInfo(hash_algorithm=str(imprint["hashAlgorithm"]["algorithm"]),
                     hashed_message=imprint["hashedMessage"].asOctets(),
                     gen_time=gen_time if gen_time.tzinfo else gen_time.replace(tzinfo=dt.timezone.utc),
                     serial_number=int(tst["serialNumber"]), policy=str(tst["policy"]),
                     nonce=int(tst["nonce"]) if tst["nonce"].isValue else None, signer=cert,
                     certificates=tuple(certs))


def _trusted(cert: x509.Certificate, anchors: list[x509.Certificate]) -> bool:
    for anchor in anchors:
        if cert == anchor:
            return True
        try:
            cert.verify_directly_issued_by(anchor)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False
