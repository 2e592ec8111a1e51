"""AS4 (OASIS ebMS 3.0 + AS4 profile) wire format: pure builders and parsers.

No I/O, no crypto, no network and no partner lookups happen in this package, so every
function can be tested with bytes alone. Inbound XML must go through :func:`parse_xml`.
"""

from .compression import gzip_compress, gzip_decompress
from .envelope import build_user_message, new_envelope, new_wsu_id, serialize
from .errors import ERROR_CATALOGUE, EbmsException, ErrorDefinition, make_error
from .mime import MimePart, decode_message, decode_multipart, encode_multipart, pair_payloads, parse_content_type
from .model import (
    EbmsError,
    ErrorSignal,
    PartInfo,
    Party,
    PartyId,
    Property,
    Receipt,
    UserMessage,
    new_message_id,
)
from .parsing import ParsedEnvelope, parse_envelope, parse_user_message
from .payloads import ResolvedPayload, check_attachment_refs, resolve_payloads
from .signals import build_error, build_receipt, nri_digests
from .timestamps import format_timestamp, parse_timestamp, utc_now
from .xmlparse import XmlRejected, parse_xml

__all__ = [
    # model
    "PartyId",
    "Party",
    "Property",
    "PartInfo",
    "UserMessage",
    "Receipt",
    "EbmsError",
    "ErrorSignal",
    "new_message_id",
    # errors
    "ERROR_CATALOGUE",
    "ErrorDefinition",
    "EbmsException",
    "make_error",
    # xml
    "XmlRejected",
    "parse_xml",
    # timestamps
    "format_timestamp",
    "parse_timestamp",
    "utc_now",
    # envelopes
    "new_envelope",
    "new_wsu_id",
    "build_user_message",
    "build_receipt",
    "build_error",
    "serialize",
    "ParsedEnvelope",
    "parse_envelope",
    "parse_user_message",
    "nri_digests",
    # MIME
    "MimePart",
    "encode_multipart",
    "decode_multipart",
    "decode_message",
    "parse_content_type",
    "pair_payloads",
    # payloads
    "ResolvedPayload",
    "check_attachment_refs",
    "resolve_payloads",
    # compression
    "gzip_compress",
    "gzip_decompress",
]
