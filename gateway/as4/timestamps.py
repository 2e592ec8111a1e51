"""xsd:dateTime handling for ebMS ``eb:Timestamp``.

Outbound timestamps use one canonical form (UTC, millisecond precision, ``Z``) so the
bytes we sign and the evidence we keep are predictable. Inbound we accept any valid
xsd:dateTime, since partners' stacks differ in precision and offset style.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["format_timestamp", "parse_timestamp", "utc_now"]

_XSD_DATETIME = re.compile(
    r"""
    (?P<year>-?\d{4,})-(?P<month>\d{2})-(?P<day>\d{2})
    T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})
    (?:\.(?P<fraction>\d+))?
    (?P<tz>Z|[+-]\d{2}:\d{2})?
    """,
    re.VERBOSE | re.ASCII,
)


def utc_now() -> datetime:
    """Current time as an aware UTC datetime truncated to milliseconds.

    Truncated so that a timestamp kept in the model equals what the wire carries.
    """
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(dt: datetime) -> str:
    """Format as ``YYYY-MM-DDThh:mm:ss.fffZ`` in UTC.

    Naive datetimes are refused (ValueError): guessing their zone is how local time
    leaks onto the wire. Sub-millisecond digits are truncated, not rounded, so the
    result never lies in the future relative to ``dt``.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (use datetime.now(timezone.utc))")
    u = dt.astimezone(timezone.utc)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond // 1000:03d}Z"
    )


def parse_timestamp(s: str) -> datetime:
    """Parse any valid xsd:dateTime into an aware UTC datetime.

    Accepts an optional fraction of any length (digits beyond microseconds are
    truncated), ``Z`` or a ``+hh:mm``/``-hh:mm`` offset (at most 14:00), and
    ``24:00:00`` (end of day). A value without offset is taken as UTC, which is what
    AS4 implementations mean by it. Raises ValueError with the offending text.
    """
    text = s.strip()
    m = _XSD_DATETIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not an xsd:dateTime: {s!r}")
    year_text = m["year"]
    if year_text.startswith("-") or (len(year_text) > 4 and year_text.startswith("0")):
        raise ValueError(f"year out of supported range in {s!r}")
    year, month, day = int(year_text), int(m["month"]), int(m["day"])
    hour, minute, second = int(m["hour"]), int(m["minute"]), int(m["second"])
    fraction = m["fraction"] or ""
    micro = int((fraction + "000000")[:6])
    end_of_day = False
    if hour == 24:
        if minute or second or fraction.strip("0"):
            raise ValueError(f"hour 24 is only valid as 24:00:00 in {s!r}")
        hour, end_of_day = 0, True
    tz_text = m["tz"]
    if tz_text is None or tz_text == "Z":
        tz = timezone.utc
    else:
        oh, om = int(tz_text[1:3]), int(tz_text[4:6])
        if om > 59 or oh * 60 + om > 14 * 60:
            raise ValueError(f"time zone offset out of range in {s!r}")
        delta = timedelta(hours=oh, minutes=om)
        tz = timezone(-delta if tz_text[0] == "-" else delta)
    try:
        dt = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        if end_of_day:
            dt += timedelta(days=1)
        return dt.astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"invalid date or time in {s!r}: {exc}") from exc
