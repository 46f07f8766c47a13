"""The sink on a real broker against the emulator with faults, run in-process.

Every test writes its own enriched topic, runs one sink with its own consumer
group, and checks what arrived at the emulator, what went to the dead-letter
topic, and what was committed.
"""

from __future__ import annotations

import random
import re

import pytest

from cefpipe.records import DeadLetter
from emulator.server import EmulatorThread
from sink.dead_letter import REASON_ROW_REJECTED, REASON_ROW_TOO_LARGE
from tests.conftest import PipelineTopics
from tests.sink.rows import enriched_value
from tests.sink.sinkkit import (
    committed_offsets,
    dead_letters,
    duplicates,
    end_offsets,
    missing,
    new_group_id,
    produce_rows,
    sink_in_thread,
    sink_settings,
    stored_ids,
    topic_size,
    wait_for,
)

pytestmark = pytest.mark.broker

DEADLINE_SECS = 180.0


def test_rows_flow_through_and_offsets_are_committed(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 5000)
    settings = sink_settings(sink_env, kafka_bootstrap, pipeline_topics)

    with sink_in_thread(settings) as sink:
        wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "all rows")
        ends = end_offsets(kafka_bootstrap, pipeline_topics.enriched)
        wait_for(
            lambda: (
                committed_offsets(
                    kafka_bootstrap, sink.group_id, pipeline_topics.enriched
                )
                == ends
            ),
            DEADLINE_SECS,
            "offsets committed to the end",
        )

    assert duplicates(stored_ids(emu)) == 0
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0
    assert all(request["content_encoding"] == "gzip" for request in emu.requests())


def test_twenty_seconds_of_503_then_recovery_loses_nothing(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    emu.set_faults([{"kind": "status", "status": 503, "duration_secs": 20}])
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 4000)
    settings = sink_settings(
        sink_env,
        kafka_bootstrap,
        pipeline_topics,
        SINK_MAX_BATCH_ROWS="500",
        SINK_MAX_BUFFERED_BYTES=str(1024 * 1024),
    )

    with sink_in_thread(settings) as sink:
        # During the outage the sink stops reading instead of buffering it all.
        wait_for(lambda: sink.app.worker.paused, DEADLINE_SECS, "reading paused")
        assert sink.app.worker.outstanding_rows() < len(ids)
        wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "all rows")

    statuses = [request["status"] for request in emu.requests()]
    assert 503 in statuses
    assert statuses[-1] == 204
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0


def test_one_poison_row_is_dead_lettered_and_all_others_arrive(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    emu.set_faults([{"kind": "bad_rows"}])
    poison_index = random.Random(7).randrange(5000)

    def value(index: int) -> bytes:
        activity = "POISON in the activity" if index == poison_index else None
        return enriched_value(0, index, activity=activity)

    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 5000, value)
    settings = sink_settings(sink_env, kafka_bootstrap, pipeline_topics)

    with sink_in_thread(settings):
        good = [row_id for row_id in ids if row_id != f"0-{poison_index}"]
        wait_for(lambda: not missing(good, stored_ids(emu)), DEADLINE_SECS, "good rows")
        [letter] = dead_letters(kafka_bootstrap, pipeline_topics.dead_letter, 1)

    assert f"0-{poison_index}" not in stored_ids(emu)
    assert letter.value == value(poison_index)
    headers = DeadLetter.from_headers(list(letter.headers.items()))
    assert (headers.stage, headers.reason) == ("sink", REASON_ROW_REJECTED)
    assert re.fullmatch(rf"{pipeline_topics.enriched}/\d+/\d+", headers.source)
    assert "status=400" in headers.detail
    assert "code=" in headers.detail
    assert "request_id=" in headers.detail


@pytest.mark.parametrize(("status", "reason"), [(403, "forbidden"), (404, "not_found")])
def test_a_configuration_fault_holds_everything_then_recovers(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
    status: int,
    reason: str,
) -> None:
    emu.set_faults([{"kind": "status", "status": status}])
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 1000)
    settings = sink_settings(sink_env, kafka_bootstrap, pipeline_topics)

    with sink_in_thread(settings) as sink:
        wait_for(lambda: not sink.app.health.report()[0], DEADLINE_SECS, "unhealthy")
        _, report = sink.app.health.report()
        uploads = report["checks"]["uploads"]
        assert uploads["ok"] is False
        assert reason in uploads["detail"]
        assert "request_id=" in uploads["detail"]
        committed = committed_offsets(
            kafka_bootstrap, sink.group_id, pipeline_topics.enriched
        )
        assert all(offset < 0 for offset in committed.values())  # nothing committed

        emu.set_faults([])
        wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "all rows")
        wait_for(lambda: sink.app.health.report()[0], DEADLINE_SECS, "healthy again")

    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0


