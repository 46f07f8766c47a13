"""CEF keys to CommonSecurityLog columns, typed, with nothing the device sent lost."""

from __future__ import annotations

import pytest

from cefpipe.schema import TABLE_COLUMNS, ColumnType
from enrich.mapping import (
    COLUMN_FOR_KEY,
    DATETIME,
    INT,
    LONG,
    REAL,
    Row,
    map_extensions,
)

RECEIVED_AT_US = 1_741_968_000_000_000


def mapped(extensions: dict[str, str]) -> tuple[Row, str]:
    row: Row = {}
    extra = map_extensions(extensions, row, received_at_us=RECEIVED_AT_US)
    return row, ";".join(extra)


def test_every_target_column_exists_in_the_table() -> None:
    missing = {column for column, _ in COLUMN_FOR_KEY.values()} - set(TABLE_COLUMNS)
    assert not missing


@pytest.mark.parametrize(
    ("kind", "column_types"),
    [
        (INT, {ColumnType.INT}),
        (LONG, {ColumnType.LONG}),
        (REAL, {ColumnType.REAL}),
        (DATETIME, {ColumnType.DATETIME}),
    ],
)
def test_value_kinds_agree_with_column_types(kind: int, column_types: set[str]) -> None:
    for column, column_kind in COLUMN_FOR_KEY.values():
        if column_kind == kind:
            assert TABLE_COLUMNS[column] in column_types, column


@pytest.mark.parametrize(
    ("short", "full", "column"),
    [
        ("src", "sourceAddress", "SourceIP"),
        ("dst", "destinationAddress", "DestinationIP"),
        ("act", "deviceAction", "DeviceAction"),
        ("request", "requestUrl", "RequestURL"),
        ("dvchost", "deviceHostName", "DeviceName"),
        ("cs3", "deviceCustomString3", "DeviceCustomString3"),
        ("c6a4Label", "deviceCustomIPv6Address4Label", "DeviceCustomIPv6Address4Label"),
        ("proto", "transportProtocol", "Protocol"),
        ("msg", "message", "Message"),
    ],
)
def test_short_and_full_key_names_map_to_the_same_column(
    short: str, full: str, column: str
) -> None:
    assert mapped({short: "x"})[0] == {column: "x"}
    assert mapped({full: "x"})[0] == {column: "x"}


def test_custom_label_is_a_paired_column_not_a_rename() -> None:
    row, extra = mapped({"cs1Label": "Policy", "cs1": "Block", "flexString2Label": "T"})
    assert row == {
        "DeviceCustomString1Label": "Policy",
        "DeviceCustomString1": "Block",
        "FlexString2Label": "T",
    }
    assert extra == ""


def test_category_reason_outcome_and_external_id_columns() -> None:
    row, _ = mapped(
        {"cat": "a/b", "reason": "r", "outcome": "failure", "externalId": "9"}
    )
    assert row == {
        "DeviceEventCategory": "a/b",
        "Reason": "r",
        "EventOutcome": "failure",
        "ExtID": "9",
    }


def test_unmapped_keys_go_to_additional_extensions_in_order() -> None:
    row, extra = mapped({"pri": "sqli", "src": "192.0.2.1", "cs7": "1", "z": "a;b"})
    assert row == {"SourceIP": "192.0.2.1"}
    assert extra == "pri=sqli;cs7=1;z=a;b"


def test_unmapped_empty_value_keeps_its_key() -> None:
    assert mapped({"custom": ""})[1] == "custom="


def test_empty_mapped_value_stays_null() -> None:
    assert mapped({"src": "", "spt": ""}) == ({}, "")


def test_int_columns_take_parsed_integers() -> None:
    assert mapped({"spt": "8080", "dpt": "+443", "cnt": "-1"})[0] == {
        "SourcePort": 8080,
        "DestinationPort": 443,
        "EventCount": -1,
    }


@pytest.mark.parametrize("value", ["80a", "1.0", " 80", "٣", "2147483648", "0x10"])
def test_int_that_does_not_fit_is_null_and_kept_raw(value: str) -> None:
    assert mapped({"spt": value}) == ({}, f"spt={value}")


def test_long_columns_take_values_beyond_int32() -> None:
    assert mapped({"in": "99999999999", "out": "1"})[0] == {
        "ReceivedBytes": 99999999999,
        "SentBytes": 1,
    }


def test_long_overflow_is_null_and_kept_raw() -> None:
    assert mapped({"in": str(2**63)}) == ({}, f"in={2**63}")


def test_custom_number_beyond_int32_goes_to_its_long_column() -> None:
    assert mapped({"cn2": "4294967296"})[0] == {"FieldDeviceCustomNumber2": 4294967296}
    assert mapped({"cn2": "42"})[0] == {"DeviceCustomNumber2": 42}


def test_custom_number_that_is_no_number_is_kept_raw() -> None:
    assert mapped({"cn1": "abc", "cn1Label": "L"}) == (
        {"DeviceCustomNumber1Label": "L"},
        "cn1=abc",
    )


@pytest.mark.parametrize(
    ("value", "number"), [("0.75", 0.75), ("-1e3", -1000.0), (".5", 0.5), ("7", 7.0)]
)
def test_real_columns_take_floats(value: str, number: float) -> None:
    assert mapped({"cfp1": value})[0] == {"DeviceCustomFloatingPoint1": number}


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "1,5", "1_0"])
def test_real_that_is_no_finite_number_is_kept_raw(value: str) -> None:
    assert mapped({"cfp2": value}) == ({}, f"cfp2={value}")


def test_receipt_time_is_the_raw_string() -> None:
    assert mapped({"rt": "1741968000123"})[0] == {"ReceiptTime": "1741968000123"}


def test_start_and_end_are_normalised() -> None:
    row, _ = mapped({"start": "Mar 14 2025 15:59:58.120 UTC", "end": "1741968000123"})
    assert row == {
        "StartTime": "2025-03-14T15:59:58.120Z",
        "EndTime": "2025-03-14T16:00:00.123Z",
    }


def test_start_in_dtz_when_zoneless() -> None:
    row, _ = mapped({"start": "Mar 14 2025 17:00:00", "dtz": "Europe/Berlin"})
    assert row["StartTime"] == "2025-03-14T16:00:00Z"


def test_unset_time_is_null_and_not_kept() -> None:
    assert mapped({"start": "0", "end": ""}) == ({}, "")


def test_time_that_is_no_time_is_null_and_kept_raw() -> None:
    assert mapped({"end": "soon"}) == ({}, "end=soon")


def test_echoed_key_is_mapped_and_also_kept_raw_in_place() -> None:
    row: Row = {}
    extra = map_extensions(
        {"pri": "p", "outcome": "INEFFECTIVE", "z": "1"},
        row,
        received_at_us=RECEIVED_AT_US,
        echo_keys={"outcome"},
    )
    assert row == {"EventOutcome": "INEFFECTIVE"}
    assert extra == ["pri=p", "outcome=INEFFECTIVE", "z=1"]
