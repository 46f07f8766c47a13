"""Stay under the per-rule request and byte rates before the service says 429.

The Logs Ingestion API limits each data collection rule to a number of
requests and bytes per minute. Every upload attempt (first tries, retries and
the halves of a split alike) takes one request and its bytes from two token
buckets shared by all upload threads of this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# How much of a minute's allowance may be spent in one burst. A whole minute's
# worth at once could land in one of the service's measuring windows together
# with the previous minute's tail.
_BURST_SECS = 10.0


class TokenBucket:
    """A token bucket that hands out reservations, possibly into debt.

    ``reserve`` takes the tokens at once and says how long to wait before using
    them. A request larger than the whole bucket still goes through, after the
    wait that its size earns, so a small configured rate cannot deadlock a big
    batch. Thread-safe.
    """

    def __init__(self, rate_per_sec: float, capacity: float, now: float) -> None:
        if rate_per_sec <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self._rate = rate_per_sec
        self._capacity = capacity
        self._tokens = capacity
        self._updated = now
        self._lock = threading.Lock()

    def reserve(self, amount: float, now: float) -> float:
        """Take ``amount`` tokens; return the seconds to wait before using them."""
        with self._lock:
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._updated = max(self._updated, now)
            self._tokens -= amount
            return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class RateLimiter:
    """The request and byte budgets of one data collection rule.

    TODO: the budgets are this process's alone; several sink processes on one
    rule must be given a share each by configuration, as nothing coordinates
    them.

    Args:
        requests_per_minute: request allowance for this process.
        bytes_per_minute: byte allowance for this process.
        clock: monotonic seconds; replaceable in tests.
    """

    def __init__(
        self,
        requests_per_minute: int,
        bytes_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        now = clock()
        self._clock = clock
        self._requests = TokenBucket(
            requests_per_minute / 60.0,
            max(1.0, requests_per_minute * _BURST_SECS / 60.0),
            now,
        )
        self._bytes = TokenBucket(
            bytes_per_minute / 60.0, bytes_per_minute * _BURST_SECS / 60.0, now
        )

    def wait_secs(self, payload_bytes: int) -> float:
        """Reserve one request of ``payload_bytes``; return how long to wait first."""
        now = self._clock()
        return max(
            self._requests.reserve(1, now), self._bytes.reserve(payload_bytes, now)
        )

    def acquire(self, payload_bytes: int, cancel: threading.Event) -> bool:
        """Block until one request of ``payload_bytes`` may be sent.

        Returns False when ``cancel`` was set while waiting; the reservation is
        then spent anyway, which errs towards sending less.
        """
        wait = self.wait_secs(payload_bytes)
        return wait <= 0 or not cancel.wait(wait)
