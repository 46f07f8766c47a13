"""``cefpipe query`` and ``cefpipe emulator`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.monitor.ingestion import LogsIngestionClient

from cefpipe.settings import Settings
from emulator.store import Store

ATTACKS = [
    {
        "TimeGenerated": "2024-03-14T09:26:53Z",
        "DeviceVendor": "Contrast Security",
        "ApplicationProtocol": "PetStore",
        "Activity": "The parameter lastName had a value that successfully exploited "
        "sql-injection - x' OR '1'='1",
        "EventOutcome": "EXPLOITED",
        "AdditionalExtensions": "pri=sql-injection",
        "RequestURL": "/owners",
        "SourceIP": "198.51.100.23",
    },
    {
        "TimeGenerated": "2024-03-14T09:30:00Z",
        "DeviceVendor": "Contrast Security",
        "ApplicationProtocol": "PetStore",
        "Activity": "An attempt to probe path-traversal",
        "EventOutcome": "INEFFECTIVE",
        "AdditionalExtensions": "pri=path-traversal",
        "RequestURL": "/files",
        "SourceIP": "2001:db8::7",
    },
]


def _cefpipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cefpipe", *args],
        env={**os.environ, "CEFPIPE_HOME": str(home), "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_query_json_reads_what_the_running_emulator_stored(
    client: LogsIngestionClient, settings: Settings
) -> None:
    client.upload(
        rule_id=settings.emulator.dcr_immutable_id,
        stream_name=settings.emulator.stream_name,
        logs=ATTACKS,
    )

    every = _cefpipe(settings.home, "query", "all-attacks", "--json")
    effective = _cefpipe(settings.home, "query", "effective-attacks", "--json")

    assert every.returncode == 0
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    assert rows[0] == {
        "TimeGenerated": "2024-03-14T09:30:00Z",
        "ApplicationProtocol": "PetStore",
        "Rule": "path-traversal",
        "Activity": "An attempt to probe path-traversal",
        "Outcome": "PROBED",
        "RequestURL": "/files",
        "SourceIP": "2001:db8::7",
    }
    assert [row["Outcome"] for row in rows] == ["PROBED", "EXPLOITED"]
    assert [json.loads(line)["Rule"] for line in effective.stdout.splitlines()] == [
        "sql-injection"
    ]


def test_query_table_is_aligned_and_shortens_long_values(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator" / "sentinel.db")
    store.insert(ATTACKS, request_id="r", ingested_at="2024-03-14T09:31:00Z")
    store.close()

    result = _cefpipe(tmp_path, "query", "all-attacks")

    assert result.returncode == 0
    header, rule, first, second, count = result.stdout.splitlines()
    assert header.split() == [
        "TimeGenerated",
        "ApplicationProtocol",
        "Rule",
        "Activity",
        "Outcome",
        "RequestURL",
        "SourceIP",
    ]
    assert set(rule.replace(" ", "")) == {"-"}
    assert first.index("PROBED") == second.index("EXPLOITED")
    assert "The parameter lastName had a value that success… " in second
    assert "x' OR" not in second
    assert count == "(2 rows)"


def test_query_without_a_store_prints_no_rows(tmp_path: Path) -> None:
    as_json = _cefpipe(tmp_path, "query", "effective-attacks", "--json")
    as_table = _cefpipe(tmp_path, "query", "effective-attacks")

    assert (as_json.returncode, as_json.stdout) == (0, "")
    assert as_table.returncode == 0
    assert as_table.stdout.splitlines()[-1] == "(0 rows)"
    assert not (tmp_path / "emulator").exists()


def test_emulator_refuses_a_bad_fault_spec_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cefpipe", "emulator"],
        env={
            **os.environ,
            "CEFPIPE_HOME": str(tmp_path),
            "EMULATOR_PORT": "0",
            "EMULATOR_FAULTS": "kind=status,status=503;kind=delay",
            "LOG_FORMAT": "json",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    [line] = [json.loads(line) for line in result.stderr.splitlines()]
    assert line["level"] == "error"
    assert "fault 2" in line["msg"]
    assert "needs secs" in line["msg"]


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cefpipe", "emulator"],
        env={
            **os.environ,
            "CEFPIPE_HOME": str(tmp_path),
            "EMULATOR_PORT": "0",
            "EMULATOR_METRICS_PORT": "0",
            "LOG_FORMAT": "json",
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()
    assert process.stderr is not None
    process.stderr.close()


def _wait_for_log(process: subprocess.Popen[str], starts_with: str) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        message = str(json.loads(line)["msg"])
        if message.startswith(starts_with):
            return message
    raise AssertionError(f"the emulator exited before logging {starts_with!r}")


def test_emulator_serves_tls_and_metrics_and_stops_cleanly_on_sigterm(
    emulator_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    url = _wait_for_log(emulator_process, "emulator listening on ").split()[3]
    metrics_port = _wait_for_log(emulator_process, "metrics and health").split()[-1]
    metrics = f"http://127.0.0.1:{metrics_port}"
    ca_file = str(tmp_path / "certs" / "ca.pem")

    upload = requests.post(
        f"{url}/dataCollectionRules/x/streams/y?api-version=2023-01-01",
        data=b"[]",
        verify=ca_file,
        timeout=30,
    )
    health = requests.get(f"{metrics}/healthz", timeout=30)
    exposition = requests.get(f"{metrics}/metrics", timeout=30).text
    emulator_process.send_signal(signal.SIGTERM)

    assert upload.status_code == 401
    assert health.json()["status"] == "ok"
    assert (
        'cefpipe_emulator_requests_total{reason="AuthenticationFailed",status="401"}'
        in exposition
    )
    assert emulator_process.wait(timeout=30) == 0
