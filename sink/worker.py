"""The sink's consuming thread: read, batch, dispatch, account, commit.

One loop owns the Kafka consumer and everything it feeds: the open batch, the
sealed batches waiting for an upload slot, the offset tracker and the
dead-letter writer. Upload threads only settle batches and report back. Offsets
are committed after the service accepted the rows (or the dead-letter topic
acknowledged them), never before, so a crash redelivers rather than loses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from cefpipe.ratelog import RateLimitedLog
from sink import metrics
from sink.batch import Batch, BatchBuilder, BatchLimits, Offer, build_batches
from sink.dead_letter import (
    REASON_NOT_A_JSON_OBJECT,
    TOO_LARGE_FOR_ANY_REQUEST,
    DeadLetterWriter,
    Rejection,
)
from sink.delivery import ConfigFault, DeliveryReport
from sink.inflight import InFlight
from sink.offsets import OffsetTracker
from sink.row import Row

logger = logging.getLogger(__name__)
# Backpressure flips and per-row troubles come in floods: one line per interval.
rate_limited = RateLimitedLog(logger, interval_secs=30.0)

_CONSUME_MAX_MESSAGES = 2000
_POLL_SECS = 0.1
_COMMIT_INTERVAL_SECS = 1.0
_LAG_SAMPLE_INTERVAL_SECS = 15.0
_DEAD_LETTER_RETRY_SECS = 5.0
_DEAD_LETTER_FLUSH_SECS = 5.0
_RESUME_FRACTION = 0.8  # resume reading once buffered bytes fall below 80% of the cap

_NOT_AN_OBJECT = Rejection(
    reason=REASON_NOT_A_JSON_OBJECT,
    message="The record is not a JSON object, so it cannot be an upload row.",
)


@dataclass(frozen=True)
class WorkerLimits:
    """Flow limits of the consuming loop.

    Args:
        batch: what one request may hold.
        flush_interval_secs: the oldest a batch may get before it is sent.
        max_in_flight: uploads running at once.
        max_buffered_bytes: decompressed bytes held before reading pauses.
        shutdown_grace_secs: time allowed to drain uploads on shutdown or revoke.
    """

    batch: BatchLimits
    flush_interval_secs: float
    max_in_flight: int
    max_buffered_bytes: int
    shutdown_grace_secs: float


def consumer_config(
    bootstrap_servers: str, group_id: str, instance: str
) -> dict[str, Any]:
    """Consumer settings for at-least-once delivery: the sink commits by hand."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "client.id": f"cefpipe-sink-{instance}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A new group starts at the beginning: rows enriched before the sink's
        # first start are still to be delivered.
        "auto.offset.reset": "earliest",
        # A sink that died is noticed in seconds, so its partitions move on.
        "session.timeout.ms": 10_000,
    }


