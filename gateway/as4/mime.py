"""SOAP with Attachments: multipart/related packaging of an AS4 message.

The multipart splitter is written by hand over bytes on purpose: the stdlib ``email``
parser decodes to str, rewrites line endings in binary parts and is slow on large
payloads, all of which would corrupt or delay attachments whose digests are signed.
Encoding is strict and canonical (CRLF, binary transfer encoding); decoding is
tolerant of what real peers send (LF-only, base64 parts, unquoted parameters, a
preamble, Content-IDs with or without angle brackets).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from crypto import content
from crypto.content import FileContent, Octets

from .errors import EbmsException
from .model import PartInfo, UserMessage
from .namespaces import SOAP12_MIME_TYPE

__all__ = [
    "MimePart",
    "encode_multipart",
    "decode_multipart",
    "decode_message",
    "parse_content_type",
    "pair_payloads",
]

MIME_INCONSISTENCY = "EBMS:0007"
OTHER = "EBMS:0004"

#: Root part media types accepted on input; the envelope parser rejects non-SOAP-1.2
#: content with a precise message, which beats a vague MIME error here.
_XML_ROOT_TYPES = frozenset({SOAP12_MIME_TYPE, "application/xml", "text/xml"})
_IDENTITY_ENCODINGS = frozenset({"binary", "8bit", "7bit"})
_MAX_HEADER_BYTES = 64 * 1024
#: The SOAP envelope is parsed as one tree; payloads travel as attachments.
_MAX_ROOT_BYTES = 64 * 1024 * 1024
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True)
class MimePart:
    """One MIME part: an attachment (or, internally, the SOAP root part).

    ``content_id`` has no angle brackets; ``data`` is already transfer-decoded;
    ``headers`` holds any other headers (encode) or all received headers (decode).
    """

    content_id: str
    content_type: str
    data: Octets          # bytes, or a range of a spooled file for a large attachment
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """First header called ``name`` (case-insensitive), if any."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


def _mime_error(description: str, code: str = MIME_INCONSISTENCY) -> EbmsException:
    return EbmsException.of(code, description)


def _strip_brackets(cid: str) -> str:
    cid = cid.strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1].strip()
    return cid


def _check_header_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"MIME header {name} must not contain line breaks")


# ---------------------------------------------------------------------------- encode


def _new_boundary() -> str:
    return f"MIMEBoundary_{uuid.uuid4().hex}"


def encode_multipart(
    soap_xml: bytes,
    parts: Sequence[MimePart],
    boundary: str | None = None,
    *,
    root_content_id: str | None = None,
) -> tuple[str, Octets]:
    """Package a SOAP envelope and attachments as multipart/related.

    Returns (Content-Type header value, body). The root part is
    ``application/soap+xml; charset=UTF-8`` and named by ``start``; every part uses
    ``Content-Transfer-Encoding: binary`` (no base64 inflation, and attachment bytes
    stay exactly what was signed). A random boundary is re-drawn if it occurs in the
    data; a caller-given boundary that occurs in the data raises ValueError.
    """
    root_cid = root_content_id or f"root.{uuid.uuid4().hex}@as4.gateway"
    seen = {root_cid}
    for p in parts:
        if not p.content_id or p.content_id in seen:
            raise ValueError(f"attachment Content-ID {p.content_id!r} is empty or not unique")
        if "<" in p.content_id or ">" in p.content_id:
            raise ValueError(f"Content-ID {p.content_id!r} must be given without angle brackets")
        seen.add(p.content_id)
        _check_header_value("Content-ID", p.content_id)
        _check_header_value("Content-Type", p.content_type)
        for name, value in p.headers:
            if not _TOKEN_HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid MIME header name {name!r}")
            if name.lower() in ("content-id", "content-type", "content-transfer-encoding"):
                raise ValueError(f"header {name} is set by encode_multipart itself")
            _check_header_value(name, value)

    def collides(b: str) -> bool:
        marker = b"--" + b.encode("ascii")
        return marker in soap_xml or any(_contains(p.data, marker) for p in parts)

    if boundary is None:
        boundary = _new_boundary()
        while collides(boundary):  # astronomically unlikely with 128 random bits
            boundary = _new_boundary()
    else:
        if not _BCHARS.fullmatch(boundary):
            raise ValueError(f"invalid MIME boundary {boundary!r} (RFC 2046: 1-70 bchars)")
        if collides(boundary):
            raise ValueError("the given MIME boundary occurs inside the message data")

    delim = b"--" + boundary.encode("ascii")
    streamed = any(isinstance(p.data, FileContent) for p in parts)
    out = content.SpoolWriter(0) if streamed else _Buffer()

    def emit(headers: list[tuple[str, str]], data: Octets) -> None:
        out.write(delim + b"\r\n")
        for k, v in headers:
            out.write(f"{k}: {v}\r\n".encode("utf-8"))
        out.write(b"\r\n")
        for piece in content.chunks(data):
            out.write(piece)
        out.write(b"\r\n")

    emit(
        [
            ("Content-Type", f"{SOAP12_MIME_TYPE}; charset=UTF-8"),
            ("Content-Transfer-Encoding", "binary"),
            ("Content-ID", f"<{root_cid}>"),
        ],
        soap_xml,
    )
    for p in parts:
        emit(
            [
                ("Content-Type", p.content_type),
                ("Content-Transfer-Encoding", "binary"),
                ("Content-ID", f"<{p.content_id}>"),
                *p.headers,
            ],
            p.data,
        )
    out.write(delim + b"--\r\n")
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="{SOAP12_MIME_TYPE}"; start="<{root_cid}>"'
    )
    return content_type, out.result()


