"""libxmlsec1 (PyPI ``xmlsec``) as the independent judge: keys, id registration, digests."""
from __future__ import annotations

import copy

import xmlsec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from lxml import etree

from crypto.wssec_common import (
    NS_DS,
    NS_WSSE,
    NS_WSU,
    WSU_ID,
)

C = xmlsec.constants


SWA_SIGNATURE_TRANSFORM = (
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"
)


def private_pem(identity) -> bytes:
    return identity.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def cert_key(identity):
    """xmlsec key holding only the public key of the certificate."""
    return xmlsec.Key.from_memory(identity.cert.public_bytes(Encoding.PEM), C.KeyDataFormatCertPem)


def signing_key(identity):
    key = xmlsec.Key.from_memory(private_pem(identity), C.KeyDataFormatPem)
    key.load_cert_from_memory(identity.cert.public_bytes(Encoding.PEM), C.KeyDataFormatCertPem)
    return key


def register_wsu_ids(ctx, root) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and element.get(WSU_ID):
            ctx.register_id(element, "Id", NS_WSU)


def xmlsec_digest(envelope, signer, uri: str, transform_xpath: str | None = None) -> str:
    """Have libxmlsec1 compute the SHA-256 digest (after exc-c14n) of what ``uri``
    (optionally filtered by an XPath transform) selects, by signing a throwaway
    one-reference template placed inside a copy of the envelope."""
    doc = copy.deepcopy(envelope)
    security = doc.find(f".//{{{NS_WSSE}}}Security")
    template = xmlsec.template.create(doc, C.TransformExclC14N, C.TransformRsaSha256, ns="ds")
    reference = xmlsec.template.add_reference(template, C.TransformSha256, uri=uri)
    if transform_xpath is not None:
        xpath_transform = xmlsec.template.add_transform(reference, C.TransformXPath)
        etree.SubElement(
            xpath_transform, f"{{{NS_DS}}}XPath", nsmap={"ds": NS_DS}
        ).text = transform_xpath
    xmlsec.template.add_transform(reference, C.TransformExclC14N)
    security.append(template)
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(private_pem(signer), C.KeyDataFormatPem)
    register_wsu_ids(ctx, doc)
    ctx.sign(template)
    return reference.findtext(f"{{{NS_DS}}}DigestValue").strip()
