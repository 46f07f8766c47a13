"""Log output for every cefpipe process: one call at the entry point, nowhere else.

On a terminal the lines are short and readable; anywhere else (containers, CI,
files) each line is one JSON object, so that a 3 a.m. reader can filter by
component, instance or logger without guessing at formats.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the process's component and instance."""

    def __init__(self, component: str, instance: str) -> None:
        super().__init__()
        self._component = component
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname.lower(),
            "component": self._component,
            "instance": self._instance,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, extras appended as key=value."""

    def __init__(self, component: str) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s " + component + " %(name)s: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        }
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


def configure_logging(
    component: str,
    instance: str,
    level: str = "INFO",
    fmt: str = "auto",
    stream: TextIO | None = None,
) -> None:
    """Route all log records of this process to one handler on stderr.

    Args:
        component: the stage name shown on every line (ingest, enrich, ...).
        instance: this process's instance name.
        level: a logging level name.
        fmt: ``json``, ``text``, or ``auto`` (JSON unless stderr is a terminal).
        stream: where to write; stderr by default.
    """
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        JsonFormatter(component, instance) if use_json else TextFormatter(component)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter that would drown the pipeline's own lines at INFO.
    for noisy in ("azure", "aiokafka", "urllib3", "msal", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _iso_utc(epoch: float) -> str:
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"
