"""``cefpipe ingest`` on a taken port: one clear line naming the setting, exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.ingest.helpers import self_signed


@contextmanager
def taken(port: int, kind: socket.SocketKind) -> Iterator[None]:
    """Hold ``port`` on 127.0.0.1 (listening, for TCP) while the block runs."""
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            holder.listen()
        yield


def free_udp_and_tcp_port() -> int:
    """A port free for both TCP and UDP, as SYSLOG_PORT needs."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def run_ingest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cefpipe", "ingest"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "kind"),
    [
        ("SYSLOG_PORT", socket.SOCK_STREAM),
        ("SYSLOG_PORT", socket.SOCK_DGRAM),
        ("SYSLOG_TLS_PORT", socket.SOCK_STREAM),
        ("INGEST_METRICS_PORT", socket.SOCK_STREAM),
    ],
)
def test_a_taken_port_is_named_by_its_setting_and_ingest_exits_1(
    variable: str, kind: socket.SocketKind, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    ports = {
        "SYSLOG_PORT": free_udp_and_tcp_port(),
        "SYSLOG_TLS_PORT": free_port(),
        "INGEST_METRICS_PORT": free_port(),
    }
    env = {
        "CEFPIPE_HOME": str(tmp_path),
        "LOG_FORMAT": "text",
        # Nothing listens there; ingest exits before it would connect.
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "SYSLOG_BIND_HOST": "127.0.0.1",
        "METRICS_BIND_HOST": "127.0.0.1",
        "SYSLOG_TLS_CERT_FILE": str(cert),
        "SYSLOG_TLS_KEY_FILE": str(key),
        **{name: str(port) for name, port in ports.items()},
    }

    with taken(ports[variable], kind):
        result = run_ingest(env)

    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if "could not start" in line]
    assert result.returncode == 1, output
    assert len(errors) == 1, output
    assert f"127.0.0.1:{ports[variable]} ({variable}=" in errors[0]
    assert "Traceback" not in output
