"""Turn batches of raw records into rows and dead letters, and track their delivery.

The Faust agent hands over a batch; :meth:`BatchEnricher.submit` parses and maps
every record and produces the results with one confluent-kafka producer (far
cheaper per record than a Faust ``send`` per event). Delivery is asynchronous:
the agent goes on with the next batch while Kafka acknowledges this one, and
:meth:`BatchEnricher.completed` hands back, in order, the batches whose every
output Kafka acknowledged. Only those are acknowledged to Faust, so a crash at
any point replays records rather than losing them (at-least-once).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from cefpipe.ratelog import RateLimitedLog
from cefpipe.records import (
    HEADER_COLLECTOR,
    HEADER_MESSAGES,
    HEADER_PEER,
    HEADER_RECEIVED_AT_US,
    DeadLetter,
    KafkaHeaders,
    MalformedRecordError,
    header,
    unpack_messages,
)
from enrich import metrics
from enrich.pipeline import Enriched, Envelope, encode_row, enrich

logger = logging.getLogger(__name__)

_ENVELOPE_HEADERS: Final = frozenset(
    {HEADER_RECEIVED_AT_US, HEADER_PEER, HEADER_COLLECTOR, HEADER_MESSAGES}
)
# CEF versions the spec defines; others are accepted and counted.
_COMMON_VERSIONS: Final = frozenset({"0", "1"})
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


@dataclass(slots=True)
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
    batch: InFlightBatch | None = None

    def on_delivery(self, error: KafkaError | None, _: Message) -> None:
        """Delivery report from the producer, served on the event loop's thread."""
        batch = self.batch
        assert batch is not None
        batch.outstanding -= 1
        if error is not None:
            self.error = error
            batch.failed.append(self)


@dataclass
class InFlightBatch:
    """A batch whose outputs are on their way to Kafka.

    ``tokens`` are whatever the caller must acknowledge once the batch is done
    (Faust events); this module never looks at them.
    """

    tokens: Sequence[Any]
    size: int
    started: float
    messages: int = 0
    outstanding: int = 0
    failed: list[_Outgoing] = field(default_factory=list)
    attempts: int = 0
    retry_at: float | None = None
    rows: int = 0
    rejected: Tally[str] = field(default_factory=Tally)

    @property
    def done(self) -> bool:
        return self.outstanding == 0 and not self.failed


