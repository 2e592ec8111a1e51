"""Path, query and body-type checks of the NSW API, exactly as openapi.json declares them.

Everything a client sends is checked before any work starts, so a bad value is a 400 (or 415)
problem naming the parameter and the fix, never a 500 or a silently different answer
(``limit=-1`` once dropped the newest document). Text values travel on into the store and into
the AS4 header (an XML document), so they must be valid UTF-8, short enough for their column and
free of characters XML cannot carry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import unquote_to_bytes

from gateway.nswapi.problems import ApiProblem

# Characters no text parameter may hold: C0 controls and DEL (also the ones XML 1.0 forbids) and
# the XML non-characters U+FFFE/U+FFFF. openapi.json states the same rule as a pattern.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")

# Document media types POST /api/v1/documents accepts (parameters such as charset are ignored:
# the XML declaration says the encoding). Any application/<x>+xml is XML too (RFC 7303).
DOCUMENT_MEDIA_TYPES = ("application/xml", "text/xml")
_MEDIA_TYPE = re.compile(r"^([!#$%&'*+.^_`|~0-9a-z-]+)/([!#$%&'*+.^_`|~0-9a-z-]+)$")


@dataclass(frozen=True)
class Text:
    """A text parameter: 1..max_length characters, no control characters."""

    name: str
    max_length: int = 255
    required: bool = False

    def parse(self, where: str, value: str) -> str:
        if not value:
            raise ApiProblem("invalid-parameter", f"{where} parameter {self.name!r} is empty; give a value "
                                                  f"or leave the parameter out")
        if len(value) > self.max_length:
            raise ApiProblem("invalid-parameter", f"{where} parameter {self.name!r} is {len(value)} characters "
                                                  f"long; at most {self.max_length} are allowed")
        bad = _FORBIDDEN.search(value)
        if bad:
            raise ApiProblem("invalid-parameter", f"{where} parameter {self.name!r} contains the control "
                                                  f"character U+{ord(bad.group()):04X} at position {bad.start()}; "
                                                  f"use printable text only")
        return value


@dataclass(frozen=True)
class Integer:
    """An integer parameter in [minimum, maximum], written in decimal digits."""

    name: str
    minimum: int
    maximum: int
    default: int
    required: bool = False

    def parse(self, where: str, value: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]{1,12}", value) or not self.minimum <= int(value) <= self.maximum:
            raise ApiProblem("invalid-parameter", f"{where} parameter {self.name!r} must be an integer from "
                                                  f"{self.minimum} to {self.maximum}, got {value[:40]!r}")
        return int(value)


Param = Text | Integer


def path_segments(raw_path: bytes) -> list[str]:
    """The percent-decoded segments of a request path; 400 if one is not valid UTF-8."""
    segments = []
    for part in raw_path.split(b"/"):
        if not part:
            continue
        try:
            segments.append(unquote_to_bytes(part).decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiProblem("invalid-parameter", "the request path is not valid UTF-8 once percent-decoded; "
                                                  "percent-encode the UTF-8 bytes of each character") from None
    return segments


def query(args: Mapping[bytes, Sequence[bytes]], params: Sequence[Param]) -> dict[str, object]:
    """The query parameters of an operation by name (absent optional ones: None or their default).

    Refused with 400: a parameter the operation does not take (a typo would otherwise be ignored),
    one given twice, a value that is not UTF-8 or breaks its rule, a required one missing."""
    by_name = {p.name: p for p in params}
    values: dict[str, object] = {p.name: getattr(p, "default", None) for p in params}
    given = set()
    for raw_name, raw_values in args.items():
        name = _utf8(raw_name, "a query parameter name")
        given.add(name)
        param = by_name.get(name)
        if param is None:
            takes = ", ".join(by_name) or "none"
            raise ApiProblem("invalid-parameter", f"unknown query parameter {name[:40]!r}; this operation "
                                                  f"takes: {takes}")
        if len(raw_values) > 1:
            raise ApiProblem("invalid-parameter", f"query parameter {name!r} is given {len(raw_values)} times; "
                                                  f"give it once")
        values[name] = param.parse("query", _utf8(raw_values[0], f"query parameter {name!r}"))
    missing = [p.name for p in params if p.required and p.name not in given]
    if missing:
        raise ApiProblem("invalid-parameter", f"missing query parameter(s): {', '.join(missing)}")
    return values


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiProblem("invalid-parameter", f"{what} is not valid UTF-8 once percent-decoded; "
                                              f"percent-encode the UTF-8 bytes of each character") from None


def document_media_type(header: bytes | None) -> str:
    """The media type of a submitted document's body; 415 unless it is an XML type."""
    accepted = ", ".join(DOCUMENT_MEDIA_TYPES) + " or application/<name>+xml"
    if not header:
        raise ApiProblem("unsupported-media-type", f"no Content-Type; send the document with Content-Type: "
                                                   f"{accepted}")
    value = header.decode("latin-1").split(";", 1)[0].strip().lower()
    match = _MEDIA_TYPE.match(value)
    if match and (value in DOCUMENT_MEDIA_TYPES or (match.group(1) == "application"
                                                    and match.group(2).endswith("+xml")
                                                    and len(match.group(2)) > 4)):
        return value
    raise ApiProblem("unsupported-media-type", f"Content-Type {value[:80]!r} is not accepted; send the document "
                                               f"as {accepted}",
                     headers={b"accept-post": b"application/xml, text/xml, application/*+xml"})
