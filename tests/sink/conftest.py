"""Fixtures for sink tests: a private emulator, settings aimed at it, and helpers.

The emulator runs in-process on an ephemeral port with its own CA; the sink
trusts that CA and authenticates against the emulator's authority with
instance discovery off, so nothing ever leaves 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cefpipe.settings import Settings
from emulator.server import EmulatorThread


@pytest.fixture
def emulator_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def emu(emulator_home: Path) -> Iterator[EmulatorThread]:
    settings = Settings.from_env(
        {
            "CEFPIPE_HOME": str(emulator_home),
            "EMULATOR_PORT": "0",
            "EMULATOR_METRICS_PORT": "0",
        }
    )
    with EmulatorThread(settings) as running:
        yield running


@pytest.fixture
def sink_env(emu: EmulatorThread, emulator_home: Path) -> dict[str, str]:
    """Environment that points a sink at the emulator, with quick timings."""
    local = Settings.from_env({"CEFPIPE_HOME": str(emulator_home)}).emulator
    return {
        "CEFPIPE_HOME": str(emulator_home),
        "CEFPIPE_INSTANCE": "sink-test",
        "LOG_FORMAT": "text",
        "SENTINEL_ENDPOINT": emu.url,
        "AZURE_AUTHORITY_HOST": emu.url,
        "SENTINEL_CA_FILE": str(emu.ca_file),
        "SENTINEL_DCR_IMMUTABLE_ID": local.dcr_immutable_id,
        "SENTINEL_STREAM_NAME": local.stream_name,
        "AZURE_TENANT_ID": local.tenant_id,
        "AZURE_CLIENT_ID": local.client_id,
        "AZURE_CLIENT_SECRET": local.client_secret.reveal(),
        "SINK_METRICS_PORT": "0",
        "SINK_FLUSH_INTERVAL_SECS": "0.5",
        "SINK_RETRY_INITIAL_BACKOFF_SECS": "0.2",
        "SINK_RETRY_MAX_BACKOFF_SECS": "2",
        "SINK_READ_TIMEOUT_SECS": "20",
    }
