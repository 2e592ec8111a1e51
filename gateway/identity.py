"""The gateway's own keys and certificates, loaded once at start-up.

Loading early means a bad key path or an over-permissive key file stops the daemon with a
clear message instead of failing the first message hours later. One key pair per algorithm
suite: a 1.15 partner gets RSA signatures, a 2.0 partner Ed25519 or ECDSA ones, each
decrypted with the key of its own suite.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

from gateway.config import BASE_SUITE, SUITE_KEY_TABLES, GatewayConfig


class MissingSuiteKeys(LookupError):
    """A partner's PMode names a suite this gateway has no keys for."""


@dataclass(frozen=True)
class SuiteIdentity:
    """Our signing and decryption keys for one suite."""
    suite: str
    signing_key: object
    signing_cert: x509.Certificate
    encryption_key: object
    encryption_cert: x509.Certificate


def _missing(suite: str) -> str:
    table = next((f"[security.{family}]" for family, name in SUITE_KEY_TABLES.items() if name == suite),
                 "[security]")
    return (f"this gateway has no keys for suite {suite!r}: add {table} with signing_key, signing_cert, "
            f"encryption_key and encryption_cert to gateway.toml (`swgw pki init` makes dev keys)")


@dataclass(frozen=True)
class LocalIdentity:
    party_id: str
    party_id_type: str
    # The eDelivery AS4 1.15 (RSA) pair from [security]: the default, also for answers to
    # messages whose partner (and so suite) is not known yet.
    signing_key: object
    signing_cert: x509.Certificate
    encryption_key: object
    encryption_cert: x509.Certificate
    suites: dict[str, SuiteIdentity] = field(default_factory=dict, compare=False)

    @classmethod
    def from_config(cls, config: GatewayConfig) -> "LocalIdentity":
        sign_key, sign_cert = config.signing.load()
        enc_key, enc_cert = config.encryption.load()
        suites = {BASE_SUITE: SuiteIdentity(BASE_SUITE, sign_key, sign_cert, enc_key, enc_cert)}
        for keys in config.suite_keys:
            suites[keys.suite] = SuiteIdentity(keys.suite, *keys.signing.load(), *keys.encryption.load())
        return cls(config.party_id, config.party_id_type, sign_key, sign_cert, enc_key, enc_cert, suites)

    def for_suite(self, suite: str) -> SuiteIdentity:
        """Our keys for ``suite``; MissingSuiteKeys (naming the config to add) otherwise."""
        if not self.suites:      # built directly (tests): the [security] pair serves the base suite
            if suite == BASE_SUITE:
                return SuiteIdentity(suite, self.signing_key, self.signing_cert, self.encryption_key,
                                     self.encryption_cert)
            raise MissingSuiteKeys(_missing(suite))
        try:
            return self.suites[suite]
        except KeyError:
            raise MissingSuiteKeys(_missing(suite)) from None

    def missing_suites(self, suites: set[str]) -> list[str]:
        """Of ``suites`` (those the partners' PModes use), the ones we hold no keys for, each
        with what to add to gateway.toml."""
        problems = []
        for name in sorted(suites):
            try:
                self.for_suite(name)
            except MissingSuiteKeys as exc:
                problems.append(str(exc))
        return problems


def suite_key_problems(config: GatewayConfig, registry) -> list[str]:
    """One problem per PMode whose suite this gateway has no keys for, named by partner file
    and key like every other config problem (checked at start, reload and checkconfig)."""
    have = {BASE_SUITE, *(k.suite for k in config.suite_keys)}
    problems = []
    for partner in registry.partners.values():
        for i, pmode in enumerate(partner.pmodes):
            if pmode.security.suite not in have:
                problems.append(f"{partner.folder / 'partner.toml'} [pmode[{i}].security.suite]: "
                                f"{_missing(pmode.security.suite)}")
    return problems
