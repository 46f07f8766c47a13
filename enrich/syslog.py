"""Find the CEF payload in a syslog message and read the envelope around it.

Contrast agents and the relays in front of them wrap CEF in many prefixes: RFC
3164 (day space- or zero-padded, with or without year, milliseconds and zone),
RFC 5424 (structured data, NILVALUE, a BOM before MSG), ISO 8601 stamps, the
agents' own ``timestamp host`` forms, a relay header stacked on the agent's own
prefix, or nothing at all. What matters downstream is where ``CEF:`` starts, the
origin host (the innermost one), the app name, and the event time when the
prefix states it absolutely (with a year and a zone).

``CEF:`` counts only at a token boundary, so a host such as ``gw-CEF:1-lab`` or
a quoted value inside RFC 5424 structured data never starts the payload.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from enrich import timestamps

MARKER: Final = "CEF:"
_BOUNDARY_CHARS: Final = frozenset(" \t\n\r\x0b\x0c\ufeff")

_PRI = re.compile(r"[\s\ufeff]*<[0-9]{1,3}>", re.ASCII)
_RFC5424_HEADER = re.compile(
    r"[0-9]{1,2} (-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+) ([^ ]+) ([^ ]+) [^ ]+ [^ ]+ ",
    re.ASCII,
)
_STRUCTURED_DATA = re.compile(
    r'-|(?:\[[^\s\]="]+(?: +[^\s\]="]+="[^"\\]*+(?:\\.[^"\\]*+)*+")*+ *\])++',
    re.ASCII | re.DOTALL,
)
_PREFIX_TIME_PATTERN: Final = (
    r"(?:"
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>[0-9]{1,2})"
    r"(?: +(?P<year>[0-9]{4}))? +(?P<hms>[0-9]{1,2}:[0-9]{2}:[0-9]{2})"
    r"(?:[.,](?P<fraction>[0-9]{1,9}))?"
    r"|(?P<iso_date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"[T ](?P<iso_hms>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:[.,](?P<iso_fraction>[0-9]{1,9}))?"
    r"|[0-9]{1,2} +[0-9]{1,2} +[0-9]{1,2}:[0-9]{2}:[0-9]{2}"  # locale-numbered month
    r")"
    r"(?P<zone>Z| ?[+-][0-9]{2}:?[0-9]{2}"
    rf"| +{timestamps.ZONE_NAME_PATTERN}(?=[\s\ufeff]+[^\s\ufeff]))?"
    r"[\s\ufeff]+"
)
_PREFIX_TIME = re.compile(_PREFIX_TIME_PATTERN, re.ASCII)
# The shape nearly every agent line has: [<PRI>]TIMESTAMP HOST CEF:
_COMMON_PREFIX = re.compile(
    r"(?:<[0-9]{1,3}>)?"
    + _PREFIX_TIME_PATTERN
    + r"(?P<host>[^\s\ufeff]+)[\s\ufeff]+(?=CEF:)",
    re.ASCII,
)
_TIME_GROUPS: Final = (
    *("year", "month", "day", "hms", "fraction", "iso_date", "iso_hms", "iso_fraction"),
)
_TOKEN = re.compile(r"([^\s\ufeff]+)[\s\ufeff]*", re.ASCII)
_TAG = re.compile(r"([^\s\ufeff\[\]:]++)(?:\[[^\]]*+\])?:", re.ASCII)


class SyslogEnvelope(NamedTuple):
    """What the syslog layer says about one message.

    Attributes:
        cef_offset: index of ``CEF:`` in the message text.
        hostname: the origin host (innermost when a relay added a header).
        app_name: RFC 5424 APP-NAME or the RFC 3164 TAG, without ``[pid]:``.
        timestamp: ISO 8601 UTC of the prefix time, only when it had a year
            and a usable zone (RFC 5424 always does); otherwise None.
    """

    cef_offset: int
    hostname: str | None = None
    app_name: str | None = None
    timestamp: str | None = None


def parse_syslog(text: str) -> SyslogEnvelope | None:
    """Locate the CEF payload and read the prefix in front of it.

    Returns None when the message has no ``CEF:`` at a token boundary, i.e. it
    is not CEF.
    """
    if text.startswith(MARKER):
        return SyslogEnvelope(0)
    common = _COMMON_PREFIX.match(text)
    if common is not None:
        hostname = common["host"]
        if hostname[-1] != ":" and not hostname.startswith(MARKER):  # not a TAG
            stamp = _absolute_time(common) if common["zone"] else None
            return SyslogEnvelope(common.end(), hostname, None, stamp)

    pri = _PRI.match(text)
    start = pri.end() if pri is not None else _skip_blank(text, 0, len(text))
    if text.startswith(MARKER, start):
        return SyslogEnvelope(start)
    header = _RFC5424_HEADER.match(text, start)
    if header is not None:
        return _parse_rfc5424(text, header)

    marker = find_marker(text, start)
    if marker < 0:
        return None
    hostname, app_name, timestamp = _read_prefix(text, start, marker)
    return SyslogEnvelope(marker, hostname, app_name, timestamp)


def find_marker(text: str, start: int) -> int:
    """Index of the first ``CEF:`` at ``start`` or after whitespace/BOM, or -1."""
    index = text.find(MARKER, start)
    while index > start and text[index - 1] not in _BOUNDARY_CHARS:
        index = text.find(MARKER, index + 1)
    return index


def _parse_rfc5424(text: str, header: re.Match[str]) -> SyslogEnvelope | None:
    """RFC 5424: the payload is in MSG, after the structured data and a BOM."""
    stamp, hostname, app_name = header.groups()
    structured = _STRUCTURED_DATA.match(text, header.end())
    # Malformed structured data: look for the payload right after the header.
    msg_start = header.end() if structured is None else structured.end()

    marker = find_marker(text, msg_start)
    if marker < 0:
        return None
    if marker == msg_start:
        return SyslogEnvelope(
            marker,
            _nil_to_none(hostname),
            _nil_to_none(app_name),
            timestamps.normalize_rfc3339(stamp),
        )
    inner_host, inner_app, inner_time = _read_prefix(text, msg_start, marker)
    return SyslogEnvelope(
        marker,
        inner_host or _nil_to_none(hostname),
        inner_app or _nil_to_none(app_name),
        inner_time or timestamps.normalize_rfc3339(stamp),
    )


def _read_prefix(
    text: str, pos: int, end: int
) -> tuple[str | None, str | None, str | None]:
    """Host, app name and absolute time from the text between PRI and ``CEF:``.

    The prefix is read as repeated ``TIMESTAMP [HOST] [TAG:]`` groups, so a relay
    header stacked on the agent's own prefix yields the inner (origin) host.
    Tokens left after the groups are ``HOST``, ``TAG:`` or ``HOST TAG:``.
    """
    hostname = app_name = timestamp = None
    pos = _skip_blank(text, pos, end)
    while pos < end:
        stamp = _PREFIX_TIME.match(text, pos, end)
        if stamp is None:
            break
        timestamp = _absolute_time(stamp) or timestamp
        pos = stamp.end()
        token = _TOKEN.match(text, pos, end)
        if token is None:
            break
        tag = _TAG.fullmatch(token.group(1))
        if tag is None:
            hostname = token.group(1)
            pos = token.end()
            token = _TOKEN.match(text, pos, end)
            tag = None if token is None else _TAG.fullmatch(token.group(1))
        if tag is not None and token is not None:
            app_name = tag.group(1)
            pos = token.end()

    if pos < end:
        leftover = text[pos:end].replace("\ufeff", " ").split()
        tags = [_TAG.fullmatch(word) for word in leftover]
        if len(leftover) == 1:
            if tags[0] is None:
                hostname = leftover[0]
            else:
                app_name = tags[0].group(1)
        elif len(leftover) == 2 and tags[0] is None and tags[1] is not None:
            hostname, app_name = leftover[0], tags[1].group(1)
    return hostname, app_name, timestamp


def _absolute_time(stamp: re.Match[str]) -> str | None:
    """ISO 8601 UTC for a prefix time that names its year and zone, else None."""
    zone_name = stamp["zone"]
    if zone_name is None:
        return None
    year, month, day, hms, fraction, iso_date, iso_hms, iso_fraction = stamp.group(
        *_TIME_GROUPS
    )
    if year is not None:
        date = (int(year), timestamps.MONTHS[month.lower()], int(day))
    elif iso_date is not None:
        date = (int(iso_date[:4]), int(iso_date[5:7]), int(iso_date[8:]))
        hms, fraction = iso_hms, iso_fraction
    else:
        return None
    hour, minute, second = hms.split(":")
    zone = timestamps.resolve_zone(zone_name.strip())
    clock = (int(hour), int(minute), int(second))
    return timestamps.to_utc_iso(date, clock, fraction or "", zone)


def _skip_blank(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos] in _BOUNDARY_CHARS:
        pos += 1
    return pos


def _nil_to_none(value: str) -> str | None:
    return None if value == "-" else value
