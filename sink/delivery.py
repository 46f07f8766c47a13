"""Carry one batch to a final fate: accepted, dead-lettered, or abandoned.

Runs on an upload thread. Each attempt is classified by :mod:`sink.retry` and
the verdict carried out here: wait and resend, renew the token, split a body
that is too large, bisect a body the service calls bad until the bad rows stand
alone, or hold everything while the configuration is wrong. The result is a
:class:`DeliveryReport` the consuming thread turns into commits and dead letters;
nothing here touches Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sink import metrics
from sink.batch import Batch, BatchLimits, build_batches
from sink.dead_letter import (
    REASON_RETRIES_EXHAUSTED,
    REASON_ROW_REJECTED,
    REASON_ROW_TOO_LARGE,
    TOO_LARGE_FOR_ANY_REQUEST,
    Rejection,
)
from sink.ratelimit import RateLimiter
from sink.retry import Action, Attempt, Backoff, Verdict, classify
from sink.row import Row

logger = logging.getLogger(__name__)


class BatchSender(Protocol):
    """Sends one attempt of a batch (see :class:`sink.uploader.Uploader`)."""

    def upload(self, batch: Batch) -> Attempt: ...


class TokenRenewer(Protocol):
    """Forces a fresh token (see :class:`sink.credential.RenewableCredential`)."""

    def renew(self) -> None: ...


@dataclass
class DeliveryReport:
    """Where every row of one dispatched batch ended up.

    ``abandoned`` rows were neither accepted nor rejected (shutdown came first);
    their offsets must stay uncommitted so they are delivered again.
    """

    batch: Batch
    accepted: list[Row] = field(default_factory=list)
    rejected: list[tuple[Row, Rejection]] = field(default_factory=list)
    abandoned: list[Row] = field(default_factory=list)


class ConfigFault:
    """Whether uploads are stopped because the service says the sink is misconfigured.

    Set by upload threads on a 403, 404 or similar; cleared by the next accepted
    batch. The dispatcher sends nothing new while it is set, and the health
    check reports it. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._description: str | None = None

    @property
    def active(self) -> bool:
        with self._lock:
            return self._description is not None

    def describe(self) -> str:
        with self._lock:
            return self._description or "none"

    def raise_fault(self, description: str) -> None:
        with self._lock:
            self._description = description
        metrics.CONFIG_FAULT_ACTIVE.set(1)

    def clear(self) -> None:
        with self._lock:
            was_active, self._description = self._description is not None, None
        if was_active:
            metrics.CONFIG_FAULT_ACTIVE.set(0)
            logger.warning(
                "configuration fault cleared: the service accepts uploads again"
            )


@dataclass(frozen=True)
class DeliveryPolicy:
    """Time bounds of delivery.

    Args:
        retry_max_secs: how long a batch (and its split halves) may keep retrying
            before its rows are dead-lettered.
        probe_interval_secs: how often a batch held by a configuration fault
            tries again, to notice when the fault is fixed.
        backoff: delays between retries.
    """

    retry_max_secs: float
    probe_interval_secs: float
    backoff: Backoff


