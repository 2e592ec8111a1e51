"""Certificate path validation against a partner's trust anchors, with CRLs.

Hand-written rather than cryptography's ``x509.verification`` because that verifier
applies Web-PKI rules (SAN required, fixed EKU policy) that AS4 partner PKIs do not
follow, and reports failures generically. A gateway operator needs the *exact*
reason ("expired on 2025-03-01T00:00:00Z", "revoked on ... per CRL of CN=...") to
fix a partner onboarding without reproducing the validation by hand.

What is checked, leaf to anchor: a chain to one of the anchors (issuer name and
issuer signature, through configured intermediates), the validity period of every
certificate, CA basic constraints, path length and keyCertSign, the leaf's key usage
(and extended key usage for TLS) for the purpose, and revocation from every CRL of
an issuer in the chain (the CRL must be signed by that issuer and be current).
A certificate that *is* an anchor (a pinned partner certificate) is trusted
directly, still subject to its validity period and key usage.

No network here: :class:`CrlCache` fetches through a callable you inject.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID

from crypto.errors import UntrustedCertificate

Purpose = Literal["signing", "encryption", "tls-client", "tls-server"]
MAX_CHAIN_LENGTH = 8


class CrlLoadError(ValueError):
    """A CRL file or download is not a parsable PEM or DER CRL."""


def _utc(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.timezone.utc)
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def _date(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _who(cert: x509.Certificate) -> str:
    return f"certificate '{cert.subject.rfc4514_string()}' (serial {cert.serial_number:#x})"


def _name(name: x509.Name) -> str:
    return name.rfc4514_string()


def _ext(cert: x509.Certificate, kind: type) -> Any:
    """The extension value of ``kind``, or None when the certificate has none."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Issuer name matches and the issuer's key verifies the certificate signature."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _name_matches(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return cert.issuer == issuer.subject


def _build_chain(
    cert: x509.Certificate,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
) -> list[x509.Certificate]:
    if cert in anchors:
        return [cert]
    chain = [cert]
    current = cert
    for _ in range(MAX_CHAIN_LENGTH):
        anchor_names = [a for a in anchors if _name_matches(current, a)]
        for anchor in anchor_names:
            if _issued_by(current, anchor):
                return chain + [anchor]
        candidates = [c for c in intermediates if _name_matches(current, c) and c not in chain]
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            if anchor_names or candidates:
                raise UntrustedCertificate(
                    f"{_who(current)}: issuer signature invalid: it names issuer "
                    f"'{_name(current.issuer)}', but no configured certificate of that name "
                    "verifies its signature (re-issued CA key, or a forged certificate)")
            raise UntrustedCertificate(
                f"{_who(cert)} is not issued by any configured anchor: the chain ends at "
                f"issuer '{_name(current.issuer)}', which is neither a trust anchor nor a "
                "configured intermediate for this partner")
        chain.append(issuer)
        current = issuer
    raise UntrustedCertificate(f"{_who(cert)}: certificate chain longer than {MAX_CHAIN_LENGTH}")


def _check_validity(chain: Sequence[x509.Certificate], at: dt.datetime) -> None:
    for cert in chain:
        if at < cert.not_valid_before_utc:
            raise UntrustedCertificate(
                f"{_who(cert)} is not yet valid: valid from {_date(cert.not_valid_before_utc)}, "
                f"checked at {_date(at)}")
        if at > cert.not_valid_after_utc:
            raise UntrustedCertificate(
                f"{_who(cert)} expired on {_date(cert.not_valid_after_utc)} "
                f"(checked at {_date(at)})")


def _check_ca(chain: Sequence[x509.Certificate]) -> None:
    for depth, issuer in enumerate(chain[1:]):
        constraints = _ext(issuer, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise UntrustedCertificate(
                f"{_who(issuer)} issued '{_name(chain[depth].subject)}' but is not a CA "
                "(basicConstraints cA is not set)")
        # chain[1..depth] are the intermediate CAs below this one (the leaf does not count)
        if constraints.path_length is not None and depth > constraints.path_length:
            raise UntrustedCertificate(
                f"{_who(issuer)}: path length constraint {constraints.path_length} exceeded")
        usage = _ext(issuer, x509.KeyUsage)
        if usage is not None and not usage.key_cert_sign:
            raise UntrustedCertificate(
                f"{_who(issuer)} is a CA without keyCertSign in its key usage, so it may not "
                "issue certificates")


_USAGE_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "signing": (("digital_signature", "content_commitment"),
                "digitalSignature or nonRepudiation"),
    "encryption": (("key_encipherment", "key_agreement"), "keyEncipherment or keyAgreement"),
    "tls-client": (("digital_signature", "key_agreement"), "digitalSignature or keyAgreement"),
    "tls-server": (("digital_signature", "key_encipherment", "key_agreement"),
                   "digitalSignature, keyEncipherment or keyAgreement"),
}
_EKU_RULES = {"tls-client": ExtendedKeyUsageOID.CLIENT_AUTH,
              "tls-server": ExtendedKeyUsageOID.SERVER_AUTH}


def _check_purpose(cert: x509.Certificate, purpose: Purpose) -> None:
    if purpose not in _USAGE_RULES:
        raise ValueError(f"unknown certificate purpose {purpose!r}")
    attributes, label = _USAGE_RULES[purpose]
    usage = _ext(cert, x509.KeyUsage)
    # RFC 5280 4.2.1.3: without the extension the key is not restricted.
    if usage is not None and not any(getattr(usage, a) for a in attributes):
        raise UntrustedCertificate(
            f"{_who(cert)}: leaf key usage lacks {label}, required for {purpose}")
    eku_oid = _EKU_RULES.get(purpose)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    if eku_oid is not None and eku is not None and eku_oid not in eku and (
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku):
        raise UntrustedCertificate(
            f"{_who(cert)}: extended key usage lacks {eku_oid._name}, required for {purpose}")


def _check_revocation(chain: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList],
                      at: dt.datetime, require_crl: bool) -> None:
    for cert, issuer in zip(chain, chain[1:]):
        relevant = [c for c in crls if c.issuer == cert.issuer]
        if not relevant and require_crl:
            raise UntrustedCertificate(
                f"{_who(cert)}: no CRL of issuer '{_name(cert.issuer)}' is available and "
                "revocation checking is required")
        for crl in relevant:
            where = f"CRL of '{_name(crl.issuer)}'"
            try:
                signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError, UnsupportedAlgorithm):
                signed = False
            if not signed:
                raise UntrustedCertificate(
                    f"{where} is not signed by the issuer '{_name(issuer.subject)}' "
                    f"(checking {_who(cert)}): refusing a CRL anyone could have made")
            if crl.next_update_utc is not None and at > crl.next_update_utc:
                raise UntrustedCertificate(
                    f"{where} expired on {_date(crl.next_update_utc)} (nextUpdate), so the "
                    f"revocation status of {_who(cert)} is unknown; refresh the CRL")
            # A CRL issued after ``at`` is fine: its revocation dates say whether the
            # certificate was already revoked then (re-verifying evidence relies on it).
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None and revoked.revocation_date_utc <= at:
                raise UntrustedCertificate(
                    f"{_who(cert)} was revoked on {_date(revoked.revocation_date_utc)} "
                    f"per {where}")


