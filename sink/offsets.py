"""Which consumed offsets are safe to commit: the contiguous done prefix.

Rows of one partition leave the sink out of order (batches finish in any order,
a bisected batch delivers its halves at different times, dead letters wait for
the broker), but Kafka keeps one committed offset per partition. So each
partition remembers the offsets it handed out, in order, and the commit point
only moves past an offset once it and every offset before it are done.

Used only by the thread that consumes; not thread-safe.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


class _PartitionProgress:
    """Offsets of one partition between consumption and commit."""

    __slots__ = ("done", "last_committed", "next_commit", "open")

    def __init__(self) -> None:
        self.open: deque[int] = deque()  # consumed, not yet behind the commit point
        self.done: set[int] = set()  # finished, waiting for an earlier offset
        self.next_commit: int | None = None  # the offset a commit would store
        self.last_committed: int | None = None

    def advance(self) -> None:
        while self.open and self.open[0] in self.done:
            finished = self.open.popleft()
            self.done.discard(finished)
            self.next_commit = finished + 1


class OffsetTracker:
    """Per-partition done-tracking for at-least-once commits."""

    def __init__(self) -> None:
        self._partitions: dict[int, _PartitionProgress] = {}

    def track(self, partition: int, offset: int) -> None:
        """Record that ``offset`` was consumed and is now the sink's to finish."""
        progress = self._partitions.get(partition)
        if progress is None:
            progress = self._partitions[partition] = _PartitionProgress()
        progress.open.append(offset)

    def done(self, partition: int, offset: int) -> None:
        """Record that the row at ``offset`` is delivered or dead-lettered.

        Safe to call twice, and for partitions already forgotten (a batch that
        finished after its partition was revoked): both are ignored.
        """
        progress = self._partitions.get(partition)
        if progress is None or not progress.open or offset < progress.open[0]:
            return
        progress.done.add(offset)
        progress.advance()

    def committable(self) -> dict[int, int]:
        """Partitions whose commit point moved since the last commit, and where to."""
        moved: dict[int, int] = {}
        for partition, progress in self._partitions.items():
            target = progress.next_commit
            if target is not None and (
                progress.last_committed is None or target > progress.last_committed
            ):
                moved[partition] = target
        return moved

    def committed(self, offsets: dict[int, int]) -> None:
        """Record offsets the broker confirmed, so they are not committed again."""
        for partition, offset in offsets.items():
            progress = self._partitions.get(partition)
            if progress is not None:
                progress.last_committed = max(progress.last_committed or 0, offset)

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop all knowledge of ``partitions`` (revoked or lost)."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def outstanding(self, partition: int | None = None) -> int:
        """Rows consumed but not yet behind the commit point."""
        if partition is not None:
            progress = self._partitions.get(partition)
            return len(progress.open) if progress else 0
        return sum(len(progress.open) for progress in self._partitions.values())

    def partitions(self) -> list[int]:
        return list(self._partitions)
