"""End to end: syslog in, rows stored by the emulator, every process on this machine.

The stack runs as ``cefpipe up`` runs it (:class:`cefpipe.stack.Stack`: emulator,
sink, enrich and ingest as child processes, default settings) against the
benchmark's broker, with topics and ports of its own. Agents are 8 TCP senders,
each from its own loopback address.

1. Latency at a fixed offered rate (default 5,000 events/s for 20 s), below
   saturation: messages whose TimeGenerated is their receive time, so each
   stored row carries both ends of its own latency: TimeGenerated (ingest's
   receive stamp) to ``_IngestionTime`` (the emulator's store time, just before
   its 204). The first 2 s are warm-up. Peak RSS (VmHWM) of every process is
   read right after this phase.
2. Throughput at saturation: a burst of messages from the 8 agents at once;
   rows per second from the emulator's request log, from the end of the first
   upload to the end of the last full one. The CPU each process used over the
   same window shows where the two cores went.

The ratio reported is the offered rate against the saturated rate measured in
the same run (it must be below 1 for the latency to mean anything).

Usage::

    .venv/bin/python -m bench.bench_e2e [--rate 5000] [--secs 20] [--burst 200000]
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from bench.children import cpu_seconds, exit_on_sigterm, metric, peak_rss_mib
from bench.corpus import receive_timed_messages
from bench.emulator_api import EmulatorAdmin, UploadStats, upload_stats
from bench.kafka import running_broker
from bench.progress import percentile
from bench.report import detail, options, rate, summary, work_dir
from bench.senders import Blast, fleet, send_paced
from cefpipe.schema import TABLE_NAME
from cefpipe.settings import Settings
from cefpipe.stack import Stack, private_environment

AGENTS = 8
WARM_UP_SECS = 2.0
DRAIN_TIMEOUT_SECS = 180.0


@dataclass(frozen=True)
class Latency:
    rows: int
    p50: float
    p99: float
    worst: float


def stack_env(work: Path, bootstrap: str) -> dict[str, str]:
    """Settings for a private stack: own home, topics, groups and free ports."""
    env = private_environment(os.environ, work / "stack-home", "bench-e2e", bootstrap)
    env["CEFPIPE_INSTANCE"] = "bench-e2e"
    return env


def stored_rows(database: Path) -> int:
    if not database.exists():
        return 0
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {TABLE_NAME}").fetchone()[0])  # noqa: S608
        except sqlite3.OperationalError:
            return 0  # the table is not there yet


def wait_for_rows(database: Path, count: int) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECS
    while stored_rows(database) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stored_rows(database)} of {count} rows stored")
        time.sleep(0.2)


def latencies(database: Path, since: float) -> Latency:
    """Receive-to-store seconds of every row received ``since`` (epoch) or later."""
    query = f'SELECT TimeGenerated, "_IngestionTime" FROM {TABLE_NAME}'  # noqa: S608
    with closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
        pairs = db.execute(query).fetchall()
    seconds = []
    for generated, ingested in pairs:
        received = dt.datetime.fromisoformat(generated).timestamp()
        if received >= since:
            seconds.append(dt.datetime.fromisoformat(ingested).timestamp() - received)
    return Latency(
        len(seconds), percentile(seconds, 0.5), percentile(seconds, 0.99), max(seconds)
    )


def process_ids(stack: Stack, broker_pid: int | None) -> dict[str, int]:
    pids = {
        child.name: child.process.pid
        for child in stack.children
        if child.process is not None
    }
    if broker_pid is not None:
        pids["kafka"] = broker_pid
    return pids


def measure_latency(settings: Settings, offered: float, secs: float) -> Latency:
    """Send at ``offered`` events/s for ``secs``; latency of the rows stored."""
    messages = receive_timed_messages(int(offered * secs))
    started = time.time()
    took = send_paced(fleet(messages, AGENTS), settings.ingest.port, offered)
    achieved = rate(len(messages) / took)
    detail(f"offered {len(messages):,} events in {took:.1f}s ({achieved})")
    wait_for_rows(settings.emulator_db_file, len(messages))
    return latencies(settings.emulator_db_file, started + WARM_UP_SECS)


@dataclass(frozen=True)
class Saturation:
    uploads: UploadStats
    whole_run_rate: float  # first byte sent to last row stored
    cores: dict[str, float]  # average cores each process used in the window

    @property
    def rate(self) -> float:
        """The steady rate, or the whole run's when too few uploads for a window."""
        return self.uploads.steady_rows_per_sec or self.whole_run_rate


