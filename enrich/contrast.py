"""What Contrast Protect events need beyond the generic CEF mapping.

Applies only when DeviceVendor is exactly ``Contrast Security``: the Sentinel
solution's queries match that string case-sensitively. Contrast's Python agent
writes ``-`` when there is no request context, outcomes arrive in several
spellings, and the solution's analytic rules search AdditionalExtensions for the
outcome while its workbook reads the rule id from ``pri``.
"""

from __future__ import annotations

from typing import Final

from enrich.mapping import Row

VENDOR: Final = "Contrast Security"

# Outcome keys whose raw "key=value" also stays in AdditionalExtensions: the
# stock analytic rules search that column for EXPLOITED, BLOCKED, and so on.
ECHOED_KEYS: Final = frozenset({"outcome", "eventOutcome"})

_PLACEHOLDERS: Final = frozenset({"", "-"})
_OUTCOME_ALIASES: Final = {
    "INEFFECTIVE": "PROBED",
    "BLOCKED_AT_PERIMETER": "BLOCKED",
    "SUCCESS": "success",  # the workbook filters on lower-case 'success'
}


def is_contrast(device_vendor: str) -> bool:
    return device_vendor == VENDOR


def drop_placeholders(extensions: dict[str, str]) -> None:
    """Remove ``-`` and empty values: they mean "none", not a value to keep."""
    values = extensions.values()
    if "-" in values or "" in values:
        for key in [key for key, value in extensions.items() if value in _PLACEHOLDERS]:
            del extensions[key]


def normalize_outcome(raw: str) -> str:
    """The outcome as the workbook and rules compare it: upper case, aliases."""
    outcome = raw.strip().upper()
    return _OUTCOME_ALIASES.get(outcome, outcome)


def add_rule_and_outcome(row: Row, extensions: dict[str, str]) -> None:
    """Normalise EventOutcome and add the ``Rule`` and ``Outcome`` fields."""
    rule = extensions.get("pri")
    if rule:
        row["Rule"] = rule
    raw_outcome = row.get("EventOutcome")
    if isinstance(raw_outcome, str):
        outcome = normalize_outcome(raw_outcome)
        row["EventOutcome"] = outcome
        row["Outcome"] = outcome