def test_a_413_splits_the_batch_and_every_row_arrives(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    emu.set_faults([{"kind": "status", "status": 413, "count": 1}])
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 3000)
    settings = sink_settings(sink_env, kafka_bootstrap, pipeline_topics)

    with sink_in_thread(settings):
        wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "all rows")

    statuses = [request["status"] for request in emu.requests()]
    assert statuses[0] == 413
    assert statuses.count(204) >= 2
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0


def test_a_batch_limit_above_the_service_limit_is_corrected_by_splitting(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    rng = random.Random(11)
    noise = {index: rng.randbytes(600).hex() for index in range(3000)}

    def value(index: int) -> bytes:
        return enriched_value(0, index, padding=f"?n={noise[index]}")

    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 3000, value)
    settings = sink_settings(
        sink_env,
        kafka_bootstrap,
        pipeline_topics,
        SINK_MAX_BATCH_BYTES="3000000",
        SINK_FLUSH_INTERVAL_SECS="3",
    )

    with sink_in_thread(settings):
        wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "all rows")

    requests = emu.requests()
    assert any(r["status"] == 413 for r in requests)
    assert all(r["wire_bytes"] <= 1_048_576 for r in requests if r["status"] == 204)
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0


def test_a_row_too_large_for_any_request_is_dead_lettered(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    rng = random.Random(13)
    huge_index = 250

    def value(index: int) -> bytes:
        padding = f"?n={rng.randbytes(30_000).hex()}" if index == huge_index else ""
        return enriched_value(0, index, padding=padding)

    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 500, value)
    settings = sink_settings(
        sink_env, kafka_bootstrap, pipeline_topics, SINK_MAX_BATCH_BYTES="20000"
    )

    with sink_in_thread(settings):
        good = [row_id for row_id in ids if row_id != f"0-{huge_index}"]
        wait_for(lambda: not missing(good, stored_ids(emu)), DEADLINE_SECS, "good rows")
        [letter] = dead_letters(kafka_bootstrap, pipeline_topics.dead_letter, 1)

    headers = DeadLetter.from_headers(list(letter.headers.items()))
    assert (headers.stage, headers.reason) == ("sink", REASON_ROW_TOO_LARGE)
    assert headers.message
    assert b"cefpipeRowId=0-250" in letter.value


def test_a_rebalance_hands_partitions_over_without_losing_rows(
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    emu: EmulatorThread,
    sink_env: dict[str, str],
) -> None:
    emu.set_faults([{"kind": "delay", "secs": 0.3}])  # keep uploads in flight
    ids = produce_rows(kafka_bootstrap, pipeline_topics.enriched, 8000)
    settings = sink_settings(
        sink_env,
        kafka_bootstrap,
        pipeline_topics,
        SINK_MAX_BATCH_ROWS="250",
        SINK_MAX_BUFFERED_BYTES=str(1024 * 1024),
    )
    group_id = new_group_id()

    with sink_in_thread(settings, group_id):
        wait_for(lambda: len(stored_ids(emu)) >= 1000, DEADLINE_SECS, "first rows")
        with sink_in_thread(settings, group_id):  # joining makes the first revoke
            wait_for(lambda: not missing(ids, stored_ids(emu)), DEADLINE_SECS, "rows")
            ends = end_offsets(kafka_bootstrap, pipeline_topics.enriched)
            wait_for(
                lambda: (
                    committed_offsets(
                        kafka_bootstrap, group_id, pipeline_topics.enriched
                    )
                    == ends
                ),
                DEADLINE_SECS,
                "offsets committed to the end",
            )

    counts = stored_ids(emu)
    assert set(counts) == set(ids)
    # The first sink drained its uploads before letting go, so a handover
    # redelivers at most what was in flight when the grace period ended.
    assert duplicates(counts) <= settings.sink.max_in_flight * 250
    assert topic_size(kafka_bootstrap, pipeline_topics.dead_letter) == 0