def measure_saturation(
    settings: Settings, emulator: EmulatorAdmin, pids: Mapping[str, int], burst: int
) -> Saturation:
    """Rows/s at saturation and each process's CPU share over the same window."""
    emulator.reset()
    messages = receive_timed_messages(burst)
    cpu_log: list[tuple[float, dict[str, float]]] = []
    blast = Blast(fleet(messages, AGENTS), settings.ingest.port)
    started = time.time()
    blast.start()
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECS
    while stored_rows(settings.emulator_db_file) < len(messages):
        cpu_log.append((time.time(), {n: cpu_seconds(p) for n, p in pids.items()}))
        if time.monotonic() > deadline:
            raise RuntimeError("the burst did not drain in time")
        time.sleep(0.2)
    whole_run = len(messages) / (time.time() - started)
    blast.join()
    stats = upload_stats(emulator.uploads())
    return Saturation(stats, whole_run, _cpu_share(cpu_log, stats.window))


def _cpu_share(
    log: Sequence[tuple[float, dict[str, float]]], window: tuple[float, float]
) -> dict[str, float]:
    """Cores each process used on average over ``window`` (nearest samples)."""
    start = max(
        (s for s in log if s[0] <= window[0]), key=lambda s: s[0], default=log[0]
    )
    end = max(
        (s for s in log if s[0] <= window[1]), key=lambda s: s[0], default=log[-1]
    )
    span = max(end[0] - start[0], 1e-6)
    return {name: (end[1][name] - start[1][name]) / span for name in start[1]}


def _messages_per_record(ingest_metrics_port: int) -> float:
    messages = metric(ingest_metrics_port, "cefpipe_ingest_messages_published_total")
    records = metric(ingest_metrics_port, "cefpipe_ingest_records_published_total")
    return messages / max(records, 1.0)


def _last_before(
    log: Sequence[tuple[float, dict[str, float]]], instant: float
) -> tuple[float, dict[str, float]] | None:
    earlier = [sample for sample in log if sample[0] <= instant]
    return earlier[-1] if earlier else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5_000.0)
    parser.add_argument("--secs", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=200_000)
    parser.add_argument(
        "--broker-pid", type=int, help="the shared broker's pid, for its memory"
    )
    parser.add_argument(
        "--sink-flush-secs", help="SINK_FLUSH_INTERVAL_SECS (default: the sink's)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rate, args.secs, args.burst = 1_000.0, 5.0, 20_000
    exit_on_sigterm()

    with work_dir(args.keep, "e2e") as work, running_broker(work) as broker:
        env = stack_env(work, broker.bootstrap)
        if args.sink_flush_secs:
            env["SINK_FLUSH_INTERVAL_SECS"] = args.sink_flush_secs
        settings = Settings.from_env(env)
        stack = Stack(settings, env)
        try:
            stack.start()
            pids = process_ids(stack, broker.pid or args.broker_pid)
            emulator = EmulatorAdmin(settings.home, settings.emulator.url)
            latency = measure_latency(settings, args.rate, args.secs)
            packing = _messages_per_record(settings.ingest.metrics_port)
            memory = {name: peak_rss_mib(pid) for name, pid in pids.items()}
            saturated = measure_saturation(settings, emulator, pids, args.burst)
            memory_after = {name: peak_rss_mib(pid) for name, pid in pids.items()}
        finally:
            stack.stop()

    detail(f"at {rate(args.rate)} ingest packed {packing:.1f} messages per raw record")
    report(args.rate, latency, memory, saturated, memory_after)


def report(
    offered: float,
    latency: Latency,
    memory: Mapping[str, float],
    saturated: Saturation,
    memory_after: Mapping[str, float],
) -> None:
    detail(
        f"latency over {latency.rows:,} rows after {WARM_UP_SECS:.0f}s warm-up: "
        f"p50 {latency.p50:.2f}s p99 {latency.p99:.2f}s max {latency.worst:.2f}s"
    )
    uploads = saturated.uploads
    detail(
        f"saturation: {uploads.rows:,} rows in {uploads.requests} uploads; steady "
        f"{rate(uploads.steady_rows_per_sec)} over {uploads.window_secs:.1f}s "
        f"(emulator busy {uploads.emulator_busy_secs:.1f}s of it); whole burst "
        f"{rate(saturated.whole_run_rate)}"
    )
    detail("cores used at saturation: " + _listed(saturated.cores, "{:.2f}"))
    detail("peak RSS after the burst (MiB): " + _listed(memory_after, "{:.0f}"))
    summary(
        "e2e",
        f"syslog -> emulator rows, all on this machine | saturated "
        f"{rate(saturated.rate)} | at {rate(offered)} offered "
        f"({offered / saturated.rate:.2f}x of saturated): latency p50 "
        f"{latency.p50:.2f}s, p99 {latency.p99:.2f}s | peak RSS MiB at that load: "
        + _listed(memory, "{:.0f}"),
    )


def _listed(values: Mapping[str, float], number: str) -> str:
    return ", ".join(f"{name} {number.format(value)}" for name, value in values.items())


if __name__ == "__main__":
    main()
