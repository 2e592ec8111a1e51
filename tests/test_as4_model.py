"""Model invariants, message ids and the error catalogue."""

import re
from datetime import datetime, timezone

import pytest

from gateway.as4 import (
    ERROR_CATALOGUE,
    EbmsException,
    ErrorSignal,
    PartInfo,
    Party,
    Property,
    Receipt,
    make_error,
    new_message_id,
)
import gateway.as4 as as4


def test_all_exports_exist():
    for name in as4.__all__:
        assert hasattr(as4, name), name


def test_new_message_id_form():
    mid = new_message_id("gw.example.org")
    assert re.fullmatch(r"[0-9a-f-]{36}@gw\.example\.org", mid)
    assert new_message_id("gw.example.org") != mid
    for bad in ("", "has space", "<x>", "a..b", "a@b"):
        with pytest.raises(ValueError):
            new_message_id(bad)


def test_part_info_helpers():
    p = PartInfo("cid:abc%40x", (Property("MimeType", "application/xml"), Property("CompressionType", "application/gzip")))
    assert (p.mime_type, p.compression_type, p.content_id, p.in_body) == ("application/xml", "application/gzip", "abc@x", False)
    assert PartInfo(None).content_id is None and PartInfo(None).in_body
    assert PartInfo("#body").content_id is None and PartInfo("#body").in_body
    assert PartInfo("CID:z").content_id == "z"


def test_frozen_and_aware():
    r = Receipt("a@x", datetime(2026, 1, 1, tzinfo=timezone.utc), "b@x")
    with pytest.raises(Exception):
        r.message_id = "c"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Receipt("a@x", datetime(2026, 1, 1), "b@x")
    with pytest.raises(ValueError):
        Party((), "role")
    with pytest.raises(ValueError):
        ErrorSignal("e@x", datetime(2026, 1, 1, tzinfo=timezone.utc), None, ())


@pytest.mark.parametrize(
    "code, short, severity, category",
    [
        ("EBMS:0001", "ValueNotRecognized", "failure", "Content"),
        ("EBMS:0002", "FeatureNotSupported", "warning", "Content"),
        ("EBMS:0004", "Other", "failure", "Content"),
        ("EBMS:0006", "EmptyMessagePartitionChannel", "warning", "Communication"),
        ("EBMS:0007", "MimeInconsistency", "failure", "Unpackaging"),
        ("EBMS:0009", "InvalidHeader", "failure", "Unpackaging"),
        ("EBMS:0010", "ProcessingModeMismatch", "failure", "Processing"),
        ("EBMS:0011", "ExternalPayloadError", "failure", "Content"),
        ("EBMS:0101", "FailedAuthentication", "failure", "Processing"),
        ("EBMS:0102", "FailedDecryption", "failure", "Processing"),
        ("EBMS:0103", "PolicyNoncompliance", "failure", "Processing"),
        ("EBMS:0202", "DeliveryFailure", "failure", "Communication"),
        ("EBMS:0301", "MissingReceipt", "failure", "Communication"),
        ("EBMS:0302", "InvalidReceipt", "failure", "Communication"),
        ("EBMS:0303", "DecompressionFailure", "failure", "Communication"),
    ],
)
def test_catalogue(code, short, severity, category):
    e = make_error(code, "why", "m@x")
    assert (e.error_code, e.short_description, e.severity, e.category, e.description, e.ref_to_message_id, e.origin) == (
        code, short, severity, category, "why", "m@x", "ebMS"
    )


def test_catalogue_complete_and_code_forms():
    assert len(ERROR_CATALOGUE) == 19
    assert make_error("0303", "x").error_code == "EBMS:0303"
    assert make_error("ebms:0009", "x").error_code == "EBMS:0009"
    with pytest.raises(ValueError):
        make_error("EBMS:9999", "x")


def test_ebms_exception():
    exc = EbmsException.of("EBMS:0009", "eb:Action is missing")
    assert exc.code == "EBMS:0009" and "InvalidHeader" in str(exc) and "eb:Action" in str(exc)
    with_ref = exc.with_ref("m@x")
    assert with_ref.error.ref_to_message_id == "m@x" and exc.error.ref_to_message_id is None
    assert exc.error.is_failure


def test_ebms_exception_pickles_and_severity_override():
    import pickle

    exc = EbmsException.of("EBMS:0002", "bundling", "m@x", severity="failure")
    back = pickle.loads(pickle.dumps(exc))
    assert back.error == exc.error and back.error.severity == "failure"
    assert make_error("EBMS:0002", "x").severity == "warning"
