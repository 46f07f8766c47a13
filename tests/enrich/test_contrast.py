"""Contrast Protect specifics: placeholders, outcome spellings, Rule and Outcome."""

from __future__ import annotations

import pytest

from enrich.contrast import (
    add_rule_and_outcome,
    drop_placeholders,
    is_contrast,
    normalize_outcome,
)
from enrich.mapping import Row


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("EXPLOITED", "EXPLOITED"),
        ("blocked", "BLOCKED"),
        ("INEFFECTIVE", "PROBED"),
        ("ineffective", "PROBED"),
        ("PROBED", "PROBED"),
        ("SUSPICIOUS", "SUSPICIOUS"),
        ("BLOCKED_AT_PERIMETER", "BLOCKED"),
        ("success", "success"),
        ("SUCCESS", "success"),
        ("Success", "success"),
        ("failure", "FAILURE"),
    ],
)
def test_outcome_is_normalised_as_the_workbook_compares_it(
    raw: str, normal: str
) -> None:
    assert normalize_outcome(raw) == normal


def test_vendor_must_match_exactly() -> None:
    assert is_contrast("Contrast Security")
    assert not is_contrast("contrast security")
    assert not is_contrast("Contrast Security ")


def test_dash_and_empty_values_are_dropped() -> None:
    extensions = {"src": "-", "spt": "", "app": "a", "request": "--"}
    drop_placeholders(extensions)
    assert extensions == {"app": "a", "request": "--"}


def test_rule_and_outcome_fields_and_normalised_event_outcome() -> None:
    row: Row = {"EventOutcome": "INEFFECTIVE"}
    add_rule_and_outcome(row, {"pri": "path-traversal", "outcome": "INEFFECTIVE"})
    assert row == {
        "EventOutcome": "PROBED",
        "Rule": "path-traversal",
        "Outcome": "PROBED",
    }


def test_no_outcome_means_no_outcome_fields() -> None:
    row: Row = {}
    add_rule_and_outcome(row, {"pri": "xxe"})
    assert row == {"Rule": "xxe"}
