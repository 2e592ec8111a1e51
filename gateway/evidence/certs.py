"""The certificate that signed a stored SOAP envelope, taken from the envelope itself.

The evidence bundle must name the signer as the message carried it (BinarySecurityToken),
not as our partner config says today: configs change, the stored bytes do not.
"""
from __future__ import annotations

import base64

from cryptography import x509
from lxml import etree

NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def parse_soap(soap: bytes) -> etree._Element:
    """Parse stored SOAP bytes with no DTDs, entities or network (they came from a partner)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    return etree.fromstring(soap, parser)


def signature_element(envelope: etree._Element) -> etree._Element | None:
    """The WS-Security ds:Signature (in a wsse:Security header)."""
    for sig in envelope.iter(f"{{{NS_DS}}}Signature"):
        if sig.getparent() is not None and sig.getparent().tag == f"{{{NS_WSSE}}}Security":
            return sig
    return None


def signer_certificate(envelope: etree._Element) -> x509.Certificate | None:
    """The certificate the signature's KeyInfo points at (BST reference, or an inline X509Certificate)."""
    sig = signature_element(envelope)
    if sig is None:
        return None
    key_info = sig.find(f"{{{NS_DS}}}KeyInfo")
    if key_info is None:
        return None
    ref = key_info.find(f"{{{NS_WSSE}}}SecurityTokenReference/{{{NS_WSSE}}}Reference")
    if ref is not None and (ref.get("URI") or "").startswith("#"):
        wanted = ref.get("URI")[1:]
        for bst in envelope.iter(f"{{{NS_WSSE}}}BinarySecurityToken"):
            if bst.get(f"{{{NS_WSU}}}Id") == wanted:
                return x509.load_der_x509_certificate(base64.b64decode("".join((bst.text or "").split())))
    inline = key_info.find(f".//{{{NS_DS}}}X509Certificate")
    if inline is not None:
        return x509.load_der_x509_certificate(base64.b64decode("".join((inline.text or "").split())))
    return None
