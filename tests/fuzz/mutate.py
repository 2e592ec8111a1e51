"""Structural and raw mutations of a valid AS4 message, driven by a :class:`Draw`.

Three layers, as a hostile or broken peer could get them wrong: the XML of the SOAP
envelope (eb:Messaging, wsse:Security and everything under it: elements deleted,
duplicated, moved, renamed, wrapped; attributes, ids, algorithm URIs, text and base64
content changed), the MIME packaging (Content-Type parameters, part headers, transfer
encodings, boundaries, line ends, part order) and finally the raw bytes.
"""
from __future__ import annotations

import base64
import binascii
import copy
import gzip
from dataclasses import dataclass, field

from lxml import etree

from tests.fuzz.draw import Draw

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "eb": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsse11": "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
    "dsig11": "http://www.w3.org/2009/xmldsig11#",
    "dsig-more": "http://www.w3.org/2021/04/xmldsig-more#",
    "ec": "http://www.w3.org/2001/10/xml-exc-c14n#",
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
    "soap11": "http://schemas.xmlsoap.org/soap/envelope/",
    "foreign": "urn:fuzz:foreign",
}
_LOCALS = {
    "env": "Envelope Header Body Fault",
    "eb": "Messaging UserMessage SignalMessage MessageInfo Timestamp MessageId RefToMessageId PartyInfo From To "
          "PartyId Role CollaborationInfo AgreementRef Service Action ConversationId MessageProperties Property "
          "PayloadInfo PartInfo PartProperties Schema Description Receipt Error PullRequest",
    "wsse": "Security BinarySecurityToken SecurityTokenReference Reference KeyIdentifier",
    "wsu": "Timestamp Created Expires",
    "ds": "Signature SignedInfo CanonicalizationMethod SignatureMethod Reference Transforms Transform DigestMethod "
          "DigestValue SignatureValue KeyInfo X509Data X509Certificate X509IssuerSerial X509IssuerName "
          "X509SerialNumber KeyValue Object",
    "xenc": "EncryptedKey EncryptedData EncryptionMethod CipherData CipherValue CipherReference Transforms "
            "ReferenceList DataReference AgreementMethod OriginatorKeyInfo RecipientKeyInfo OAEPparams",
    "xenc11": "MGF KeyDerivationMethod",
    "dsig11": "DEREncodedKeyValue ECKeyValue NamedCurve PublicKey",
    "dsig-more": "HKDFParams PRF Salt Info KeyLength Specified",
    "ec": "InclusiveNamespaces",
    "ebbp": "NonRepudiationInformation MessagePartNRInformation",
    "soap11": "Envelope",
    "foreign": "Thing",
}
TAGS = [f"{{{NS[p]}}}{local}" for p, names in _LOCALS.items() for local in names.split()]
ATTRIBUTES = ["Id", "ID", f"{{{NS['wsu']}}}Id", "{http://www.w3.org/XML/1998/namespace}id", "URI", "Algorithm",
              "ValueType", "EncodingType", "href", "type", "name", "Type", "MimeType", "PrefixList", "mpc",
              "pmode", f"{{{NS['env']}}}mustUnderstand", f"{{{NS['env']}}}role", "errorCode", "severity"]
