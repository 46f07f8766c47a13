"""Rates from progress samples, with start-up and tail left out.

A stage's rate is read from a counter sampled while it runs (records in its
output topic, rows stored by the emulator). The window starts once 5% is done
and every worker has shown output, and ends at 95%: a process's start-up,
group join and last partial batch are not its throughput. Both sides of every
ratio are measured this way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class StalledError(RuntimeError):
    """The counter stopped short of its target before the deadline."""


@dataclass(frozen=True)
class Point:
    secs: float  # since sampling began
    done: int
    ready: bool  # every worker has shown output
    cpu_secs: float = 0.0  # CPU the measured processes used so far


@dataclass(frozen=True)
class Window:
    """The steady part of a run: from its first to its last point."""

    first: Point
    last: Point

    @property
    def rate(self) -> float:
        """Units per second of wall time."""
        return (self.last.done - self.first.done) / max(self.secs, 1e-6)

    @property
    def secs(self) -> float:
        return self.last.secs - self.first.secs

    @property
    def per_cpu_sec(self) -> float:
        """Units per second of CPU used by the measured processes (per core)."""
        cpu = self.last.cpu_secs - self.first.cpu_secs
        return (self.last.done - self.first.done) / cpu if cpu > 0 else 0.0


def sample_until(
    read: Callable[[], int],
    target: int,
    timeout_secs: float,
    ready: Callable[[], bool] | None = None,
    cpu: Callable[[], float] | None = None,
    interval_secs: float = 0.05,
) -> list[Point]:
    """Sample ``read()`` until it reaches ``target``.

    Args:
        read: units done so far.
        target: units the run must reach.
        timeout_secs: how long to wait for it.
        ready: whether every worker has shown output; asked until it says yes.
        cpu: CPU seconds used so far by the measured processes.
        interval_secs: time between samples.

    Raises:
        StalledError: ``target`` was not reached within ``timeout_secs``.
    """
    points: list[Point] = []
    started = time.monotonic()
    was_ready = False
    while True:
        done = read()
        if not was_ready and done:
            was_ready = ready() if ready is not None else True
        now = time.monotonic() - started
        points.append(Point(now, done, was_ready, cpu() if cpu else 0.0))
        if done >= target:
            return points
        if now > timeout_secs:
            raise StalledError(f"reached {done} of {target} in {timeout_secs:.0f}s")
        time.sleep(interval_secs)


def steady_window(
    points: Sequence[Point], target: int, low: float = 0.05, high: float = 0.95
) -> Window:
    """The points between ``low`` and ``high`` of ``target`` (all workers going)."""
    first = next(p for p in points if p.ready and p.done >= low * target)
    last = next(p for p in points if p.done >= high * target)
    if last.secs <= first.secs:  # too fast to sample: the whole run instead
        first, last = points[0], points[-1]
    return Window(first, last)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