class _Buffer(bytearray):
    """The in-memory sink of ``encode_multipart`` (a ``SpoolWriter`` for large parts)."""

    write = bytearray.extend

    def result(self) -> bytes:
        return bytes(self)


def _contains(data: Octets, marker: bytes) -> bool:
    if not isinstance(data, FileContent):
        return marker in data
    tail = b""
    for piece in data.chunks():
        if marker in tail + piece[:len(marker) - 1] or marker in piece:
            return True
        tail = piece[-(len(marker) - 1):]
    return False


# ---------------------------------------------------------------------------- decode


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into (lower-case media type, parameters).

    Parameter names are lower-cased; values may be quoted (with backslash escapes) or
    bare tokens. The first occurrence of a parameter wins. Tolerant by design: it
    never raises, garbage simply yields fewer parameters.
    """
    n = len(value)
    i = value.find(";")
    media = (value if i < 0 else value[:i]).strip().lower()
    params: dict[str, str] = {}
    pos = n if i < 0 else i + 1
    while pos < n:
        while pos < n and value[pos] in " \t\r\n;":
            pos += 1
        start = pos
        while pos < n and value[pos] not in "=;":
            pos += 1
        name = value[start:pos].strip().lower()
        if pos >= n or value[pos] == ";":
            continue  # a parameter without value: ignore it
        pos += 1  # skip '='
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos < n and value[pos] == '"':
            pos += 1
            chars = []
            while pos < n and value[pos] != '"':
                if value[pos] == "\\" and pos + 1 < n:
                    pos += 1
                chars.append(value[pos])
                pos += 1
            pos += 1  # closing quote (or end of an unterminated value)
            val = "".join(chars)
            while pos < n and value[pos] != ";":
                pos += 1
        else:
            start = pos
            while pos < n and value[pos] != ";":
                pos += 1
            val = value[start:pos].strip()
        if name and name not in params:
            params[name] = val
    return media, params


def _split_parts(body: "bytes | _FileWindow", boundary: bytes, max_parts: int) -> list[tuple[int, int]]:
    """Cut a multipart body into raw parts (headers + content), per RFC 2046 sec 5.1.1.

    A delimiter is ``--boundary`` at the start of a line, optionally followed by ``--``
    (close delimiter) and transport padding, then CRLF, LF or end of input. The line
    break before a delimiter belongs to the delimiter, not to the part's data.
    Boundary-like text that is not at a line start, or continues with other
    characters, is data. Returns each part's (start, end) in ``body``.
    """
    delim = b"--" + boundary
    parts: list[tuple[int, int]] = []
    start: int | None = None  # where the current part's content begins
    search = 0
    n = len(body)
    while True:
        i = body.find(delim, search)
        if i < 0:
            break
        if i > 0 and body[i - 1] != 0x0A:  # not at the start of a line
            search = i + 1
            continue
        k = i + len(delim)
        is_close = body.startswith(b"--", k)
        if is_close:
            k += 2
        while k < n and body[k] in (0x20, 0x09):
            k += 1
        if k < n:
            if body.startswith(b"\r\n", k):
                eol = k + 2
            elif body[k] == 0x0A:
                eol = k + 1
            else:  # e.g. "--boundaryXYZ": data that merely starts like the boundary
                search = i + 1
                continue
        else:
            eol = n
        if start is not None:
            end = i
            if body[end - 2 : end] == b"\r\n":
                end -= 2
            elif body[end - 1 : end] == b"\n":
                end -= 1
            parts.append((start, max(end, start)))
            if len(parts) > max_parts:
                raise _mime_error(f"multipart message has more than {max_parts} MIME parts", OTHER)
        if is_close:
            if start is None:
                raise _mime_error("multipart body closes before its first MIME part")
            return parts
        start = eol
        search = eol
    if start is None:
        raise _mime_error("MIME boundary from the Content-Type header does not occur in the body")
    raise _mime_error("multipart body has no closing boundary (truncated message?)")


def _parse_headers(raw: bytes, number: int) -> tuple[list[tuple[str, str]], int | None]:
    """Split one raw part into its headers and where its (still transfer-encoded) content
    starts; ``None`` for a part of headers only. ``raw`` may be just the part's first
    ``_MAX_HEADER_BYTES`` and a little more (a part spooled to a file)."""
    headers: list[tuple[str, str]] = []
    pos = 0
    while True:
        if pos > _MAX_HEADER_BYTES:
            raise _mime_error(f"MIME part {number} has more than {_MAX_HEADER_BYTES} bytes of headers")
        nl = raw.find(b"\n", pos)
        if nl < 0:
            if raw[pos:].strip():
                raise _mime_error(f"MIME part {number} has no blank line ending its headers")
            return headers, None  # headers only, empty content
        line = raw[pos:nl]
        if line.endswith(b"\r"):
            line = line[:-1]
        pos = nl + 1
        if not line:
            return headers, pos
        text = line.decode("latin-1")
        if text[0] in " \t":
            if not headers:
                raise _mime_error(f"MIME part {number} starts with a folded header line")
            k, v = headers[-1]
            headers[-1] = (k, f"{v} {text.strip()}")
            continue
        name, sep, value = text.partition(":")
        if not sep or not _TOKEN_HEADER_NAME.fullmatch(name.strip()):
            raise _mime_error(f"MIME part {number} has a malformed header line {text[:80]!r}")
        headers.append((name.strip(), value.strip()))


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    low = name.lower()
    for k, v in headers:
        if k.lower() == low:
            return v
    return None


def _decode_content(content: bytes, cte: str | None, number: int) -> bytes:
    enc = (cte or "binary").strip().lower()
    if enc in _IDENTITY_ENCODINGS:
        return content
    if enc == "base64":
        try:
            return base64.b64decode(b"".join(content.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _mime_error(f"MIME part {number} is not valid base64: {exc}") from exc
    if enc == "quoted-printable":
        return binascii.a2b_qp(content)
    raise _mime_error(f"MIME part {number} has unsupported Content-Transfer-Encoding {cte!r}")


def decode_multipart(
    content_type: str, body: Octets, *, max_parts: int = 100
) -> tuple[bytes, list[MimePart]]:
    """Unpack a multipart/related AS4 message into (SOAP envelope bytes, attachments).

    The root part is the one named by the ``start`` parameter, else the first part.
    Attachments keep their order and carry all their headers. Raises
    :class:`EbmsException` EBMS:0007 MimeInconsistency naming the problem (or
    EBMS:0004 when ``max_parts`` is exceeded).
    """
    media, params = parse_content_type(content_type)
    if media != "multipart/related":
        raise _mime_error(f"Content-Type is {media or 'empty'}, expected multipart/related")
    boundary = params.get("boundary", "")
    if not boundary:
        raise _mime_error("multipart/related Content-Type has no boundary parameter")
    if len(boundary) > 200:
        raise _mime_error("MIME boundary is longer than 200 characters")
    type_param = params.get("type")
    if type_param is not None and type_param.strip().lower() not in _XML_ROOT_TYPES:
        raise _mime_error(f"multipart/related type parameter is {type_param!r}, expected {SOAP12_MIME_TYPE}")
    try:
        boundary_bytes = boundary.encode("ascii")
    except UnicodeEncodeError:
        raise _mime_error("MIME boundary contains non-ASCII characters") from None

    window = _FileWindow(body) if isinstance(body, FileContent) else bytes(body)
    spans = _split_parts(window, boundary_bytes, max_parts)
    if not spans:
        raise _mime_error("multipart message has no MIME parts")

    start = params.get("start")
    start_cid = _strip_brackets(start) if start else None
    decoded: list[MimePart] = []
    seen: set[str] = set()
    root_index: int | None = None if start_cid else 0
    for number, (begin, end) in enumerate(spans, 1):
        if isinstance(body, FileContent):
            head = body.read_at(begin, min(end - begin, _MAX_HEADER_BYTES + 1024))
            headers, at = _parse_headers(head, number)
            if at is None and end - begin > len(head):
                raise _mime_error(f"MIME part {number} has more than {_MAX_HEADER_BYTES} bytes of headers")
        else:
            headers, at = _parse_headers(window[begin:end], number)
        cid_header = _get(headers, "Content-ID")
        cid = _strip_brackets(cid_header) if cid_header is not None else ""
        if cid:
            if cid in seen:
                raise _mime_error(f"MIME part {number} repeats Content-ID <{cid}>")
            seen.add(cid)
        if start_cid is not None and cid == start_cid:
            root_index = number - 1
        ctype = (_get(headers, "Content-Type") or "").strip()
        cte = _get(headers, "Content-Transfer-Encoding")
        decoded.append(MimePart(cid, ctype, _part_content(body, window, begin, end, at, cte, number),
                                tuple(headers)))

    if root_index is None:
        raise _mime_error(f"start parameter names <{start_cid}> but no MIME part has that Content-ID")
    root = decoded[root_index]
    root_media, _ = parse_content_type(root.content_type)
    if root.content_type and root_media not in _XML_ROOT_TYPES:
        raise _mime_error(
            f"root MIME part {root_index + 1} has Content-Type {root_media}, expected {SOAP12_MIME_TYPE}"
        )
    attachments: list[MimePart] = []
    for idx, part in enumerate(decoded):
        if idx == root_index:
            continue
        if not part.content_id:
            raise _mime_error(f"MIME part {idx + 1} has no Content-ID")
        if not part.content_type:
            # RFC 2045 default; the payload's real type is in PartInfo's MimeType.
            part = MimePart(part.content_id, "text/plain; charset=us-ascii", part.data, part.headers)
        attachments.append(part)
    if len(root.data) > _MAX_ROOT_BYTES:
        raise _mime_error(f"the SOAP envelope part has {len(root.data)} bytes, more than the "
                          f"{_MAX_ROOT_BYTES} this gateway reads; send large content as attachments", OTHER)
    return content.as_bytes(root.data), attachments


def _part_content(body: Octets, window: "bytes | _FileWindow", begin: int, end: int, at: int | None,
                  cte: str | None, number: int) -> Octets:
    """A part's transfer-decoded content: a range of the spooled body when it is large and
    sent binary (the AS4 norm), else bytes."""
    if at is None:
        return b""
    if not isinstance(body, FileContent):
        return _decode_content(window[begin + at:end], cte, number)
    length = end - begin - at
    if (cte or "binary").strip().lower() in _IDENTITY_ENCODINGS and length > content.SPOOL_THRESHOLD:
        return body.sub(begin + at, length)
    # base64 and quoted-printable parts of a spooled body are decoded in memory.
    return _decode_content(body.read_at(begin + at, length), cte, number)


class _FileWindow:
    """The few ``bytes`` operations ``_split_parts`` uses (``find``, ``startswith``, an index,
    a short slice), over a spooled body read in chunks, so a gigabyte body is scanned in
    one pass without being read into memory."""

    def __init__(self, data: FileContent):
        self.data = data
        self._at, self._chunk = 0, b""

    def __len__(self) -> int:
        return self.data.length

    def _read(self, offset: int, size: int) -> bytes:
        if self._at <= offset and offset + size <= self._at + len(self._chunk):
            return self._chunk[offset - self._at:offset - self._at + size]
        self._at, self._chunk = offset, self.data.read_at(offset, max(size, content.CHUNK))
        return self._chunk[:size]

    def find(self, sub: bytes, start: int) -> int:
        pos = start
        while pos < self.data.length:
            window = self._read(pos, content.CHUNK + len(sub) - 1)
            i = window.find(sub)
            if i >= 0:
                return pos + i
            if pos + len(window) >= self.data.length:
                return -1
            pos += len(window) - len(sub) + 1
        return -1

    def startswith(self, prefix: bytes, start: int) -> bool:
        return self._read(start, len(prefix)) == prefix

    def __getitem__(self, key):
        if isinstance(key, slice):
            begin, end = max(key.start or 0, 0), min(key.stop, self.data.length)
            return self._read(begin, end - begin) if end > begin else b""
        return self._read(key, 1)[0]


def decode_message(
    content_type: str | None, body: Octets, *, max_parts: int = 100
) -> tuple[bytes, list[MimePart]]:
    """Unpack any AS4 HTTP body: multipart/related, or a bare ``application/soap+xml``.

    ``body`` may be a spooled file (``crypto.content.FileContent``): then large binary
    attachments stay ranges of it and are never read into memory here."""
    if not content_type or not content_type.strip():
        raise _mime_error("HTTP request has no Content-Type")
    media, _params = parse_content_type(content_type)
    if media == SOAP12_MIME_TYPE:
        if len(body) > _MAX_ROOT_BYTES:
            raise _mime_error(f"the SOAP envelope has {len(body)} bytes, more than the {_MAX_ROOT_BYTES} "
                              "this gateway reads; send large content as attachments", OTHER)
        return content.as_bytes(body), []
    if media == "multipart/related":
        return decode_multipart(content_type, body, max_parts=max_parts)
    if media == "text/xml":
        raise EbmsException.of("EBMS:0009", "Content-Type text/xml means SOAP 1.1; AS4 requires SOAP 1.2 (application/soap+xml)")
    raise _mime_error(f"Content-Type {media!r} is neither application/soap+xml nor multipart/related")


def pair_payloads(
    user_message: UserMessage, attachments: Sequence[MimePart]
) -> tuple[tuple[PartInfo, MimePart], ...]:
    """Match each ``cid:`` PartInfo with its attachment, in PartInfo order.

    EBMS:0007 when a PartInfo names a Content-ID that no MIME part has, or when an
    attachment is not referenced by any PartInfo (an unaccounted-for attachment could
    smuggle unsigned content).
    """
    by_cid = {p.content_id: p for p in attachments}
    pairs: list[tuple[PartInfo, MimePart]] = []
    used: set[str] = set()
    for info in user_message.payloads:
        cid = info.content_id
        if cid is None:
            continue
        part = by_cid.get(cid)
        if part is None and info.href is not None:
            part = by_cid.get(info.href[4:])  # peers that did not URL-encode the cid
        if part is None:
            raise EbmsException.of(
                MIME_INCONSISTENCY, f"PartInfo {info.href} has no MIME part with that Content-ID",
                user_message.message_id,
            )
        used.add(part.content_id)
        pairs.append((info, part))
    unused = [p.content_id for p in attachments if p.content_id not in used]
    if unused:
        raise EbmsException.of(
            MIME_INCONSISTENCY,
            f"MIME part(s) {', '.join('<' + c + '>' for c in unused)} not referenced by any PartInfo",
            user_message.message_id,
        )
    return tuple(pairs)
