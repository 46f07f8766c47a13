"""Every shared case, through the same functions the product uses."""

from __future__ import annotations

from typing import Any

import pytest

from enrich.cef import CefSyntaxError, parse_cef
from enrich.pipeline import Enriched, Envelope, Rejection, enrich
from enrich.syslog import parse_syslog
from tests.enrich.cases import load, reason_code, wire_bytes

RECEIVED_AT_US = 1_741_968_000_000_000  # 2025-03-14T16:00:00Z
PEER = "198.51.100.250:51514"

CONTRAST_SAMPLES = load("contrast_samples.jsonl")
PEER_CASES = load("peer_cases.jsonl")


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["id"] for case in cases]


@pytest.mark.parametrize("case", CONTRAST_SAMPLES, ids=_ids(CONTRAST_SAMPLES))
def test_contrast_sample_maps_to_expected_row(case: dict[str, Any]) -> None:
    """Each column the raw line determines has its expected value; others are absent."""
    expect = case["expect"]
    result = enrich(wire_bytes(case), Envelope(RECEIVED_AT_US))

    if expect["_disposition"] == "reject":
        assert isinstance(result, Rejection)
        assert result.reason == reason_code(expect["reason"])
        return
    assert isinstance(result, Enriched), result
    row = dict(result.row)
    if "_timestamp_hint" in expect:
        assert "TimeGenerated" in row
        del row["TimeGenerated"]
    columns = {
        k: v for k, v in expect.items() if not k.startswith("_") and v is not None
    }
    for column in sorted(set(columns) | set(row)):
        assert row.get(column) == columns.get(column), column


@pytest.mark.parametrize("case", PEER_CASES, ids=_ids(PEER_CASES))
def test_peer_case_parses_as_expected(case: dict[str, Any]) -> None:
    """Header fields, decoded extension pairs, or the expected rejection."""
    expect = case["expect"]
    text = wire_bytes(case).decode("utf-8", "replace").rstrip("\r\n")

    if "error" in expect:
        result = enrich(wire_bytes(case), Envelope(RECEIVED_AT_US))
        assert isinstance(result, Rejection)
        assert result.reason == reason_code(expect["error"])
        assert result.message.split(":")[0] == expect["error"].split(":")[0]
        return
    envelope = parse_syslog(text)
    assert envelope is not None
    event = parse_cef(text, envelope.cef_offset)
    header = {
        "cef_version": event.version,
        "device_vendor": event.device_vendor,
        "device_product": event.device_product,
        "device_version": event.device_version,
        "signature_id": event.signature_id,
        "name": event.name,
        "severity": event.severity,
    }
    assert header == expect["header"]
    assert event.extensions == expect["extensions"]


@pytest.mark.parametrize(
    "case",
    [case for case in PEER_CASES if "error" in case["expect"]],
    ids=_ids([case for case in PEER_CASES if "error" in case["expect"]]),
)
def test_peer_error_case_raises_from_the_parser_layers(case: dict[str, Any]) -> None:
    text = wire_bytes(case).decode("utf-8", "replace")
    envelope = parse_syslog(text)
    if envelope is None:
        assert reason_code(case["expect"]["error"]) == "not_cef"
        return
    with pytest.raises(CefSyntaxError):
        parse_cef(text, envelope.cef_offset)


SYSLOG_CASES = [case for case in PEER_CASES if "expect_syslog" in case]


@pytest.mark.parametrize("case", SYSLOG_CASES, ids=_ids(SYSLOG_CASES))
def test_peer_case_syslog_host_and_app(case: dict[str, Any]) -> None:
    """The origin host (or the peer's, when the message names none) and app."""
    expected = case["expect_syslog"]
    text = wire_bytes(case).decode("utf-8", "replace")
    envelope = parse_syslog(text)
    assert envelope is not None
    assert envelope.hostname == expected["hostname"]
    if "app_name" in expected:
        assert envelope.app_name == expected["app_name"]

    result = enrich(wire_bytes(case), Envelope(RECEIVED_AT_US, peer=PEER))
    assert isinstance(result, Enriched)
    assert result.row["Computer"] == (expected["hostname"] or "198.51.100.250")


TIME_CASES = [case for case in PEER_CASES if "expect_normalized" in case]
TIME_COLUMNS = {"rt": "TimeGenerated", "start": "StartTime", "end": "EndTime"}


@pytest.mark.parametrize("case", TIME_CASES, ids=_ids(TIME_CASES))
def test_peer_case_times_normalised_into_columns(case: dict[str, Any]) -> None:
    """rt drives TimeGenerated; start/end land in StartTime/EndTime; unset is null."""
    result = enrich(wire_bytes(case), Envelope(RECEIVED_AT_US))
    assert isinstance(result, Enriched)
    for key, expected in case["expect_normalized"].items():
        column = TIME_COLUMNS[key]
        if expected is None:
            assert column not in result.row or column == "TimeGenerated"
        else:
            assert result.row[column] == expected
