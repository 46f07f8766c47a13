"""The processes a benchmark starts, and making sure none of them outlives it.

Every child runs in its own session (a Ctrl-C in the terminal reaches only the
benchmark, which then stops its children in order) and is asked by Linux to
receive SIGTERM if the benchmark dies first. SIGTERM to the benchmark itself
becomes SystemExit, so its ``finally`` blocks stop the children too.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECS = 45.0


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so cleanup code runs as on Ctrl-C."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGTERM
        )


def cefpipe_argv(component: str) -> list[str]:
    """How ``cefpipe up`` runs a component: this interpreter, ``-m cefpipe``."""
    return [sys.executable, "-m", "cefpipe", component]


def bench_argv(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


class Children:
    """Starts child processes and stops every one still running, newest first.

    Use as a context manager; :meth:`stop` may also end one child early.
    """

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._started: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start ``argv``; its output goes to ``<log_dir>/<name>.log``."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        with (self._log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self._started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM, wait for a clean exit, SIGKILL after the grace period."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE_SECS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop_all(self) -> None:
        for process in reversed(self._started):
            self.stop(process)
        self._started.clear()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB; 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / 100  # USER_HZ is 100 on Linux


def metric(port: int, name: str) -> float:
    """The sum of every sample of metric ``name`` on a component's /metrics page."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_healthy(
    port: int, process: subprocess.Popen[bytes], timeout_secs: float = 90.0
) -> None:
    """Wait for a component's /healthz; raise if it exits or never gets healthy."""
    deadline = time.monotonic() + timeout_secs
    url = f"http://127.0.0.1:{port}/healthz"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if json.loads(response.read() or b"{}").get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.args!r} not healthy within {timeout_secs:.0f}s")
