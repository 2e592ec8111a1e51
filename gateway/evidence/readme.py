"""The README of an evidence bundle: how a third party checks it without the gateway.

Written from the facts of the one message exported (its digests, entries, algorithms), so
every command can be pasted as is. Kept apart from ``export`` because it is prose.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SWA = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"


@dataclass
class SignedPart:
    """One signed SOAP message in the bundle (the message, or a receipt)."""
    prefix: str
    digest: str
    content_type: str
    signature_method: str | None = None
    references: list[tuple[str, str]] = field(default_factory=list)
    signer: x509.Certificate | None = None
    signer_file: str | None = None
    attachments: int = 0
    attachment_files: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


@dataclass
class BundleFacts:
    message_id: str
    direction: str
    partner_id: str
    status: str
    exporter: str
    exported_at: str
    message: SignedPart
    receipts: list[SignedPart]
    own_entries: list[dict]
    first_seq: int
    head_seq: int
    head_hash: str
    ca_files: list[str]
    tsa_files: list[str]
    timestamps: list[tuple[str, int, str, str | None]]


CHAIN_SCRIPT = '''\
    import hashlib, json
    doc = json.load(open("chain.json"))
    prev = doc["entries"][0]["prev_hash"]
    for e in doc["entries"]:
        fields = {k: v for k, v in e.items() if k != "entry_hash"}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        h = hashlib.sha256(text.encode("ascii")).hexdigest()
        assert h == e["entry_hash"], ("entry hash differs", e["seq"])
        assert e["prev_hash"] == prev, ("chain broken before", e["seq"])
        prev = h
    print("chain OK up to seq", doc["entries"][-1]["seq"], prev)
'''

XMLSEC_SCRIPT = '''\
    import base64, xmlsec
    from lxml import etree
    env = etree.parse("{prefix}/soap.xml").getroot()
    ds = "http://www.w3.org/2000/09/xmldsig#"
    sig = env.find(".//{{%s}}Signature" % ds)
    signed_info = sig.find("{{%s}}SignedInfo" % ds)
    c14n = etree.tostring(signed_info, method="c14n", exclusive=True)
    assert c14n == open("{prefix}/signedinfo.c14n", "rb").read()
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_file("{cert}", xmlsec.constants.KeyDataFormatCertPem)
    ctx.verify_binary(c14n, xmlsec.constants.TransformRsaSha256,
                      base64.b64decode(sig.findtext("{{%s}}SignatureValue" % ds)))   # raises if invalid
'''


def _subject(part: SignedPart) -> str:
    if part.signer is None:
        return "(no signer certificate found in the message)"
    return f"{part.signer.subject.rfc4514_string()}, issued by {part.signer.issuer.rfc4514_string()}"


def _signature_section(n: str, part: SignedPart, what: str) -> list[str]:
    p, cert = part.prefix, part.signer_file or f"certs/{part.prefix}-signer.pem"
    lines = [f"{n}. The {what}'s signature ({p}/soap.xml)", "",
             f"   Signer (from its wsse:BinarySecurityToken): {_subject(part)} -> {cert}",
             f"   SignatureMethod: {part.signature_method}", ""]
    if part.signature_method != RSA_SHA256:
        lines += ["   Note: not RSA-SHA256; use the openssl/xmlsec equivalents for this algorithm.", ""]
    lines += [
        f"   a) SignatureValue over SignedInfo. {p}/signedinfo.c14n is the exclusive XML",
        "      canonicalization (xml-exc-c14n#, no comments) of ds:SignedInfo and",
        f"      {p}/signature.bin the base64-decoded ds:SignatureValue; recompute both from",
        f"      {p}/soap.xml rather than trusting them (script below does). With openssl:",
        "",
        f"        openssl x509 -in {cert} -pubkey -noout > {p}-signer.pub",
        f"        openssl dgst -sha256 -verify {p}-signer.pub -signature {p}/signature.bin {p}/signedinfo.c14n",
        "                                              -> Verified OK",
        "",
        "      With libxmlsec1 (PyPI binding `xmlsec`, libxmlsec1 >= 1.2), from the bundle's root:",
        "",
        XMLSEC_SCRIPT.format(prefix=p, cert=cert).rstrip(), "",
        "   b) Each ds:Reference with URI=\"#id\": the element whose wsu:Id (" + NS_WSU + ")",
        "      is id, exclusive-c14n'ed, SHA-256, base64 = its DigestValue. References of this signature:", ""]
    for uri, value in part.references:
        lines.append(f"        {uri}  DigestValue {value}")
    lines.append("")
    if part.attachments == 0:
        lines += [
            "      This message has no attachments, so libxmlsec1 can verify the whole signature",
            "      (SignedInfo and every reference) in one go: register wsu:Id as an ID attribute,",
            "      e.g. in Python `ctx.register_id(element, \"Id\", \"" + NS_WSU + "\")`",
            "      for every element carrying wsu:Id, then `ctx.verify(sig)`; or with the command line:",
            f"        xmlsec1 --verify --pubkey-cert-pem {cert} \\",
            "          --id-attr:Id Messaging --id-attr:Id Body " + f"{p}/soap.xml",
            "      (the xmlsec1 syntax may need the elements' namespaces on your version).", ""]
    if part.attachment_files:
        lines += [
            "   c) Each ds:Reference with URI=\"cid:...\" signs a MIME attachment through the WSS SwA",
            "      Attachment-Content-Signature-Transform (" + SWA + "):",
            "      the digest is SHA-256 of the attachment content octets as they are for binary types",
            "      (application/gzip, application/octet-stream, PDF), of its exclusive c14n for XML types,",
            "      and of its text with CRLF line ends for other text/* types. libxmlsec1 does not",
            "      implement this transform, so compute it with openssl. On the wire (raw.bin) the",
            "      attachment is encrypted for the recipient (SwA Attachment-Content-Only); the bundle",
            "      carries the signed plaintext, which proves itself: its digest equals the DigestValue",
            "      inside the signed SignedInfo.", ""]
        for cid, (name, mime) in part.attachment_files.items():
            if name is None:
                lines.append(f"        cid:{cid}: plaintext not included (not reproducible from the store; purged?)")
            else:
                how = "exclusive-c14n it first, then hash" if mime and "xml" in mime else "the octets as they are"
                lines.append(f"        cid:{cid} ({mime}), {how}:")
                lines.append(f"          openssl dgst -sha256 -binary {name} | openssl base64")
        lines.append("")
    return lines


def render_readme(f: BundleFacts) -> str:
    way = "sent to" if f.direction == "out" else "received from"
    r0 = f.receipts[0] if f.receipts else None
    lines = [
        f"Non-repudiation evidence for ebMS message {f.message_id}",
        "=" * 72, "",
        f"Message {way} partner {f.partner_id}; status {f.status}. Exported by {f.exporter} at {f.exported_at}.",
        "Everything below can be checked without the gateway, with openssl, libxmlsec1 and any",
        "SHA-256 + JSON tool (Python 3 shown). Run the commands from the directory this file is in.", "",
        "Files", "-----",
        "  message/raw.bin           the message exactly as " + ("sent (HTTP body)" if f.direction == "out" else "received (HTTP body)"),
        "  message/content-type.txt  its HTTP Content-Type (MIME multipart/related boundary)",
        "  message/soap.xml          the root MIME part of raw.bin: the signed SOAP envelope",
        "  message/signedinfo.c14n   canonical ds:SignedInfo (convenience, recompute it)",
        "  message/signature.bin     decoded ds:SignatureValue (convenience)",
        "  attachments/              signed plaintext of the attachments (self-proving by digest)",
        "  receipt/...               the signed ebMS receipt, same layout (receipt-2/ etc. if several)",
        "  certs/                    signer certificates (from the messages themselves) and CA certificates",
        "  chain.json                evidence log entries from this message's first entry to the head",
        "  timestamps/               RFC 3161 time-stamp tokens over later chain heads (if any)",
        "  manifest.json             SHA-256 of every file in this bundle", "",
        "1. The bytes are the ones the evidence log recorded", "",
        "     openssl dgst -sha256 message/raw.bin",
        f"       -> {f.message.digest}",
    ]
    for r in f.receipts:
        lines += [f"     openssl dgst -sha256 {r.prefix}/raw.bin", f"       -> {r.digest}"]
    lines += ["",
              "   These must equal message_digest / receipt_digest of this message's entries in chain.json:"]
    for e in f.own_entries:
        lines.append(f"     seq {e['seq']}  {e['kind']:<17} {e['time']}  message {e['message_digest']}"
                     + (f"  receipt {e['receipt_digest']}" if e["receipt_digest"] else ""))
    lines += ["",
              "   message/soap.xml must occur byte for byte inside message/raw.bin (it is its first part):",
              "     python3 -c \"print(open('message/soap.xml','rb').read() in open('message/raw.bin','rb').read())\"",
              "",
              "2. The chain entries are unaltered and linked", "",
              "   Each entry's entry_hash is the SHA-256 (hex) of the canonical serialization of all its",
              "   other fields: a JSON object with exactly the keys seq, time, kind, direction, message_id,",
              "   partner_id, message_digest, receipt_digest, data, prev_hash; keys sorted; no whitespace",
              "   (separators ',' and ':'); ASCII only (other characters as \\uXXXX escapes, as Python's",
              "   json.dumps(ensure_ascii=True) writes them); absent values as null; seq an integer; time",
              "   UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ; data a string (itself canonical JSON) or null.",
              "   prev_hash is the entry_hash of the entry before it (64 zeros for the very first entry).",
              "",
              CHAIN_SCRIPT.rstrip(), "",
              f"   The entries run from seq {f.first_seq} to the head at export time, seq {f.head_seq}:",
              f"   {f.head_hash}",
              (f"   seq {f.first_seq} links to seq {f.first_seq - 1} (not included) through its prev_hash."
               if f.first_seq > 1 else "   seq 1 is the first entry of the log: its prev_hash is 64 zeros."),
              "   Anyone who obtained a later head hash or time-stamp from the operator can check that this",
              "   chain leads to it.",
              ""]
    lines += ["3. Time-stamps", ""]
    if f.timestamps:
        ca = f.tsa_files[0] if f.tsa_files else "<the TSA's CA certificate>"
        for name, seq, value, gen in f.timestamps:
            lines += [f"   {name}: RFC 3161 token over entry seq {seq} (genTime {gen}):",
                      f"     openssl ts -verify -token_in -in {name} -digest {value} -CAfile {ca}",
                      "       -> Verification: OK", ""]
        lines += ["   A token over seq N proves that entry, and every entry it links back to, existed at genTime.", ""]
    else:
        lines += ["   None covers these entries yet (run `swgw evidence timestamp` and export again).", ""]
    lines += ["4. Certificates", ""]
    for part in [f.message, *f.receipts]:
        if part.signer_file:
            lines.append(f"     openssl x509 -in {part.signer_file} -noout -subject -issuer -serial -dates "
                         "-fingerprint -sha256")
    if f.ca_files:
        lines.append("")
        for part in [f.message, *f.receipts]:
            if part.signer_file:
                lines.append(f"     openssl verify -CAfile {f.ca_files[0]} {part.signer_file}")
        lines += ["       -> OK  (add -attime <seconds since 1970> to check at the entry's time;",
                  f"          other CA certificates: {', '.join(f.ca_files[1:]) or 'none'})"]
    else:
        lines.append("   No CA certificate was configured for export ([evidence] ca_certs): obtain the issuers.")
    lines += ["   The partner's signer must be the certificate agreed with it for message signing.", ""]
    lines += _signature_section("5", f.message, "message")
    for i, r in enumerate(f.receipts):
        lines += _signature_section(f"{6 + i}", r, "receipt")
    if r0 is not None:
        lines += ["   The receipt's eb:Receipt/ebbp:NonRepudiationInformation repeats ds:Reference elements: their",
                  "   URIs and DigestValues must equal the message's references listed in step 5 (the signer of",
                  "   the receipt acknowledged exactly the content signed in the message), and its",
                  f"   eb:RefToMessageId must be {f.message_id}.", ""]
    else:
        lines += ["   No receipt is stored for this message.", ""]
    return "\n".join(lines) + "\n"
