"""Failures the emulator can be told to inject, so the sink's delivery is testable.

A fault is one of four kinds:

- ``status``: answer with an HTTP error status (429, 500, 503, 408, 413, ...),
  optionally with ``Retry-After`` (seconds, or an HTTP date) and
  ``retry-after-ms``;
- ``bad_rows``: answer 400 to any upload holding a row whose string values
  contain a marker (``POISON`` by default), as the service does for a poison row;
- ``delay``: wait ``secs`` seconds, then answer normally;
- ``drop``: close the connection without answering.

Every fault takes ``share`` (chance of firing, 0..1, default 1),
``duration_secs`` (active for that long after it is installed; none = forever)
and ``count`` (fire at most that many times; none = unlimited). Faults are
considered only for uploads that would otherwise succeed, in the order given;
the first that fires decides the answer.

Faults come from the ``EMULATOR_FAULTS`` setting at start-up, written as
``kind=status,status=503,duration_secs=20;kind=delay,secs=2,share=0.1`` (faults
separated by ``;``, fields by ``,``, so values cannot hold either), or from the
admin API as JSON objects with the same fields.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Final


class FaultKind(StrEnum):
    STATUS = "status"
    BAD_ROWS = "bad_rows"
    DELAY = "delay"
    DROP = "drop"


class RetryAfterFormat(StrEnum):
    SECONDS = "seconds"
    HTTP_DATE = "http-date"


class FaultSpecError(ValueError):
    """A fault description is malformed; the message says which part and why."""


_COMMON_FIELDS: Final = frozenset({"kind", "share", "duration_secs", "count"})
_KIND_FIELDS: Final[dict[FaultKind, frozenset[str]]] = {
    FaultKind.STATUS: frozenset(
        {"status", "code", "message", "retry_after", "retry_after_format"}
        | {"retry_after_ms"}
    ),
    FaultKind.BAD_ROWS: frozenset({"marker", "code", "message"}),
    FaultKind.DELAY: frozenset({"secs"}),
    FaultKind.DROP: frozenset(),
}
_NULL_WORDS: Final = frozenset({"", "null", "none"})


@dataclass(frozen=True)
class Fault:
    """One injectable failure; build it with :meth:`from_mapping` to validate."""

    kind: FaultKind
    share: float = 1.0
    duration_secs: float | None = None
    count: int | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: str | None = None
    retry_after_format: RetryAfterFormat = RetryAfterFormat.SECONDS
    retry_after_ms: int | None = None
    marker: str = "POISON"
    secs: float = 0.0

    @classmethod
    def from_mapping(cls, spec: Mapping[str, object]) -> Fault:
        """Validate a fault written as field names and values (strings or JSON).

        Raises:
            FaultSpecError: naming the first unknown, missing or bad field.
        """
        kind = _kind(spec.get("kind"))
        unknown = set(spec) - _COMMON_FIELDS - _KIND_FIELDS[kind]
        if unknown:
            raise FaultSpecError(
                f"field {sorted(unknown)[0]!r} does not apply to kind {kind.value!r}"
            )
        fault = cls(
            kind=kind,
            share=_number(spec, "share", 1.0, upper=1.0),
            duration_secs=_optional_number(spec, "duration_secs"),
            count=_optional_integer(spec, "count", minimum=0),
            status=_optional_integer(spec, "status", minimum=400, maximum=599),
            code=_optional_text(spec, "code"),
            message=_optional_text(spec, "message"),
            retry_after=_retry_after(spec),
            retry_after_format=_retry_after_format(spec),
            retry_after_ms=_optional_integer(spec, "retry_after_ms", minimum=0),
            marker=_optional_text(spec, "marker") or "POISON",
            secs=_number(spec, "secs", 0.0),
        )
        fault._check_required(spec)
        return fault

    def _check_required(self, spec: Mapping[str, object]) -> None:
        if self.kind is FaultKind.STATUS and self.status is None:
            raise FaultSpecError("kind 'status' needs status=<400-599>")
        if self.kind is FaultKind.DELAY and "secs" not in spec:
            raise FaultSpecError("kind 'delay' needs secs=<seconds>")
        numeric_retry_after = self.retry_after is not None and _is_number(
            self.retry_after
        )
        if (
            self.retry_after_format is RetryAfterFormat.HTTP_DATE
            and not numeric_retry_after
        ):
            raise FaultSpecError(
                "retry_after_format=http-date needs retry_after in seconds"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults, as JSON-ready values."""
        out: dict[str, Any] = {"kind": self.kind.value}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "kind" and value != item.default:
                out[item.name] = value.value if isinstance(value, StrEnum) else value
        return out

    def describe(self) -> str:
        """A short label for logs and the request log: ``status 429``, ``drop``."""
        if self.kind is FaultKind.STATUS:
            return f"status {self.status}"
        if self.kind is FaultKind.DELAY:
            return f"delay {self.secs:g}s"
        if self.kind is FaultKind.BAD_ROWS:
            return f"bad_rows {self.marker}"
        return self.kind.value

    def retry_after_header(self, now: dt.datetime) -> str | None:
        """The ``Retry-After`` value to send at ``now``, or None for no header."""
        if self.retry_after is None:
            return None
        if self.retry_after_format is RetryAfterFormat.HTTP_DATE:
            when = now + dt.timedelta(seconds=float(self.retry_after))
            return email.utils.format_datetime(when, usegmt=True)
        return self.retry_after


def find_marked_value(
    rows: Sequence[Mapping[str, object]], marker: str
) -> tuple[int, str] | None:
    """The index and column of the first string value containing ``marker``."""
    for index, row in enumerate(rows):
        for column, value in row.items():
            if isinstance(value, str) and marker in value:
                return index, column
    return None


