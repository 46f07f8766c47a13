"""Log a repeating problem at most once per interval, with how often it happened.

Per-record failures (a bad message, a refused delivery) arrive in floods; one line
per record buries everything else. Metrics count every occurrence; the log says
"this is happening" once per interval per key, with the count since last time.
"""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Thread-safe: ingest's delivery callbacks and its event loop may share one."""

    def __init__(self, logger: logging.Logger, interval_secs: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval_secs
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        """Log ``msg`` unless ``key`` was logged less than an interval ago."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d more like this since the last report)"
            args = (*args, suppressed)
        self._logger.log(level, msg, *args)