ALGORITHMS = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519", "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/10/xml-exc-c14n#", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform",
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform",
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only",
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
    "http://www.w3.org/2009/xmlenc11#rsa-oaep", "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
    "http://www.w3.org/2009/xmlenc11#mgf1sha256", "http://www.w3.org/2009/xmlenc11#mgf1sha1",
    "http://www.w3.org/2021/04/xmldsig-more#x25519", "http://www.w3.org/2009/xmlenc11#ECDH-ES",
    "http://www.w3.org/2021/04/xmldsig-more#hkdf", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    "http://www.w3.org/2001/04/xmlenc#kw-aes128", "urn:oid:1.2.840.10045.3.1.7", "urn:oid:1.3.101.110",
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3",
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary",
]
WORDS = ["", " ", "0", "1", "-1", "16", "128", "true", "false", "maybe", "NaN", "1e309", "0x10",
         "18446744073709551616", "9" * 40, "1" * 5000, "A" * 70000, "é", "\u202e", "\U0001f600", "\ufffd",
         "#", "#xpointer(/)", "#xpointer(id('x'))", "cid:", "cid:%", "cid:%00", "cid:%zz", "cid:a b", "http://x/",
         "file:///etc/passwd", "<>", "a@b", "!!!", "AAAA", "AA==", "====", "#default", "#default ds wsse env",
         "bogus ", "2024-01-01T00:00:00Z", "2024-13-45T25:61:61Z", "99999-01-01T00:00:00Z",
         "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
         "2024-01-01T24:00:00Z", "2024-02-30T00:00:00Z", "failure", "warning", "EBMS:0004", "ebms",
         "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver", "urn:test:service:sps",
         "DeliverCertificate", "urn:test:agreement", "AA-NSW", "BB-NSW", "CC-NSW", "application/gzip",
         "application/xml", "text/xml", "application/soap+xml", "CN=x,O=y", "CN=\\,,O=", "-5"]


@dataclass
class MimeModel:
    """A multipart/related message as pieces: Content-Type parameters and parts with headers."""

    media: str
    params: list[list[str]]
    parts: list[list]            # [headers: list[[name, value]], data: bytes]
    boundary: str
    eol: bytes = b"\r\n"
    preamble: bytes = b""
    epilogue: bytes = b""
    close: bool = True
    bare: bool = False           # send the SOAP part alone as application/soap+xml
    header_glue: list[bytes] = field(default_factory=lambda: [b": "])

    def encode(self) -> tuple[str, bytes]:
        if self.bare:
            return "application/soap+xml; charset=UTF-8", self.parts[0][1] if self.parts else b""
        ctype = self.media + "".join(f'; {k}="{v}"' if q else f"; {k}={v}" for k, v, q in
                                     ((p[0], p[1], len(p) < 3 or p[2]) for p in self.params))
        delim = b"--" + self.boundary.encode("latin-1", "replace")
        out = bytearray(self.preamble)
        for headers, data in self.parts:
            out += delim + self.eol
            for name, value in headers:
                out += name.encode("latin-1", "replace") + self.header_glue[0] + \
                    value.encode("latin-1", "replace") + self.eol
            out += self.eol + data + self.eol
        if self.close:
            out += delim + b"--" + self.eol
        out += self.epilogue
        return ctype, bytes(out)


def model_of(seed) -> MimeModel:
    root_headers = [["Content-Type", "application/soap+xml; charset=UTF-8"],
                    ["Content-Transfer-Encoding", "binary"], ["Content-ID", f"<{seed.root_cid}>"]]
    parts = [[root_headers, seed.soap]]
    for p in seed.attachments:
        parts.append([[["Content-Type", p.content_type], ["Content-Transfer-Encoding", "binary"],
                       ["Content-ID", f"<{p.content_id}>"]], p.data])
    params = [["boundary", seed.boundary], ["type", "application/soap+xml"], ["start", f"<{seed.root_cid}>"]]
    return MimeModel("multipart/related", params, parts, seed.boundary, bare=not seed.attachments)


# -- values -----------------------------------------------------------------------------
def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _ids(root: etree._Element) -> list[str]:
    return [v for e in _elements(root) for a in ("Id", f"{{{NS['wsu']}}}Id") if (v := e.get(a))]


