"""Timestamps: one canonical output form, liberal xsd:dateTime input."""

from datetime import datetime, timedelta, timezone

import pytest

from gateway.as4 import format_timestamp, parse_timestamp, utc_now

UTC = timezone.utc


def test_format_three_fraction_digits_and_z():
    dt = datetime(2026, 11, 23, 19, 15, 22, 123456, tzinfo=UTC)
    assert format_timestamp(dt) == "2026-11-23T19:15:22.123Z"


def test_format_zero_fraction():
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_format_truncates_not_rounds():
    assert format_timestamp(datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)).endswith("00.999Z")


def test_format_converts_offset_to_utc():
    dt = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(dt) == "2025-12-31T23:30:00.000Z"


def test_format_refuses_naive():
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-23T19:15:22.123Z", datetime(2026, 11, 23, 19, 15, 22, 123000, tzinfo=UTC)),
        ("2026-11-23T19:15:22Z", datetime(2026, 11, 23, 19, 15, 22, tzinfo=UTC)),
        ("2026-11-23T19:15:22", datetime(2026, 11, 23, 19, 15, 22, tzinfo=UTC)),
        ("2026-11-23T19:15:22.5", datetime(2026, 11, 23, 19, 15, 22, 500000, tzinfo=UTC)),
        ("2026-11-23T19:15:22.123456789Z", datetime(2026, 11, 23, 19, 15, 22, 123456, tzinfo=UTC)),
        ("2026-11-23T21:15:22+02:00", datetime(2026, 11, 23, 19, 15, 22, tzinfo=UTC)),
        ("2026-11-23T14:15:22.1-05:00", datetime(2026, 11, 23, 19, 15, 22, 100000, tzinfo=UTC)),
        ("2026-11-23T00:00:00+14:00", datetime(2026, 11, 22, 10, 0, tzinfo=UTC)),
        ("2026-12-31T24:00:00Z", datetime(2027, 1, 1, tzinfo=UTC)),
        ("  2026-11-23T19:15:22Z\n", datetime(2026, 11, 23, 19, 15, 22, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_parse_valid(text, expected):
    got = parse_timestamp(text)
    assert got == expected
    assert got.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-23",
        "2026-11-23 19:15:22Z",
        "2026-11-23T19:15Z",
        "2026-11-23T19:15:22.Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-23T25:00:00Z",
        "2026-11-23T24:00:01Z",
        "2026-11-23T19:60:00Z",
        "2026-11-23T19:15:60Z",
        "2026-11-23T19:15:22+15:00",
        "2026-11-23T19:15:22+01:60",
        "2026-11-23T19:15:22+0100",
        "-2026-11-23T19:15:22Z",
        "0000-01-01T00:00:00Z",
        "12026-01-01T00:00:00Z",
        "2026-11-23T19:15:22ZZ",
        "２０２６-11-23T19:15:22Z",
    ],
)
def test_parse_invalid(text):
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_round_trip_and_utc_now():
    now = utc_now()
    assert now.microsecond % 1000 == 0
    assert parse_timestamp(format_timestamp(now)) == now
