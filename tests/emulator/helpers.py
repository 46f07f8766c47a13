"""Helpers shared by the emulator tests: private settings and hand-built uploads."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import requests

from cefpipe.settings import Settings
from emulator.server import EmulatorThread

MONITOR_SCOPE = "https://monitor.azure.com/.default"


def make_settings(home: Path, **env: str) -> Settings:
    """Settings for a private emulator: its own home, ephemeral ports."""
    return Settings.from_env(
        {
            "CEFPIPE_HOME": str(home),
            "EMULATOR_PORT": "0",
            "EMULATOR_METRICS_PORT": "0",
            **env,
        }
    )


class RawUploader:
    """Sends hand-built upload requests, for what the SDK never sends."""

    def __init__(self, emu: EmulatorThread, settings: Settings, token: str) -> None:
        self.emu = emu
        self.settings = settings
        self.token = token

    def post(
        self,
        body: bytes,
        *,
        gzip_body: bool = False,
        headers: Mapping[str, str] | None = None,
        api_version: str | None = "2023-01-01",
        dcr: str | None = None,
        stream: str | None = None,
    ) -> requests.Response:
        dcr = dcr or self.settings.emulator.dcr_immutable_id
        stream = stream or self.settings.emulator.stream_name
        url = f"{self.emu.url}/dataCollectionRules/{dcr}/streams/{stream}"
        sent_headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
        }
        if gzip_body:
            body = gzip.compress(body)
            sent_headers["Content-Encoding"] = "gzip"
        sent_headers.update(headers or {})
        params = {"api-version": api_version} if api_version else {}
        return requests.post(
            url,
            data=body,
            headers=sent_headers,
            params=params,
            verify=str(self.emu.ca_file),
            timeout=30,
        )

    def post_rows(self, rows: Any, **kwargs: Any) -> requests.Response:
        return self.post(orjson.dumps(rows), **kwargs)


def error_code(response: requests.Response) -> str:
    """The service error code, checking body and header agree."""
    body_code = response.json()["error"]["code"]
    assert response.headers["x-ms-error-code"] == body_code
    assert response.headers["x-ms-request-id"]
    return str(body_code)