def _b64_variant(d: Draw, text: str | None) -> str:
    try:
        raw = base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    op = d.below(6)
    if op == 0 and raw:
        i = d.below(len(raw))
        raw = raw[:i] + bytes([raw[i] ^ (1 + d.byte() % 255)]) + raw[i + 1:]
    elif op == 1:
        raw = raw[:d.below(len(raw) + 1)]
    elif op == 2:
        raw = raw + d.blob(64)
    elif op == 3:
        raw = d.blob(300)
    elif op == 4 and raw:
        i, j = sorted((d.below(len(raw)), d.below(len(raw))))
        raw = raw[:i] + raw[j:]
    out = base64.b64encode(raw).decode("ascii")
    if d.below(4) == 0:
        out = "\n".join(out[i:i + 64] for i in range(0, len(out), 64))
    return out


def value(d: Draw, root: etree._Element, content_ids: list[str], current: str | None = None) -> str:
    """A value likely to matter somewhere: ids and cids of this message, algorithm URIs,
    boundary numbers and dates, base64 variants of the current content, plain words."""
    kind = d.below(8)
    ids = _ids(root)
    if kind == 0 and ids:
        return "#" + d.pick(ids)
    if kind == 1 and content_ids:
        return d.pick(["cid:", "<", ""]) + d.pick(content_ids) + d.pick(["", ">", "x", "%40"])
    if kind == 2:
        return d.pick(ALGORITHMS)
    if kind == 3:
        return _b64_variant(d, current)
    if kind == 4 and current:
        cut = d.below(len(current) + 1)
        return current[:cut] + d.pick(WORDS)[:40] + current[cut:]
    if kind == 5:
        return d.blob(40).decode("latin-1").translate(_XML_SAFE)
    return d.pick(WORDS)


# Characters XML 1.0 cannot carry (lxml refuses them in text and attributes).
_XML_SAFE = {c: "?" for c in [*range(0, 9), 11, 12, *range(14, 32)]}


# -- XML layer --------------------------------------------------------------------------
def _pick_element(d: Draw, root: etree._Element, focus: str | None) -> etree._Element:
    elements = _elements(root)
    if focus and d.below(4) != 0:
        scoped = [e for e in elements if any(a.tag == focus for a in e.iterancestors()) or e.tag == focus]
        if scoped:
            return d.pick(scoped)
    return d.pick(elements)


def mutate_tree(d: Draw, root: etree._Element, content_ids: list[str], *, focus: str | None = None) -> None:
    """One structural change to the envelope (``focus``: a tag whose subtree is favoured)."""
    el = _pick_element(d, root, focus)
    parent = el.getparent()
    op = d.below(14)
    if op == 0 and parent is not None:
        parent.remove(el)
    elif op == 1 and parent is not None:
        el.addnext(copy.deepcopy(el))
    elif op == 2 and parent is not None:
        target = d.pick(_elements(root))
        if not any(t is el for t in target.iterancestors()) and target is not el:
            target.insert(d.below(len(target) + 1), el)
    elif op == 3:
        el.text = value(d, root, content_ids, el.text)
    elif op == 4:
        name = d.pick(list(el.attrib) or ATTRIBUTES) if d.bool() else d.pick(ATTRIBUTES)
        el.set(name, value(d, root, content_ids, el.get(name)))
    elif op == 5 and el.attrib:
        del el.attrib[d.pick(list(el.attrib))]
    elif op == 6:
        el.tag = d.pick(TAGS)
    elif op == 7:
        new = etree.SubElement(el, d.pick(TAGS))
        if d.bool():
            new.text = value(d, root, content_ids)
        el.insert(d.below(len(el)), new)
    elif op == 8 and parent is not None:
        wrapper = etree.Element(d.pick(TAGS))
        el.addprevious(wrapper)
        wrapper.append(el)
    elif op == 9:
        el.text = _b64_variant(d, el.text)
    elif op == 10:
        ids = _ids(root)
        if ids:
            other = d.pick(_elements(root))
            other.set(d.pick(["Id", f"{{{NS['wsu']}}}Id", "ID"]), d.pick(ids))
    elif op == 11 and parent is not None:
        el.addprevious(etree.Comment(d.pick([" c ", "x", ""])) if d.bool()
                       else etree.ProcessingInstruction("fuzz", "data"))
    elif op == 12:
        for c in list(el):
            el.remove(c)
    elif op == 13:
        el.tail = d.pick(["", " ", "\n", "text"])


