"""Fixtures: an emulator on an ephemeral loopback port with its own home, and the
real Azure SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import ClientSecretCredential
from azure.monitor.ingestion import LogsIngestionClient

from cefpipe.settings import Settings
from emulator.server import EmulatorThread
from tests.emulator.helpers import MONITOR_SCOPE, RawUploader, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def emu(settings: Settings) -> Iterator[EmulatorThread]:
    with EmulatorThread(settings) as running:
        yield running


@pytest.fixture
def credential(
    settings: Settings, emu: EmulatorThread
) -> Iterator[ClientSecretCredential]:
    cred = ClientSecretCredential(
        settings.emulator.tenant_id,
        settings.emulator.client_id,
        settings.emulator.client_secret.reveal(),
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
    )
    with cred:
        yield cred


@pytest.fixture
def client(
    emu: EmulatorThread, credential: ClientSecretCredential
) -> Iterator[LogsIngestionClient]:
    with LogsIngestionClient(
        endpoint=emu.url, credential=credential, connection_verify=str(emu.ca_file)
    ) as ingestion:
        yield ingestion


@pytest.fixture
def token(credential: ClientSecretCredential) -> str:
    return credential.get_token(MONITOR_SCOPE).token


@pytest.fixture
def raw(emu: EmulatorThread, settings: Settings, token: str) -> RawUploader:
    return RawUploader(emu, settings, token)
