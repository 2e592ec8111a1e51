"""The partner registry: one folder per partner under ``conf/partners/``.

Onboarding a partner is data, not code. The whole tree is validated before it is used,
and every problem is reported with its file and key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from cryptography import x509

from crypto import (AlgorithmNotAllowed, CrlLoadError, TrustConfig, check_recipient_certificate,
                    check_signer_certificate, load_crl, suite)
from crypto.keys import KeyFileError, load_certificate, load_certificates
from partners.configfile import Problems, Section, load_or_collect
from partners.mapping.engine import PartnerMappings, collect_mappings
from partners.pmode import (DEFAULT_INITIATOR_ROLE, DEFAULT_RESPONDER_ROLE, DOCUMENT_SIGNATURE_PROFILES,
                            SECURITY_SUITES,
                            UNREGISTERED_PARTY_TYPE, PMode, RetryPolicy, SecurityConfig)
from partners.trust import PartnerPki


@dataclass(frozen=True)
class Partner:
    id: str
    party_id: str
    party_id_type: str | None
    endpoint: str
    signing_certs: tuple[x509.Certificate, ...]
    encryption_cert: x509.Certificate | None
    tls_trust: tuple[x509.Certificate, ...]
    pmodes: tuple[PMode, ...]
    folder: Path
    # Per-partner document mappings (mappings/*.xsl + code lists), compiled at load so a broken
    # stylesheet is a config problem at (re)load, not a failure per message. Identity if absent.
    mappings: "PartnerMappings | None" = None
    # Certificates of the authorities that issue this partner's e-certificates (e-CO, e-permits):
    # the document-level signature of an inbound document is verified against these only.
    issuing_authorities: tuple[x509.Certificate, ...] = ()
    # The TLS client certificate(s) this partner connects with (``tls_client_certs``): when set,
    # a connection presenting any other certificate (even one under our client_ca) is refused.
    tls_client_certs: tuple[x509.Certificate, ...] = ()
    # Trust anchors and CRLs for this partner's certificates (``signing_trust``, ``crls``).
    # Holds a live CRL cache, hence not part of equality.
    pki: PartnerPki | None = field(default=None, compare=False)
    # The country whose customs administration this partner speaks for (ISO 3166 alpha-2): the
    # only country whose AEO list it may replace or amend in our registry.
    country: str | None = None

    def signing_trust(self) -> TrustConfig | None:
        """Path validation for this partner's signers, or None when no anchors are configured
        (then a signer only has to be one of ``signing_certs`` and within its validity)."""
        return self.pki.signing_trust() if self.pki is not None else None

    def pmode_for_document(self, document_type: str) -> PMode | None:
        return next((p for p in self.pmodes if p.document_type == document_type), None)

    def pmode_for_message(self, agreement: str | None, service: str, action: str) -> PMode | None:
        for pmode in self.pmodes:
            if pmode.service == service and pmode.action == action and pmode.agreement == agreement:
                return pmode
        return None


@dataclass(frozen=True)
class PartnerRegistry:
    partners: dict[str, Partner]

    def get(self, partner_id: str) -> Partner | None:
        return self.partners.get(partner_id)

    def by_party_id(self, value: str, type_: str | None) -> Partner | None:
        for partner in self.partners.values():
            if partner.party_id == value and (partner.party_id_type or None) == (type_ or None):
                return partner
        return None


def _url_host(url: str, *, port: bool = False) -> str | None:
    """The host of ``url``, or None when it has none or does not parse (``http://[::1``), or,
    with ``port``, when its port is not a number from 1 to 65535 (the sender would fail on it
    at every attempt)."""
    try:
        parsed = urlparse(url)
        if port and parsed.port == 0:
            return None
        return parsed.hostname
    except ValueError:
        return None


def _load_certs(section: Section, key: str, *, required: bool) -> list[x509.Certificate]:
    raw = section.data.get(key)
    paths = [raw] if isinstance(raw, str) else raw
    if raw is None and not required:
        section._used.add(key)
        return []
    if isinstance(raw, str):
        section._used.add(key)
    else:
        paths = section.str_list(key)
    certs: list[x509.Certificate] = []
    for value in paths or []:
        path = section.resolve(key, value)
        if path is None:
            continue
        try:
            certs.extend(load_certificates(path))
        except KeyFileError as exc:
            section.error(key, str(exc))
    return certs


def _load_pki(sec: Section) -> PartnerPki | None:
    """``signing_trust`` (anchor certificates) and ``crls`` (CRL files or http(s) URLs)."""
    anchors = _load_certs(sec, "signing_trust", required=False)
    sources = sec.str_list("crls", [])
    if "signing_trust" in sec.data and not anchors:
        sec.error("signing_trust", "lists no certificate; name the CA certificate(s) that issue this "
                  "partner's signing certificates, or remove the key")
    crls, urls = [], []
    for value in sources or []:
        if value.startswith(("http://", "https://")):
            if not _url_host(value):
                sec.error("crls", f"{value!r} is not a usable URL")
            urls.append(value)
            continue
        path = sec.resolve("crls", value)
        if path is None:
            continue
        try:
            crls.append(load_crl(path))
        except CrlLoadError as exc:
            sec.error("crls", f"{exc} (a PEM or DER CRL file, or an http(s):// URL)")
    if (crls or urls) and not anchors:
        sec.error("crls", "CRLs are checked on a validated certificate chain: also set signing_trust = "
                  "[the CA certificate(s) that issue this partner's signing certificates]")
    if not anchors:
        return None
    pki = PartnerPki(tuple(anchors), tuple(crls), tuple(urls))
    for problem in pki.crl_problems:     # a CRL file no configured CA signed: say so at load
        sec.error("crls", f"{problem}; use the CRL your partner's CA publishes, or add the CA that "
                  "signs it to signing_trust")
    return pki


def _check_suite_fits(root: Section, i: int, pmode: PMode, signing: list[x509.Certificate],
                      encryption: x509.Certificate | None) -> None:
    """The partner's certificates must suit the PMode's algorithm suite; caught here rather
    than as failed messages (e.g. an RSA encryption certificate for an X25519 suite)."""
    policy = suite(pmode.security.suite)
    problems = []
    for cert in signing:
        try:
            check_signer_certificate(policy, cert)
            break
        except AlgorithmNotAllowed as exc:
            problems.append(str(exc))
    else:
        if signing:
            root.error(f"pmode[{i}].security.suite", f"{problems[0]}: none of [partner].signing_certs fits "
                       f"suite {pmode.security.suite!r}; configure the partner's certificate for this suite "
                       "or choose the suite the partner uses")
    if pmode.security.encrypt and encryption is not None:
        try:
            check_recipient_certificate(policy, encryption)
        except AlgorithmNotAllowed as exc:
            root.error(f"pmode[{i}].security.suite", f"{exc}: [partner].encryption_cert does not fit suite "
                       f"{pmode.security.suite!r} (one encryption certificate serves all PModes of a partner)")


def _load_pmode(section: Section, partner_id: str) -> PMode | None:
    doc_type = section.str("document_type")
    sec = section.table("security", required=False)
    retry = section.table("retry", required=False)
    security = SecurityConfig(
        suite=sec.choice("suite", SECURITY_SUITES, "edelivery-as4-1.15") or "edelivery-as4-1.15",
        sign=bool(sec.bool("sign", True)), encrypt=bool(sec.bool("encrypt", True)),
        allow_unsigned=bool(sec.bool("allow_unsigned", False))) if sec else SecurityConfig()
    if sec is not None:
        if not security.sign:
            sec.error("sign", "unsigned messages are not supported; set sign = true")
        sec.reject_unknown()
    defaults = RetryPolicy()
    retry_policy = RetryPolicy(
        max_attempts=retry.int("max_attempts", defaults.max_attempts, minimum=1),
        initial_interval=retry.float("initial_interval", defaults.initial_interval, minimum=0.0),
        multiplier=retry.float("multiplier", defaults.multiplier, minimum=1.0),
        max_interval=retry.float("max_interval", defaults.max_interval, minimum=0.0),
        max_age=retry.float("max_age", defaults.max_age, minimum=1.0)) if retry else defaults
    if retry is not None:
        retry.reject_unknown()
    pmode = PMode(
        id=section.str("id", f"{partner_id}-{doc_type}"),
        document_type=doc_type,
        agreement=section.str("agreement", None),
        agreement_type=section.str("agreement_type", None),
        service=section.str("service"),
        service_type=section.str("service_type", None),
        action=section.str("action"),
        initiator_role=section.str("initiator_role", DEFAULT_INITIATOR_ROLE),
        responder_role=section.str("responder_role", DEFAULT_RESPONDER_ROLE),
        mime_type=section.str("mime_type", "application/xml"),
        compress=section.bool("compress", True),
        security=security,
        retry=retry_policy,
        document_signature=section.choice("document_signature", DOCUMENT_SIGNATURE_PROFILES, "enveloped")
        or "enveloped",
    )
    section.reject_unknown()
    return pmode


def _load_partner(folder: Path, problems: Problems) -> Partner | None:
    root = Section.load(folder / "partner.toml", problems)
    if root is None:
        return None
    before = len(problems.items)
    sec = root.table("partner")
    if sec is None:
        return None
    endpoint = sec.str("endpoint")
    if endpoint is not None:
        if not endpoint.startswith(("https://", "http://")) or not _url_host(endpoint, port=True):
            sec.error("endpoint", f"expected an https:// (or http:// behind a proxy) URL with a host (and a "
                      f"port from 1 to 65535, if any), got {endpoint!r}")
    signing = _load_certs(sec, "signing_certs", required=True)
    if not signing and "signing_certs" in sec.data:
        sec.error("signing_certs", "at least one signing certificate is needed to verify the partner")
    enc_path = sec.path_("encryption_cert", None)
    encryption = None
    if enc_path is not None and enc_path.exists():
        try:
            encryption = load_certificate(enc_path)
        except KeyFileError as exc:
            sec.error("encryption_cert", str(exc))
    tls_trust = _load_certs(sec, "tls_trust", required=False)
    authorities = _load_certs(sec, "issuing_authorities", required=False)
    tls_client = _load_certs(sec, "tls_client_certs", required=False)
    if "tls_client_certs" in sec.data and not tls_client and sec.data.get("tls_client_certs") == []:
        sec.error("tls_client_certs", "lists no certificate; name the TLS client certificate file(s) this "
                  "partner connects with, or remove the key")
    pki = _load_pki(sec)
    partner_id = sec.str("id", folder.name)
    if partner_id is not None and partner_id != folder.name:
        sec.error("id", f"must equal the folder name {folder.name!r}, got {partner_id!r}")
    party_id = sec.str("party_id")
    party_id_type = sec.str("party_id_type", UNREGISTERED_PARTY_TYPE)
    country = sec.str("country", None)
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        sec.error("country", f"expected an ISO 3166-1 alpha-2 code in capitals, like \"SG\", got {country!r}")
    sec.reject_unknown()
    pmodes = [_load_pmode(s, folder.name) for s in root.tables("pmode")]
    if not pmodes:
        root.error("pmode", "a partner needs at least one [[pmode]] (one per document type)")
    seen: dict[str, int] = {}
    for i, pmode in enumerate(pmodes):
        if pmode and pmode.document_type in seen:
            root.error(f"pmode[{i}].document_type", f"document type {pmode.document_type!r} "
                       f"is already used by pmode[{seen[pmode.document_type]}]")
        if pmode:
            seen[pmode.document_type] = i
        if pmode and pmode.security.encrypt and encryption is None and enc_path is None:
            root.error(f"pmode[{i}].security.encrypt",
                       "encryption requires [partner].encryption_cert (the partner's encryption certificate)")
        if pmode:
            _check_suite_fits(root, i, pmode, signing, encryption)
        if pmode and pmode.security.allow_unsigned and "tls_client_certs" not in sec.data:
            root.error(f"pmode[{i}].security.allow_unsigned",
                       "unsigned messages are authenticated only by the TLS client certificate: set "
                       "[partner].tls_client_certs = [the partner's TLS client certificate file(s)], or "
                       "remove allow_unsigned")
    root.reject_unknown()
    mapping_problems, mappings = collect_mappings(folder, folder.name)
    for problem in mapping_problems:
        problems.add(str(folder / "mappings"), problem)
    if len(problems.items) > before:
        return None
    return Partner(id=folder.name, party_id=party_id, party_id_type=party_id_type, endpoint=endpoint,
                   signing_certs=tuple(signing), encryption_cert=encryption, tls_trust=tuple(tls_trust),
                   pmodes=tuple(pmodes), folder=folder, mappings=mappings, tls_client_certs=tuple(tls_client),
                   issuing_authorities=tuple(authorities), pki=pki, country=country)


def load_partners(partners_dir: str | Path) -> PartnerRegistry:
    """Load and validate every ``<partners_dir>/<id>/partner.toml``; raise ConfigError listing all problems."""
    partners_dir = Path(partners_dir)

    def load(problems: Problems) -> PartnerRegistry:
        if not partners_dir.is_dir():
            problems.add(str(partners_dir), "partners folder does not exist")
            return PartnerRegistry({})
        partners: dict[str, Partner] = {}
        for folder in sorted(p for p in partners_dir.iterdir() if p.is_dir()):
            partner = _load_partner(folder, problems)
            if partner is None:
                continue
            clash = next((p for p in partners.values()
                          if (p.party_id, p.party_id_type) == (partner.party_id, partner.party_id_type)), None)
            if clash:
                problems.add(str(folder / "partner.toml"),
                             f"party id {partner.party_id!r} is already used by partner {clash.id!r}")
            partners[partner.id] = partner
        return PartnerRegistry(partners)

    return load_or_collect(load)
