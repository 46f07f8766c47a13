"""The whole path on a real broker: syslog in, CommonSecurityLog rows out.

The stack runs exactly as ``cefpipe up`` runs it (emulator, sink, enrich and
ingest as separate processes), against the session's Kafka broker with topics of
its own. Events are the Contrast cases with known right answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cefpipe.settings import Settings
from cefpipe.stack import Stack, private_environment
from emulator.store import read_rows
from tests.conftest import REPO_ROOT
from tests.support.kafka import read_records

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CASES = REPO_ROOT / "tests" / "data" / "cases" / "contrast_samples.jsonl"
QUERY_COLUMNS = (
    "TimeGenerated",
    "ApplicationProtocol",
    "Rule",
    "Activity",
    "Outcome",
    "RequestURL",
    "SourceIP",
)


def contrast_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def running_stack(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, dict[str, str]]]:
    env = private_environment(
        os.environ, tmp_path_factory.mktemp("stack-home"), "e2e", kafka_bootstrap
    )
    env.update(
        {
            "CEFPIPE_INSTANCE": "e2e-collector",
            "TOPIC_PARTITIONS": "4",
            "SINK_FLUSH_INTERVAL_SECS": "0.5",
        }
    )
    settings = Settings.from_env(env)
    stack = Stack(settings, env)
    stack.start()
    try:
        yield settings, env
    finally:
        stack.stop()


def send_lines(port: int, lines: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"".join(line + b"\n" for line in lines))


def wait_for_rows(
    settings: Settings, count: int, timeout_secs: float = 90.0
) -> list[Any]:
    deadline = time.monotonic() + timeout_secs
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = read_rows(settings.emulator_db_file)
        if len(rows) >= count:
            time.sleep(1.5)  # anything extra would show up now
            return read_rows(settings.emulator_db_file)
        time.sleep(0.3)
    return rows


def as_dict(row: Any) -> dict[str, Any]:
    # sqlite3.Row is not a mapping: iterating it yields values, keys() the names.
    return {key: row[key] for key in row.keys() if row[key] is not None}  # noqa: SIM118


def test_contrast_events_become_rows_and_bad_lines_become_dead_letters(
    running_stack: tuple[Settings, dict[str, str]], kafka_bootstrap: str
) -> None:
    settings, _ = running_stack
    cases = contrast_cases()
    ingestible = [case for case in cases if case["expect"]["_disposition"] == "ingest"]
    rejected = [case for case in cases if case["expect"]["_disposition"] == "reject"]
    # One TCP line per case; a case whose raw text holds its own line break is
    # sent without it (newline framing would cut it anyway).
    lines = [case["raw"].rstrip("\r\n").encode() for case in cases]

    send_lines(settings.ingest.port, lines)

    rows = [as_dict(row) for row in wait_for_rows(settings, len(ingestible))]
    assert len(rows) == len(ingestible)
    by_activity = {row["Activity"]: row for row in rows}
    for case in ingestible:
        expect = case["expect"]
        row = by_activity[expect["Activity"]]
        for column, value in expect.items():
            if column.startswith("_") or column in ("Rule", "Outcome"):
                continue
            if column == "AdditionalExtensions":
                assert row[column].startswith(value + ";cefpipeRowId="), case["id"]
            elif column != "TimeGenerated" or "_timestamp_hint" not in expect:
                assert row[column] == value, (case["id"], column)
        if "Computer" not in expect:
            assert row["Computer"] == "127.0.0.1", case["id"]  # the sender's address
        assert row["CollectorHostName"] == "e2e-collector"
        # Record-only fields, projected away by the collection rule's transformation.
        assert "Rule" not in row
        assert "Outcome" not in row

    dead = read_records(
        kafka_bootstrap, settings.kafka.topic_dead_letter, len(rejected)
    )
    reasons = sorted(record.headers["reason"].decode() for record in dead)
    assert reasons == sorted(["empty_message", "not_cef", "cef_header_incomplete"])
    sent = {line.rstrip(b"\r") for line in lines}
    assert all(record.value.rstrip(b"\r") in sent for record in dead)
    assert all(record.headers["stage"] == b"enrich" for record in dead)


def test_standard_queries_return_the_connector_rows(
    running_stack: tuple[Settings, dict[str, str]],
) -> None:
    settings, env = running_stack
    cases = [c for c in contrast_cases() if c["expect"]["_disposition"] == "ingest"]
    contrast = [
        c["expect"] for c in cases if c["expect"]["DeviceVendor"] == "Contrast Security"
    ]
    wait_for_rows(settings, len(cases))

    results = {}
    for query in ("all-attacks", "effective-attacks"):
        output = subprocess.run(
            [sys.executable, "-m", "cefpipe", "query", query, "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[query] = [json.loads(line) for line in output.stdout.splitlines()]

    all_expected = sorted(
        (e["Activity"], e["Rule"], e["Outcome"])
        for e in contrast
        if e["Outcome"] != "success"
    )
    effective_expected = sorted(
        (e["Activity"], e["Rule"], e["Outcome"])
        for e in contrast
        if e["Outcome"] in ("EXPLOITED", "BLOCKED", "SUSPICIOUS")
    )
    for query, expected in (
        ("all-attacks", all_expected),
        ("effective-attacks", effective_expected),
    ):
        rows = results[query]
        assert all(tuple(row) == QUERY_COLUMNS for row in rows)
        assert (
            sorted((r["Activity"], r["Rule"], r["Outcome"]) for r in rows) == expected
        )
        times = [r["TimeGenerated"] for r in rows]
        assert times == sorted(times, key=_instant, reverse=True)
    assert "PROBED" in {row["Outcome"] for row in results["all-attacks"]}


def _instant(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_status_reports_every_component_healthy(
    running_stack: tuple[Settings, dict[str, str]],
) -> None:
    _, env = running_stack
    result = subprocess.run(
        [sys.executable, "-m", "cefpipe", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert set(report) == {"kafka", "emulator", "sink", "enrich", "ingest"}
