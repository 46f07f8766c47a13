"""Batches being uploaded right now, each on its own thread.

The consuming thread starts an upload here and later collects its report; the
upload threads never touch Kafka or the offset tracker. Threads are daemons, so
an upload stuck in a socket read cannot hold the process open after the
shutdown grace period; its rows were never committed and will be delivered
again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sink import metrics
from sink.batch import Batch
from sink.delivery import DeliveryReport

logger = logging.getLogger(__name__)

Deliver = Callable[[Batch], DeliveryReport]


class InFlight:
    """Starts uploads and hands back their reports.

    :meth:`start`, :meth:`collect` and the properties are called only from the
    consuming thread.

    Args:
        deliver: settles one batch; runs on the upload thread.
    """

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._reports: queue.Queue[DeliveryReport] = queue.Queue()
        self._batches: dict[str, Batch] = {}
        self.crashed = False

    @property
    def count(self) -> int:
        return len(self._batches)

    @property
    def raw_bytes(self) -> int:
        return sum(batch.raw_bytes for batch in self._batches.values())

    def batches(self) -> list[Batch]:
        return list(self._batches.values())

    def start(self, batch: Batch) -> None:
        """Upload ``batch`` on a new thread; its report arrives via :meth:`collect`."""
        self._batches[batch.batch_id] = batch
        thread = threading.Thread(
            target=self._run,
            args=(batch,),
            name=f"upload-{batch.batch_id[:8]}",
            daemon=True,
        )
        thread.start()
        self._update_gauges()

    def collect(self, timeout_secs: float = 0.0) -> list[DeliveryReport]:
        """Reports finished since the last call; may wait ``timeout_secs`` for one."""
        reports: list[DeliveryReport] = []
        try:
            reports.append(
                self._reports.get(timeout=timeout_secs)
                if timeout_secs > 0
                else self._reports.get_nowait()
            )
            while True:
                reports.append(self._reports.get_nowait())
        except queue.Empty:
            pass
        for report in reports:
            self._batches.pop(report.batch.batch_id, None)
        if reports:
            self._update_gauges()
        return reports

    def _run(self, batch: Batch) -> None:
        try:
            report = self._deliver(batch)
        except Exception:  # a bug: keep the rows uncommitted and stop the process
            logger.exception("upload thread failed batch_id=%s", batch.batch_id)
            self.crashed = True
            report = DeliveryReport(batch, abandoned=list(batch.rows))
        self._reports.put(report)

    def _update_gauges(self) -> None:
        metrics.IN_FLIGHT_BATCHES.set(self.count)
        metrics.IN_FLIGHT_BYTES.set(self.raw_bytes)
