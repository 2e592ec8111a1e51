"""A receiving gateway and valid seed messages for the inbound fuzz targets.

The receiver is the real thing (``gateway.daemon.Gateway`` from a harness config tree,
SQLite file store, NSW inbox folder); only the HTTP layer is left out, since it hands
``InboundPipeline.process`` the Content-Type and body unchanged. Seeds are valid AS4
messages signed and encrypted with keys generated for this run (no key material is kept in
the repository), so the corpus holds *mutation recipes* that are applied to fresh seeds,
never messages.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from crypto import Part, encrypt_parts, sign_message, suite
from crypto.devpki import ensure_party
from crypto.keys import load_certificate, load_private_key
from gateway import as4
from gateway.inbound import InboundLimits, InboundPipeline
from tests.harness import add_partner, reserve_port, make_pki, write_pair

PARTY_TYPE = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
EB = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"
DOCUMENT = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc xmlns="urn:test:doc"><item>fuzz</item></doc>\n'
EDDSA = "edelivery-as4-2.0-eddsa"
#: Small enough that a fuzz input can exceed it (413), large enough for every seed.
MAX_MESSAGE_BYTES = 256 * 1024


@dataclass
class Seed:
    """One valid message, kept both as wire bytes and in the pieces mutators work on."""

    name: str
    content_type: str
    body: bytes
    soap: bytes
    attachments: list[as4.MimePart]
    root_cid: str
    boundary: str


@dataclass
class InboundEnv:
    """The receiver (bb-nsw) with two partners: aa-nsw on the 1.15 suite (RSA) and cc-nsw on
    eDelivery AS4 2.0 EdDSA/X25519, so both key transport and key agreement are fuzzed."""

    home: Path
    pki: Path
    gateway: object                       # gateway.daemon.Gateway
    pipeline: InboundPipeline
    seeds: list[Seed] = field(default_factory=list)
    security_policies: dict = field(default_factory=dict)     # seed name -> SecurityPolicy
    trusted: dict = field(default_factory=dict)               # seed name -> signer certificates
    decryption_keys: dict = field(default_factory=dict)       # seed name -> our private key

    def close(self) -> None:
        self.gateway.store.close()


def _user_message(mid: str, from_id: str, infos: list[as4.PartInfo]) -> as4.UserMessage:
    return as4.UserMessage(
        message_id=mid, timestamp=dt.datetime.now(dt.timezone.utc), ref_to_message_id=None,
        from_party=as4.Party((as4.PartyId(from_id, PARTY_TYPE),), EB + "initiator"),
        to_party=as4.Party((as4.PartyId("BB-NSW", PARTY_TYPE),), EB + "responder"),
        agreement_ref="urn:test:agreement", agreement_type=None, pmode=None,
        service="urn:test:service:sps", service_type=None, action="DeliverCertificate", conversation_id=mid,
        message_properties=(as4.Property("originalSender", from_id), as4.Property("finalRecipient", "BB-NSW"),
                            as4.Property("nswReference", "FUZZ")),
        payloads=tuple(infos))


def _seed(name: str, from_id: str, sign_key, sign_cert, enc_cert, policy, *, body_payload: bool = False,
          attachments: int = 1) -> Seed:
    mid = f"fuzz-seed-{name}@{from_id.lower()}.swgw"
    parts = [Part(f"part-{i}-{name}@fuzz.swgw", "application/gzip", as4.gzip_compress(DOCUMENT))
             for i in range(attachments)]
    infos = [as4.PartInfo("cid:" + p.content_id, (as4.Property("MimeType", "application/xml"),
                                                  as4.Property("CompressionType", "application/gzip")))
             for p in parts]
    body = None
    if body_payload:
        body = etree.fromstring(b'<doc xmlns="urn:test:doc"><item>in body</item></doc>')
        infos.insert(0, as4.PartInfo(None, (as4.Property("MimeType", "application/xml"),)))
    envelope = as4.build_user_message(_user_message(mid, from_id, infos), body)
    sign_message(envelope, parts, sign_key, sign_cert, policy)
    if parts:
        parts = encrypt_parts(envelope, parts, enc_cert, policy)
    soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    mime_parts = [as4.MimePart(p.content_id, p.mime_type, p.data) for p in parts]
    boundary, root = f"MIMEBoundary_fuzz_{name}", f"root-{name}@fuzz.swgw"
    if mime_parts:
        ctype, wire = as4.encode_multipart(soap, mime_parts, boundary, root_content_id=root)
    else:
        ctype, wire = "application/soap+xml; charset=UTF-8", soap
    return Seed(name, ctype, wire, soap, mime_parts, root, boundary)


def build_env(home: Path, pki: Path | None = None) -> InboundEnv:
    """Config tree, receiver and seeds under ``home`` (a fresh PKI unless one is given)."""
    from gateway.daemon import Gateway   # late: the fuzz runner instruments gateway.* on import
    home.mkdir(parents=True, exist_ok=True)
    pki = pki or make_pki(home / "pki")
    _a, b = write_pair(home, pki)
    add_partner(b, pki, "cc-nsw", reserve_port(), suite=EDDSA)
    cfg = b.config_path.read_text().replace("[listen]\n", f"[listen]\nmax_message_bytes = {MAX_MESSAGE_BYTES}\n", 1)
    b.config_path.write_text(cfg)
    gateway = Gateway(b.config())
    pipeline = InboundPipeline(gateway.identity, gateway.registry, gateway.store, gateway.connector,
                               InboundLimits(max_message_bytes=MAX_MESSAGE_BYTES, max_parts=8,
                                             max_decompressed_bytes=1024 * 1024, max_xml_depth=64))
    env = InboundEnv(home, pki, gateway, pipeline)

    rsa = suite("edelivery-as4-1.15")
    aa_key, aa_cert = load_private_key(pki / "aa-nsw" / "sign.key"), load_certificate(pki / "aa-nsw" / "sign.crt")
    bb_enc = load_certificate(pki / "bb-nsw" / "enc.crt")
    cc = ensure_party(pki, "cc-nsw", key_type="ed25519")
    bb_x = ensure_party(pki, "bb-nsw", key_type="ed25519")
    cc_key, cc_cert = load_private_key(cc.key("sign", "ed25519")), load_certificate(cc.cert("sign", "ed25519"))
    bb_x_enc = load_certificate(bb_x.cert("enc", "ed25519"))
    eddsa = suite(EDDSA)
    env.seeds = [
        _seed("rsa", "AA-NSW", aa_key, aa_cert, bb_enc, rsa),
        _seed("rsa2", "AA-NSW", aa_key, aa_cert, bb_enc, rsa, attachments=2),
        _seed("body", "AA-NSW", aa_key, aa_cert, bb_enc, rsa, body_payload=True, attachments=0),
        _seed("eddsa", "CC-NSW", cc_key, cc_cert, bb_x_enc, eddsa),
    ]
    env.security_policies = {"rsa": rsa, "rsa2": rsa, "body": rsa, "eddsa": eddsa}
    env.trusted = {"rsa": [aa_cert], "rsa2": [aa_cert], "body": [aa_cert], "eddsa": [cc_cert]}
    env.decryption_keys = {"rsa": gateway.identity.for_suite("edelivery-as4-1.15").encryption_key,
                           "eddsa": gateway.identity.for_suite(EDDSA).encryption_key}
    env.decryption_keys.update(rsa2=env.decryption_keys["rsa"], body=env.decryption_keys["rsa"])
    return env