class BatchEnricher:
    """Enriches batches for one agent. Not thread-safe: use it from one event loop."""

    def __init__(
        self, producer: Producer, enriched_topic: str, dead_letter_topic: str
    ) -> None:
        self._producer = producer
        self._enriched_topic = enriched_topic
        self._dead_letter_topic = dead_letter_topic
        self._in_flight: deque[InFlightBatch] = deque()
        self._problems = RateLimitedLog(logger)
        self.pending_messages = 0
        self.delivery_failing_since: float | None = None

    def submit(self, records: Sequence[RawRecord], tokens: Sequence[Any]) -> None:
        """Parse, map and produce one batch; never raises for bad input.

        Args:
            records: the raw records, in partition order.
            tokens: handed back by :meth:`completed` once every output of this
                batch was acknowledged by Kafka.
        """
        batch = InFlightBatch(tokens, len(records), time.perf_counter())
        for item in self._convert(records, batch):
            self._produce(item, batch)
        self._in_flight.append(batch)
        self.pending_messages += batch.messages
        self._producer.poll(0)

    def completed(self) -> list[InFlightBatch]:
        """Serve delivery reports; return finished batches, oldest first.

        Call often (every few milliseconds while :attr:`pending_messages` > 0).
        Batches with refused outputs are retried with backoff, or their records
        dead-lettered when Kafka will never take them; they complete after that.
        """
        self._producer.poll(0)
        finished: list[InFlightBatch] = []
        now = time.monotonic()
        for batch in self._in_flight:
            if batch.outstanding == 0 and batch.failed:
                self._retry_failed(batch, now)
        while self._in_flight and self._in_flight[0].done:
            batch = self._in_flight.popleft()
            self.pending_messages -= batch.messages
            self._account(batch)
            finished.append(batch)
        if not any(batch.failed for batch in self._in_flight):
            self.delivery_failing_since = None
        return finished

    def flush(self, timeout_secs: float) -> int:
        """Wait for outstanding deliveries; return how many are still unsent."""
        return int(self._producer.flush(timeout_secs))

    def _convert(
        self, records: Sequence[RawRecord], batch: InFlightBatch
    ) -> list[_Outgoing]:
        outgoing: list[_Outgoing] = []
        for record in records:
            envelope, packed = _read_headers(record)
            try:
                messages = _messages(record, packed)
            except MalformedRecordError as exc:
                batch.messages += 1
                outgoing.append(self._malformed(record, str(exc), batch))
                continue
            batch.messages += len(messages)
            for index, value in enumerate(messages):
                outgoing.append(
                    self._convert_message(record, index, value, envelope, batch)
                )
        return outgoing

    def _convert_message(
        self,
        record: RawRecord,
        index: int,
        value: bytes,
        envelope: Envelope,
        batch: InFlightBatch,
    ) -> _Outgoing:
        source = f"{record.topic}/{record.partition}/{record.offset}/{index}"
        row_id = row_id_for(record, index, envelope.received_at_us)
        outcome = enrich(
            value,
            Envelope(
                envelope.received_at_us, envelope.peer, envelope.collector, row_id
            ),
        )
        if isinstance(outcome, Enriched):
            batch.rows += 1
            if (
                outcome.truncated_columns
                or outcome.duplicate_keys
                or outcome.time_out_of_window
                or outcome.cef_version not in _COMMON_VERSIONS
            ):
                _count_oddities(outcome)
            return _Outgoing(
                self._enriched_topic,
                encode_row(outcome.row),
                record.key,
                None,
                source,
                value,
                is_row=True,
            )
        batch.rejected[outcome.reason] += 1
        dead = DeadLetter("enrich", outcome.reason, outcome.message, source)
        return _Outgoing(
            self._dead_letter_topic,
            value,
            record.key,
            dead.headers(_without_packing(record.headers)),
            source,
            value,
            is_row=False,
        )

    def _malformed(
        self, record: RawRecord, problem: str, batch: InFlightBatch
    ) -> _Outgoing:
        """A packed record that cannot be split goes to dead letters whole."""
        source = f"{record.topic}/{record.partition}/{record.offset}"
        batch.rejected["raw_record_malformed"] += 1
        dead = DeadLetter(
            "enrich",
            "raw_record_malformed",
            f"packed raw record cannot be split: {problem}",
            source,
        )
        value = record.value or b""
        return _Outgoing(
            self._dead_letter_topic,
            value,
            record.key,
            dead.headers(list(record.headers or ())),
            source,
            value,
            is_row=False,
        )

    def _produce(self, item: _Outgoing, batch: InFlightBatch) -> None:
        item.error = None
        item.batch = batch
        batch.outstanding += 1
        while True:
            try:
                self._producer.produce(
                    item.topic,
                    item.value,
                    item.key,
                    headers=item.headers,
                    on_delivery=item.on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:  # refused before it left, e.g. too large
                batch.outstanding -= 1
                item.error = exc.args[0]
                batch.failed.append(item)
                return

    def _retry_failed(self, batch: InFlightBatch, now: float) -> None:
        if batch.retry_at is None:
            delay = _RETRY_BACKOFF_SECS[
                min(batch.attempts, len(_RETRY_BACKOFF_SECS) - 1)
            ]
            batch.retry_at = now + delay
            if self.delivery_failing_since is None:
                self.delivery_failing_since = now
            return
        if now < batch.retry_at:
            return
        failed, batch.failed = batch.failed, []
        batch.attempts += 1
        batch.retry_at = None
        metrics.DELIVERY_RETRIES.inc(len(failed))
        for item in failed:
            self._produce(self._triage(item), batch)

    def _triage(self, item: _Outgoing) -> _Outgoing:
        """What to produce again: a row Kafka will never take becomes a dead letter."""
        error = item.error
        metrics.ERRORS.labels("enrich", "delivery").inc()
        if error is not None and item.is_row and error.code() in _PERMANENT:
            dead = DeadLetter(
                "enrich",
                "row_refused_by_kafka",
                f"Kafka refused the enriched row: {error.str()}",
                item.source,
            )
            return _Outgoing(
                self._dead_letter_topic,
                item.raw,
                item.key,
                dead.headers(),
                item.source,
                item.raw,
                is_row=False,
            )
        self._problems.log(
            logging.ERROR,
            "delivery",
            "Kafka did not acknowledge a record from %s (%s); retrying, the batch "
            "stays uncommitted until it does",
            item.source,
            error.str() if error else "no delivery report",
        )
        return item

    def _account(self, batch: InFlightBatch) -> None:
        metrics.MESSAGES_CONSUMED.inc(batch.messages)
        metrics.RECORDS_CONSUMED.inc(batch.size)
        metrics.ROWS_PRODUCED.inc(batch.rows)
        for reason, count in batch.rejected.items():
            metrics.MESSAGES_REJECTED.labels(reason).inc(count)
            self._problems.log(
                logging.WARNING,
                f"rejected:{reason}",
                "dead-lettered %d messages as %s",
                count,
                reason,
            )
        metrics.BATCH_SECONDS.observe(time.perf_counter() - batch.started)
        metrics.BATCH_EVENTS.observe(batch.size)


def row_id_for(record: RawRecord, index: int, received_at_us: int) -> str:
    """The id a message's row carries in AdditionalExtensions.

    Unique across topics and stacks feeding one workspace, and stable across
    redeliveries: where the message sits in Kafka, and when it arrived.
    """
    return f"{record.partition}-{record.offset}-{index}-{received_at_us}"


def batches_by_messages(
    records: Sequence[RawRecord], max_messages: int
) -> Iterator[tuple[int, int]]:
    """Cut ``records`` into runs of at most ``max_messages`` messages.

    Yields (start, stop) indexes; a record that alone holds more messages than
    the limit is a run of its own. Packed records make a few records hold many
    messages, so counting records alone would not bound the work in flight.
    """
    start = 0
    messages = 0
    for index, record in enumerate(records):
        packed = header(record.headers, HEADER_MESSAGES)
        count = int(packed) if packed and packed.isdigit() else 1
        if messages and messages + count > max_messages:
            yield start, index
            start, messages = index, 0
        messages += count
    if start < len(records):
        yield start, len(records)


def _messages(record: RawRecord, packed: str | None) -> list[bytes]:
    """The syslog messages a raw record carries (see :mod:`cefpipe.records`).

    Args:
        record: the raw record.
        packed: its ``messages`` header, None for a record of one message.
    """
    value = record.value or b""
    if packed is None:
        return [value]
    if not packed.isdigit():
        raise MalformedRecordError(f"messages header is {packed!r}, not a count")
    return unpack_messages(value, int(packed))


def _without_packing(headers: Sequence[tuple[str, bytes]] | None) -> KafkaHeaders:
    """A record's headers for one of its messages on its own."""
    return [(name, value) for name, value in headers or () if name != HEADER_MESSAGES]


def _read_headers(record: RawRecord) -> tuple[Envelope, str | None]:
    """The record's envelope and its ``messages`` header, in one pass."""
    found: dict[str, bytes] = {}
    for name, value in record.headers or ():
        if name in _ENVELOPE_HEADERS and isinstance(value, bytes):
            found[name] = value
    received = found.get(HEADER_RECEIVED_AT_US, b"")
    envelope = Envelope(
        received_at_us=(
            int(received) if received.isdigit() else int(record.timestamp * 1e6)
        ),
        peer=_text(found.get(HEADER_PEER)),
        collector=_text(found.get(HEADER_COLLECTOR)),
    )
    return envelope, _text(found.get(HEADER_MESSAGES))


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _count_oddities(outcome: Enriched) -> None:
    """Count what the row had repaired or flagged; rare, so kept off the fast path."""
    for column in outcome.truncated_columns:
        metrics.VALUES_TRUNCATED.labels(column).inc()
    if outcome.duplicate_keys:
        metrics.DUPLICATE_KEYS.inc(len(outcome.duplicate_keys))
    if outcome.time_out_of_window:
        metrics.TIMES_OUT_OF_WINDOW.inc()
    if outcome.cef_version not in _COMMON_VERSIONS:
        metrics.UNUSUAL_CEF_VERSIONS.inc()
