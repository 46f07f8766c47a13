"""The offset tracker commits only the contiguous done prefix of each partition."""

from __future__ import annotations

from sink.offsets import OffsetTracker


def tracker_with(partition: int, offsets: range) -> OffsetTracker:
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.track(partition, offset)
    return tracker


def test_nothing_is_committable_until_the_first_offset_is_done() -> None:
    tracker = tracker_with(0, range(10, 15))

    tracker.done(0, 12)
    tracker.done(0, 11)

    assert tracker.committable() == {}


def test_the_commit_point_is_one_past_the_done_prefix() -> None:
    tracker = tracker_with(0, range(10, 15))

    for offset in (12, 10, 11):
        tracker.done(0, offset)

    assert tracker.committable() == {0: 13}
    assert tracker.outstanding(0) == 2


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    for offset in range(3):
        tracker.track(0, offset)
        tracker.track(1, offset)

    tracker.done(1, 0)
    tracker.done(1, 1)
    tracker.done(0, 1)

    assert tracker.committable() == {1: 2}


def test_committed_offsets_are_not_offered_again_until_they_move() -> None:
    tracker = tracker_with(0, range(5))
    tracker.done(0, 0)
    tracker.committed(tracker.committable())

    assert tracker.committable() == {}

    tracker.done(0, 1)
    assert tracker.committable() == {0: 2}


def test_gaps_in_offsets_do_not_block_the_commit() -> None:
    tracker = OffsetTracker()
    for offset in (3, 7, 8):  # compaction or transaction markers leave gaps
        tracker.track(0, offset)

    for offset in (3, 7, 8):
        tracker.done(0, offset)

    assert tracker.committable() == {0: 9}
    assert tracker.outstanding() == 0


def test_done_twice_and_done_for_unknown_partitions_are_harmless() -> None:
    tracker = tracker_with(0, range(3))

    tracker.done(0, 0)
    tracker.done(0, 0)
    tracker.done(5, 1)

    assert tracker.committable() == {0: 1}


def test_forgotten_partitions_ignore_late_results() -> None:
    tracker = tracker_with(0, range(3))

    tracker.forget([0])
    tracker.done(0, 0)

    assert tracker.committable() == {}
    assert tracker.partitions() == []
