"""Sink: rows into the emulator, against the same rows passed straight to the SDK.

The subject is ``python -m cefpipe sink`` reading a pre-filled enriched topic
and uploading to ``cefpipe emulator`` (the local Logs Ingestion API, over TLS)
with its defaults: gzip bodies filled to just under the 1 MB limit, 4 uploads
in flight, 5 s flush interval. The peer is :mod:`bench.sdk_upload`: the same
rows, as dicts, handed to ``LogsIngestionClient.upload()`` in one call.

Both runs are read from the emulator's request log: requests per 100,000 rows,
bytes per request (and how full each full request is against the service's
1,048,576-byte limit), and rows per second from the end of the first upload to
the end of the last full one. Rounds alternate the two; the emulator is reset
before each run and the sink's consumer group deleted.

Usage::

    .venv/bin/python -m bench.bench_sink [--rows 200000] [--rounds 2]
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Producer

from bench.children import (
    Children,
    bench_argv,
    cefpipe_argv,
    cpu_seconds,
    exit_on_sigterm,
)
from bench.corpus import syslog_messages
from bench.emulator_api import (
    EmulatorAdmin,
    UploadStats,
    start_emulator,
    upload_stats,
)
from bench.kafka import (
    delete_group,
    free_port,
    new_topics,
    produce_all,
    running_broker,
    set_env,
)
from bench.report import detail, interleaved, options, rate, summary, work_dir
from enrich.pipeline import Enriched, Envelope, encode_row, enrich

# A group of the benchmark's own, so a shared broker's groups are never touched.
SINK_GROUP = f"bench-sink-{uuid.uuid4().hex[:8]}"
FEWER_REQUESTS_TARGET = 3.0
FILL_TARGET = 0.9
RUN_TIMEOUT_SECS = 300.0


def enriched_rows(count: int) -> list[bytes]:
    """The corpus as the enrich stage writes it to the enriched topic."""
    now_us = time.time_ns() // 1000
    rows = []
    for offset, message in enumerate(syslog_messages(count)):
        envelope = Envelope(now_us, "198.51.100.9:40000", "bench", f"0-{offset}-0")
        outcome = enrich(message, envelope)
        assert isinstance(outcome, Enriched), "the corpus is all valid CEF"
        rows.append(encode_row(outcome.row))
    return rows


@dataclass(frozen=True)
class Run:
    """A run's uploads, and the CPU its client used to send them.

    For the sink that is the whole process, start-up and Kafka included (its
    batches are built ahead of the uploads, so no window isolates them); for
    the SDK, the ``upload()`` call alone.
    """

    stats: UploadStats
    client_cpu_secs: float

    @property
    def rows_per_cpu_sec(self) -> float:
        return self.stats.rows / max(self.client_cpu_secs, 1e-6)


def wait_for_rows(
    emulator: EmulatorAdmin, count: int, process: subprocess.Popen[bytes]
) -> None:
    """Wait until the emulator stored ``count`` rows."""
    deadline = time.monotonic() + RUN_TIMEOUT_SECS
    while True:
        if sum(upload.rows for upload in emulator.uploads()) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {count} rows stored in time")
        if process.poll() not in (None, 0):
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        time.sleep(0.1)


def run_sink(
    children: Children, emulator: EmulatorAdmin, bootstrap: str, topic: str, rows: int
) -> Run:
    delete_group(bootstrap, SINK_GROUP)
    emulator.reset()
    env = set_env(
        **emulator.env(),
        CEFPIPE_INSTANCE="bench-sink",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TOPIC_ENRICHED=topic,
        TOPIC_DEAD_LETTER=f"{topic}-dead",
        SINK_METRICS_PORT=str(free_port()),
        SINK_CONSUMER_GROUP=SINK_GROUP,
        LOG_FORMAT="json",
    )
    process = children.start("sink", cefpipe_argv("sink"), env)
    try:
        wait_for_rows(emulator, rows, process)
        cpu = cpu_seconds(process.pid)
    finally:
        children.stop(process)
        delete_group(bootstrap, SINK_GROUP)
    return Run(upload_stats(emulator.uploads()), cpu)


def run_sdk(
    children: Children, emulator: EmulatorAdmin, bootstrap: str, topic: str, rows: int
) -> Run:
    emulator.reset()
    result = emulator.home / "sdk-upload.txt"
    argv = bench_argv("bench.sdk_upload", bootstrap, topic, str(rows), str(result))
    process = children.start("sdk-upload", argv, set_env(**emulator.env()))
    try:
        process.wait(RUN_TIMEOUT_SECS)
    finally:
        children.stop(process)
    if process.returncode != 0:
        raise RuntimeError(f"the SDK upload exited with {process.returncode}")
    _, cpu = result.read_text().split()
    return Run(upload_stats(emulator.uploads()), float(cpu))


def describe(name: str, run: Run) -> str:
    stats = run.stats
    return (
        f"{name}: {rate(stats.steady_rows_per_sec)} rows "
        f"({run.rows_per_cpu_sec:,.0f}/client CPU-s), "
        f"{stats.requests_per_100k:.1f} requests/100k rows, "
        f"{stats.mean_bytes / 1000:,.0f} KB/request, full requests "
        f"{stats.min_fill:.1%}-{stats.mean_fill:.1%} of 1 MiB"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds = 40_000, 1
    exit_on_sigterm()

    rows = enriched_rows(args.rows)
    best: dict[str, Run] = {}
    with (
        work_dir(args.keep, "sink") as work,
        running_broker(work) as broker,
        Children(work / "logs") as children,
    ):
        (topic,) = new_topics(broker.bootstrap, "enriched")
        keys = [str(index % 97).encode() for index in range(len(rows))]
        produce_all(
            Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20}),
            topic,
            rows,
            keys,
            [None] * len(rows),
        )
        emulator = start_emulator(children, work / "emulator-home")
        for number, subject in interleaved(args.rounds, ("sink", "sdk")):
            run = run_sink if subject == "sink" else run_sdk
            result = run(children, emulator, broker.bootstrap, topic, len(rows))
            stats = result.stats
            detail(f"round {number + 1} " + describe(subject, result))
            detail(
                f"  emulator busy {stats.emulator_busy_secs:.1f}s of the "
                f"{stats.window_secs:.1f}s window"
            )
            if subject not in best or (
                stats.steady_rows_per_sec > best[subject].stats.steady_rows_per_sec
            ):
                best[subject] = result
    print_summary(len(rows), best["sink"], best["sdk"])


def print_summary(rows: int, sink_run: Run, sdk_run: Run) -> None:
    sink, sdk = sink_run.stats, sdk_run.stats
    fewer = sdk.requests_per_100k / sink.requests_per_100k
    speed = sink.steady_rows_per_sec / max(sdk.steady_rows_per_sec, 1.0)
    met = fewer >= FEWER_REQUESTS_TARGET and sink.min_fill >= FILL_TARGET
    summary(
        "sink",
        f"{rows:,} rows into the emulator | {describe('cefpipe sink', sink_run)} | "
        f"{describe('SDK upload(list)', sdk_run)} | {fewer:.1f}x fewer requests, "
        f"rows/s {speed:.2f}x | target >= {FEWER_REQUESTS_TARGET:.0f}x fewer, "
        f"each >= {FILL_TARGET:.0%} full: {'met' if met else 'MISSED'}",
    )


if __name__ == "__main__":
    main()
