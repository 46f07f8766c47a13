"""Enrich: the Faust worker against a bare consume-parse-produce loop, same raw topic.

The subject is ``python -m cefpipe enrich`` (the Faust app, as deployed); the
peer is :mod:`bench.bare_enrich`, the same per-message work in a plain
confluent-kafka loop. Both run as their own process on the same pre-filled raw
topic and are timed the same way: records appearing in their own enriched topic,
sampled every 50 ms, over the steady part of the run (5% to 95%, every worker
going), so start-up and group join are left out. CPU time of the measured
processes over the same window gives events per CPU-second (per core).

Two raw topics are filled from one corpus, each spread over 8 partitions by a
fleet of 32 agents' addresses:

- packed: sent over TCP through a real ``cefpipe ingest``, which packs messages
  read together into one record (see :mod:`cefpipe.records`), as it does for a
  sender that writes in bursts;
- one message per record: what ingest writes for a sender that trickles, and
  what every record looked like before packing.

Rounds alternate Faust and the bare loop on each input; the best round of each
counts. Scaling (2 workers against 1, packed input) needs both workers to hold
partitions before the work is there: Faust moves partitions slowly, and a
second worker that joins late finds a pre-filled topic half drained. So for
that pair the workers start on an empty raw topic, the bench waits until the
group is stable with every worker assigned, then replays the packed topic's
records into it at full speed (about 0.3 s of the run).

Usage::

    .venv/bin/python -m bench.bench_enrich [--messages 150000] [--rounds 2]
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from bench.bench_ingest import send_through_ingest, start_ingest
from bench.children import (
    Children,
    bench_argv,
    cefpipe_argv,
    cpu_seconds,
    exit_on_sigterm,
    metric,
    peak_rss_mib,
)
from bench.corpus import syslog_messages
from bench.kafka import (
    StoredRecord,
    TopicCounter,
    delete_group,
    delete_topics,
    free_port,
    ingest_producer_config,
    new_topics,
    produce_all,
    raw_headers,
    read_topic,
    replay,
    running_broker,
    set_env,
    wait_for_members,
)
from bench.progress import Window, sample_until, steady_window
from bench.report import (
    detail,
    interleaved,
    options,
    rate,
    summary,
    verdict,
    work_dir,
)
from bench.senders import fleet

# A group of the benchmark's own, so a shared broker's groups are never touched.
FAUST_GROUP = f"bench-enrich-{uuid.uuid4().hex[:8]}"
CONSUMED = "cefpipe_enrich_messages_consumed_total"
AGENTS = 32
TARGET = 0.5
RUN_TIMEOUT_SECS = 240.0


@dataclass(frozen=True)
class Input:
    """A pre-filled raw topic and what it holds."""

    name: str
    topic: str
    messages: int
    records: int

    def fresh(self, bootstrap: str) -> Input:
        """An empty raw topic to replay this input into."""
        (topic,) = new_topics(bootstrap, "raw-replay")
        return Input(self.name, topic, self.messages, self.records)


@dataclass
class Bench:
    """What every run needs: where to start processes and how to count output."""

    children: Children
    bootstrap: str
    counter: TopicCounter
    work: Path


def fill_packed(bench: Bench, messages: Sequence[bytes]) -> Input:
    """The raw topic as ingest writes it for bursts: through a real ingest process."""
    raw, dead = new_topics(bench.bootstrap, "raw-packed", "prefill-dead")
    ingest = start_ingest(
        bench.children, bench.work / "ingest-home", bench.bootstrap, raw, dead
    )
    send_through_ingest(ingest, fleet(messages, AGENTS))
    bench.children.stop(ingest.process)
    return Input("packed", raw, len(messages), bench.counter.records(raw))


def fill_single(bench: Bench, messages: Sequence[bytes]) -> Input:
    """The raw topic with one message per record, keyed and stamped as ingest does."""
    (raw,) = new_topics(bench.bootstrap, "raw-single")
    agents = fleet(messages, AGENTS)
    now_us = time.time_ns() // 1000
    values = [message for agent in agents for message in agent.messages]
    keys = [agent.source.encode() for agent in agents for _ in agent.messages]
    headers = [
        raw_headers(agent.source, now_us) for agent in agents for _ in agent.messages
    ]
    producer = Producer(ingest_producer_config(bench.bootstrap))
    produce_all(producer, raw, values, keys, headers)
    return Input("1 msg/record", raw, len(messages), bench.counter.records(raw))


Started = list[tuple[subprocess.Popen[bytes], int | None]]
BATCH_RECORDS = "cefpipe_enrich_batch_events"  # a histogram of records per batch


@dataclass(frozen=True)
class Measured:
    """One run: its steady window, and what the workers held meanwhile."""

    window: Window
    peak_rss_mib: float  # the largest worker's VmHWM
    messages_per_batch: float  # Faust workers only; 0 for the bare loop


def _measure(
    bench: Bench,
    source: Input,
    start: Callable[[str, str], Started],
    prepare: Callable[[], None] | None = None,
) -> Measured:
    """Start processes writing to fresh topics; the steady window of their output.

    ``prepare`` runs once they are started and before sampling begins.
    """
    enriched, dead = new_topics(bench.bootstrap, "enriched", "dead")
    processes = start(enriched, dead)
    ports = [port for _, port in processes if port is not None]

    def all_going() -> bool:
        return all(_consumed(port) > 0 for port in ports)

    try:
        if prepare is not None:
            prepare()
        points = sample_until(
            lambda: bench.counter.records(enriched),
            source.messages,
            RUN_TIMEOUT_SECS,
            ready=all_going if ports else None,
            cpu=lambda: sum(cpu_seconds(process.pid) for process, _ in processes),
        )
        peak = max(peak_rss_mib(process.pid) for process, _ in processes)
        per_batch = _messages_per_batch(ports, source)
    finally:
        for process, _ in processes:
            bench.children.stop(process)
    delete_topics(bench.bootstrap, [enriched, dead])
    return Measured(steady_window(points, source.messages), peak, per_batch)


def _messages_per_batch(ports: Sequence[int], source: Input) -> float:
    """Messages per batch the Faust workers took, from their batch histogram."""
    batches = sum(metric(port, f"{BATCH_RECORDS}_count") for port in ports)
    records = sum(metric(port, f"{BATCH_RECORDS}_sum") for port in ports)
    return records / batches * source.messages / source.records if batches else 0.0


def _consumed(port: int) -> float:
    try:
        return metric(port, CONSUMED)
    except OSError:
        return 0.0  # its metrics page is not up yet


def run_faust(
    bench: Bench,
    source: Input,
    workers: int,
    replayed: Sequence[StoredRecord] | None = None,
) -> Measured:
    """``workers`` Faust enrich processes on ``source``, from a fresh group.

    With ``replayed``, the workers start on an empty topic and get these
    records once every one of them holds partitions.
    """
    delete_group(bench.bootstrap, FAUST_GROUP)
    prepare = None
    if replayed is not None:
        source = source.fresh(bench.bootstrap)

        def prepare() -> None:
            wait_for_members(bench.bootstrap, FAUST_GROUP, workers)
            replay(bench.bootstrap, source.topic, replayed)

    def start(enriched: str, dead: str) -> Started:
        started: Started = []
        for number in range(workers):
            port = free_port()
            env = set_env(
                CEFPIPE_HOME=str(bench.work / "enrich-home"),
                CEFPIPE_INSTANCE=f"bench-enrich-{number}",
                KAFKA_BOOTSTRAP_SERVERS=bench.bootstrap,
                TOPIC_RAW=source.topic,
                TOPIC_ENRICHED=enriched,
                TOPIC_DEAD_LETTER=dead,
                ENRICH_METRICS_PORT=str(port),
                LOG_FORMAT="json",
                ENRICH_CONSUMER_GROUP=FAUST_GROUP,
            )
            process = bench.children.start(
                f"enrich-{number}", cefpipe_argv("enrich"), env
            )
            started.append((process, port))
        return started

    try:
        return _measure(bench, source, start, prepare)
    finally:
        delete_group(bench.bootstrap, FAUST_GROUP)
        if replayed is not None:
            delete_topics(bench.bootstrap, [source.topic])


def run_bare(bench: Bench, source: Input) -> Measured:
    """The bare loop on ``source``, in a group of its own."""

    def start(enriched: str, dead: str) -> Started:
        group = f"bench-bare-{uuid.uuid4().hex[:8]}"
        argv = bench_argv(
            "bench.bare_enrich", bench.bootstrap, source.topic, enriched, dead, group
        )
        return [(bench.children.start("bare-enrich", argv, set_env()), None)]

    return _measure(bench, source, start)


def main(argv: Sequence[str] | None = None) -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=150_000)
    parser.add_argument("--single-messages", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.single_messages, args.rounds = 15_000, 5_000, 1
    exit_on_sigterm()

    corpus = syslog_messages(max(args.messages, args.single_messages))
    with (
        work_dir(args.keep, "enrich") as work,
        running_broker(work) as broker,
        Children(work / "logs") as children,
        TopicCounter(broker.bootstrap) as counter,
    ):
        bench = Bench(children, broker.bootstrap, counter, work)
        inputs = [
            fill_packed(bench, corpus[: args.messages]),
            fill_single(bench, corpus[: args.single_messages]),
        ]
        for source in inputs:
            detail(
                f"input {source.name}: {source.messages:,} messages in "
                f"{source.records:,} records "
                f"({source.messages / source.records:.0f} per record)"
            )
        replayed = read_topic(bench.bootstrap, inputs[0].topic, inputs[0].records)
        best = measure_all(bench, inputs, args.rounds, replayed)
    print_summary(inputs, best)


def measure_all(
    bench: Bench,
    inputs: Sequence[Input],
    rounds: int,
    replayed: Sequence[StoredRecord],
) -> dict[tuple[str, str], Window]:
    """Every subject on every input, interleaved; the best window of each."""
    best: dict[tuple[str, str], Window] = {}
    for source in inputs:
        subjects = ["faust", "bare"]
        if source is inputs[0]:
            subjects += ["faust x1 joined", "faust x2 joined"]
        for number, subject in interleaved(rounds, subjects):
            if subject == "bare":
                measured = run_bare(bench, source)
            elif subject == "faust":
                measured = run_faust(bench, source, 1)
            else:
                workers = 2 if "x2" in subject else 1
                measured = run_faust(bench, source, workers, replayed)
            window = measured.window
            batches = (
                f", {measured.messages_per_batch:,.0f} messages/batch"
                if measured.messages_per_batch
                else ""
            )
            detail(
                f"round {number + 1} {source.name} {subject}: {rate(window.rate)} "
                f"over {window.secs:.1f}s, {window.per_cpu_sec:,.0f} per CPU-second, "
                f"peak RSS {measured.peak_rss_mib:,.0f} MiB{batches}"
            )
            key = (source.name, subject)
            if key not in best or window.rate > best[key].rate:
                best[key] = window
    return best


def print_summary(inputs: Sequence[Input], best: dict[tuple[str, str], Window]) -> None:
    parts = []
    packed_ratio = 0.0
    for source in inputs:
        faust, bare = best[(source.name, "faust")], best[(source.name, "bare")]
        ratio = faust.rate / bare.rate
        packed_ratio = packed_ratio or ratio
        parts.append(
            f"{source.name} ({source.messages / source.records:.0f} msg/record): "
            f"Faust {rate(faust.rate)} vs bare {rate(bare.rate)} = {ratio:.2f}x, "
            f"{1e6 / faust.per_cpu_sec:.0f} vs {1e6 / bare.per_cpu_sec:.0f} "
            f"CPU-us/event"
        )
    packed = inputs[0].name
    one, two = best[(packed, "faust x1 joined")], best[(packed, "faust x2 joined")]
    scaling = two.rate / one.rate
    summary(
        "enrich",
        "events/s per worker, cefpipe enrich (Faust) vs bare confluent-kafka loop | "
        + " | ".join(parts)
        + f" | 2 workers {rate(two.rate)} / 1 worker {rate(one.rate)} on {packed}: "
        f"{scaling:.2f}x"
        + f" | target >= {TARGET}x on packed: {verdict(packed_ratio, TARGET)}",
    )


if __name__ == "__main__":
    main()
