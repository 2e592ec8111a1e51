"""The algorithm allowlist and the policy check."""

from __future__ import annotations

import dataclasses

import pytest

from crypto.algorithms import (
    EDELIVERY_AS4_1_15,
    DataEncryptionAlgorithm,
    DigestAlgorithm,
    KeyTransportAlgorithm,
    SignatureAlgorithm,
    require,
)
from crypto.errors import AlgorithmNotAllowed, SecurityError


def test_policy_is_frozen_and_matches_edelivery_1_15():
    assert EDELIVERY_AS4_1_15.signature_algorithm.value.endswith("xmldsig-more#rsa-sha256")
    assert EDELIVERY_AS4_1_15.digest_algorithm.value.endswith("xmlenc#sha256")
    assert EDELIVERY_AS4_1_15.data_encryption_algorithm.value.endswith("xmlenc11#aes128-gcm")
    assert EDELIVERY_AS4_1_15.key_transport_algorithm.value.endswith("xmlenc11#rsa-oaep")
    assert EDELIVERY_AS4_1_15.key_transport_digest is DigestAlgorithm.SHA256
    assert EDELIVERY_AS4_1_15.mgf.value.endswith("xmlenc11#mgf1sha256")
    with pytest.raises(dataclasses.FrozenInstanceError):
        EDELIVERY_AS4_1_15.signature_algorithm = None  # type: ignore[misc]


def test_require_accepts_the_policy_algorithm():
    uri = "http://www.w3.org/2001/04/xmlenc#sha256"
    assert require(DigestAlgorithm, uri, DigestAlgorithm.SHA256, "digest") is DigestAlgorithm.SHA256


@pytest.mark.parametrize(
    "kind, allowed, uri, reason",
    [
        (
            DigestAlgorithm,
            DigestAlgorithm.SHA256,
            "http://www.w3.org/2000/09/xmldsig#sha1",
            "SHA-1",
        ),
        (
            SignatureAlgorithm,
            SignatureAlgorithm.RSA_SHA256,
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            "SHA1",
        ),
        (
            KeyTransportAlgorithm,
            KeyTransportAlgorithm.RSA_OAEP,
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
            "padding-oracle",
        ),
        (
            DataEncryptionAlgorithm,
            DataEncryptionAlgorithm.AES128_GCM,
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "integrity",
        ),
        (DigestAlgorithm, DigestAlgorithm.SHA256, "urn:example:unknown", "not supported"),
        (DigestAlgorithm, DigestAlgorithm.SHA256, None, "no algorithm"),
    ],
)
def test_require_refuses(kind, allowed, uri, reason):
    with pytest.raises(AlgorithmNotAllowed, match=reason) as info:
        require(kind, uri, allowed, "test role")
    assert "test role" in str(info.value)
    assert isinstance(info.value, SecurityError)
