"""SwA packaging: canonical encoding, tolerant decoding, precise errors."""

import base64
import os

import pytest

from gateway.as4 import (
    EbmsException,
    MimePart,
    PartInfo,
    decode_message,
    decode_multipart,
    encode_multipart,
    pair_payloads,
    parse_content_type,
)
from tests.as4_helpers import make_user_message

SOAP = b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/><env:Body/></env:Envelope>'


def nasty_bytes(boundary: str) -> bytes:
    # CRLF, LF, boundary-like text at line start (but not the boundary), NULs, high bytes
    return (
        b"\r\n--\r\n--" + boundary.encode()[:-1] + b"\r\n--" + boundary.encode()[:-1] + b"Y--\r\n"
        + bytes(range(256)) + b"\r\n\r\n" + os.urandom(4096) + b"\n\r\n"
    )


def test_round_trip_binary_parts():
    boundary = "MIMEBoundary_fixed_for_test"
    p1 = MimePart("payload-1@gw.example.org", "application/gzip", nasty_bytes(boundary))
    p2 = MimePart("payload-2@gw.example.org", "application/pdf", b"", (("X-Custom", "v"),))
    p3 = MimePart("payload-3@gw.example.org", "text/plain", b"ends with CRLF\r\n")
    ct, body = encode_multipart(SOAP, [p1, p2, p3], boundary=boundary, root_content_id="root@gw")
    assert ct == 'multipart/related; boundary="MIMEBoundary_fixed_for_test"; type="application/soap+xml"; start="<root@gw>"'
    assert b"Content-Type: application/soap+xml; charset=UTF-8\r\n" in body
    assert b"Content-ID: <root@gw>\r\n" in body
    assert body.count(b"Content-Transfer-Encoding: binary\r\n") == 4
    assert body.endswith(b"--" + boundary.encode() + b"--\r\n")
    soap, parts = decode_multipart(ct, body)
    assert soap == SOAP
    assert [(p.content_id, p.content_type, p.data) for p in parts] == [
        (p.content_id, p.content_type, p.data) for p in (p1, p2, p3)
    ]
    assert parts[1].header("x-custom") == "v"


def test_random_boundary_round_trip():
    parts = [MimePart(f"p{i}@x", "application/octet-stream", os.urandom(1000)) for i in range(5)]
    ct, body = encode_multipart(SOAP, parts)
    soap, got = decode_message(ct, body)
    assert soap == SOAP and [p.data for p in got] == [p.data for p in parts]


def test_encode_refuses_colliding_boundary_and_bad_headers():
    with pytest.raises(ValueError, match="occurs inside"):
        encode_multipart(SOAP, [MimePart("a@x", "t/t", b"\r\n--BND\r\n")], boundary="BND")
    with pytest.raises(ValueError, match="line breaks"):
        encode_multipart(SOAP, [MimePart("a@x", "t/t\r\nX-Evil: 1", b"")])
    with pytest.raises(ValueError, match="not unique"):
        encode_multipart(SOAP, [MimePart("a@x", "t/t", b""), MimePart("a@x", "t/t", b"")])
    with pytest.raises(ValueError, match="angle brackets"):
        encode_multipart(SOAP, [MimePart("<a@x>", "t/t", b"")])


def handmade(eol: bytes = b"\r\n", preamble: bytes = b"", cid_root: bytes = b"<root@x>", extra: bytes = b"") -> bytes:
    e = eol
    return (
        preamble
        + b"--b1" + e
        + b"Content-Type: application/soap+xml; charset=UTF-8" + e
        + b"Content-ID: " + cid_root + e + e
        + SOAP + e
        + b"--b1  " + e  # transport padding
        + b"Content-Type: application/octet-stream" + e
        + b"content-id: att1@x" + e  # lower-case name, no brackets
        + extra
        + e
        + b"\x00\x01binary\r\nstuff" + e
        + b"--b1--" + e
        + b"epilogue ignored"
    )


