"""A partner's PKI as configured in ``partner.toml``: trust anchors for its signing
certificates and the CRLs (files, or URLs fetched and cached) that revoke them.

Kept apart from the registry because CRLs from URLs are live data: the registry is a
frozen snapshot, while a CRL must be refetched when its ``nextUpdate`` has passed. The
fetch happens on demand, in the worker thread that validates a certificate (never on the
reactor), at most once per ``retry_after`` seconds while a distribution point is down.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from cryptography import x509

from crypto import CrlCache, CrlLoadError, TrustConfig
from crypto.tlspolicy import https_context

MAX_CRL_BYTES = 20 * 1024 * 1024


def fetch_url(url: str, timeout: float = 10.0) -> bytes:
    """GET a CRL (blocking; callers are worker threads). Bounded in time and size."""
    with urllib.request.urlopen(url, timeout=timeout,  # noqa: S310 (http/https only, checked at load)
                                context=https_context()) as response:
        data = response.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise ValueError(f"CRL at {url} is larger than {MAX_CRL_BYTES} bytes")
    return data


def _verified(crls: tuple[x509.CertificateRevocationList, ...], issuers: tuple[x509.Certificate, ...]
              ) -> tuple[tuple[x509.CertificateRevocationList, ...], list[str]]:
    """The configured CRL files that a configured CA signed, and a problem line per other one."""
    checker = CrlCache(issuers=issuers)
    good, problems = [], []
    for i, crl in enumerate(crls, 1):
        try:
            checker.verify(crl, f"configured CRL file #{i}")
            good.append(crl)
        except CrlLoadError as exc:
            problems.append(str(exc))
    return tuple(good), problems


@dataclass
class _UrlState:
    """When each URL was last tried, so a dead distribution point is not hammered."""
    last_try: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class PartnerPki:
    """Anchors and CRLs of one partner; hands out :class:`TrustConfig` for validation.

    With CRLs configured, revocation checking is *required*: a signer whose issuer has no
    current CRL is refused (fail closed) with a message naming the CRL source, because an
    operator who configured a CRL expects revoked certificates to be refused.

    CRLs must be signed by a configured CA certificate (the anchors; for the TLS client
    trust also the listener's ``client_ca``). A CRL URL is usually plain http://, so a
    downloaded CRL that does not verify is refused and the last good one kept; a configured
    CRL file that does not verify is left out and named in :attr:`crl_problems` and
    :meth:`explain` (revocation checking stays required, so its issuer's certificates are
    refused until the file is fixed).
    """

    def __init__(self, anchors: tuple[x509.Certificate, ...], crls: tuple[x509.CertificateRevocationList, ...],
                 crl_urls: tuple[str, ...], fetch: Callable[[str], bytes] = fetch_url,
                 retry_after: float = 60.0):
        self.anchors = anchors
        self.crl_urls = crl_urls
        self._configured_crls = crls
        self.crls, problems = _verified(crls, anchors)
        self.crl_problems: list[str] = problems
        self.cache = CrlCache(fetch, issuers=anchors) if crl_urls else None
        self.retry_after = retry_after
        self._state = _UrlState()
        self._held: dict[str, x509.CertificateRevocationList] = {}   # last good CRL per URL

    @property
    def checks_revocation(self) -> bool:
        return bool(self._configured_crls or self.crl_urls)

    def _refresh(self) -> None:
        """Fetch URL CRLs that are missing or past nextUpdate (errors are kept for the
        validation message, not raised: an unreachable CRL must not hide the real reason)."""
        if self.cache is None:
            return
        now = dt.datetime.now(dt.timezone.utc)
        for url in self.crl_urls:
            crl = self._held.get(url)
            if crl is not None and (crl.next_update_utc is None or crl.next_update_utc > now):
                continue
            with self._state.lock:
                last = self._state.last_try.get(url)
                if last is not None and time.monotonic() - last < self.retry_after:
                    continue
                self._state.last_try[url] = time.monotonic()
            try:
                self._held[url] = self.cache.refresh_from_url(url)
                self._state.errors.pop(url, None)
            except Exception as exc:  # noqa: BLE001 - any fetch failure is reported per URL
                self._state.errors[url] = f"{type(exc).__name__}: {exc}"

    def fetch_errors(self) -> dict[str, str]:
        """The last fetch error per CRL URL (empty when all are fine)."""
        return dict(self._state.errors)

    def signing_trust(self) -> TrustConfig | None:
        """Trust for the partner's signing certificates; None when no anchors are
        configured (then only the pinned ``signing_certs`` and their validity count)."""
        if not self.anchors:
            return None
        self._refresh()
        return TrustConfig(anchors=self.anchors, crls=self.crls, crl_cache=self.cache,
                           require_crl=self.checks_revocation)

    def tls_client_trust(self, anchors: tuple[x509.Certificate, ...]) -> TrustConfig:
        """Trust for the partner's TLS client certificate: the listener's ``client_ca``
        anchors (already enforced at the handshake) with this partner's CRLs."""
        if self.cache is not None:
            self.cache.add_issuers(anchors)      # the operator's client_ca may sign CRLs too
        self._refresh()
        crls, _ = _verified(self._configured_crls, (*self.anchors, *anchors))
        return TrustConfig(anchors=anchors, crls=crls, crl_cache=self.cache)

    def explain(self) -> str:
        """Extra words for a refusal: which CRL URLs could not be fetched (or were refused),
        and which configured CRL files were left out."""
        errors = self.fetch_errors()
        words = ""
        if errors:
            words += " (CRL download failed: " + "; ".join(f"{u}: {e}" for u, e in errors.items()) + ")"
        if self.crl_problems:
            words += " (CRL left out: " + "; ".join(self.crl_problems) + ")"
        return words
