"""Enriched rows for sink tests, shaped like the enrich stage writes them."""

from __future__ import annotations

import random

import orjson

from sink.row import Row

_RULES = ("sql-injection", "cmd-injection", "path-traversal", "reflected-xss", "xxe")
_OUTCOMES = ("EXPLOITED", "BLOCKED", "PROBED", "SUSPICIOUS")


def enriched_value(
    partition: int,
    offset: int,
    rng: random.Random | None = None,
    activity: str | None = None,
    padding: str = "",
) -> bytes:
    """One enriched record's bytes, carrying its row id as enrich writes it."""
    rng = rng or random.Random(offset)
    rule, outcome = rng.choice(_RULES), rng.choice(_OUTCOMES)
    row = {
        "TimeGenerated": "2026-03-14T09:26:53.000Z",
        "DeviceVendor": "Contrast Security",
        "DeviceProduct": "Contrast Agent Java",
        "DeviceVersion": "6.16.0",
        "DeviceEventClassID": "SECURITY",
        "Activity": activity
        or f"The parameter p{rng.randrange(100)} had a value that exploited {rule}",
        "LogSeverity": "WARN",
        "Computer": f"app-host-{rng.randrange(40):02d}",
        "SourceIP": f"198.51.100.{rng.randrange(1, 255)}",
        "SourcePort": rng.randrange(1024, 65535),
        "RequestURL": f"/owners/{rng.randrange(100_000)}{padding}",
        "RequestMethod": rng.choice(("GET", "POST")),
        "ApplicationProtocol": "PetStore",
        "EventOutcome": outcome,
        "AdditionalExtensions": f"pri={rule};outcome={outcome};"
        f"cefpipeRowId={partition}-{offset}",
        "Rule": rule,
        "Outcome": outcome,
    }
    return orjson.dumps(row)


def enriched_rows(count: int, partitions: int = 4, seed: int = 1) -> list[Row]:
    rng = random.Random(seed)
    return [
        Row(index % partitions, index // partitions, enriched_value(0, index, rng))
        for index in range(count)
    ]


def random_row(offset: int, size: int, rng: random.Random) -> Row:
    """A row of about ``size`` bytes that gzip can barely shrink."""
    noise = rng.randbytes(size // 2).hex()
    return Row(0, offset, orjson.dumps({"Message": noise}))
