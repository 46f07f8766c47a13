"""One enriched row and where it came from: the unit the sink batches and commits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """An enriched record's value with its Kafka position.

    The value is the upload row's JSON object exactly as the enrich stage wrote
    it; the sink never parses or re-serialises it. The position lets the offset
    tracker count the row as done once the service (or the dead-letter topic)
    has it.
    """

    partition: int
    offset: int
    value: bytes

    def source(self, topic: str) -> str:
        """Where the row came from, as dead letters name it: topic/partition/offset."""
        return f"{topic}/{self.partition}/{self.offset}"
