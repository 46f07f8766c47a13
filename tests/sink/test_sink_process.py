"""The sink as its own process (``python -m cefpipe sink``): crash and clean stop.

Uploads are slowed by an emulator delay fault so that the kill or the SIGTERM
lands while rows are still flowing. Both runs use the sink's default consumer
group, as a redeployed sink would.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cefpipe.settings import Settings
from emulator.server import EmulatorThread
from tests.conftest import PipelineTopics
from tests.sink.sinkkit import (
    committed_offsets,
    duplicates,
    end_offsets,
    missing,
    produce_rows,
    start_sink_process,
    stored_ids,
    topic_size,
    wait_for,
)

pytestmark = pytest.mark.broker

ROWS = 20_000
BATCH_ROWS = 500
IN_FLIGHT = 2
# A restarted sink may wait out the killed one's session (45 s) before it gets
# partitions; everything else takes seconds.
DEADLINE_SECS = 300.0


class SinkProcesses:
    """Starts sink processes and makes sure none outlives the test."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = start_sink_process(self.env, self.log_file)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)

    def log_tail(self) -> str:
        text = (
            self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        )
        return text[-6000:]


@pytest.fixture
def sinks(
    sink_env: dict[str, str],
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    tmp_path: Path,
) -> Iterator[SinkProcesses]:
    env = {
        **sink_env,
        **pipeline_topics.env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SINK_MAX_BATCH_ROWS": str(BATCH_ROWS),
        "SINK_MAX_IN_FLIGHT": str(IN_FLIGHT),
        "SINK_SHUTDOWN_GRACE_SECS": "30",
        # Small enough that reading pauses a few batches ahead of the uploads.
        "SINK_MAX_BUFFERED_BYTES": str(2 * 1024 * 1024),
    }
    processes = SinkProcesses(env, tmp_path / "sink.log")
    try:
        yield processes
    finally:
        processes.stop_all()
        print(processes.log_tail())  # shown by pytest only when the test failed


def slow_uploads(emu: EmulatorThread) -> None:
    emu.set_faults([{"kind": "delay", "secs": 0.5}])


def test_kill_9_mid_stream_then_restart_delivers_every_row_at_least_once(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sinks: SinkProcesses,
) -> None:
    slow_uploads(emu)
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, ROWS)

    first = sinks.start()
    wait_for(lambda: len(stored_ids(emu)) >= ROWS // 6, DEADLINE_SECS, "first rows")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert len(stored_ids(emu)) < ROWS, "the kill came too late to test anything"

    emu.set_faults([])
    second = sinks.start()
    wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "every row")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0

    counts = stored_ids(emu)
    assert set(counts) == set(ids)  # deduplicating by row id leaves each row once
    print(f"duplicates after kill -9: {duplicates(counts)} of {ROWS} rows")
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0


def test_sigterm_under_load_drains_commits_and_exits_zero(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sinks: SinkProcesses,
) -> None:
    slow_uploads(emu)
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, ROWS)

    first = sinks.start()
    wait_for(lambda: len(stored_ids(emu)) >= ROWS // 6, DEADLINE_SECS, "first rows")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=90) == 0
    accepted_before_stop = stored_ids(emu)
    assert len(accepted_before_stop) < ROWS, "the stop came too late to test anything"
    assert "sink stopped drained=True" in sinks.log_tail()

    emu.set_faults([])
    second = sinks.start()
    wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "every row")
    ends = end_offsets(kafka_bootstrap, pipeline_topics.enriched)
    wait_for(
        lambda: (
            committed_offsets(
                kafka_bootstrap,
                Settings.from_env({}).sink.consumer_group,
                pipeline_topics.enriched,
            )
            == ends
        ),
        DEADLINE_SECS,
        "offsets committed to the end",
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0

    # Every row accepted before the stop was committed by the drain, so the
    # second run sends none of them again: at most the batches still in flight
    # when the grace period ran out could come back, and none did.
    counts = stored_ids(emu)
    redelivered = sum(counts[row_id] - 1 for row_id in accepted_before_stop)
    assert redelivered <= IN_FLIGHT * BATCH_ROWS
    assert redelivered == 0
    assert set(counts) == set(ids)
    assert duplicates(counts) == 0
