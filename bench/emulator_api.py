"""The emulator as a benchmark sees it: a child process, its request log, its rows.

Upload sizes, row counts and timings are read from the emulator's own request
log (``GET /emulator/requests``), the same way for every client, so a request
count or a bytes-per-request figure never depends on what a client says of
itself.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import Children, cefpipe_argv, wait_healthy
from bench.kafka import free_port, set_env
from cefpipe.settings import CA_FILE_NAME, certs_dir
from emulator.ingestion import MAX_CONTENT_LENGTH_BYTES


@dataclass(frozen=True)
class Upload:
    """One accepted upload, as the emulator logged it."""

    started: float  # epoch seconds
    ended: float
    rows: int
    wire_bytes: int
    busy_secs: float  # time the emulator spent on it


@dataclass(frozen=True)
class EmulatorAdmin:
    """The admin API of an emulator whose state lives under ``home``."""

    home: Path
    url: str

    @property
    def ca_file(self) -> Path:
        return certs_dir(self.home) / CA_FILE_NAME

    def env(self) -> dict[str, str]:
        """Settings that point a sink (or the SDK) at this emulator."""
        port = self.url.rsplit(":", 1)[1]
        return {
            "CEFPIPE_HOME": str(self.home),
            "EMULATOR_PORT": port,
            "EMULATOR_URL": self.url,
        }

    def uploads(self) -> list[Upload]:
        """Every accepted upload so far, in the order they ended."""
        entries = self._call("GET", "/emulator/requests")["requests"]
        return sorted(
            (_upload(entry) for entry in entries if entry["status"] == 204),
            key=lambda upload: upload.ended,
        )

    def reset(self) -> None:
        self._call("POST", "/emulator/reset")

    def _call(self, method: str, path: str) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310
        with urllib.request.urlopen(  # noqa: S310 - the emulator on loopback
            request, timeout=30, context=context
        ) as response:
            body = response.read()
        return json.loads(body) if body else {}


def start_emulator(children: Children, home: Path) -> EmulatorAdmin:
    """``cefpipe emulator`` on free ports, stopped with ``children``; listening on
    return."""
    port, metrics_port = free_port(), free_port()
    url = f"https://127.0.0.1:{port}"
    env = set_env(
        CEFPIPE_HOME=str(home),
        EMULATOR_PORT=str(port),
        EMULATOR_URL=url,
        EMULATOR_METRICS_PORT=str(metrics_port),
        LOG_FORMAT="json",
        LOG_LEVEL="warning",  # one line per upload would be the busiest thing
    )
    process = children.start("emulator", cefpipe_argv("emulator"), env)
    wait_healthy(metrics_port, process)
    return EmulatorAdmin(home, url)


def _upload(entry: dict[str, Any]) -> Upload:
    started = dt.datetime.fromisoformat(entry["time"]).timestamp()
    busy = entry["duration_ms"] / 1000
    return Upload(started, started + busy, entry["rows"], entry["wire_bytes"], busy)


@dataclass(frozen=True)
class UploadStats:
    """What a run of uploads looked like."""

    rows: int
    requests: int
    mean_bytes: float
    min_fill: float  # smallest full request, as a fraction of the service limit
    mean_fill: float
    steady_rows: int  # rows of the uploads that ended inside the window
    window: tuple[float, float]  # epoch seconds: end of first and last full upload
    emulator_busy_secs: float  # time in the window with at least one upload open

    @property
    def requests_per_100k(self) -> float:
        return self.requests * 100_000 / max(self.rows, 1)

    @property
    def window_secs(self) -> float:
        return self.window[1] - self.window[0]

    @property
    def steady_rows_per_sec(self) -> float:
        return self.steady_rows / self.window_secs if self.window_secs else 0.0


def upload_stats(uploads: Sequence[Upload]) -> UploadStats:
    """Counts over every upload; fill and rate over the full ones.

    The last upload is a remainder (the sink sends it when the flush interval
    ends), so it counts in requests and bytes but not in fill or rate. The rate
    runs from the end of the first upload to the end of the last full one: the
    rows of every upload in between over that time.
    """
    full = list(uploads[:-1]) if len(uploads) > 2 else list(uploads)
    fills = [upload.wire_bytes / MAX_CONTENT_LENGTH_BYTES for upload in full]
    window = (full[0].ended, full[-1].ended)
    return UploadStats(
        rows=sum(upload.rows for upload in uploads),
        requests=len(uploads),
        mean_bytes=sum(upload.wire_bytes for upload in uploads) / len(uploads),
        min_fill=min(fills),
        mean_fill=sum(fills) / len(fills),
        steady_rows=sum(upload.rows for upload in full[1:]),
        window=window,
        emulator_busy_secs=_busy_within(uploads, window),
    )


def _busy_within(uploads: Sequence[Upload], window: tuple[float, float]) -> float:
    """Seconds of ``window`` during which the emulator was handling an upload."""
    busy = 0.0
    reached = window[0]
    for upload in sorted(uploads, key=lambda u: u.started):
        start, end = max(upload.started, reached), min(upload.ended, window[1])
        if end > start:
            busy += end - start
            reached = end
    return busy
