"""Token buckets keep requests and bytes under the per-rule rates."""

from __future__ import annotations

import threading

import pytest

from sink.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_makes_callers_wait() -> None:
    bucket = TokenBucket(rate_per_sec=10.0, capacity=5.0, now=0.0)

    waits = [bucket.reserve(1, now=0.0) for _ in range(7)]

    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.1)
    assert waits[6] == pytest.approx(0.2)


def test_a_bucket_refills_with_time_but_not_beyond_capacity() -> None:
    bucket = TokenBucket(rate_per_sec=10.0, capacity=5.0, now=0.0)
    for _ in range(5):
        bucket.reserve(1, now=0.0)

    assert bucket.reserve(5, now=0.5) == 0.0
    assert bucket.reserve(6, now=100.0) == pytest.approx(0.1)


def test_a_request_larger_than_the_bucket_waits_instead_of_deadlocking() -> None:
    bucket = TokenBucket(rate_per_sec=100.0, capacity=100.0, now=0.0)

    assert bucket.reserve(1000, now=0.0) == pytest.approx(9.0)


def test_requests_per_minute_bound_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=600, bytes_per_minute=10**12, clock=clock)

    sent = 0
    while clock.now < 60.0:
        wait = limiter.wait_secs(1000)
        clock.now += wait
        if clock.now <= 60.0:
            sent += 1

    burst = 600 * 10 / 60
    assert 600 <= sent <= 600 + burst + 1


def test_bytes_per_minute_bound_the_sustained_volume() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        requests_per_minute=10**6, bytes_per_minute=6_000_000, clock=clock
    )

    sent_bytes = 0
    while clock.now < 60.0:
        clock.now += limiter.wait_secs(100_000)
        if clock.now <= 60.0:
            sent_bytes += 100_000

    assert 6_000_000 <= sent_bytes <= 6_000_000 + 1_000_000 + 100_000


def test_acquire_gives_up_when_cancelled() -> None:
    limiter = RateLimiter(requests_per_minute=1, bytes_per_minute=10**9)
    cancel = threading.Event()
    assert limiter.acquire(10, cancel)  # the burst allows the first at once

    cancel.set()
    assert not limiter.acquire(10, cancel)
