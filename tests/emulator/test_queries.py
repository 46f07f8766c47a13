"""The connector's two queries, as tables of stored rows and expected answers."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.queries import PROJECTED_COLUMNS, Query, extract_data, run_query

ALL = Query.ALL_ATTACKS
EFFECTIVE = Query.EFFECTIVE_ATTACKS


def row(outcome: str | None = None, extensions: str | None = None, **columns: Any):
    """A stored Contrast row; ``outcome`` goes to EventOutcome."""
    return {
        "TimeGenerated": "2024-03-14T09:00:00Z",
        "DeviceVendor": "Contrast Security",
        "EventOutcome": outcome,
        "AdditionalExtensions": extensions,
        **columns,
    }


def outcomes(query: Query, rows: list[dict[str, Any]]) -> list[str]:
    return [result["Outcome"] for result in run_query(query, rows)]


@pytest.mark.parametrize(
    ("stored", "all_attacks", "effective_attacks"),
    [
        (row("EXPLOITED"), ["EXPLOITED"], ["EXPLOITED"]),
        (row("BLOCKED"), ["BLOCKED"], ["BLOCKED"]),
        (row("SUSPICIOUS"), ["SUSPICIOUS"], ["SUSPICIOUS"]),
        (row("success"), [], []),
        (row("SUCCESS"), ["SUCCESS"], []),
        (row("blocked"), ["blocked"], []),
        (row("INEFFECTIVE"), ["PROBED"], []),
        (row("PROBED"), ["PROBED"], []),
        (row("NOT_INEFFECTIVE_X"), ["NOT_PROBED_X"], []),
        (row(None), [""], []),
        (row(""), [""], []),
        (row("", "pri=xss;outcome=BLOCKED"), ["BLOCKED"], ["BLOCKED"]),
        (row(None, "outcome=INEFFECTIVE"), ["PROBED"], []),
        (row(None, "pri=xss;outcome=success"), [], []),
        (row("EXPLOITED", "outcome=success"), ["EXPLOITED"], ["EXPLOITED"]),
        (row("", "outcome="), [""], []),
        (row("BLOCKED", DeviceVendor="contrast security"), [], []),
        (row("BLOCKED", DeviceVendor="Contrast Security "), [], []),
        (row("BLOCKED", DeviceVendor=None), [], []),
    ],
    ids=[
        "exploited",
        "blocked",
        "suspicious",
        "success-filtered",
        "SUCCESS-kept-case-sensitive",
        "lowercase-blocked-not-effective",
        "ineffective-becomes-probed-in-all-only",
        "probed",
        "replace-is-substring",
        "null-outcome",
        "empty-outcome",
        "coalesce-falls-back-to-extensions",
        "ineffective-from-extensions",
        "success-from-extensions",
        "event-outcome-wins",
        "empty-everywhere",
        "vendor-case-sensitive",
        "vendor-exact",
        "vendor-null",
    ],
)
def test_outcome_filtering(
    stored: dict[str, Any], all_attacks: list[str], effective_attacks: list[str]
) -> None:
    assert outcomes(ALL, [stored]) == all_attacks
    assert outcomes(EFFECTIVE, [stored]) == effective_attacks


@pytest.mark.parametrize(
    ("extensions", "key", "value"),
    [
        ("pri=sql-injection;outcome=EXPLOITED", "pri", "sql-injection"),
        ("pri=sql-injection;outcome=EXPLOITED", "outcome", "EXPLOITED"),
        ("pri=a&outcome=b", "outcome", "b"),
        ("query=a=b;pri=xss", "query", "a=b"),
        ("flag;pri=xss", "flag", ""),
        ("pri=;outcome=X", "pri", ""),
        ("pri=cmd%2Dinjection", "pri", "cmd%2Dinjection"),
        ("Pri=xss", "pri", ""),
        ("pri=first;pri=second", "pri", "first"),
        ("", "pri", ""),
        (None, "pri", ""),
    ],
    ids=[
        "first-key",
        "second-key",
        "ampersand",
        "split-at-first-equals",
        "no-equals",
        "empty-value",
        "no-url-decoding",
        "key-case-sensitive",
        "first-occurrence",
        "empty",
        "null",
    ],
)
def test_extract_data(extensions: str | None, key: str, value: str) -> None:
    assert extract_data(extensions, key) == value


def test_projection_has_exactly_the_seven_columns_and_nulls_show_empty() -> None:
    stored = row(
        "BLOCKED",
        "pri=xss;outcome=BLOCKED",
        ApplicationProtocol="PetStore",
        Activity=None,
        SourceIP="2001:db8::7",
        DeviceProduct="Contrast Agent Java",
    )

    [result] = run_query(EFFECTIVE, [stored])

    assert tuple(result) == PROJECTED_COLUMNS
    assert result == {
        "TimeGenerated": "2024-03-14T09:00:00Z",
        "ApplicationProtocol": "PetStore",
        "Rule": "xss",
        "Activity": "",
        "Outcome": "BLOCKED",
        "RequestURL": "",
        "SourceIP": "2001:db8::7",
    }


def test_newest_instant_first_whatever_the_offset_or_precision() -> None:
    stored = [
        row("BLOCKED", SourceIP="a", TimeGenerated="2024-03-14T10:00:00+02:00"),
        row("BLOCKED", SourceIP="b", TimeGenerated="2024-03-14T09:00:00.5Z"),
        row("BLOCKED", SourceIP="c", TimeGenerated="2024-03-14T08:59:59.9999999Z"),
        row("BLOCKED", SourceIP="d", TimeGenerated="2024-03-14T09:00:00"),
    ]

    ordered = [result["SourceIP"] for result in run_query(ALL, stored)]

    assert ordered == ["b", "d", "c", "a"]


def test_equal_times_put_the_latest_ingested_first_and_unreadable_times_last() -> None:
    same = "2024-03-14T09:00:00Z"
    stored = [
        row(
            "BLOCKED",
            SourceIP="old",
            TimeGenerated=same,
            _Seq=1,
            _IngestionTime="2024-03-14T09:00:01Z",
        ),
        row("BLOCKED", SourceIP="unreadable", TimeGenerated="yesterday", _Seq=5),
        row(
            "BLOCKED",
            SourceIP="new",
            TimeGenerated=same,
            _Seq=2,
            _IngestionTime="2024-03-14T09:00:02Z",
        ),
        row(
            "BLOCKED",
            SourceIP="same-upload",
            TimeGenerated=same,
            _Seq=3,
            _IngestionTime="2024-03-14T09:00:02Z",
        ),
    ]

    ordered = [result["SourceIP"] for result in run_query(ALL, stored)]

    assert ordered == ["same-upload", "new", "old", "unreadable"]