def serialize(d: Draw, root: etree._Element) -> bytes:
    form = d.below(8)
    if form == 1:
        return etree.tostring(root, encoding="UTF-8")
    if form == 2:
        return etree.tostring(root, xml_declaration=True, encoding="UTF-16")
    if form == 3:
        return b"\xef\xbb\xbf" + etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if form == 4:
        return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")
    if form == 5:
        return d.pick([b'<?xml version="1.1"?>', b'<?xml version="1.0" encoding="EBCDIC"?>',
                       b'<?xml version="1.0" encoding="x-bogus"?>', b"<!DOCTYPE x>", b"<!-- c -->", b"  "]) + \
            etree.tostring(root, encoding="UTF-8")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# -- MIME layer -------------------------------------------------------------------------
HEADER_VALUES = ["", "<>", "<", ">", "< >", "application/gzip", "application/xml", "text/xml; charset=x",
                 "application/soap+xml", "multipart/related", "binary", "base64", "quoted-printable", "7bit",
                 "8bit", "x-uuencode", "BASE64", " binary ", "a" * 300, "<a@b> <c@d>"]


def _content_ids(model: MimeModel) -> list[str]:
    out = []
    for headers, _data in model.parts:
        out += [v.strip("<> ") for k, v in headers if k.lower() == "content-id"]
    return out


def mutate_mime(d: Draw, model: MimeModel) -> None:
    op = d.below(10)
    cids = _content_ids(model)
    if op == 0:
        if model.params and d.bool():
            p = d.pick(model.params)
            p[1] = d.pick([*HEADER_VALUES, *("<" + c + ">" for c in cids), model.boundary + "x",
                           model.boundary[:-1], "", "é" * 3, "\\", '"', "a" * 201])
            if len(p) < 3:
                p.append(d.bool())
        elif model.params and d.bool():
            model.params.pop(d.below(len(model.params)))
        else:
            model.params.insert(d.below(len(model.params) + 1),
                                [d.pick(["boundary", "start", "type", "charset", "start-info", "x"]),
                                 d.pick([*HEADER_VALUES, model.boundary]), d.bool()])
        if d.below(8) == 0:
            model.media = d.pick(["multipart/mixed", "MULTIPART/RELATED", "text/xml", "application/soap+xml",
                                  "", "multipart/related ", "application/octet-stream"])
    elif op == 1 and model.parts:
        headers = d.pick(model.parts)[0]
        sub = d.below(5)
        if sub == 0 and headers:
            h = d.pick(headers)
            h[1] = d.pick([*HEADER_VALUES, *("<" + c + ">" for c in cids), *cids])
        elif sub == 1 and headers:
            headers.pop(d.below(len(headers)))
        elif sub == 2 and headers:
            headers.insert(d.below(len(headers) + 1), list(d.pick(headers)))
        elif sub == 3:
            headers.insert(d.below(len(headers) + 1),
                           [d.pick(["Content-ID", "Content-Type", "Content-Transfer-Encoding", "X-Fuzz", "Bad Name",
                                    " Folded", "\tFolded", ""]), d.pick(HEADER_VALUES)])
        elif headers:
            h = d.pick(headers)
            h[1] = h[1] + d.pick(["\r\n continued", "\n\tmore", "\x01", "\x7f", "\xe9", "\x00"])
    elif op == 2 and model.parts:
        part = d.pick(model.parts)
        headers, data = part
        headers[:] = [h for h in headers if h[0].lower() != "content-transfer-encoding"]
        enc = d.below(4)
        if enc == 0:
            headers.append(["Content-Transfer-Encoding", "base64"])
            part[1] = base64.encodebytes(data) if d.bool() else base64.b64encode(data) + d.pick([b"", b"!", b"="])
        elif enc == 1:
            headers.append(["Content-Transfer-Encoding", "quoted-printable"])
            part[1] = binascii.b2a_qp(data) if d.bool() else data + b"=\n=ZZ"
        else:
            headers.append(["Content-Transfer-Encoding", d.pick(HEADER_VALUES)])
    elif op == 3 and model.parts:
        i = d.below(len(model.parts))
        sub = d.below(3)
        if sub == 0:
            model.parts.pop(i)
        elif sub == 1:
            model.parts.insert(d.below(len(model.parts) + 1), copy.deepcopy(model.parts[i]))
        else:
            j = d.below(len(model.parts))
            model.parts[i], model.parts[j] = model.parts[j], model.parts[i]
    elif op == 4:
        model.eol = d.pick([b"\n", b"\r\n", b"\r", b" \r\n", b"\t\n"])
    elif op == 5:
        model.preamble = d.pick([b"", b"preamble\r\n", b"--" + model.boundary.encode() + b"x\r\n", d.blob(64)])
        model.epilogue = d.pick([b"", b"epilogue", b"--" + model.boundary.encode() + b"--\r\n", d.blob(64)])
        model.close = d.below(4) != 0
    elif op == 6 and model.parts:
        part = d.pick(model.parts)
        part[1] = d.pick([b"", part[1][:d.below(len(part[1]) + 1)], d.blob(200),
                          gzip.compress(d.blob(100), mtime=0), b"\x1f\x8b" + d.blob(50),
                          part[1] + b"\r\n--" + model.boundary.encode() + b"\r\n"])
    elif op == 7:
        model.bare = not model.bare
    elif op == 8:
        model.header_glue = [d.pick([b":", b": ", b" : ", b":\t", b"\xe9: "])]
    elif op == 9:
        model.boundary = d.pick([model.boundary + " ", "", "a" * 71, "é", model.boundary.upper()])


