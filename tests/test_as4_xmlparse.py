"""parse_xml must refuse DTDs, entities and absurd nesting, and accept ordinary XML."""

import pytest

from gateway.as4 import XmlRejected, parse_xml


def test_parses_plain_xml_keeping_comments():
    root = parse_xml(b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- hi --><a><b>x</b><!--c--></a>')
    assert root.tag == "a"
    assert root.findtext("b") == "x"
    assert len(root) == 2  # the comment is kept (signatures may cover it)


def test_xxe_rejected():
    xxe = (
        b'<?xml version="1.0"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<foo>&xxe;</foo>"
    )
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse_xml(xxe)


def test_plain_doctype_rejected():
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE html SYSTEM "http://example.invalid/x.dtd"><html/>')


def test_doctype_after_comment_and_pi_rejected():
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse_xml(b"\xef\xbb\xbf<?xml version='1.0'?><?pi x?><!-- c -->\n<!DOCTYPE a []><a/>")


def test_billion_laughs_rejected():
    lol = b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    prev = "lol"
    for i in range(1, 10):
        name = f"lol{i}"
        lol += f'<!ENTITY {name} "{("&" + prev + ";") * 10}">\n'.encode()
        prev = name
    lol += b"]>\n<lolz>&lol9;</lolz>"
    with pytest.raises(XmlRejected):
        parse_xml(lol)


def test_doctype_in_utf16_rejected_after_parse():
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'.encode("utf-16")
    with pytest.raises(XmlRejected):
        parse_xml(data)


def test_undefined_entity_rejected():
    with pytest.raises(XmlRejected):
        parse_xml(b"<a>&undefined;</a>")


def test_external_xinclude_not_processed():
    root = parse_xml(
        b'<a xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></a>'
    )
    assert "root:" not in "".join(root.itertext())


def test_malformed_rejected():
    with pytest.raises(XmlRejected, match="well-formed"):
        parse_xml(b"<a><b></a>")


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_empty_rejected(data):
    with pytest.raises(XmlRejected, match="empty"):
        parse_xml(data)


def test_str_refused():
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


def _nested(depth: int) -> bytes:
    return b"<e>" * depth + b"</e>" * depth


def test_depth_limit_custom():
    parse_xml(_nested(10), max_depth=10)
    with pytest.raises(XmlRejected, match="deeper than 9"):
        parse_xml(_nested(10), max_depth=9)


def test_depth_limit_default():
    parse_xml(_nested(200))
    with pytest.raises(XmlRejected):
        parse_xml(_nested(300))
    with pytest.raises(XmlRejected):
        parse_xml(_nested(100_000))


def test_xml_rejected_is_value_error():
    assert issubclass(XmlRejected, ValueError)
