"""Map CEF extension keys to CommonSecurityLog columns.

The table is Microsoft's CEF-to-CommonSecurityLog mapping, under both the short
keys and the ArcSight dictionary's full names (``src`` and ``sourceAddress``),
plus ``start``/``end`` to StartTime/EndTime. Custom fields keep their paired
value and label columns (``cs1`` to DeviceCustomString1, ``cs1Label`` to
DeviceCustomString1Label); a label never renames its value.

Typed columns get parsed values. A value that does not fit its column's type
becomes null there and keeps its raw ``key=value`` in AdditionalExtensions, so
nothing the device sent is lost. Keys without a column go to AdditionalExtensions
in order of appearance.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Final

from cefpipe.schema import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN
from enrich import timestamps

Row = dict[str, str | int | float]

# How a column's value is made from the extension's text.
STRING: Final = 0
INT: Final = 1  # int32
LONG: Final = 2  # int64
REAL: Final = 3
DATETIME: Final = 4  # normalised to ISO 8601 UTC
CUSTOM_NUMBER: Final = 5  # int32, or its long successor column when it overflows

RECEIPT_TIME_KEYS: Final = ("rt", "deviceReceiptTime")
TIME_ZONE_KEYS: Final = ("dtz", "deviceTimeZone")


def _build_table() -> dict[str, tuple[str, int]]:
    """Each CEF key (short and full name) with its column and value kind."""
    columns: dict[tuple[str, ...], tuple[str, int]] = {
        ("act", "deviceAction"): ("DeviceAction", STRING),
        ("app", "applicationProtocol"): ("ApplicationProtocol", STRING),
        ("cat", "deviceEventCategory"): ("DeviceEventCategory", STRING),
        ("cnt", "baseEventCount"): ("EventCount", INT),
        ("destinationDnsDomain",): ("DestinationDnsDomain", STRING),
        ("destinationServiceName",): ("DestinationServiceName", STRING),
        ("destinationTranslatedAddress",): ("DestinationTranslatedAddress", STRING),
        ("destinationTranslatedPort",): ("DestinationTranslatedPort", INT),
        ("deviceDirection",): ("CommunicationDirection", STRING),
        ("deviceDnsDomain",): ("DeviceDnsDomain", STRING),
        ("deviceExternalId", "deviceExternalID"): ("DeviceExternalID", STRING),
        ("deviceFacility",): ("DeviceFacility", STRING),
        ("deviceInboundInterface",): ("DeviceInboundInterface", STRING),
        ("deviceNtDomain",): ("DeviceNtDomain", STRING),
        ("deviceOutboundInterface",): ("DeviceOutboundInterface", STRING),
        ("devicePayloadId",): ("DevicePayloadId", STRING),
        ("deviceProcessName",): ("ProcessName", STRING),
        ("deviceTranslatedAddress",): ("DeviceTranslatedAddress", STRING),
        ("dhost", "destinationHostName"): ("DestinationHostName", STRING),
        ("dmac", "destinationMacAddress"): ("DestinationMACAddress", STRING),
        ("dntdom", "destinationNtDomain"): ("DestinationNTDomain", STRING),
        ("dpid", "destinationProcessId"): ("DestinationProcessId", INT),
        ("dpriv", "destinationUserPrivileges"): ("DestinationUserPrivileges", STRING),
        ("dproc", "destinationProcessName"): ("DestinationProcessName", STRING),
        ("dpt", "destinationPort"): ("DestinationPort", INT),
        ("dst", "destinationAddress"): ("DestinationIP", STRING),
        ("dtz", "deviceTimeZone"): ("DeviceTimeZone", STRING),
        ("duid", "destinationUserId"): ("DestinationUserID", STRING),
        ("duser", "destinationUserName"): ("DestinationUserName", STRING),
        ("dvc", "deviceAddress"): ("DeviceAddress", STRING),
        ("dvchost", "deviceHostName"): ("DeviceName", STRING),
        ("dvcmac", "deviceMacAddress"): ("DeviceMacAddress", STRING),
        ("dvcpid", "deviceProcessId"): ("ProcessID", INT),
        ("end", "endTime"): ("EndTime", DATETIME),
        ("externalId",): ("ExtID", STRING),
        ("fileCreateTime",): ("FileCreateTime", STRING),
        ("fileHash",): ("FileHash", STRING),
        ("fileId",): ("FileID", STRING),
        ("fileModificationTime",): ("FileModificationTime", STRING),
        ("filePath",): ("FilePath", STRING),
        ("filePermission",): ("FilePermission", STRING),
        ("fileType",): ("FileType", STRING),
        ("fname", "fileName"): ("FileName", STRING),
        ("fsize", "fileSize"): ("FileSize", INT),
        ("in", "bytesIn"): ("ReceivedBytes", LONG),
        ("msg", "message"): ("Message", STRING),
        ("oldFileCreateTime",): ("OldFileCreateTime", STRING),
        ("oldFileHash",): ("OldFileHash", STRING),
        ("oldFileId",): ("OldFileID", STRING),
        ("oldFileModificationTime",): ("OldFileModificationTime", STRING),
        ("oldFileName",): ("OldFileName", STRING),
        ("oldFilePath",): ("OldFilePath", STRING),
        ("oldFilePermission",): ("OldFilePermission", STRING),
        ("oldFileSize",): ("OldFileSize", INT),
        ("oldFileType",): ("OldFileType", STRING),
        ("out", "bytesOut"): ("SentBytes", LONG),
        ("outcome", "eventOutcome"): ("EventOutcome", STRING),
        ("proto", "transportProtocol"): ("Protocol", STRING),
        ("reason",): ("Reason", STRING),
        ("request", "requestUrl"): ("RequestURL", STRING),
        ("requestClientApplication",): ("RequestClientApplication", STRING),
        ("requestContext",): ("RequestContext", STRING),
        ("requestCookies",): ("RequestCookies", STRING),
        ("requestMethod",): ("RequestMethod", STRING),
        ("rt", "deviceReceiptTime"): ("ReceiptTime", STRING),
        ("shost", "sourceHostName"): ("SourceHostName", STRING),
        ("smac", "sourceMacAddress"): ("SourceMACAddress", STRING),
        ("sntdom", "sourceNtDomain"): ("SourceNTDomain", STRING),
        ("sourceDnsDomain",): ("SourceDnsDomain", STRING),
        ("sourceServiceName",): ("SourceServiceName", STRING),
        ("sourceTranslatedAddress",): ("SourceTranslatedAddress", STRING),
        ("sourceTranslatedPort",): ("SourceTranslatedPort", INT),
        ("spid", "sourceProcessId"): ("SourceProcessId", INT),
        ("spriv", "sourceUserPrivileges"): ("SourceUserPrivileges", STRING),
        ("sproc", "sourceProcessName"): ("SourceProcessName", STRING),
        ("spt", "sourcePort"): ("SourcePort", INT),
        ("src", "sourceAddress"): ("SourceIP", STRING),
        ("start", "startTime"): ("StartTime", DATETIME),
        ("suid", "sourceUserId"): ("SourceUserID", STRING),
        ("suser", "sourceUserName"): ("SourceUserName", STRING),
        ("type",): ("EventType", INT),
        ("flexDate1",): ("FlexDate1", STRING),
        ("flexDate1Label",): ("FlexDate1Label", STRING),
    }
    columns.update(
        _custom("cs", "deviceCustomString", "DeviceCustomString", 6, STRING)
        | _custom("cn", "deviceCustomNumber", "DeviceCustomNumber", 3, CUSTOM_NUMBER)
        | _custom(
            "cfp", "deviceCustomFloatingPoint", "DeviceCustomFloatingPoint", 4, REAL
        )
        | _custom(
            "c6a", "deviceCustomIPv6Address", "DeviceCustomIPv6Address", 4, STRING
        )
        | _custom("deviceCustomDate", "", "DeviceCustomDate", 2, STRING)
        | _custom("flexString", "", "FlexString", 2, STRING)
        | _custom("flexNumber", "", "FlexNumber", 2, INT)
    )
    return {key: target for keys, target in columns.items() for key in keys}


def _custom(
    short: str, full: str, column: str, count: int, kind: int
) -> dict[tuple[str, ...], tuple[str, int]]:
    """``cs1``/``deviceCustomString1`` and their ``…Label`` keys, as pairs."""
    pairs: dict[tuple[str, ...], tuple[str, int]] = {}
    for n in range(1, count + 1):
        names = (f"{short}{n}", f"{full}{n}") if full else (f"{short}{n}",)
        pairs[names] = (f"{column}{n}", kind)
        pairs[tuple(f"{name}Label" for name in names)] = (f"{column}{n}Label", STRING)
    return pairs


COLUMN_FOR_KEY: Final = _build_table()

_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def map_extensions(
    extensions: Mapping[str, str],
    row: Row,
    *,
    received_at_us: int,
    echo_keys: Collection[str] = (),
) -> list[str]:
    """Put each extension value into its column of ``row``.

    Args:
        extensions: decoded pairs in order of appearance.
        row: the row being built; mapped columns are added to it.
        received_at_us: receive time, to date year-less times.
        echo_keys: mapped keys whose raw ``key=value`` also goes to
            AdditionalExtensions, where some analytic rules look for it.

    Returns:
        The ``key=value`` entries for AdditionalExtensions, in order.
    """
    extra: list[str] = []
    for key, value in extensions.items():
        target = COLUMN_FOR_KEY.get(key)
        if target is None:
            extra.append(f"{key}={value}")
            continue
        if key in echo_keys:
            extra.append(f"{key}={value}")
        if not value:
            continue

        column, kind = target
        if kind == STRING:
            row[column] = value
        elif kind == INT and len(value) < 10 and value.isdigit() and value.isascii():
            row[column] = int(value)  # the usual port or count: surely an int32
        elif not _put_typed(row, column, kind, value, extensions, received_at_us):
            extra.append(f"{key}={value}")
    return extra


def receipt_time(extensions: Mapping[str, str], received_at_us: int) -> str | None:
    """``rt`` as ISO 8601 UTC, or None when absent, not set or not a time."""
    for key in RECEIPT_TIME_KEYS:
        value = extensions.get(key)
        if value:
            return (
                timestamps.normalize_cef_time(
                    value, dtz=_time_zone(extensions), received_at_us=received_at_us
                )
                or None
            )
    return None


def _put_typed(
    row: Row,
    column: str,
    kind: int,
    value: str,
    extensions: Mapping[str, str],
    received_at_us: int,
) -> bool:
    """Store a typed value; False when it does not fit the column."""
    if kind == DATETIME:
        moment = timestamps.normalize_cef_time(
            value, dtz=_time_zone(extensions), received_at_us=received_at_us
        )
        if moment:
            row[column] = moment
        return moment is not None
    if kind == REAL:
        number = _parse_real(value)
        if number is None:
            return False
        row[column] = number
        return True

    integer = _parse_int(value)
    if integer is None or not INT64_MIN <= integer <= INT64_MAX:
        return False
    if kind == LONG or INT32_MIN <= integer <= INT32_MAX:
        row[column] = integer
        return True
    if kind == CUSTOM_NUMBER:
        row["Field" + column] = integer
        return True
    return False


def _parse_int(value: str) -> int | None:
    if value.isdigit() and value.isascii():
        return int(value)
    return int(value) if _NUMBER.fullmatch(value) else None


def _parse_real(value: str) -> float | None:
    if not _REAL.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _time_zone(extensions: Mapping[str, str]) -> str | None:
    for key in TIME_ZONE_KEYS:
        value = extensions.get(key)
        if value:
            return value
    return None
