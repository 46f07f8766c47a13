"""Turn one batch of raw records into rows and dead letters, and see them delivered.

The Faust agent hands over a batch; this module parses and maps every record,
produces the results with one confluent-kafka producer (far cheaper per record
than a Faust ``send`` per event), and returns only when Kafka acknowledged all of
them. The agent acknowledges the batch after that, so a crash at any point
replays records rather than losing them (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from cefpipe.ratelog import RateLimitedLog
from cefpipe.records import (
    HEADER_COLLECTOR,
    HEADER_PEER,
    HEADER_RECEIVED_AT_US,
    DeadLetter,
    KafkaHeaders,
    header,
)
from enrich import metrics
from enrich.pipeline import Enriched, Envelope, encode_row, enrich

logger = logging.getLogger(__name__)

_RETRY_BACKOFF_SECS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Errors that no amount of retrying fixes: the record itself is unacceptable.
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
    }
)


class RawRecord(Protocol):
    """The parts of a consumed raw record this stage reads (Faust's Message fits)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] | None
    timestamp: float  # seconds since the epoch


@dataclass
class _Outgoing:
    """One record to produce, kept until Kafka acknowledges it."""

    topic: str
    value: bytes
    key: bytes | None
    headers: KafkaHeaders | None
    source: str
    raw: bytes
    is_row: bool
    error: KafkaError | None = None
    delivered: bool = False


@dataclass
class BatchResult:
    rows: int = 0
    rejected: Tally[str] = field(default_factory=Tally)


class BatchEnricher:
    """Enriches batches for one agent. Not safe to share between agents."""

    def __init__(
        self, producer: Producer, enriched_topic: str, dead_letter_topic: str
    ) -> None:
        self._producer = producer
        self._enriched_topic = enriched_topic
        self._dead_letter_topic = dead_letter_topic
        self._problems = RateLimitedLog(logger)
        self.delivery_failing_since: float | None = None

    async def handle(self, records: Sequence[RawRecord]) -> BatchResult:
        """Parse, map and deliver one batch; return once every output is acknowledged.

        Raises nothing for bad input (it becomes dead letters). While Kafka
        refuses writes, keeps retrying with backoff: the batch stays
        unacknowledged, so nothing behind it is committed either.
        """
        started = time.perf_counter()
        outgoing, result = self._convert(records)
        await self._deliver(outgoing)
        self._account(records, result, time.perf_counter() - started)
        return result

    def _convert(
        self, records: Sequence[RawRecord]
    ) -> tuple[list[_Outgoing], BatchResult]:
        result = BatchResult()
        outgoing: list[_Outgoing] = []
        for record in records:
            source = f"{record.topic}/{record.partition}/{record.offset}"
            value = record.value or b""
            outcome = enrich(value, _envelope(record))
            if isinstance(outcome, Enriched):
                result.rows += 1
                _count_repairs(outcome)
                outgoing.append(
                    _Outgoing(
                        self._enriched_topic,
                        encode_row(outcome.row),
                        record.key,
                        None,
                        source,
                        value,
                        is_row=True,
                    )
                )
                continue
            result.rejected[outcome.reason] += 1
            dead = DeadLetter("enrich", outcome.reason, outcome.message, source)
            outgoing.append(
                _Outgoing(
                    self._dead_letter_topic,
                    value,
                    record.key,
                    dead.headers(list(record.headers or ())),
                    source,
                    value,
                    is_row=False,
                )
            )
        return outgoing, result

    async def _deliver(self, outgoing: list[_Outgoing]) -> None:
        pending = outgoing
        attempt = 0
        while pending:
            for item in pending:
                self._produce(item)
            await asyncio.get_running_loop().run_in_executor(None, self._producer.flush)
            failed = [item for item in pending if not item.delivered]
            pending = self._triage(failed)
            if pending:
                delay = _RETRY_BACKOFF_SECS[min(attempt, len(_RETRY_BACKOFF_SECS) - 1)]
                attempt += 1
                metrics.DELIVERY_RETRIES.inc(len(pending))
                if self.delivery_failing_since is None:
                    self.delivery_failing_since = time.monotonic()
                await asyncio.sleep(delay)
        self.delivery_failing_since = None

    def _produce(self, item: _Outgoing) -> None:
        item.error = None

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            item.error = error
            item.delivered = error is None

        while True:
            try:
                self._producer.produce(
                    item.topic,
                    item.value,
                    item.key,
                    headers=item.headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:  # refused before it left, e.g. too large
                item.error = exc.args[0]
                return

    def _triage(self, failed: list[_Outgoing]) -> list[_Outgoing]:
        """Decide what to produce again: a refused row may become a dead letter."""
        retry: list[_Outgoing] = []
        for item in failed:
            error = item.error
            metrics.ERRORS.labels("enrich", "delivery").inc()
            if error is not None and item.is_row and error.code() in _PERMANENT:
                dead = DeadLetter(
                    "enrich",
                    "row_refused_by_kafka",
                    f"Kafka refused the enriched row: {error.str()}",
                    item.source,
                )
                retry.append(
                    _Outgoing(
                        self._dead_letter_topic,
                        item.raw,
                        item.key,
                        dead.headers(),
                        item.source,
                        item.raw,
                        is_row=False,
                    )
                )
                continue
            self._problems.log(
                logging.ERROR,
                "delivery",
                "Kafka did not acknowledge a record from %s (%s); retrying, the batch "
                "stays uncommitted until it does",
                item.source,
                error.str() if error else "no delivery report",
            )
            retry.append(item)
        return retry

    def _account(
        self, records: Sequence[RawRecord], result: BatchResult, secs: float
    ) -> None:
        metrics.MESSAGES_CONSUMED.inc(len(records))
        metrics.ROWS_PRODUCED.inc(result.rows)
        for reason, count in result.rejected.items():
            metrics.MESSAGES_REJECTED.labels(reason).inc(count)
            self._problems.log(
                logging.WARNING,
                f"rejected:{reason}",
                "dead-lettered %d raw records as %s",
                count,
                reason,
            )
        metrics.BATCH_SECONDS.observe(secs)
        metrics.BATCH_EVENTS.observe(len(records))


def _envelope(record: RawRecord) -> Envelope:
    headers = record.headers
    received = header(headers, HEADER_RECEIVED_AT_US)
    received_at_us = (
        int(received)
        if received and received.isdigit()
        else int(record.timestamp * 1e6)
    )
    return Envelope(
        received_at_us=received_at_us,
        peer=header(headers, HEADER_PEER),
        collector=header(headers, HEADER_COLLECTOR),
        row_id=f"{record.partition}-{record.offset}",
    )


def _count_repairs(outcome: Enriched) -> None:
    for column in outcome.truncated_columns:
        metrics.VALUES_TRUNCATED.labels(column).inc()
    if outcome.duplicate_keys:
        metrics.DUPLICATE_KEYS.inc(len(outcome.duplicate_keys))
