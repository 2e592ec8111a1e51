"""ebMS 3.0 error catalogue and the exception pipelines raise to answer a partner.

Codes come from ebMS 3.0 Core sec 6.7 (EBMS:0001-0011, 0101-0103, 0201-0202) and the AS4
profile sec 5 (EBMS:0301-0303). Keeping short description, severity and category in one
table means every error signal we send is consistent with the specifications.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from .model import SEVERITY_FAILURE, SEVERITY_WARNING, EbmsError

__all__ = ["ErrorDefinition", "ERROR_CATALOGUE", "make_error", "EbmsException", "normalize_code", "xml_safe"]

CONTENT: Final = "Content"
COMMUNICATION: Final = "Communication"
UNPACKAGING: Final = "Unpackaging"
PROCESSING: Final = "Processing"


@dataclass(frozen=True)
class ErrorDefinition:
    """Catalogue entry: the fixed parts of an ebMS error code."""

    code: str
    short_description: str
    severity: str
    category: str


def _d(code: str, short: str, severity: str, category: str) -> tuple[str, ErrorDefinition]:
    return code, ErrorDefinition(code, short, severity, category)


ERROR_CATALOGUE: Final[dict[str, ErrorDefinition]] = dict(
    [
        # ebMS processing errors (Core 6.7.1)
        _d("EBMS:0001", "ValueNotRecognized", SEVERITY_FAILURE, CONTENT),
        _d("EBMS:0002", "FeatureNotSupported", SEVERITY_WARNING, CONTENT),
        _d("EBMS:0003", "ValueInconsistent", SEVERITY_FAILURE, CONTENT),
        _d("EBMS:0004", "Other", SEVERITY_FAILURE, CONTENT),
        _d("EBMS:0005", "ConnectionFailure", SEVERITY_FAILURE, COMMUNICATION),
        _d("EBMS:0006", "EmptyMessagePartitionChannel", SEVERITY_WARNING, COMMUNICATION),
        _d("EBMS:0007", "MimeInconsistency", SEVERITY_FAILURE, UNPACKAGING),
        _d("EBMS:0008", "FeatureNotSupported", SEVERITY_FAILURE, UNPACKAGING),
        _d("EBMS:0009", "InvalidHeader", SEVERITY_FAILURE, UNPACKAGING),
        _d("EBMS:0010", "ProcessingModeMismatch", SEVERITY_FAILURE, PROCESSING),
        _d("EBMS:0011", "ExternalPayloadError", SEVERITY_FAILURE, CONTENT),
        # Security processing errors (Core 6.7.2)
        _d("EBMS:0101", "FailedAuthentication", SEVERITY_FAILURE, PROCESSING),
        _d("EBMS:0102", "FailedDecryption", SEVERITY_FAILURE, PROCESSING),
        _d("EBMS:0103", "PolicyNoncompliance", SEVERITY_FAILURE, PROCESSING),
        # Reliable messaging errors (Core 6.7.3)
        _d("EBMS:0201", "DysfunctionalReliability", SEVERITY_FAILURE, PROCESSING),
        _d("EBMS:0202", "DeliveryFailure", SEVERITY_FAILURE, COMMUNICATION),
        # AS4 profile additions
        _d("EBMS:0301", "MissingReceipt", SEVERITY_FAILURE, COMMUNICATION),
        _d("EBMS:0302", "InvalidReceipt", SEVERITY_FAILURE, COMMUNICATION),
        _d("EBMS:0303", "DecompressionFailure", SEVERITY_FAILURE, COMMUNICATION),
    ]
)


# What XML 1.0 cannot carry (section 2.2 Char): C0 controls other than tab/LF/CR, lone
# surrogates, U+FFFE and U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot carry written as a ``\\xNN``/``\\uNNNN`` escape.

    Descriptions quote what the partner sent (a Content-ID, a MIME parameter, a header
    line), and those bytes may hold control characters; the error signal must still be
    well-formed XML, or the partner gets no answer at all.
    """
    return _NOT_XML_CHAR.sub(lambda m: ascii(m.group())[1:-1], text)


def normalize_code(code: str) -> str:
    """Accept ``EBMS:0009``, ``ebms:0009`` or ``0009`` and return ``EBMS:0009``."""
    c = code.strip()
    if c[:5].upper() == "EBMS:":
        c = c[5:]
    return f"EBMS:{c}"


def make_error(
    code: str,
    description: str,
    ref_to_message_id: str | None = None,
    *,
    severity: str | None = None,
) -> EbmsError:
    """Build an :class:`EbmsError` from the catalogue, with a human description.

    ``description`` should tell the partner's operator exactly what was wrong (which
    element, which part); the short description is fixed by the code. ``severity``
    overrides the catalogue default, e.g. EBMS:0002 is a warning by default but a
    failure when the feature's absence means the message was not processed.
    """
    norm = normalize_code(code)
    try:
        d = ERROR_CATALOGUE[norm]
    except KeyError:
        raise ValueError(f"unknown ebMS error code {code!r}") from None
    return EbmsError(
        error_code=d.code,
        severity=severity or d.severity,
        category=d.category,
        short_description=d.short_description,
        description=xml_safe(description),
        ref_to_message_id=None if ref_to_message_id is None else xml_safe(ref_to_message_id),
        origin="ebMS",
    )


class EbmsException(Exception):
    """Raised anywhere in a pipeline to abort and answer the partner with ``error``.

    Carrying a full :class:`EbmsError` (not just text) lets the HTTP layer turn any
    failure into a correct error signal without knowing where it happened.
    """

    def __init__(self, error: EbmsError) -> None:
        super().__init__(f"{error.error_code} {error.short_description}: {error.description}")
        self.error = error

    def __reduce__(self) -> tuple[type["EbmsException"], tuple[EbmsError]]:
        # Default exception pickling would call cls(message); pipelines may run parsing
        # in worker processes, so the exception must survive the trip intact.
        return (type(self), (self.error,))

    @classmethod
    def of(
        cls,
        code: str,
        description: str,
        ref_to_message_id: str | None = None,
        *,
        severity: str | None = None,
    ) -> "EbmsException":
        """Shorthand for ``EbmsException(make_error(code, description, ref, severity=...))``."""
        return cls(make_error(code, description, ref_to_message_id, severity=severity))

    @property
    def code(self) -> str:
        """The ebMS error code, e.g. ``EBMS:0009``."""
        return self.error.error_code

    def with_ref(self, ref_to_message_id: str | None) -> "EbmsException":
        """Copy of this exception whose error refers to ``ref_to_message_id``.

        Parsers learn the message id only part-way through; this lets them attach it.
        """
        new = EbmsException(replace(self.error, ref_to_message_id=ref_to_message_id))
        new.__cause__ = self.__cause__
        return new
