"""The Contrast Protect connector's two sample queries, evaluated over stored rows.

The connector page ships two KQL queries, "All attacks" and "Effective
attacks". Sentinel runs them in Kusto; here they are restated in Python with
Kusto's semantics, so ``cefpipe query`` shows what an analyst would see:

- ``DeviceVendor == 'Contrast Security'``: exact and case-sensitive.
- ``Outcome``: ``coalesce(EventOutcome, extract_data(AdditionalExtensions,
  'outcome'), "")``, where ``coalesce`` skips null and empty strings.
- All attacks: regex-replaces ``INEFFECTIVE`` with ``PROBED``, then keeps
  ``Outcome != 'success'`` (case-sensitive, so empty outcomes stay).
- Effective attacks: keeps ``Outcome in ('EXPLOITED','BLOCKED','SUSPICIOUS')``.
- ``Rule``: ``extract_data(AdditionalExtensions, 'pri')``.
- ``order by TimeGenerated desc``: by instant, rows without a readable time
  last; ties go to the most recently ingested row first.

String columns that are null show as ``""``, as Kusto shows them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, Final

from emulator.store import INGESTION_TIME, SEQUENCE

VENDOR: Final = "Contrast Security"
EFFECTIVE_OUTCOMES: Final = ("EXPLOITED", "BLOCKED", "SUSPICIOUS")
PROJECTED_COLUMNS: Final = (
    "TimeGenerated",
    "ApplicationProtocol",
    "Rule",
    "Activity",
    "Outcome",
    "RequestURL",
    "SourceIP",
)

QueryRow = dict[str, str]
_EPOCH: Final = dt.datetime.min.replace(tzinfo=dt.UTC)


class Query(StrEnum):
    ALL_ATTACKS = "all-attacks"
    EFFECTIVE_ATTACKS = "effective-attacks"


def run_query(query: Query, rows: Iterable[Mapping[str, Any]]) -> list[QueryRow]:
    """The rows ``query`` returns, projected and ordered like the KQL."""
    keep, outcome_of = _QUERIES[query]
    matches: list[tuple[Mapping[str, Any], str]] = []
    for row in rows:
        if row.get("DeviceVendor") != VENDOR:
            continue
        outcome = outcome_of(row)
        if keep(outcome):
            matches.append((row, outcome))

    matches.sort(key=lambda match: _newest_first_key(match[0]), reverse=True)
    return [_project(row, outcome) for row, outcome in matches]


def extract_data(additional_extensions: str | None, key: str) -> str:
    """The connector's ``extract_data``: read ``key`` from ``k=v;k=v`` text.

    KQL: ``parse_urlquery(replace(@';', @'&', a))["Query Parameters"][k]``.
    Pairs split at ``&`` (``;`` first becomes ``&``), each at its first ``=``; a
    part without ``=`` has an empty value; an absent key gives ``""``.
    """
    # TODO: Kusto's exact decoding in parse_urlquery (percent escapes, '+' for
    # space, repeated keys) is undocumented; values are taken verbatim and the
    # first occurrence of a key wins.
    if not additional_extensions:
        return ""
    for part in additional_extensions.replace(";", "&").split("&"):
        name, _, value = part.partition("=")
        if name == key:
            return value
    return ""


def coalesce(*values: str | None) -> str:
    """Kusto ``coalesce`` over strings: the first that is neither null nor empty."""
    for value in values:
        if value:
            return value
    return ""


def _recorded_outcome(row: Mapping[str, Any]) -> str:
    return coalesce(
        row.get("EventOutcome"),
        extract_data(row.get("AdditionalExtensions"), "outcome"),
    )


def _outcome_with_probes(row: Mapping[str, Any]) -> str:
    """All attacks: ``replace(@'INEFFECTIVE', @'PROBED', ...)``, a regex replace."""
    return re.sub("INEFFECTIVE", "PROBED", _recorded_outcome(row))


_QUERIES: Final[
    dict[Query, tuple[Callable[[str], bool], Callable[[Mapping[str, Any]], str]]]
] = {
    Query.ALL_ATTACKS: (lambda outcome: outcome != "success", _outcome_with_probes),
    Query.EFFECTIVE_ATTACKS: (
        lambda outcome: outcome in EFFECTIVE_OUTCOMES,
        _recorded_outcome,
    ),
}


def _project(row: Mapping[str, Any], outcome: str) -> QueryRow:
    computed = {
        "Rule": extract_data(row.get("AdditionalExtensions"), "pri"),
        "Outcome": outcome,
    }
    return {
        column: computed[column] if column in computed else _text(row.get(column))
        for column in PROJECTED_COLUMNS
    }


def _newest_first_key(
    row: Mapping[str, Any],
) -> tuple[bool, dt.datetime, dt.datetime, int]:
    """Sort key for a descending sort: time, then ingestion time, then sequence."""
    generated = _instant(row.get("TimeGenerated"))
    ingested = _instant(row.get(INGESTION_TIME))
    sequence = row.get(SEQUENCE)
    return (
        generated is not None,
        generated or _EPOCH,
        ingested or _EPOCH,
        sequence if isinstance(sequence, int) else 0,
    )


def _instant(value: object) -> dt.datetime | None:
    """An ISO 8601 string as an aware UTC instant; naive times count as UTC."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _text(value: object) -> str:
    return "" if value is None else str(value)
