"""Ingest: syslog over TCP into Kafka, against a bare producer sending the same.

The subject is the real ``cefpipe ingest`` process (``python -m cefpipe
ingest``), fed newline-framed messages over TCP by one agent, then by 100
agents at once (each connection from its own 127.0.0.x address). Its rate counts
messages the broker acknowledged (``cefpipe_ingest_messages_published``), from
the first byte sent to the last acknowledgement.

The ceiling is a bare confluent-kafka producer loop in this process, configured
as ingest's publisher is (idempotent, acks=all, lz4, linger 20 ms), producing
the same messages with the same keys and headers, timed from the first
``produce`` to the last delivery report. It runs twice: one record per message
(the plain ceiling), and packed as ingest packs them (up to 256 KiB of messages
per record, see :mod:`cefpipe.records`), which is the ceiling for ingest's own
design. Rounds alternate all three on the same corpus after one untimed warm-up
round; the best round of each counts.

Usage::

    .venv/bin/python -m bench.bench_ingest [--messages 200000] [--rounds 3]
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from bench.children import Children, cefpipe_argv, exit_on_sigterm, metric, wait_healthy
from bench.corpus import syslog_messages
from bench.kafka import (
    TopicCounter,
    free_port,
    ingest_producer_config,
    new_topics,
    raw_headers,
    running_broker,
    set_env,
)
from bench.report import detail, interleaved, options, rate, summary, verdict, work_dir
from bench.senders import Agent, Blast, fleet
from cefpipe.records import HEADER_MESSAGES, pack_messages

RECORD_MAX_BYTES = 256 * 1024  # INGEST_RECORD_MAX_BYTES's default
PUBLISHED = "cefpipe_ingest_messages_published_total"
RECORDS = "cefpipe_ingest_records_published_total"
TARGET = 0.5


@dataclass(frozen=True)
class IngestProcess:
    process: subprocess.Popen[bytes]
    syslog_port: int
    metrics_port: int


def start_ingest(
    children: Children, home: Path, bootstrap: str, raw: str, dead: str
) -> IngestProcess:
    """``cefpipe ingest`` on free ports, publishing to ``raw``; healthy on return."""
    syslog_port, metrics_port = free_port(), free_port()
    env = set_env(
        CEFPIPE_HOME=str(home),
        CEFPIPE_INSTANCE="bench-ingest",
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TOPIC_RAW=raw,
        TOPIC_DEAD_LETTER=dead,
        SYSLOG_PORT=str(syslog_port),
        SYSLOG_TLS_PORT=str(free_port()),
        INGEST_METRICS_PORT=str(metrics_port),
        LOG_FORMAT="json",
    )
    process = children.start("ingest", cefpipe_argv("ingest"), env)
    wait_healthy(metrics_port, process)
    return IngestProcess(process, syslog_port, metrics_port)


def send_through_ingest(
    ingest: IngestProcess, agents: Sequence[Agent], timeout_secs: float = 300.0
) -> float:
    """Send every agent's messages; seconds until the broker acknowledged them all."""
    count = sum(len(agent.messages) for agent in agents)
    before = metric(ingest.metrics_port, PUBLISHED)
    blast = Blast(agents, ingest.syslog_port)
    started = time.perf_counter()
    blast.start()
    deadline = started + timeout_secs
    while True:
        done = metric(ingest.metrics_port, PUBLISHED) - before
        if done >= count:
            elapsed = time.perf_counter() - started
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"ingest published {done:.0f} of {count} messages")
        # Scraping costs the listener a little CPU: look rarely until the end.
        time.sleep(0.1 if done < 0.9 * count else 0.005)
    blast.join()
    return elapsed


def packed(
    messages: Sequence[bytes], limit: int = RECORD_MAX_BYTES
) -> list[list[bytes]]:
    """Messages grouped as ingest groups what it read together (by size)."""
    groups: list[list[bytes]] = [[]]
    size = 0
    for message in messages:
        if groups[-1] and size + len(message) > limit:
            groups.append([])
            size = 0
        groups[-1].append(message)
        size += len(message) + 8
    return groups


