"""XML namespace URIs and fixed identifiers of SOAP 1.2, ebMS 3.0 and AS4.

Kept in one place so builders, parsers and the crypto layer agree on every URI
and prefix; a typo in a namespace silently produces a different element.
"""

from __future__ import annotations

from typing import Final

SOAP12_NS: Final = "http://www.w3.org/2003/05/soap-envelope"
#: Only used to recognise (and reject with a clear message) SOAP 1.1 envelopes.
SOAP11_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
EBMS_NS: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
WSU_NS: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
)
EBBP_NS: Final = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"
DS_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XML_NS: Final = "http://www.w3.org/XML/1998/namespace"

#: Prefixes used when the gateway serialises an envelope.
NSMAP: Final[dict[str, str]] = {
    "env": SOAP12_NS,
    "eb": EBMS_NS,
    "wsu": WSU_NS,
}

#: ebMS 3.0 defaults (Core sec 4.3 and 5.2.2): used when the PMode names none.
DEFAULT_MPC: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC"
DEFAULT_ROLE: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultRole"
DEFAULT_SERVICE: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"
TEST_ACTION: Final = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"

#: AS4 compression (AS4 profile sec 3.1): the only CompressionType value defined.
GZIP_MIME_TYPE: Final = "application/gzip"
SOAP12_MIME_TYPE: Final = "application/soap+xml"


def qn(ns: str, local: str) -> str:
    """Clark notation ``{ns}local``; lxml's native way to name an element."""
    return f"{{{ns}}}{local}"


def env(local: str) -> str:
    """Qualified name in the SOAP 1.2 envelope namespace."""
    return qn(SOAP12_NS, local)


def eb(local: str) -> str:
    """Qualified name in the ebMS 3.0 core namespace."""
    return qn(EBMS_NS, local)


def wsu(local: str) -> str:
    """Qualified name in the WS-Security utility namespace."""
    return qn(WSU_NS, local)


def ebbp(local: str) -> str:
    """Qualified name in the ebBP signals namespace."""
    return qn(EBBP_NS, local)


def ds(local: str) -> str:
    """Qualified name in the XML Signature namespace."""
    return qn(DS_NS, local)


WSU_ID: Final = wsu("Id")
XML_LANG: Final = qn(XML_NS, "lang")
