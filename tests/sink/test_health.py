"""/healthz for the sink: configuration faults, a stalled loop, rows stuck."""

from __future__ import annotations

from dataclasses import dataclass

from cefpipe.metrics import Health
from cefpipe.settings import Settings
from sink.delivery import ConfigFault
from sink.main import register_health_checks


@dataclass
class FakeWorker:
    outstanding: int = 0
    since_loop: float = 0.1
    since_progress: float = 0.0

    def outstanding_rows(self) -> int:
        return self.outstanding

    def secs_since_loop(self) -> float:
        return self.since_loop

    def secs_since_progress(self) -> float:
        return self.since_progress


def checked(worker: FakeWorker, fault: ConfigFault | None = None) -> dict[str, bool]:
    sink = Settings.from_env({"SINK_RETRY_MAX_SECS": "100"}).sink
    health = Health()
    register_health_checks(health, worker, fault or ConfigFault(), sink)
    _, report = health.report()
    return {name: check["ok"] for name, check in report["checks"].items()}


def test_a_working_sink_is_healthy() -> None:
    assert checked(FakeWorker(outstanding=500, since_progress=3)) == {
        "uploads": True,
        "consuming": True,
        "committing": True,
    }


def test_a_configuration_fault_is_unhealthy() -> None:
    fault = ConfigFault()
    fault.raise_fault("forbidden: status=403 request_id=abc")

    assert checked(FakeWorker(), fault)["uploads"] is False


def test_rows_uncommitted_for_longer_than_any_retry_is_unhealthy() -> None:
    assert (
        checked(FakeWorker(outstanding=10, since_progress=10_000))["committing"]
        is False
    )


def test_an_idle_sink_with_nothing_to_commit_is_healthy() -> None:
    assert (
        checked(FakeWorker(outstanding=0, since_progress=10_000))["committing"] is True
    )


def test_a_loop_that_stopped_going_round_is_unhealthy() -> None:
    assert checked(FakeWorker(since_loop=10_000))["consuming"] is False