def parse_fault_specs(text: str) -> list[Fault]:
    """Faults from the setting's string form; empty text means no faults.

    Raises:
        FaultSpecError: naming the fault (counting from 1) and what is wrong.
    """
    faults: list[Fault] = []
    specs = [part.strip() for part in text.split(";") if part.strip()]
    for number, spec in enumerate(specs, start=1):
        try:
            faults.append(Fault.from_mapping(_key_values(spec)))
        except FaultSpecError as exc:
            raise FaultSpecError(f"fault {number} ({spec!r}): {exc}") from None
    return faults


def faults_from_json(items: object) -> list[Fault]:
    """Faults from the admin API's ``faults`` list of objects.

    Raises:
        FaultSpecError: naming the fault (counting from 1) and what is wrong.
    """
    if not isinstance(items, list):
        raise FaultSpecError("'faults' must be a list of objects")
    faults: list[Fault] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise FaultSpecError(f"fault {number}: must be an object")
        try:
            faults.append(Fault.from_mapping(item))
        except FaultSpecError as exc:
            raise FaultSpecError(f"fault {number}: {exc}") from None
    return faults


@dataclass
class _Slot:
    fault: Fault
    installed_at: float
    applied: int = 0

    def active(self, now: float) -> bool:
        duration = self.fault.duration_secs
        if duration is not None and now >= self.installed_at + duration:
            return False
        return self.fault.count is None or self.applied < self.fault.count


@dataclass
class FaultBoard:
    """The installed faults and how often each has fired; safe across threads.

    The HTTP handlers call :meth:`choose`; the admin API and in-process tests
    replace or clear the list at any time.
    """

    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    _slots: list[_Slot] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def replace(self, faults: Sequence[Fault]) -> None:
        """Install ``faults`` instead of the current ones; their clocks start now."""
        now = self.clock()
        with self._lock:
            self._slots = [_Slot(fault, now) for fault in faults]

    def clear(self) -> None:
        self.replace([])

    def choose(self, rows: Sequence[Mapping[str, object]]) -> Fault | None:
        """The fault to apply to an otherwise good upload of ``rows``, if any."""
        with self._lock:
            now = self.clock()
            for slot in self._slots:
                if not slot.active(now) or not _matches(slot.fault, rows):
                    continue
                if self.rng.random() >= slot.fault.share:
                    continue
                slot.applied += 1
                return slot.fault
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        """Each fault's fields, how often it fired and whether it can still fire."""
        with self._lock:
            now = self.clock()
            return [
                {
                    **slot.fault.to_dict(),
                    "applied": slot.applied,
                    "active": slot.active(now),
                }
                for slot in self._slots
            ]


def _matches(fault: Fault, rows: Sequence[Mapping[str, object]]) -> bool:
    if fault.kind is FaultKind.BAD_ROWS:
        return find_marked_value(rows, fault.marker) is not None
    return True


def _key_values(spec: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in spec.split(","):
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FaultSpecError(f"expected key=value, got {pair.strip()!r}")
        if key in values:
            raise FaultSpecError(f"field {key!r} given twice")
        values[key] = value.strip()
    return values


def _kind(value: object) -> FaultKind:
    try:
        return FaultKind(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(kind.value for kind in FaultKind)
        raise FaultSpecError(f"kind must be one of {allowed}, got {value!r}") from None


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in _NULL_WORDS)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number(
    spec: Mapping[str, object], name: str, default: float, upper: float | None = None
) -> float:
    value = _optional_number(spec, name)
    if value is None:
        return default
    if upper is not None and value > upper:
        raise FaultSpecError(f"{name} must be between 0 and {upper:g}, got {value:g}")
    return value


def _optional_number(spec: Mapping[str, object], name: str) -> float | None:
    raw = spec.get(name)
    if _is_null(raw):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FaultSpecError(f"{name} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FaultSpecError(f"{name} must be a finite number >= 0, got {raw!r}")
    return value


def _optional_integer(
    spec: Mapping[str, object], name: str, minimum: int, maximum: int | None = None
) -> int | None:
    raw = spec.get(name)
    if _is_null(raw):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise FaultSpecError(f"{name} must be an integer, got {raw!r}")
    try:
        value = int(raw)
    except ValueError:
        raise FaultSpecError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"{minimum}-{maximum}"
        raise FaultSpecError(f"{name} must be {bounds}, got {value}")
    return value


def _optional_text(spec: Mapping[str, object], name: str) -> str | None:
    raw = spec.get(name)
    if _is_null(raw):
        return None
    if not isinstance(raw, str):
        raise FaultSpecError(f"{name} must be a string, got {raw!r}")
    return raw


def _retry_after(spec: Mapping[str, object]) -> str | None:
    """Seconds (kept as written) or an HTTP date (checked, kept verbatim)."""
    raw = spec.get("retry_after")
    if _is_null(raw):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise FaultSpecError(
            f"retry_after must be seconds or an HTTP date, got {raw!r}"
        )
    text = str(raw).strip()
    if _is_number(text):
        if float(text) < 0:
            raise FaultSpecError(f"retry_after must be >= 0, got {text}")
        return text
    try:
        email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        raise FaultSpecError(
            f"retry_after must be seconds or an HTTP date, got {text!r}"
        ) from None
    return text


def _retry_after_format(spec: Mapping[str, object]) -> RetryAfterFormat:
    raw = spec.get("retry_after_format")
    if _is_null(raw):
        return RetryAfterFormat.SECONDS
    try:
        return RetryAfterFormat(str(raw).strip().lower())
    except ValueError:
        raise FaultSpecError(
            f"retry_after_format must be seconds or http-date, got {raw!r}"
        ) from None