class Delivery:
    """Settles batches; one instance shared by all upload threads.

    Args:
        uploader: sends one attempt.
        credential: renewed after a 401.
        limits: used to rebuild the halves of a split batch.
        rate_limiter: taken before every attempt.
        policy: retry and probe timing.
        fault: the shared configuration-fault state.
        cancel: set at the end of the shutdown grace period; waits end early and
            unfinished rows are reported abandoned.
        clock: monotonic seconds; replaceable in tests.
    """

    def __init__(
        self,
        uploader: BatchSender,
        credential: TokenRenewer,
        limits: BatchLimits,
        rate_limiter: RateLimiter,
        policy: DeliveryPolicy,
        fault: ConfigFault,
        cancel: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._uploader = uploader
        self._credential = credential
        self._limits = limits
        self._rate_limiter = rate_limiter
        self._policy = policy
        self._fault = fault
        self._cancel = cancel
        self._clock = clock

    def deliver(self, batch: Batch) -> DeliveryReport:
        """Send ``batch`` (and any halves it splits into) until each has a fate."""
        report = DeliveryReport(batch)
        deadline = self._clock() + self._policy.retry_max_secs
        work = [batch]
        while work:
            current = work.pop(0)
            if self._cancel.is_set():
                report.abandoned.extend(current.rows)
                continue
            deadline = self._settle(current, deadline, work, report)
        if report.abandoned:
            metrics.BATCHES.labels(outcome="abandoned").inc()
        return report

    def _settle(
        self, batch: Batch, deadline: float, work: list[Batch], report: DeliveryReport
    ) -> float:
        """Attempt ``batch`` until it is accepted, split, rejected or abandoned.

        Returns the retry deadline for whatever remains of the original batch: a
        configuration fault restarts it, since the wait was not the rows' fault.
        """
        retries = 0
        token_renewed = False
        while True:
            # Decompressed bytes: the stricter reading of the per-minute limit,
            # which the service documents as "compressed and uncompressed".
            if not self._rate_limiter.acquire(batch.raw_bytes, self._cancel):
                report.abandoned.extend(batch.rows)
                return deadline
            attempt = self._uploader.upload(batch)
            verdict = classify(attempt, token_refreshed=token_renewed)
            token_renewed = False
            _count_attempt(batch, attempt, verdict)

            if verdict.action is Action.DONE:
                self._accept(batch, attempt, report)
                return deadline
            if verdict.action is Action.REFRESH_TOKEN:
                _log_retry(batch, attempt, verdict, 0.0)
                self._credential.renew()
                token_renewed = True
                continue
            # TODO: a SINK_MAX_BATCH_BYTES above the service's limit makes every
            # full batch pay one 413 before its split; the limit is not learned.
            # TODO: when every row is bad (a stream declaration that no longer
            # matches the rows), bisection spends about 2n requests before it has
            # dead-lettered them all; stopping after a few all-bad levels and
            # treating it as a configuration fault would save the rate budget.
            if verdict.action in (Action.SPLIT, Action.BISECT):
                self._halve(batch, attempt, verdict, work, report)
                return deadline
            if verdict.action is Action.CONFIG_FAULT:
                self._hold_for_fault(batch, attempt, verdict)
                if not self._wait(self._policy.probe_interval_secs):
                    report.abandoned.extend(batch.rows)
                    return deadline
                deadline = self._clock() + self._policy.retry_max_secs
                continue

            retries += 1
            if not self._wait_to_retry(
                batch, attempt, verdict, retries, deadline, report
            ):
                return deadline

    def _accept(self, batch: Batch, attempt: Attempt, report: DeliveryReport) -> None:
        _log_accepted(batch, attempt)
        self._fault.clear()
        report.accepted.extend(batch.rows)
        metrics.ROWS_DELIVERED.inc(len(batch.rows))
        metrics.RAW_BYTES.inc(batch.raw_bytes)
        metrics.BATCHES.labels(outcome="accepted").inc()

    def _wait_to_retry(
        self,
        batch: Batch,
        attempt: Attempt,
        verdict: Verdict,
        retry_number: int,
        deadline: float,
        report: DeliveryReport,
    ) -> bool:
        """Back off before the next attempt; False when the batch got a fate instead.

        A retry that would start after ``deadline`` is not made: the rows are
        dead-lettered now. A cancel during the wait abandons them.
        """
        delay = self._policy.backoff.delay(retry_number, verdict.server_delay_secs)
        if self._clock() + delay > deadline:
            self._give_up(batch, attempt, verdict, report)
            return False
        _log_retry(batch, attempt, verdict, delay)
        metrics.RETRIES.labels(reason=verdict.reason).inc()
        if not self._wait(delay):
            report.abandoned.extend(batch.rows)
            return False
        return True

    def _halve(
        self,
        batch: Batch,
        attempt: Attempt,
        verdict: Verdict,
        work: list[Batch],
        report: DeliveryReport,
    ) -> None:
        """Send each half of a refused batch on its own, until a row stands alone.

        For a batch too large for the service (split) and for one the service
        calls bad (bisect: one bad row among n costs about 2·log2(n) extra
        requests); a lone row is dead-lettered with the service's verdict.
        """
        too_large = verdict.action is Action.SPLIT
        if len(batch.rows) == 1:
            _reject(report, batch.rows, _refused_alone(attempt, too_large))
            return
        outcome = "split" if too_large else "bisected"
        logger.warning(
            "service refused a batch, halving it (%s) rows=%d wire_bytes=%d "
            "status=%s code=%s request_id=%s batch_id=%s",
            outcome,
            len(batch.rows),
            batch.wire_bytes,
            attempt.status,
            attempt.error_code,
            attempt.request_id,
            batch.batch_id,
        )
        metrics.BATCHES.labels(outcome=outcome).inc()
        work[:0] = self._rebuild_halves(batch, report)

    def _rebuild_halves(self, batch: Batch, report: DeliveryReport) -> list[Batch]:
        halves: list[Batch] = []
        for rows in batch.halves():
            rebuilt, too_large = build_batches(rows, self._limits, self._clock)
            halves.extend(rebuilt)
            _reject(report, too_large, TOO_LARGE_FOR_ANY_REQUEST)
        return halves

    def _hold_for_fault(self, batch: Batch, attempt: Attempt, verdict: Verdict) -> None:
        description = (
            f"{verdict.reason}: status={attempt.status} code={attempt.error_code} "
            f"request_id={attempt.request_id} {attempt.message}"
        )
        self._fault.raise_fault(description)
        metrics.CONFIG_FAULTS.labels(reason=verdict.reason).inc()
        logger.error(
            "uploads stopped by a configuration fault, offsets stay uncommitted; "
            "fix the rule, stream, role assignment or identity. reason=%s status=%s "
            "code=%s request_id=%s message=%s batch_id=%s next_probe_secs=%.0f",
            verdict.reason,
            attempt.status,
            attempt.error_code,
            attempt.request_id,
            attempt.message,
            batch.batch_id,
            self._policy.probe_interval_secs,
        )

    def _give_up(
        self, batch: Batch, attempt: Attempt, verdict: Verdict, report: DeliveryReport
    ) -> None:
        logger.error(
            "retries exhausted, dead-lettering the batch rows=%d reason=%s status=%s "
            "code=%s request_id=%s batch_id=%s",
            len(batch.rows),
            verdict.reason,
            attempt.status,
            attempt.error_code,
            attempt.request_id,
            batch.batch_id,
        )
        rejection = Rejection(
            reason=REASON_RETRIES_EXHAUSTED,
            message=f"The service did not accept the row within "
            f"{self._policy.retry_max_secs:.0f} seconds of retries ({verdict.reason}).",
            detail=_detail(attempt),
        )
        _reject(report, batch.rows, rejection)
        metrics.BATCHES.labels(outcome="dead_lettered").inc()

    def _wait(self, secs: float) -> bool:
        """Sleep ``secs``; False when cancelled meanwhile."""
        return not self._cancel.wait(secs)


def _refused_alone(attempt: Attempt, too_large: bool) -> Rejection:
    """Why the service's refusal of a single row dead-letters it."""
    if too_large:
        return Rejection(
            reason=REASON_ROW_TOO_LARGE,
            message="The service refused this row as too large even on its own.",
            detail=_detail(attempt),
        )
    return Rejection(
        reason=REASON_ROW_REJECTED,
        message="The service refused this row: "
        + (attempt.message or f"HTTP {attempt.status}"),
        detail=_detail(attempt),
    )


def _reject(report: DeliveryReport, rows: Iterable[Row], rejection: Rejection) -> None:
    report.rejected.extend((row, rejection) for row in rows)


def _detail(attempt: Attempt) -> str:
    parts = [f"status={attempt.status}" if attempt.status else attempt.failure.value]
    if attempt.error_code:
        parts.append(f"code={attempt.error_code}")
    if attempt.request_id:
        parts.append(f"request_id={attempt.request_id}")
    return " ".join(parts)


def _status_label(attempt: Attempt) -> str:
    return str(attempt.status) if attempt.status is not None else attempt.failure.value


def _count_attempt(batch: Batch, attempt: Attempt, verdict: Verdict) -> None:
    status = _status_label(attempt)
    metrics.REQUESTS.labels(
        status=status, code=attempt.error_code or "-", reason=verdict.reason
    ).inc()
    metrics.UPLOAD_SECONDS.labels(status=status).observe(attempt.elapsed_secs)
    metrics.WIRE_BYTES.inc(batch.wire_bytes)


def _log_accepted(batch: Batch, attempt: Attempt) -> None:
    logger.info(
        "batch accepted rows=%d raw_bytes=%d wire_bytes=%d status=%s ms=%d "
        "request_id=%s batch_id=%s",
        len(batch.rows),
        batch.raw_bytes,
        batch.wire_bytes,
        attempt.status,
        attempt.elapsed_secs * 1000,
        attempt.request_id,
        batch.batch_id,
    )


def _log_retry(batch: Batch, attempt: Attempt, verdict: Verdict, delay: float) -> None:
    logger.warning(
        "batch not accepted, retrying in %.1fs rows=%d raw_bytes=%d wire_bytes=%d "
        "status=%s reason=%s code=%s ms=%d request_id=%s batch_id=%s detail=%s",
        delay,
        len(batch.rows),
        batch.raw_bytes,
        batch.wire_bytes,
        _status_label(attempt),
        verdict.reason,
        attempt.error_code,
        attempt.elapsed_secs * 1000,
        attempt.request_id,
        batch.batch_id,
        attempt.message,
    )