@pytest.mark.parametrize(
    "ct",
    [
        "multipart/related; boundary=b1; type=application/soap+xml; start=<root@x>",
        'Multipart/Related;Boundary="b1";TYPE="application/soap+xml";start="<root@x>"',
        'multipart/related; type="application/soap+xml"; boundary="b1"',
        'multipart/related; boundary="b1"; start="root@x"; start-info="application/soap+xml"',
    ],
)
def test_decode_param_variants(ct):
    soap, parts = decode_multipart(ct, handmade())
    assert soap == SOAP
    assert parts[0].content_id == "att1@x"
    assert parts[0].data == b"\x00\x01binary\r\nstuff"


def test_decode_boundary_like_text_in_data_is_data():
    data = b"x--b1 mid-line\r\n--b1X at line start\r\n--b1-- no\r\n--b1\tnot-eol\r\n--"
    body = (
        b"--b1\r\nContent-ID: <r>\r\nContent-Type: application/soap+xml\r\n\r\n" + SOAP
        + b"\r\n--b1\r\nContent-ID: <p>\r\n\r\n" + data + b"\r\n--b1--\r\n"
    )
    _, parts = decode_multipart("multipart/related; boundary=b1", body)
    assert parts[0].data == data


def test_decode_lf_only_with_preamble():
    body = handmade(eol=b"\n", preamble=b"This is a MIME preamble\n--b1 is not here\n")
    soap, parts = decode_multipart('multipart/related; boundary="b1"', body)
    assert soap == SOAP and parts[0].data == b"\x00\x01binary\r\nstuff"


def test_decode_root_without_angle_brackets_via_start():
    body = handmade(cid_root=b"root@x")
    soap, _ = decode_multipart('multipart/related; boundary=b1; start="<root@x>"', body)
    assert soap == SOAP


def test_decode_root_not_first_found_via_start():
    body = (
        b"--b\r\nContent-ID: <a@x>\r\nContent-Type: application/pdf\r\n\r\nPDF\r\n"
        b"--b\r\nContent-ID: <r@x>\r\nContent-Type: application/soap+xml\r\n\r\n" + SOAP + b"\r\n--b--"
    )
    soap, parts = decode_multipart('multipart/related; boundary=b; start="<r@x>"', body)
    assert soap == SOAP and [p.content_id for p in parts] == ["a@x"]


def test_decode_base64_and_quoted_printable_parts():
    payload = os.urandom(300)
    b64 = base64.encodebytes(payload)  # with line breaks every 76 chars
    body = (
        b"--b\r\nContent-Type: application/soap+xml\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <r>\r\n\r\n"
        + base64.b64encode(SOAP) + b"\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: BASE64\r\nContent-ID: <p1>\r\n\r\n"
        + b64 + b"\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-ID: <p2>\r\n\r\n"
        b"caf=C3=A9 =\r\nsoft\r\n"
        b"--b--\r\n"
    )
    soap, parts = decode_multipart("multipart/related; boundary=b", body)
    assert soap == SOAP
    assert parts[0].data == payload
    assert parts[1].data == "café soft".encode()


def test_folded_header_unfolded():
    body = handmade(extra=b"X-Long: first\r\n  second\r\n")
    _, parts = decode_multipart("multipart/related; boundary=b1", body)
    assert parts[0].header("X-Long") == "first second"


def test_missing_content_type_on_attachment_defaults():
    body = b"--b\r\nContent-ID: <r>\r\n\r\n" + SOAP + b"\r\n--b\r\nContent-ID: <p>\r\n\r\nx\r\n--b--"
    _, parts = decode_multipart("multipart/related; boundary=b", body)
    assert parts[0].content_type.startswith("text/plain")


def test_decode_message_bare_soap():
    assert decode_message("application/soap+xml; charset=utf-8; action=\"x\"", SOAP) == (SOAP, [])


def _err(fn, code, fragment):
    with pytest.raises(EbmsException) as ei:
        fn()
    assert ei.value.code == code, ei.value
    assert fragment in ei.value.error.description, ei.value.error.description