def validate_certificate(
    cert: x509.Certificate,
    anchors: Sequence[x509.Certificate],
    *,
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    at: dt.datetime | None = None,
    purpose: Purpose = "signing",
    require_crl: bool = False,
) -> list[x509.Certificate]:
    """Validate ``cert`` for ``purpose`` and return its chain, leaf first, anchor last.

    ``at`` defaults to now (naive datetimes are taken as UTC); ``require_crl`` makes a
    missing CRL for an issuer in the chain an error instead of "not checked".
    Raises :class:`UntrustedCertificate` naming the first problem found.
    """
    if not anchors:
        raise UntrustedCertificate(f"{_who(cert)}: no trust anchors are configured")
    moment = _utc(at)
    chain = _build_chain(cert, list(anchors), list(intermediates))
    _check_validity(chain, moment)
    _check_ca(chain)
    _check_purpose(cert, purpose)
    _check_revocation(chain, list(crls), moment, require_crl)
    return chain


def load_crl(source: str | Path | bytes) -> x509.CertificateRevocationList:
    """A CRL from a file path or from bytes, PEM or DER (CAs publish both)."""
    if isinstance(source, (str, Path)):
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise CrlLoadError(f"CRL file {source} cannot be read: {exc.strerror}") from None
        where = f"CRL file {source}"
    else:
        data, where = bytes(source), "CRL data"
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CrlLoadError(f"{where} is not a valid PEM or DER CRL: {exc}") from None


