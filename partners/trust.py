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

from crypto import CrlCache, TrustConfig

MAX_CRL_BYTES = 20 * 1024 * 1024


def fetch_url(url: str, timeout: float = 10.0) -> bytes:
    """GET a CRL (blocking; callers are worker threads). Bounded in time and size."""
    with urllib.request.urlopen(url, timeout=timeout) as response:   # noqa: S310 (http/https only, checked at load)
        data = response.read(MAX_CRL_BYTES + 1)
    if len(data) > MAX_CRL_BYTES:
        raise ValueError(f"CRL at {url} is larger than {MAX_CRL_BYTES} bytes")
    return data


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
    """

    def __init__(self, anchors: tuple[x509.Certificate, ...], crls: tuple[x509.CertificateRevocationList, ...],
                 crl_urls: tuple[str, ...], fetch: Callable[[str], bytes] = fetch_url,
                 retry_after: float = 60.0):
        self.anchors = anchors
        self.crls = crls
        self.crl_urls = crl_urls
        self.cache = CrlCache(fetch) if crl_urls else None
        self.retry_after = retry_after
        self._state = _UrlState()
        self._held: dict[str, x509.CertificateRevocationList] = {}   # last good CRL per URL

    @property
    def checks_revocation(self) -> bool:
        return bool(self.crls or self.crl_urls)

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
        self._refresh()
        return TrustConfig(anchors=anchors, crls=self.crls, crl_cache=self.cache)

    def explain(self) -> str:
        """Extra words for a refusal: which CRL URLs could not be fetched."""
        errors = self.fetch_errors()
        if not errors:
            return ""
        return " (CRL download failed: " + "; ".join(f"{u}: {e}" for u, e in errors.items()) + ")"
