"""The columns cefpipe writes to CommonSecurityLog, with their Log Analytics types.

One list serves everyone: the enrich mapping may only produce these columns, the
emulator validates uploads against them, and the data collection rule template in
``deploy/azure`` declares its input stream from them (a test checks they agree).

``Rule`` and ``Outcome`` are fields of the enriched record, not table columns: the
stream declares them so an upload carrying them is valid, and the rule's
transformation projects them away before the rows reach the table.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ColumnType(StrEnum):
    """Stream column types of the Logs Ingestion API."""

    STRING = "string"
    INT = "int"
    LONG = "long"
    REAL = "real"
    DATETIME = "datetime"


_S, _I, _L, _R, _D = (
    ColumnType.STRING,
    ColumnType.INT,
    ColumnType.LONG,
    ColumnType.REAL,
    ColumnType.DATETIME,
)

TABLE_NAME: Final = "CommonSecurityLog"
OUTPUT_STREAM: Final = "Microsoft-CommonSecurityLog"

# Fields the enriched record carries beyond the table's columns.
RECORD_ONLY_FIELDS: Final[dict[str, ColumnType]] = {"Rule": _S, "Outcome": _S}


def _numbered(prefix: str, count: int, kind: ColumnType) -> dict[str, ColumnType]:
    """DeviceCustomString1..N and their labels, as CommonSecurityLog pairs them."""
    columns: dict[str, ColumnType] = {}
    for index in range(1, count + 1):
        columns[f"{prefix}{index}"] = kind
        columns[f"{prefix}{index}Label"] = _S
    return columns


TABLE_COLUMNS: Final[dict[str, ColumnType]] = {
    "TimeGenerated": _D,
    "Computer": _S,
    "CollectorHostName": _S,
    "DeviceVendor": _S,
    "DeviceProduct": _S,
    "DeviceVersion": _S,
    "DeviceEventClassID": _S,
    "Activity": _S,
    "LogSeverity": _S,
    "AdditionalExtensions": _S,
    "ApplicationProtocol": _S,
    "CommunicationDirection": _S,
    "DestinationDnsDomain": _S,
    "DestinationHostName": _S,
    "DestinationIP": _S,
    "DestinationMACAddress": _S,
    "DestinationNTDomain": _S,
    "DestinationPort": _I,
    "DestinationProcessId": _I,
    "DestinationProcessName": _S,
    "DestinationServiceName": _S,
    "DestinationTranslatedAddress": _S,
    "DestinationTranslatedPort": _I,
    "DestinationUserID": _S,
    "DestinationUserName": _S,
    "DestinationUserPrivileges": _S,
    "DeviceAction": _S,
    "DeviceAddress": _S,
    "DeviceDnsDomain": _S,
    "DeviceEventCategory": _S,
    "DeviceExternalID": _S,
    "DeviceFacility": _S,
    "DeviceInboundInterface": _S,
    "DeviceMacAddress": _S,
    "DeviceName": _S,
    "DeviceNtDomain": _S,
    "DeviceOutboundInterface": _S,
    "DevicePayloadId": _S,
    "DeviceTimeZone": _S,
    "DeviceTranslatedAddress": _S,
    "EndTime": _D,
    "EventCount": _I,
    "EventOutcome": _S,
    "EventType": _I,
    "ExtID": _S,
    "FileCreateTime": _S,
    "FileHash": _S,
    "FileID": _S,
    "FileModificationTime": _S,
    "FileName": _S,
    "FilePath": _S,
    "FilePermission": _S,
    "FileSize": _I,
    "FileType": _S,
    "Message": _S,
    "OldFileCreateTime": _S,
    "OldFileHash": _S,
    "OldFileID": _S,
    "OldFileModificationTime": _S,
    "OldFileName": _S,
    "OldFilePath": _S,
    "OldFilePermission": _S,
    "OldFileSize": _I,
    "OldFileType": _S,
    "ProcessID": _I,
    "ProcessName": _S,
    "Protocol": _S,
    "Reason": _S,
    "ReceiptTime": _S,
    "ReceivedBytes": _L,
    "RequestClientApplication": _S,
    "RequestContext": _S,
    "RequestCookies": _S,
    "RequestMethod": _S,
    "RequestURL": _S,
    "SentBytes": _L,
    "SourceDnsDomain": _S,
    "SourceHostName": _S,
    "SourceIP": _S,
    "SourceMACAddress": _S,
    "SourceNTDomain": _S,
    "SourcePort": _I,
    "SourceProcessId": _I,
    "SourceProcessName": _S,
    "SourceServiceName": _S,
    "SourceTranslatedAddress": _S,
    "SourceTranslatedPort": _I,
    "SourceUserID": _S,
    "SourceUserName": _S,
    "SourceUserPrivileges": _S,
    "StartTime": _D,
    **_numbered("DeviceCustomString", 6, _S),
    **_numbered("DeviceCustomNumber", 3, _I),
    **_numbered("DeviceCustomFloatingPoint", 4, _R),
    **_numbered("DeviceCustomIPv6Address", 4, _S),
    **_numbered("DeviceCustomDate", 2, _S),
    "FieldDeviceCustomNumber1": _L,
    "FieldDeviceCustomNumber2": _L,
    "FieldDeviceCustomNumber3": _L,
    **_numbered("FlexString", 2, _S),
    **_numbered("FlexNumber", 2, _I),
    **_numbered("FlexDate", 1, _S),
}

# The input stream of the data collection rule: what an enriched record may hold.
STREAM_COLUMNS: Final[dict[str, ColumnType]] = {**TABLE_COLUMNS, **RECORD_ONLY_FIELDS}

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Largest value the service stores in one field; longer values are cut by us,
# on a character boundary, rather than silently by the service.
MAX_FIELD_BYTES: Final = 64 * 1024