class SinkWorker:
    """Runs the consuming loop until :meth:`stop`, then shuts down cleanly.

    Args:
        consumer: a confluent-kafka consumer built from :func:`consumer_config`.
        topic: the enriched topic.
        in_flight: the upload threads.
        dead_letters: the dead-letter writer.
        fault: the configuration-fault state shared with the upload threads.
        cancel: set when the grace period ends, to make uploads give up.
        limits: flow limits.
        clock: monotonic seconds; replaceable in tests.
    """

    def __init__(
        self,
        consumer: Any,
        topic: str,
        in_flight: InFlight,
        dead_letters: DeadLetterWriter,
        fault: ConfigFault,
        cancel: threading.Event,
        limits: WorkerLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._topic = topic
        self._in_flight = in_flight
        self._dead_letters = dead_letters
        self._fault = fault
        self._cancel = cancel
        self._limits = limits
        self._clock = clock

        self._stopping = threading.Event()
        self._fatal = False  # the consumer reported an error it cannot recover from
        self._closing = False
        self._tracker = OffsetTracker()
        self._open: BatchBuilder | None = None
        self._waiting: deque[Batch] = deque()
        self._assigned: set[int] = set()
        self._paused = False
        self._paused_since = 0.0
        # Batches still uploading when their partitions were revoked: their
        # results for those partitions belong to the partitions' new owner.
        self._orphans: dict[str, frozenset[int]] = {}
        self._dead_letter_retries: list[tuple[float, Row, Rejection]] = []

        now = clock()
        self._last_commit = now
        self._last_lag_sample = now
        self.last_loop_at = now
        self.last_progress_at = now

    # -- public --------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish; safe from a signal handler and safe to call twice."""
        self._stopping.set()

    def run(self) -> int:
        """Consume until stopped; return the process exit code."""
        self._consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        logger.info("consuming topic=%s", self._topic)
        while not (self._stopping.is_set() or self._fatal or self._in_flight.crashed):
            self._step()
        return self._shut_down()

    @property
    def paused(self) -> bool:
        """True while reading is paused for backpressure."""
        return self._paused

    def outstanding_rows(self) -> int:
        """Rows consumed and not yet committed; read by the health check."""
        return self._tracker.outstanding()

    def secs_since_loop(self) -> float:
        """How long ago the loop last went round; read by the health check."""
        return self._clock() - self.last_loop_at

    def secs_since_progress(self) -> float:
        """How long ago a commit moved on, or nothing was left to commit."""
        return self._clock() - self.last_progress_at

    # -- the loop ------------------------------------------------------------

    def _step(self) -> None:
        messages = self._consumer.consume(_CONSUME_MAX_MESSAGES, _POLL_SECS)
        self._take(messages)
        self._seal_if_old()
        self._settle_reports(self._in_flight.collect())
        self._dispatch()
        self._dead_letters.poll(0)
        self._retry_dead_letters()
        self._apply_backpressure()
        if self._clock() - self._last_commit >= _COMMIT_INTERVAL_SECS:
            self._commit_accepted()
        if self._clock() - self._last_lag_sample >= _LAG_SAMPLE_INTERVAL_SECS:
            self._sample_lag()
        self.last_loop_at = self._clock()
        if self._tracker.outstanding() == 0:
            self.last_progress_at = self.last_loop_at

    def _take(self, messages: list[Message]) -> None:
        """Track and batch each consumed row."""
        taken = 0
        for message in messages:
            error = message.error()
            if error is not None:
                self._consumer_error(error)
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:  # only errors lack a position
                continue
            row = Row(partition, offset, message.value() or b"")
            self._tracker.track(row.partition, row.offset)
            taken += 1
            if not _looks_like_json_object(row.value):
                self._dead_letter([row], _NOT_AN_OBJECT)
            else:
                self._add_to_open_batch(row)
        metrics.ROWS_CONSUMED.inc(taken)

    def _add_to_open_batch(self, row: Row) -> None:
        builder = self._open or BatchBuilder(self._limits.batch, self._clock)
        offer = builder.offer(row)
        if offer is Offer.FULL:
            self._seal(builder)
            builder = BatchBuilder(self._limits.batch, self._clock)
            offer = builder.offer(row)
        if offer is Offer.TOO_LARGE:
            self._dead_letter([row], TOO_LARGE_FOR_ANY_REQUEST)
        self._open = None if builder.is_empty else builder

    def _seal_if_old(self) -> None:
        builder = self._open
        if builder is not None:
            age = self._clock() - builder.created_at
            if age >= self._limits.flush_interval_secs:
                self._seal(builder)

    def _seal(self, builder: BatchBuilder) -> None:
        batch = builder.seal()
        if builder is self._open:
            self._open = None
        metrics.BATCH_WIRE_BYTES.observe(batch.wire_bytes)
        self._waiting.append(batch)

    def _dispatch(self) -> None:
        """Start uploads while slots are free and no configuration fault holds them."""
        while (
            self._waiting
            and self._in_flight.count < self._limits.max_in_flight
            and not self._fault.active
        ):
            self._in_flight.start(self._waiting.popleft())

    # -- results -------------------------------------------------------------

    def _settle_reports(self, reports: Iterable[DeliveryReport]) -> None:
        """Count accepted rows done; send rejected ones to the dead-letter topic."""
        for report in reports:
            ignored = self._orphans.pop(report.batch.batch_id, frozenset())
            for row in report.accepted:
                if row.partition not in ignored:
                    self._mark_done(row)
            by_reason: dict[Rejection, list[Row]] = defaultdict(list)
            for row, rejection in report.rejected:
                if row.partition not in ignored:
                    by_reason[rejection].append(row)
            for rejection, rows in by_reason.items():
                self._dead_letter(rows, rejection)

    def _mark_done(self, row: Row) -> None:
        self._tracker.done(row.partition, row.offset)

    def _dead_letter(self, rows: list[Row], rejection: Rejection) -> None:
        """Dead-letter ``rows``; each counts as done once the broker acknowledged it."""
        rate_limited.log(
            logging.WARNING,
            f"dead-letter {rejection.reason}",
            "dead-lettering rows=%d reason=%s detail=%s first=%s bytes=%d",
            len(rows),
            rejection.reason,
            rejection.detail,
            rows[0].source(self._topic),
            len(rows[0].value),
        )
        for row in rows:
            self._dead_letters.send(
                row, rejection, self._dead_lettered, self._undelivered
            )

    def _dead_lettered(self, row: Row, rejection: Rejection) -> None:
        metrics.ROWS_DEAD_LETTERED.labels(reason=rejection.reason).inc()
        self._mark_done(row)

    def _undelivered(self, row: Row, rejection: Rejection, error: str) -> None:
        rate_limited.log(
            logging.ERROR,
            "dead-letter unacknowledged",
            "dead letter not acknowledged, will retry; its offset stays uncommitted "
            "source=%s error=%s",
            row.source(self._topic),
            error,
        )
        self._dead_letter_retries.append(
            (self._clock() + _DEAD_LETTER_RETRY_SECS, row, rejection)
        )

    def _retry_dead_letters(self) -> None:
        now = self._clock()
        due = [item for item in self._dead_letter_retries if item[0] <= now]
        if not due:
            return
        self._dead_letter_retries = [i for i in self._dead_letter_retries if i[0] > now]
        for _, row, rejection in due:
            if row.partition in self._assigned:
                self._dead_letters.send(
                    row, rejection, self._dead_lettered, self._undelivered
                )

    # -- flow control --------------------------------------------------------

    def _buffered_bytes(self) -> int:
        open_bytes = self._open.raw_bytes if self._open else 0
        waiting = sum(batch.raw_bytes for batch in self._waiting)
        return open_bytes + waiting + self._in_flight.raw_bytes

    def _apply_backpressure(self) -> None:
        """Pause reading while too many bytes are held; resume once they drain."""
        buffered = self._buffered_bytes()
        metrics.BUFFERED_BYTES.set(buffered)
        cap = self._limits.max_buffered_bytes
        if not self._paused and buffered >= cap:
            self._pause(self._assigned)
            self._paused, self._paused_since = True, self._clock()
            rate_limited.log(
                logging.INFO,
                "paused",
                "reading paused: uploads are behind buffered_bytes=%d cap=%d",
                buffered,
                cap,
            )
        elif self._paused and buffered < cap * _RESUME_FRACTION:
            self._resume(self._assigned)
            self._paused = False
            metrics.PAUSED_SECONDS.inc(self._clock() - self._paused_since)
            logger.debug("reading resumed buffered_bytes=%d", buffered)

    def _pause(self, partitions: Iterable[int]) -> None:
        if partitions:
            self._consumer.pause(self._topic_partitions(partitions))

    def _resume(self, partitions: Iterable[int]) -> None:
        if partitions:
            self._consumer.resume(self._topic_partitions(partitions))

    # -- commit --------------------------------------------------------------

    def _commit_accepted(self, only: Iterable[int] | None = None) -> None:
        """Commit, per partition, the offsets every earlier row of which is done.

        Args:
            only: restrict the commit to these partitions (a revocation).
        """
        self._last_commit = self._clock()

        # 1. Ask the tracker how far each partition's contiguous done prefix reaches.
        offsets = self._tracker.committable()
        if only is not None:
            wanted = set(only)
            offsets = {p: o for p, o in offsets.items() if p in wanted}
        if not offsets:
            return

        # 2. Commit those positions synchronously: the broker must have them
        #    before the sink counts them committed.
        positions = [TopicPartition(self._topic, p, o) for p, o in offsets.items()]
        try:
            self._consumer.commit(offsets=positions, asynchronous=False)
        except KafkaException as exc:
            # 3a. Nothing is lost: the same (or a further) prefix is tried again.
            metrics.COMMITS.labels(result="failed").inc()
            logger.warning("offset commit failed, will retry: %s", exc)
            return

        # 3b. Record them, so an unchanged prefix is not committed again.
        self._tracker.committed(offsets)
        metrics.COMMITS.labels(result="ok").inc()
        self.last_progress_at = self._clock()
        logger.debug("committed %s", offsets)

    # -- rebalance -----------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Take the partitions, paused or not as the sink is now.

        The pause state is set either way: librdkafka remembers a partition's
        pause from an earlier assignment, and a partition paused then would
        otherwise never be read again.
        """
        consumer.assign(partitions)
        numbers = {tp.partition for tp in partitions}
        self._assigned |= numbers
        if self._paused or self._stopping.is_set():
            self._pause(numbers)
        else:
            self._resume(numbers)
        logger.info("partitions assigned %s", sorted(numbers))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Finish what can be finished for revoked partitions, commit, let go."""
        revoked = {tp.partition for tp in partitions}
        if not self._closing:
            logger.info(
                "partitions revoked %s: draining their uploads", sorted(revoked)
            )
            self._drop_unsent(revoked)
            self._drain(self._clock() + self._limits.shutdown_grace_secs, revoked)
            self._commit_accepted(only=revoked)
        self._release(revoked)

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Another member may own these already: commit nothing, let go at once."""
        lost = {tp.partition for tp in partitions}
        logger.warning(
            "partitions lost %s: their rows will be redelivered", sorted(lost)
        )
        self._drop_unsent(lost)
        self._release(lost)

    def _drop_unsent(self, partitions: set[int]) -> None:
        """Forget rows of ``partitions`` that no upload has started on."""
        if self._open is not None:
            kept = [row for row in self._open.rows if row.partition not in partitions]
            created_at = self._open.created_at
            self._open = None
            for row in kept:
                self._add_to_open_batch(row)
            if self._open is not None:
                self._open.created_at = created_at
        waiting, self._waiting = list(self._waiting), deque()
        for batch in waiting:
            if any(row.partition in partitions for row in batch.rows):
                kept = [row for row in batch.rows if row.partition not in partitions]
                rebuilt, _ = build_batches(kept, self._limits.batch, self._clock)
                self._waiting.extend(rebuilt)
            else:
                self._waiting.append(batch)

    def _release(self, partitions: set[int]) -> None:
        for batch in self._in_flight.batches():
            touched = partitions & {row.partition for row in batch.rows}
            if touched:
                self._orphans[batch.batch_id] = (
                    self._orphans.get(batch.batch_id, frozenset()) | touched
                )
        self._tracker.forget(partitions)
        self._assigned -= partitions
        self._dead_letter_retries = [
            item
            for item in self._dead_letter_retries
            if item[1].partition not in partitions
        ]
        for partition in partitions:
            metrics.CONSUMER_LAG.remove(str(partition))

    def _drain(self, deadline: float, partitions: set[int] | None = None) -> bool:
        """Wait for uploads (of ``partitions``, or all) and their dead letters.

        Dispatches waiting batches only when draining everything. Returns True
        when everything drained before ``deadline``.
        """
        while self._clock() < deadline:
            if partitions is None:
                self._dispatch()
            busy = [
                batch
                for batch in self._in_flight.batches()
                if partitions is None or partitions & {r.partition for r in batch.rows}
            ]
            if not busy and not (partitions is None and self._waiting):
                if self._dead_letters.waiting == 0:
                    return True
                self._dead_letters.poll(0.1)
                continue
            self._settle_reports(self._in_flight.collect(timeout_secs=0.1))
            self._dead_letters.poll(0)
        return False

    # -- shutdown ------------------------------------------------------------

    def _shut_down(self) -> int:
        """Stop reading, send what was read, commit what was accepted, close."""
        failed = self._fatal or self._in_flight.crashed
        logger.info(
            "shutting down: draining uploads for up to %ss",
            self._limits.shutdown_grace_secs,
        )

        # 1. Stop reading: nothing consumed from here on is tracked.
        self._pause(self._assigned)

        # 2. Seal the open batch so it is sent with the rest.
        if self._open is not None:
            self._seal(self._open)

        # 3. Drain waiting and in-flight batches within the grace period.
        drained = self._drain(self._clock() + self._limits.shutdown_grace_secs)
        if not drained:
            self._cancel.set()
            self._settle_reports(self._in_flight.collect(timeout_secs=1.0))
            logger.warning(
                "grace period over: %d batches abandoned; their rows come back later",
                self._in_flight.count + len(self._waiting),
            )

        # 4. Wait briefly for dead letters still unacknowledged; their offsets
        #    count only once acknowledged.
        remaining = self._dead_letters.flush(_DEAD_LETTER_FLUSH_SECS)

        # 5. Commit what was accepted, then leave the group.
        self._commit_accepted()
        self._closing = True
        self._consumer.close()
        self._dead_letters.close()
        logger.info(
            "sink stopped drained=%s uncommitted_rows=%d dead_letters_unacked=%d",
            drained,
            self._tracker.outstanding(),
            remaining,
        )
        return 1 if failed else 0

    # -- observation ---------------------------------------------------------

    def _sample_lag(self) -> None:
        """Rows behind the partition end, from cached watermarks (no broker call)."""
        # TODO: paused partitions are not fetched, so their cached high
        # watermark goes stale and lag reads low for as long as reading is
        # paused; a periodic query_watermark_offsets would fix it at one
        # broker request per partition.
        self._last_lag_sample = self._clock()
        partitions = self._topic_partitions(self._assigned)
        if not partitions:
            return
        try:
            positions = self._consumer.position(partitions)
        except KafkaException as exc:
            logger.debug("lag sample skipped: %s", exc)
            return
        for position in positions:
            if position.offset < 0:
                continue
            _, high = self._consumer.get_watermark_offsets(position, cached=True)
            if high >= 0:
                metrics.CONSUMER_LAG.labels(partition=str(position.partition)).set(
                    max(0, high - position.offset)
                )

    def _consumer_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            logger.error("fatal consumer error, stopping: %s", error)
            self._fatal = True
            return
        rate_limited.log(logging.WARNING, "consumer error", "consumer error: %s", error)

    def _topic_partitions(self, partitions: Iterable[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in sorted(partitions)]


def _looks_like_json_object(value: bytes) -> bool:
    """Catch empty and non-object records cheaply, before they poison a batch."""
    stripped = value.strip()
    return stripped.startswith(b"{") and stripped.endswith(b"}")