# -- raw layer --------------------------------------------------------------------------
def mutate_bytes(d: Draw, data: bytes) -> bytes:
    if not data:
        return d.blob(64)
    op = d.below(5)
    i = d.below(len(data))
    if op == 0:
        return data[:i] + bytes([data[i] ^ (1 << d.below(8))]) + data[i + 1:]
    if op == 1:
        return data[:i] + d.blob(32) + data[i:]
    if op == 2:
        return data[:i] + data[i + 1 + d.below(256):]
    if op == 3:
        return data[:i]
    j = min(len(data), i + 1 + d.below(512))
    return data[:j] + data[i:j] + data[j:]


def mutate_message(d: Draw, seed, *, xml: bool = True, mime: bool = True) -> tuple[str, bytes]:
    """(Content-Type, body): the seed after a few drawn changes on each layer."""
    mode = d.below(16)
    if mode == 0:   # raw: the fuzzer's bytes are the body
        ctype = d.pick([seed.content_type, "application/soap+xml", "multipart/related; boundary=b",
                        d.blob(80).decode("latin-1")])
        return ctype, d.rest()
    model = model_of(seed)
    if xml:
        root = etree.fromstring(seed.soap)
        cids = [p.content_id for p in seed.attachments]
        focus = d.pick([None, f"{{{NS['wsse']}}}Security", f"{{{NS['eb']}}}Messaging",
                        f"{{{NS['xenc']}}}EncryptedKey", f"{{{NS['ds']}}}SignedInfo", f"{{{NS['ds']}}}KeyInfo"])
        for _ in range(d.below(5)):
            mutate_tree(d, root, cids, focus=focus)
        model.parts[0][1] = serialize(d, root)
    if mime:
        for _ in range(1 + d.below(4) if mode < 10 else 0):
            mutate_mime(d, model)
    ctype, body = model.encode()
    for _ in range(1 + d.below(3) if mode in (1, 2) else 0):
        body = mutate_bytes(d, body)
    if mode == 3:
        ctype = mutate_bytes(d, ctype.encode("latin-1")).decode("latin-1")
    return ctype, body