def test_malformed_attachment_without_content_id():
    body = b"--b\r\nContent-ID: <r>\r\n\r\n" + SOAP + b"\r\n--b\r\nContent-Type: a/b\r\n\r\nx\r\n--b--\r\n"
    _err(lambda: decode_multipart("multipart/related; boundary=b", body), "EBMS:0007", "MIME part 2 has no Content-ID")


@pytest.mark.parametrize(
    "ct, body, code, fragment",
    [
        ("multipart/related", b"--b\r\n\r\nx\r\n--b--", "EBMS:0007", "no boundary"),
        ("multipart/mixed; boundary=b", b"", "EBMS:0007", "expected multipart/related"),
        ("multipart/related; boundary=zz", b"--b\r\n\r\nx\r\n--b--", "EBMS:0007", "does not occur"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--b\r\nContent-ID: <p>\r\n\r\ndata cut sh", "EBMS:0007", "no closing boundary"),
        ("multipart/related; boundary=b", b"--b--\r\n", "EBMS:0007", "closes before"),
        ("multipart/related; boundary=b; start=<nope>", b"--b\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--b--", "EBMS:0007", "start parameter names <nope>"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\nContent-Type: image/png\r\n\r\n<x/>\r\n--b--", "EBMS:0007", "root MIME part 1 has Content-Type image/png"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID <r>\r\n\r\n<x/>\r\n--b--", "EBMS:0007", "malformed header line"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--b\r\nContent-ID: <r>\r\n\r\ny\r\n--b--", "EBMS:0007", "MIME part 2 repeats Content-ID <r>"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--b\r\nContent-ID: <p>\r\nContent-Transfer-Encoding: base64\r\n\r\n!!notbase64!!\r\n--b--", "EBMS:0007", "MIME part 2 is not valid base64"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\n\r\n<x/>\r\n--b\r\nContent-ID: <p>\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nzz\r\n--b--", "EBMS:0007", "unsupported Content-Transfer-Encoding"),
        ("multipart/related; boundary=b", b"--b\r\nContent-ID: <r>\r\nno blank line and no end", "EBMS:0007", "no closing boundary"),
        ("multipart/related; boundary=b; type=text/html", b"--b\r\n\r\nx\r\n--b--", "EBMS:0007", "type parameter"),
    ],
)
def test_malformed_mime(ct, body, code, fragment):
    _err(lambda: decode_multipart(ct, body), code, fragment)


def test_too_many_parts():
    body = b"".join(b"--b\r\nContent-ID: <p%d>\r\n\r\nx\r\n" % i for i in range(10)) + b"--b--"
    _err(lambda: decode_multipart("multipart/related; boundary=b", body, max_parts=5), "EBMS:0004", "more than 5")


def test_decode_message_bad_content_types():
    _err(lambda: decode_message(None, SOAP), "EBMS:0007", "no Content-Type")
    _err(lambda: decode_message("text/xml; charset=utf-8", SOAP), "EBMS:0009", "SOAP 1.1")
    _err(lambda: decode_message("application/json", SOAP), "EBMS:0007", "application/json")


def test_parse_content_type_edge_cases():
    assert parse_content_type('Multipart/Related; a="x\\"y;z"; b=tok ; c; d=') == (
        "multipart/related", {"a": 'x"y;z', "b": "tok", "d": ""}
    )
    assert parse_content_type("") == ("", {})


def test_pair_payloads():
    msg = make_user_message(payloads=(PartInfo("cid:a%40x"), PartInfo("cid:b@x"), PartInfo(None)))
    a = MimePart("a@x", "application/xml", b"A")
    b = MimePart("b@x", "application/xml", b"B")
    pairs = pair_payloads(msg, [b, a])
    assert [(i.href, p.data) for i, p in pairs] == [("cid:a%40x", b"A"), ("cid:b@x", b"B")]
    _err(lambda: pair_payloads(msg, [a]), "EBMS:0007", "cid:b@x has no MIME part")
    _err(lambda: pair_payloads(msg, [a, b, MimePart("c@x", "t/t", b"")]), "EBMS:0007", "<c@x> not referenced")
