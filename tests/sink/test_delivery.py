"""Settling one batch: retries, token renewal, splits, bisection, faults, cancel.

The uploader is a fake that answers from the rows it is sent, and time is fake:
waits return at once and move the clock, so delays are checked exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from sink.batch import Batch, BatchLimits, build_batches
from sink.dead_letter import (
    REASON_RETRIES_EXHAUSTED,
    REASON_ROW_REJECTED,
    REASON_ROW_TOO_LARGE,
)
from sink.delivery import ConfigFault, Delivery, DeliveryPolicy, DeliveryReport
from sink.ratelimit import RateLimiter
from sink.retry import Attempt, Backoff, Failure
from sink.row import Row
from tests.sink.rows import enriched_rows, enriched_value

LIMITS = BatchLimits(max_wire_bytes=1_000_000, max_raw_bytes=48 << 20, max_rows=100_000)
POLICY = DeliveryPolicy(
    retry_max_secs=300.0, probe_interval_secs=60.0, backoff=Backoff(1.0, 30.0)
)


class FakeTime:
    """A clock and a cancel event in one: ``wait`` advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.cancelled = False

    def clock(self) -> float:
        return self.now

    def wait(self, secs: float | None = None) -> bool:
        self.waits.append(secs or 0.0)
        self.now += secs or 0.0
        return self.cancelled

    def is_set(self) -> bool:
        return self.cancelled

    def set(self) -> None:
        self.cancelled = True


Answer = Callable[[Batch], Attempt]


class FakeUploader:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[Batch] = []

    def upload(self, batch: Batch) -> Attempt:
        self.sent.append(batch)
        return self.answer(batch)


class FakeCredential:
    def __init__(self) -> None:
        self.renewals = 0

    def renew(self) -> None:
        self.renewals += 1


def deliver(
    rows: list[Row], answer: Answer, policy: DeliveryPolicy = POLICY
) -> tuple[DeliveryReport, FakeUploader, FakeTime, FakeCredential, ConfigFault]:
    time = FakeTime()
    uploader = FakeUploader(answer)
    credential = FakeCredential()
    fault = ConfigFault()
    delivery = Delivery(
        uploader=uploader,
        credential=credential,
        limits=LIMITS,
        rate_limiter=RateLimiter(10**9, 10**15, clock=time.clock),
        policy=policy,
        fault=fault,
        cancel=time,  # type: ignore[arg-type]
        clock=time.clock,
    )
    batches, _ = build_batches(rows, LIMITS)
    assert len(batches) == 1
    return delivery.deliver(batches[0]), uploader, time, credential, fault


def accepted() -> Answer:
    return lambda batch: Attempt(204, request_id="req-ok")


def poisoned_by(marker: bytes) -> Answer:
    def answer(batch: Batch) -> Attempt:
        if any(marker in row.value for row in batch.rows):
            return Attempt(400, error_code="InvalidPayload", request_id="req-bad")
        return Attempt(204)

    return answer


def with_poison(count: int, poison_at: set[int]) -> list[Row]:
    rows = enriched_rows(count)
    for index in poison_at:
        row = rows[index]
        rows[index] = Row(
            row.partition, row.offset, enriched_value(0, index, activity="POISON")
        )
    return rows


def test_an_accepted_batch_reports_every_row_accepted() -> None:
    rows = enriched_rows(100)

    report, uploader, time, _, _ = deliver(rows, accepted())

    assert report.accepted == rows
    assert report.rejected == report.abandoned == []
    assert len(uploader.sent) == 1
    assert time.waits == []


def test_one_poison_row_is_isolated_by_bisection_and_the_rest_delivered() -> None:
    rows = with_poison(1000, {637})

    report, uploader, _, _, _ = deliver(rows, poisoned_by(b"POISON"))

    assert sorted(report.accepted, key=lambda r: (r.partition, r.offset)) == sorted(
        (row for index, row in enumerate(rows) if index != 637),
        key=lambda r: (r.partition, r.offset),
    )
    [(row, rejection)] = report.rejected
    assert row == rows[637]
    assert rejection.reason == REASON_ROW_REJECTED
    assert "code=InvalidPayload" in rejection.detail
    assert "request_id=req-bad" in rejection.detail
    # One request per level of halving for the poison half, plus its sibling.
    assert len(uploader.sent) <= 2 * math.ceil(math.log2(1000)) + 1


def test_several_poison_rows_are_each_dead_lettered() -> None:
    poison = {0, 1, 500, 999}
    rows = with_poison(1000, poison)

    report, _, _, _, _ = deliver(rows, poisoned_by(b"POISON"))

    assert {row.offset for row, _ in report.rejected} == {
        rows[i].offset for i in poison
    }
    assert len(report.accepted) == 1000 - len(poison)


def test_a_413_splits_the_batch_until_the_halves_fit() -> None:
    rows = enriched_rows(1000)

    def answer(batch: Batch) -> Attempt:
        if len(batch.rows) > 300:
            return Attempt(413, error_code="ContentLengthLimitExceeded")
        return Attempt(204)

    report, uploader, _, _, _ = deliver(rows, answer)

    assert sorted(r.offset for r in report.accepted) == sorted(r.offset for r in rows)
    assert report.rejected == []
    sizes = [len(batch.rows) for batch in uploader.sent]
    assert sizes == [1000, 500, 250, 250, 500, 250, 250]


