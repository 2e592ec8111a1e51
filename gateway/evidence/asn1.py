"""The few ASN.1 structures of RFC 3161 (time-stamp protocol) and RFC 5652 (CMS) we need.

Hand-defined with pyasn1 because pyasn1-modules is not a dependency. Parts we never
inspect (names, extensions, certificates) are ``Any``, which also keeps their exact
encoded bytes: certificates are handed to ``cryptography`` as DER, and the token is
kept byte for byte as the TSA sent it.
"""
from __future__ import annotations

from pyasn1.type import char, namedtype, tag, univ, useful


def _implicit(n: int, constructed: bool = True) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed if constructed else tag.tagFormatSimple, n)


def _explicit(n: int) -> tag.Tag:
    return tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, n)


# -- object identifiers -------------------------------------------------------------------
ID_SIGNED_DATA = univ.ObjectIdentifier("1.2.840.113549.1.7.2")
ID_CT_TSTINFO = univ.ObjectIdentifier("1.2.840.113549.1.9.16.1.4")
ID_CONTENT_TYPE = univ.ObjectIdentifier("1.2.840.113549.1.9.3")
ID_MESSAGE_DIGEST = univ.ObjectIdentifier("1.2.840.113549.1.9.4")
ID_SIGNING_CERTIFICATE = univ.ObjectIdentifier("1.2.840.113549.1.9.16.2.12")
ID_SIGNING_CERTIFICATE_V2 = univ.ObjectIdentifier("1.2.840.113549.1.9.16.2.47")
ID_SHA1 = "1.3.14.3.2.26"
ID_SHA256 = "2.16.840.1.101.3.4.2.1"
ID_SHA384 = "2.16.840.1.101.3.4.2.2"
ID_SHA512 = "2.16.840.1.101.3.4.2.3"


# -- common --------------------------------------------------------------------------------
class AlgorithmIdentifier(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("algorithm", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("parameters", univ.Any()))


class AnySequenceOf(univ.SequenceOf):
    componentType = univ.Any()


class AnySetOf(univ.SetOf):
    componentType = univ.Any()


# -- RFC 3161 -----------------------------------------------------------------------------
class MessageImprint(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("hashAlgorithm", AlgorithmIdentifier()),
        namedtype.NamedType("hashedMessage", univ.OctetString()))


class TimeStampReq(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("messageImprint", MessageImprint()),
        namedtype.OptionalNamedType("reqPolicy", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("nonce", univ.Integer()),
        namedtype.DefaultedNamedType("certReq", univ.Boolean(False)),
        namedtype.OptionalNamedType("extensions", AnySequenceOf().subtype(implicitTag=_implicit(0))))


class PKIFreeText(univ.SequenceOf):
    componentType = char.UTF8String()


class PKIStatusInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("status", univ.Integer()),
        namedtype.OptionalNamedType("statusString", PKIFreeText()),
        namedtype.OptionalNamedType("failInfo", univ.BitString()))


class TimeStampResp(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("status", PKIStatusInfo()),
        namedtype.OptionalNamedType("timeStampToken", univ.Any()))   # kept as sent: it is the evidence


class Accuracy(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("seconds", univ.Integer()),
        namedtype.OptionalNamedType("millis", univ.Integer().subtype(implicitTag=_implicit(0, False))),
        namedtype.OptionalNamedType("micros", univ.Integer().subtype(implicitTag=_implicit(1, False))))


class TSTInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("policy", univ.ObjectIdentifier()),
        namedtype.NamedType("messageImprint", MessageImprint()),
        namedtype.NamedType("serialNumber", univ.Integer()),
        namedtype.NamedType("genTime", useful.GeneralizedTime()),
        namedtype.OptionalNamedType("accuracy", Accuracy()),
        namedtype.DefaultedNamedType("ordering", univ.Boolean(False)),
        namedtype.OptionalNamedType("nonce", univ.Integer()),
        namedtype.OptionalNamedType("tsa", univ.Any().subtype(explicitTag=_explicit(0))),
        namedtype.OptionalNamedType("extensions", AnySequenceOf().subtype(implicitTag=_implicit(1))))


# -- RFC 5652 (CMS SignedData, as far as a time-stamp token uses it) ---------------------------
class Attribute(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("attrType", univ.ObjectIdentifier()),
        namedtype.NamedType("attrValues", AnySetOf()))


class SignedAttributes(univ.SetOf):
    componentType = Attribute()


class IssuerAndSerialNumber(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("issuer", univ.Any()),
        namedtype.NamedType("serialNumber", univ.Integer()))


class SignerIdentifier(univ.Choice):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("issuerAndSerialNumber", IssuerAndSerialNumber()),
        namedtype.NamedType("subjectKeyIdentifier",
                            univ.OctetString().subtype(implicitTag=_implicit(0, False))))


class SignerInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("sid", SignerIdentifier()),
        namedtype.NamedType("digestAlgorithm", AlgorithmIdentifier()),
        namedtype.OptionalNamedType("signedAttrs", SignedAttributes().subtype(implicitTag=_implicit(0))),
        namedtype.NamedType("signatureAlgorithm", AlgorithmIdentifier()),
        namedtype.NamedType("signature", univ.OctetString()),
        namedtype.OptionalNamedType("unsignedAttrs", SignedAttributes().subtype(implicitTag=_implicit(1))))


class SignerInfos(univ.SetOf):
    componentType = SignerInfo()


class DigestAlgorithmIdentifiers(univ.SetOf):
    componentType = AlgorithmIdentifier()


class EncapsulatedContentInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("eContentType", univ.ObjectIdentifier()),
        namedtype.OptionalNamedType("eContent", univ.OctetString().subtype(explicitTag=_explicit(0))))


class SignedData(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("version", univ.Integer()),
        namedtype.NamedType("digestAlgorithms", DigestAlgorithmIdentifiers()),
        namedtype.NamedType("encapContentInfo", EncapsulatedContentInfo()),
        namedtype.OptionalNamedType("certificates", AnySetOf().subtype(implicitTag=_implicit(0))),
        namedtype.OptionalNamedType("crls", AnySetOf().subtype(implicitTag=_implicit(1))),
        namedtype.NamedType("signerInfos", SignerInfos()))


class TimeStampToken(univ.Sequence):
    """ContentInfo whose content is SignedData (the only form RFC 3161 allows)."""
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("contentType", univ.ObjectIdentifier()),
        namedtype.NamedType("content", SignedData().subtype(explicitTag=_explicit(0))))


# -- RFC 2634 / RFC 5035 ESS signing-certificate attributes (bind the token to its signer) -----
class ESSCertIDv2(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("hashAlgorithm", AlgorithmIdentifier()),   # DEFAULT sha256
        namedtype.NamedType("certHash", univ.OctetString()),
        namedtype.OptionalNamedType("issuerSerial", univ.Any()))


class ESSCertIDv2s(univ.SequenceOf):
    componentType = ESSCertIDv2()


class SigningCertificateV2(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("certs", ESSCertIDv2s()),
        namedtype.OptionalNamedType("policies", AnySequenceOf()))


class ESSCertID(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("certHash", univ.OctetString()),
        namedtype.OptionalNamedType("issuerSerial", univ.Any()))


class ESSCertIDs(univ.SequenceOf):
    componentType = ESSCertID()


class SigningCertificate(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("certs", ESSCertIDs()),
        namedtype.OptionalNamedType("policies", AnySequenceOf()))