class CrlCache:
    """The current CRL per issuer, refreshed from files or URLs.

    Mutable and shared between threads (the pipeline reads, a timer refreshes), hence
    a class with a lock rather than a frozen dataclass. URLs are fetched through the
    injected ``fetch`` callable (URL -> bytes) so the cache does no I/O of its own:
    the daemon passes a fetcher running off the reactor, tests pass a dict lookup.
    ``issuers`` are the configured CA certificates allowed to sign CRLs: a CRL that none
    of them signed is refused (:class:`CrlLoadError`) and never held.
    """

    def __init__(self, fetch: Callable[[str], bytes] | None = None,
                 issuers: Iterable[x509.Certificate] = ()) -> None:
        self._fetch = fetch
        self._issuers: list[x509.Certificate] = []
        self._by_issuer: dict[x509.Name, x509.CertificateRevocationList] = {}
        self._sources: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self.add_issuers(issuers)

    def add_issuers(self, certs: Iterable[x509.Certificate]) -> None:
        """Trust ``certs`` (configured CA certificates: anchors, intermediates) to sign CRLs."""
        with self._lock:
            for cert in certs:
                if cert not in self._issuers:
                    self._issuers.append(cert)

    def verify(self, crl: x509.CertificateRevocationList, source: str = "CRL") -> None:
        """Raise :class:`CrlLoadError` unless ``crl`` is signed by a configured CA certificate
        whose subject is the CRL's issuer. A CRL is unauthenticated data (often fetched over
        plain http://): without this, anyone on the path could plant one."""
        with self._lock:
            candidates = [c for c in self._issuers if c.subject == crl.issuer]
        for ca in candidates:
            try:
                if crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
                    return
            except (TypeError, ValueError, UnsupportedAlgorithm):
                continue
        why = ("its signature does not verify with that CA's key" if candidates
               else "no configured CA certificate has that name")
        raise CrlLoadError(
            f"{source} is not signed by a configured CA (issuer '{_name(crl.issuer)}': {why}); "
            "refused and not cached")

    def add(self, crl: x509.CertificateRevocationList, source: str = "CRL") -> None:
        """Keep ``crl`` unless a newer one (later thisUpdate) of its issuer is held.
        The signature is verified first against the configured CA certificates
        (:meth:`verify`): a CRL that does not verify raises and is never held, so it cannot
        replace a verified one. Validation checks it again against the actual chain."""
        self.verify(crl, source)
        with self._lock:
            held = self._by_issuer.get(crl.issuer)
            if held is None or crl.last_update_utc >= held.last_update_utc:
                self._by_issuer[crl.issuer] = crl

    def refresh_from_file(self, path: str | Path) -> x509.CertificateRevocationList:
        """Load a CRL file (PEM or DER) now, and again on :meth:`refresh_all`."""
        crl = load_crl(path)
        self._remember("file", str(path))
        self.add(crl, f"CRL file {path}")
        return crl

    def refresh_from_url(self, url: str) -> x509.CertificateRevocationList:
        """Fetch a CRL through the injected fetcher now, and again on :meth:`refresh_all`."""
        if self._fetch is None:
            raise CrlLoadError(f"cannot fetch CRL {url}: this CrlCache has no fetch callable")
        crl = load_crl(self._fetch(url))
        self._remember("url", url)
        self.add(crl, f"CRL from {url}")
        return crl

    def refresh_all(self) -> list[str]:
        """Re-read every remembered source; returns the errors (one line per failed
        source) instead of raising, so one unreachable CRL URL keeps the others fresh.
        A source that fails keeps its previous CRL, which expires on its own nextUpdate."""
        errors = []
        with self._lock:
            sources = list(self._sources)
        for kind, location in sources:
            try:
                if kind == "file":
                    self.refresh_from_file(location)
                else:
                    self.refresh_from_url(location)
            except Exception as exc:  # noqa: BLE001 - any fetcher failure, reported per source
                errors.append(f"{location}: {type(exc).__name__}: {exc}")
        return errors

    def crls(self) -> list[x509.CertificateRevocationList]:
        """A snapshot of the CRLs currently held."""
        with self._lock:
            return list(self._by_issuer.values())

    def for_issuer(self, issuer: x509.Name) -> x509.CertificateRevocationList | None:
        with self._lock:
            return self._by_issuer.get(issuer)

    def stale(self, at: dt.datetime | None = None) -> list[x509.Name]:
        """Issuers whose CRL is past nextUpdate: time to :meth:`refresh_all`."""
        moment = _utc(at)
        with self._lock:
            return [name for name, crl in self._by_issuer.items()
                    if crl.next_update_utc is not None and moment > crl.next_update_utc]

    def _remember(self, kind: str, location: str) -> None:
        with self._lock:
            if (kind, location) not in self._sources:
                self._sources.append((kind, location))


@dataclass(frozen=True)
class TrustConfig:
    """A partner's trust configuration, as passed to verify_message/encrypt_parts.

    ``anchors`` are the partner's root (or pinned) certificates; ``crls`` static CRLs
    and ``crl_cache`` refreshed ones (both are consulted); ``at`` fixes the validation
    time (None: now), which evidence re-verification uses to ask "was it valid then?".
    """

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    crl_cache: CrlCache | None = field(default=None, compare=False)
    at: dt.datetime | None = None
    require_crl: bool = False

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples, so the config stays immutable.
        for name in ("anchors", "intermediates", "crls"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def all_crls(self) -> list[x509.CertificateRevocationList]:
        cached: Iterable[x509.CertificateRevocationList] = (
            self.crl_cache.crls() if self.crl_cache is not None else ())
        return [*self.crls, *cached]

    def validate(self, cert: x509.Certificate, *, purpose: Purpose = "signing",
                 extra_intermediates: Sequence[x509.Certificate] = ()) -> list[x509.Certificate]:
        """:func:`validate_certificate` with this configuration."""
        return validate_certificate(
            cert, self.anchors, intermediates=[*self.intermediates, *extra_intermediates],
            crls=self.all_crls(), at=self.at, purpose=purpose, require_crl=self.require_crl)