def test_a_single_row_refused_as_too_large_is_dead_lettered() -> None:
    rows = enriched_rows(1)

    report, _, _, _, _ = deliver(
        rows, lambda batch: Attempt(413, error_code="ContentLengthLimitExceeded")
    )

    [(row, rejection)] = report.rejected
    assert row == rows[0]
    assert rejection.reason == REASON_ROW_TOO_LARGE
    assert "ContentLengthLimitExceeded" in rejection.detail


def test_transient_failures_are_retried_with_growing_delays() -> None:
    answers = iter(
        [Attempt(503), Attempt(None, Failure.TIMEOUT), Attempt(500), Attempt(204)]
    )

    report, uploader, time, _, _ = deliver(enriched_rows(10), lambda b: next(answers))

    assert len(report.accepted) == 10
    assert len(uploader.sent) == 4
    assert [round(w, 3) for w in time.waits] == [
        pytest.approx(w, rel=0.51) for w in (0.75, 1.5, 3.0)
    ]
    assert len({batch.batch_id for batch in uploader.sent}) == 1  # same request id


def test_retry_after_is_honoured() -> None:
    answers = iter([Attempt(429, retry_after_secs=42.0), Attempt(204)])

    _, _, time, _, _ = deliver(enriched_rows(3), lambda b: next(answers))

    assert 42.0 <= time.waits[0] <= 42.0 * 1.1


def test_retries_end_at_the_time_bound_and_the_rows_are_dead_lettered() -> None:
    policy = DeliveryPolicy(
        retry_max_secs=20.0, probe_interval_secs=60.0, backoff=Backoff(1.0, 8.0)
    )

    report, uploader, time, _, _ = deliver(
        enriched_rows(5), lambda b: Attempt(503, request_id="req-503"), policy
    )

    assert report.accepted == []
    assert {rejection.reason for _, rejection in report.rejected} == {
        REASON_RETRIES_EXHAUSTED
    }
    assert len(report.rejected) == 5
    assert sum(time.waits) <= 20.0
    assert len(uploader.sent) >= 3


def test_a_401_renews_the_token_once_and_retries_at_once() -> None:
    answers = iter([Attempt(401, error_code="TokenExpired"), Attempt(204)])

    report, _, time, credential, fault = deliver(
        enriched_rows(3), lambda b: next(answers)
    )

    assert len(report.accepted) == 3
    assert credential.renewals == 1
    assert time.waits == []
    assert not fault.active


def test_a_401_after_renewal_is_a_configuration_fault() -> None:
    answers = iter([Attempt(401), Attempt(401), Attempt(204)])

    report, _, time, credential, fault = deliver(
        enriched_rows(3), lambda b: next(answers)
    )

    assert credential.renewals == 1
    assert time.waits == [POLICY.probe_interval_secs]
    assert len(report.accepted) == 3
    assert not fault.active  # cleared by the accepted probe


@pytest.mark.parametrize("status", [403, 404])
def test_configuration_faults_hold_the_batch_and_raise_the_alarm(status: int) -> None:
    seen_fault: list[str] = []
    fault_holder: list[ConfigFault] = []
    answers = iter([Attempt(status, request_id="req-cfg")] * 3 + [Attempt(204)])

    def answer(batch: Batch) -> Attempt:
        if fault_holder:
            seen_fault.append(fault_holder[0].describe())
        return next(answers)

    time = FakeTime()
    fault = ConfigFault()
    fault_holder.append(fault)
    delivery = Delivery(
        uploader=FakeUploader(answer),
        credential=FakeCredential(),
        limits=LIMITS,
        rate_limiter=RateLimiter(10**9, 10**15, clock=time.clock),
        policy=DeliveryPolicy(
            retry_max_secs=10.0, probe_interval_secs=60.0, backoff=Backoff(1.0, 8.0)
        ),
        fault=fault,
        cancel=time,  # type: ignore[arg-type]
        clock=time.clock,
    )
    batch = build_batches(enriched_rows(4), LIMITS)[0][0]

    report = delivery.deliver(batch)

    # Held well past the retry bound without dead-lettering anything.
    assert time.waits == [60.0, 60.0, 60.0]
    assert len(report.accepted) == 4
    assert report.rejected == []
    assert "req-cfg" in seen_fault[-1]
    assert not fault.active


def test_cancel_abandons_the_batch_without_a_verdict() -> None:
    time_holder: list[FakeTime] = []

    def answer(batch: Batch) -> Attempt:
        time_holder[0].cancelled = True  # shutdown grace ran out meanwhile
        return Attempt(503)

    time = FakeTime()
    time_holder.append(time)
    delivery = Delivery(
        uploader=FakeUploader(answer),
        credential=FakeCredential(),
        limits=LIMITS,
        rate_limiter=RateLimiter(10**9, 10**15, clock=time.clock),
        policy=POLICY,
        fault=ConfigFault(),
        cancel=time,  # type: ignore[arg-type]
        clock=time.clock,
    )
    rows = enriched_rows(6)

    report = delivery.deliver(build_batches(rows, LIMITS)[0][0])

    assert report.abandoned == rows
    assert report.accepted == report.rejected == []
