"""Properties over generated input: no bytes crash enrich, escaping round-trips."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from enrich.cef import parse_cef, parse_extension
from enrich.pipeline import Enriched, Envelope, Rejection, encode_row, enrich

ENVELOPE = Envelope(1_741_968_000_000_000, peer="192.0.2.1:514", row_id="r")
KEYS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.,\[\]-]{0,12}", fullmatch=True)
# Characters that exercise every rule, so generated messages come near CEF.
CEF_ALPHABET = st.sampled_from([*list("CEF:|\\= 'ab01-\t\r\n<>[]\"\ufeffé"), "CEF:0|"])


def escape_header_field(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def escape_extension_value(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def assert_valid_result(result: Enriched | Rejection) -> None:
    if isinstance(result, Rejection):
        assert result.reason
        assert result.message
        return
    assert None not in result.row.values()
    encode_row(result.row)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_row_or_a_rejection(raw: bytes) -> None:
    assert_valid_result(enrich(raw, ENVELOPE))


@settings(max_examples=300, deadline=None)
@given(st.lists(CEF_ALPHABET, max_size=80).map("".join))
def test_near_cef_text_gives_a_row_or_a_rejection(text: str) -> None:
    assert_valid_result(enrich(("<134>Jan  1 00:00:00 h " + text).encode(), ENVELOPE))
    assert_valid_result(enrich(("CEF:0|V|P|1|1|n|1|" + text).encode(), ENVELOPE))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.integers(min_value=1, max_value=6))
def test_escaped_header_field_round_trips(field: str, position: int) -> None:
    fields = ["V", "P", "1", "1", "n", "1"]
    fields[position - 1] = escape_header_field(field)
    event = parse_cef("CEF:0|" + "|".join(fields) + "|k=v")
    assert event[position] == field
    assert event.extensions == {"k": "v"}


VALUES = st.text(max_size=40).filter(lambda value: not value.endswith((" ", "\t")))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=6))
def test_escaped_extension_values_round_trip(pairs: dict[str, str]) -> None:
    extension = " ".join(f"{k}={escape_extension_value(v)}" for k, v in pairs.items())
    values, duplicates = parse_extension(extension)
    assert values == pairs
    assert duplicates == ()
