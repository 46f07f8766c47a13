"""Turn the time values CEF and syslog carry into ISO 8601 UTC strings.

The datetime columns (TimeGenerated, StartTime, EndTime) take ISO 8601 in UTC.
Sources write times in many shapes: CEF allows epoch milliseconds and eight
``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]`` layouts, vendors add ISO 8601, and syslog
prefixes carry their own. Every result keeps the fraction digits the source had,
up to the seven (100 ns) Log Analytics stores, so no precision is invented.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Returned by normalize_cef_time when the value says "no time" (epoch <= 0).
NOT_SET: Final = ""

MONTHS: Final[dict[str, int]] = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip

# Zone abbreviations with one widely agreed offset, in minutes east of UTC.
# IST, CST, AST and BST each name several zones hours apart, so they are left
# out: a time in one of them is treated as having no usable zone.
_ABBREVIATION_OFFSETS: Final[dict[str, int]] = {
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0, "WET": 0, "WEST": 60,
    "CET": 60, "CEST": 120, "MET": 60, "MEST": 120, "EET": 120, "EEST": 180,
    "MSK": 180, "EST": -300, "EDT": -240, "CDT": -300, "MST": -420, "MDT": -360,
    "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600,
    "JST": 540, "KST": 540, "HKT": 480, "SGT": 480, "AWST": 480, "ACST": 570,
    "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}  # fmt: skip

# Names a prefix may carry as a zone, the ambiguous ones included: they still
# mark the token as a zone (so the next token is the host), just not a usable one.
ZONE_NAME_PATTERN: Final = "(?:{}|[A-Z][A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+)".format(
    "|".join(
        sorted([*_ABBREVIATION_OFFSETS, "IST", "CST", "AST", "BST"], key=len)[::-1]
    )
)

_EPOCH: Final = datetime(1970, 1, 1)  # naive datetimes here are UTC

_OFFSET = re.compile(r"(?:UTC|GMT)?([+-])([0-9]{1,2})(?::?([0-9]{2}))?", re.ASCII)
_IANA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,3}", re.ASCII)

_MONTH_LAYOUT = re.compile(
    r"([A-Za-z]{3}) +([0-9]{1,2})(?: +([0-9]{4}))? +"
    r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?: *([A-Za-z][A-Za-z0-9_/+:-]*|[+-][0-9:]+))?",
    re.ASCII,
)
_RFC3339_ZULU = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,7})?Z", re.ASCII
)
_ISO_LAYOUT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)? *(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?",
    re.ASCII,
)


def normalize_cef_time(
    value: str, *, dtz: str | None, received_at_us: int
) -> str | None:
    """ISO 8601 UTC for a CEF time value, as the datetime columns want it.

    Args:
        value: the decoded extension value (``rt``, ``start``, ``end``, ...).
        dtz: the event's ``dtz`` value; the zone of zone-less times (else UTC).
        received_at_us: receive time, to choose the year of year-less times.

    Returns:
        The UTC time; ``NOT_SET`` when the value is an epoch of zero or less
        (senders' way of saying "no time"); None when it is not a time at all.
    """
    text = value.strip()
    if text.isdigit() and text.isascii():
        return _from_epoch_ms(int(text))
    if text[:1] == "-" and text[1:].isdigit() and text[1:].isascii():
        return NOT_SET
    match = _MONTH_LAYOUT.fullmatch(text)
    if match is not None:
        return _from_month_layout(match, dtz, received_at_us)
    match = _ISO_LAYOUT.fullmatch(text)
    if match is not None:
        return _from_iso_layout(match, _device_zone(dtz))
    return None


def normalize_rfc3339(value: str) -> str | None:
    """ISO 8601 UTC for an RFC 5424 TIMESTAMP; None for NILVALUE or no zone."""
    if _RFC3339_ZULU.fullmatch(value):  # already in the output's shape
        try:
            datetime.fromisoformat(value[:19])
        except ValueError:
            return None
        return value
    match = _ISO_LAYOUT.fullmatch(value)
    return None if match is None else _from_iso_layout(match, None)


def to_utc_iso(
    date: tuple[int, int, int],
    clock: tuple[int, int, int],
    fraction: str,
    zone: tzinfo | None,
) -> str | None:
    """Convert a local date and time in ``zone`` to ISO 8601 UTC.

    Returns None when the zone is unknown or the fields make no valid time.
    """
    if zone is None:
        return None
    try:
        local = datetime(*date, *clock)
        offset = zone.utcoffset(local)
        moment = local - offset if offset else local
    except (ValueError, OverflowError):
        return None
    return _format(moment, fraction)


@lru_cache(maxsize=64)
def format_receive_time(received_at_us: int) -> str:
    """ISO 8601 UTC with six fraction digits, for TimeGenerated's last resort."""
    moment = _EPOCH + timedelta(microseconds=received_at_us)
    return moment.isoformat(timespec="microseconds") + "Z"


@lru_cache(maxsize=256)
def resolve_zone(name: str) -> tzinfo | None:
    """The zone for a name (UTC, CEST, Europe/Berlin) or an offset (+0200).

    Returns None for a name that does not identify one offset.
    """
    offset_minutes = _ABBREVIATION_OFFSETS.get(name.upper())
    if offset_minutes is not None:
        return (
            UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
        )
    offset = _OFFSET.fullmatch(name)
    if offset is not None:
        return _fixed_offset(*offset.groups())
    if not _IANA_NAME.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _fixed_offset(sign: str, hours: str, minutes: str | None) -> tzinfo | None:
    total = int(hours) * 60 + int(minutes or 0)
    if total >= 24 * 60:
        return None
    return timezone(timedelta(minutes=-total if sign == "-" else total))


def _from_epoch_ms(millis: int) -> str | None:
    if millis <= 0:
        return NOT_SET
    try:
        moment = _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


def _from_iso_layout(match: re.Match[str], default_zone: tzinfo | None) -> str | None:
    year, month, day, hour, minute, second, fraction, zone_name = match.groups()
    return to_utc_iso(
        (int(year), int(month), int(day)),
        (int(hour), int(minute), int(second or 0)),
        fraction or "",
        resolve_zone(zone_name) if zone_name else default_zone,
    )


def _device_zone(dtz: str | None) -> tzinfo:
    """The zone of zone-less times: ``dtz`` when it names one, else UTC."""
    return (resolve_zone(dtz) if dtz else None) or UTC


def _from_month_layout(
    match: re.Match[str], dtz: str | None, received_at_us: int
) -> str | None:
    month_name, day, year, hour, minute, second, fraction, zone_name = match.groups()
    month = MONTHS.get(month_name.lower())
    if month is None:
        return None
    zone = resolve_zone(zone_name) if zone_name else _device_zone(dtz)
    clock = (int(hour), int(minute), int(second))
    if year is not None:
        return to_utc_iso((int(year), month, int(day)), clock, fraction or "", zone)
    return _closest_year(month, int(day), clock, fraction or "", zone, received_at_us)


def _closest_year(
    month: int,
    day: int,
    clock: tuple[int, int, int],
    fraction: str,
    zone: tzinfo | None,
    received_at_us: int,
) -> str | None:
    """A year-less time lies in the year that puts it nearest the receive time."""
    if zone is None:
        return None
    received = _EPOCH + timedelta(microseconds=received_at_us)
    best: datetime | None = None
    for year in (received.year - 1, received.year, received.year + 1):
        try:
            local = datetime(year, month, day, *clock)
            offset = zone.utcoffset(local)
        except (ValueError, OverflowError):
            continue
        candidate = local - offset if offset else local
        if best is None or abs(candidate - received) < abs(best - received):
            best = candidate
    return None if best is None else _format(best, fraction)


def _format(moment: datetime, fraction: str) -> str:
    """``moment`` (naive, UTC, whole seconds) as ISO 8601 plus the source's fraction.

    Log Analytics keeps datetimes to 100 ns: digits past the seventh are cut.
    """
    fraction = fraction[:7]
    stamp = moment.isoformat()
    return f"{stamp}.{fraction}Z" if fraction else stamp + "Z"