def bare_producer(
    bootstrap: str, topic: str, agents: Sequence[Agent], *, pack: bool
) -> float:
    """Seconds a bare producer takes to have the same messages acknowledged."""
    producer = Producer(ingest_producer_config(bootstrap))
    producer.list_topics(topic, timeout=10)  # connected before the clock starts
    acknowledged = 0

    def on_delivery(error: object, _: object) -> None:
        nonlocal acknowledged
        if error is None:
            acknowledged += 1

    expected = 0
    started = time.perf_counter()
    received_at_us = time.time_ns() // 1000
    for agent in agents:
        key = agent.source.encode()
        headers = raw_headers(agent.source, received_at_us)
        if pack:
            values = []
            for group in packed(agent.messages):
                values.append((pack_messages(group), [*headers, _count(group)]))
        else:
            values = [(message, headers) for message in agent.messages]
        expected += len(values)
        for value, record_headers in values:
            while True:
                try:
                    producer.produce(
                        topic,
                        value,
                        key,
                        headers=record_headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
    producer.flush(120)
    elapsed = time.perf_counter() - started
    if acknowledged != expected:
        raise RuntimeError(f"bare producer: {acknowledged} of {expected} acknowledged")
    return elapsed


def _count(group: Sequence[bytes]) -> tuple[str, bytes]:
    return (HEADER_MESSAGES, str(len(group)).encode())


def main(argv: Sequence[str] | None = None) -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.rounds = 20_000, 1
    exit_on_sigterm()

    messages = syslog_messages(args.messages)
    modes = {
        "1 conn": fleet(messages, 1),
        f"{args.connections} conns": fleet(messages, args.connections),
    }
    with (
        work_dir(args.keep, "ingest") as work,
        running_broker(work) as broker,
        Children(work / "logs") as children,
        TopicCounter(broker.bootstrap) as counter,
    ):
        raw, dead, ceiling = new_topics(broker.bootstrap, "raw", "dead", "ceiling")
        ingest = start_ingest(children, work / "home", broker.bootstrap, raw, dead)
        best: dict[str, float] = {}
        sides = ("ingest", "bare", "packed")
        subjects = [f"{side} {mode}" for mode in modes for side in sides]
        for number, subject in interleaved(args.rounds + 1, subjects):
            side, mode = subject.split(" ", 1)
            agents = modes[mode]
            if side == "ingest":
                secs = send_through_ingest(ingest, agents)
            else:
                pack = side == "packed"
                secs = bare_producer(broker.bootstrap, ceiling, agents, pack=pack)
            if number == 0:
                continue  # warm-up: the broker's JIT and page cache settle
            best[subject] = min(best.get(subject, float("inf")), secs)
            detail(f"round {number} {subject}: {len(messages) / secs:,.0f} msg/s")

        records = metric(ingest.metrics_port, RECORDS)
        published = metric(ingest.metrics_port, PUBLISHED)
        in_topic = counter.records(raw)
        code = children.stop(ingest.process)
        detail(
            f"ingest acknowledged {published:,.0f} messages in {records:,.0f} records "
            f"({published / max(records, 1):.0f} messages/record); raw topic holds "
            f"{in_topic:,} records; ingest exit code {code}"
        )

    rates = {subject: len(messages) / secs for subject, secs in best.items()}
    parts, ratios = [], []
    for mode in modes:
        ours = rates[f"ingest {mode}"]
        ratio = ours / rates[f"bare {mode}"]
        ratios.append(ratio)
        parts.append(
            f"{mode}: ingest {rate(ours)} vs bare producer "
            f"{rate(rates[f'bare {mode}'])} = {ratio:.2f}x "
            f"(vs packed bare {rate(rates[f'packed {mode}'])} = "
            f"{ours / rates[f'packed {mode}']:.2f}x)"
        )
    summary(
        "ingest",
        f"cefpipe ingest process, TCP, {len(messages):,} msgs, acknowledged | "
        + " | ".join(parts)
        + f" | target >= {TARGET}x of ceiling: {verdict(min(ratios), TARGET)}",
    )


if __name__ == "__main__":
    main()
