"""CEF time values to ISO 8601 UTC, keeping the source's fraction digits."""

from __future__ import annotations

import pytest

from enrich.timestamps import (
    NOT_SET,
    format_receive_time,
    normalize_cef_time,
    normalize_rfc3339,
    resolve_zone,
)

RECEIVED_AT_US = 1_717_582_272_000_000  # 2024-06-05T10:11:12Z


def normalize(value: str, dtz: str | None = None) -> str | None:
    return normalize_cef_time(value, dtz=dtz, received_at_us=RECEIVED_AT_US)


def test_epoch_milliseconds_always_have_three_fraction_digits() -> None:
    assert normalize("1717582272123") == "2024-06-05T10:11:12.123Z"
    assert normalize("1717582270000") == "2024-06-05T10:11:10.000Z"


def test_ten_digit_epoch_is_still_milliseconds() -> None:
    assert normalize("1717582272") == "1970-01-20T21:06:22.272Z"


@pytest.mark.parametrize("value", ["0", "-5", "-0"])
def test_epoch_of_zero_or_less_means_not_set(value: str) -> None:
    assert normalize(value) == NOT_SET


def test_epoch_beyond_the_calendar_is_not_a_time() -> None:
    assert normalize("9" * 30) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jun 05 2024 10:11:12", "2024-06-05T10:11:12Z"),
        ("Jun 05 2024 10:11:12.120", "2024-06-05T10:11:12.120Z"),
        ("Jun 05 2024 12:11:12 CEST", "2024-06-05T10:11:12Z"),
        ("Jun 05 2024 12:11:12.5 Europe/Berlin", "2024-06-05T10:11:12.5Z"),
        ("Jun 05 2024 05:11:12 -0500", "2024-06-05T10:11:12Z"),
        ("Jun 05 2024 11:11:12 GMT+01:00", "2024-06-05T10:11:12Z"),
        ("jun  5 2024 10:11:12 UTC", "2024-06-05T10:11:12Z"),
    ],
)
def test_month_day_year_layouts(value: str, expected: str) -> None:
    assert normalize(value) == expected


def test_zoneless_time_is_in_dtz() -> None:
    assert (
        normalize("Jun 05 2024 12:11:12", dtz="Europe/Berlin") == "2024-06-05T10:11:12Z"
    )


def test_explicit_zone_wins_over_dtz() -> None:
    assert normalize("Jun 05 2024 10:11:12 UTC", dtz="Europe/Berlin") == (
        "2024-06-05T10:11:12Z"
    )


def test_zoneless_time_with_unknown_dtz_is_read_as_utc() -> None:
    assert resolve_zone("Mars/Olympus") is None
    assert (
        normalize("Jun 05 2024 10:11:12", dtz="Mars/Olympus") == "2024-06-05T10:11:12Z"
    )


def test_year_less_time_takes_the_year_closest_to_receive_time() -> None:
    assert normalize("Jun 05 10:11:12") == "2024-06-05T10:11:12Z"
    january = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
    assert normalize_cef_time("Dec 31 23:59:00", dtz=None, received_at_us=january) == (
        "2023-12-31T23:59:00Z"
    )


def test_iso8601_is_tolerated() -> None:
    assert normalize("2024-06-05T10:11:12.345+02:00") == "2024-06-05T08:11:12.345Z"
    assert normalize("2024-06-05 10:11:12") == "2024-06-05T10:11:12Z"


@pytest.mark.parametrize(
    "value", ["", "yesterday", "Foo 05 2024 10:11:12", "Feb 30 2024 10:11:12", "1.5"]
)
def test_text_that_is_no_time_gives_none(value: str) -> None:
    assert normalize(value) is None


def test_ambiguous_zone_abbreviation_gives_none() -> None:
    assert normalize("Jun 05 2024 10:11:12 IST") is None


def test_rfc3339_in_output_shape_is_kept() -> None:
    assert normalize_rfc3339("2025-03-14T12:00:01.250Z") == "2025-03-14T12:00:01.250Z"


def test_rfc3339_needs_a_zone_and_a_valid_date() -> None:
    assert normalize_rfc3339("2025-03-14T12:00:01") is None
    assert normalize_rfc3339("2025-02-30T12:00:01Z") is None
    assert normalize_rfc3339("-") is None


def test_receive_time_has_six_fraction_digits() -> None:
    assert format_receive_time(1_717_582_272_000_001) == "2024-06-05T10:11:12.000001Z"


@pytest.mark.parametrize("name", ["+25:00", "../../etc/passwd", "/abs", "X" * 300])
def test_zone_names_that_are_no_zone_give_none(name: str) -> None:
    assert resolve_zone(name) is None
