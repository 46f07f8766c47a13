"""Parse a CEF payload into its seven header fields and its extension pairs.

The rules follow the ArcSight CEF standard where it speaks, and what the
producers seen in the field need where they stray from it:

* Header: exactly seven fields, each ended by an unescaped ``|``. ``\\\\`` and
  ``\\|`` are unescaped, and ``\\=`` too (the Java agent writes it); any other
  backslash pair stays as it is. Fields are not trimmed. The version is digits,
  optionally after spaces (a relay may write ``CEF: 0``).
* Extension: a key is ``[A-Za-z0-9_][A-Za-z0-9_.,[]-]*`` right before ``=``, at
  the start or after a space. A value runs to the spaces before the next key
  and is right-trimmed; ``|``, quotes and unescaped ``=`` are plain text.
  ``\\\\ \\= \\n \\r`` are decoded in one left-to-right scan; other pairs and a
  dangling backslash stay literal. The last of duplicate keys wins.
* Legacy Python agents wrap every pair in single quotes; those quotes go.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

HEADER_FIELD_NAMES: Final = (
    "Version",
    "Device Vendor",
    "Device Product",
    "Device Version",
    "Signature ID",
    "Name",
    "Severity",
)

_VERSION = re.compile(r" *([0-9]+)")
_HEADER_ESCAPE = re.compile(r"\\([\\|=])")

_KEY: Final = r"[A-Za-z0-9_][A-Za-z0-9_.,\[\]-]*+"
_BLANK: Final = " \t\r\n"
_NEXT_KEY = re.compile(rf"  *({_KEY})=")  # "  *", not " +": a faster scan
_LEGACY_FIRST_KEY = re.compile(rf"'{_KEY}=")
_LEGACY_SEPARATOR = re.compile(rf"' +'(?={_KEY}=)")
_STARTS_WITH_KEY = re.compile(rf"[{_BLANK}]*'?{_KEY}=")
_VALUE_ESCAPE = re.compile(r"\\[\\=nr]")
_VALUE_UNESCAPED: Final = {"\\\\": "\\", "\\=": "=", "\\n": "\n", "\\r": "\r"}


class CefSyntaxError(ValueError):
    """The payload is not valid CEF; ``reason`` is a short stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CefEvent(NamedTuple):
    """One parsed CEF payload, header fields unescaped, values decoded."""

    version: str
    device_vendor: str
    device_product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extensions: dict[str, str]
    duplicate_keys: tuple[str, ...] = ()


def parse_cef(text: str, start: int = 0) -> CefEvent:
    """Parse the CEF payload that begins with ``CEF:`` at ``text[start]``.

    Raises:
        CefSyntaxError: the header is incomplete, its version is not an
            integer, or the extension does not start with ``key=``.
    """
    fields = text[start:].split("|", 7)
    if len(fields) < 8:
        raise _incomplete_header(text, *_terminated_fields(text, start))
    header_end = len(text) - len(fields[7])
    if text.find("\\", start, header_end) >= 0:
        if text.find("\\|", start, header_end) >= 0:  # a pipe may be escaped
            fields = _split_escaped_header(text, start)
        else:
            fields[:7] = [_unescape_header_field(field) for field in fields[:7]]
    head, vendor, product, device_version, signature_id, name, severity, rest = fields
    extensions, duplicates = parse_extension(rest)
    return CefEvent(
        "0" if head == "CEF:0" else _parse_version(head),
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
        extensions,
        duplicates,
    )


def parse_extension(text: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """Decoded ``key -> value`` pairs of a CEF extension.

    Returns:
        The pairs in order of first appearance (the last value of a duplicated
        key wins) and the keys that were duplicated.
    """
    # One C-level split cuts " k1=v1  k2=v2" into ["", k1, v1, k2, v2, ...],
    # the run of spaces before each key dropped: that is all a value loses at
    # its end, but for the last one, which the strip below trims of spaces,
    # TABs and line ends. Values need more work only when they hold escapes.
    body = text.strip(_BLANK)
    parts = _NEXT_KEY.split(" " + body)
    if parts[0]:
        return _parse_unusual_extension(body)
    pairs = iter(parts)
    next(pairs)
    values = dict(zip(pairs, pairs, strict=False))

    if "\\" in body:
        for key, raw in values.items():
            if "\\" in raw:
                values[key] = _VALUE_ESCAPE.sub(_decode_value_escape, raw)
    if len(parts) == 2 * len(values) + 1:
        return values, ()
    return values, _duplicated(parts[1::2])


def unescape_value(raw: str) -> str:
    """Decode ``\\\\ \\= \\n \\r`` in one scan; other backslashes stay."""
    if "\\" not in raw:
        return raw
    return _VALUE_ESCAPE.sub(_decode_value_escape, raw)


def _decode_value_escape(pair: re.Match[str]) -> str:
    return _VALUE_UNESCAPED[pair.group()]


def _unescape_header_field(field: str) -> str:
    """``\\\\``, ``\\|`` and ``\\=`` decoded in one scan; other pairs kept."""
    if "\\" not in field:
        return field
    if "\\\\" in field or "\\|" in field:
        return _HEADER_ESCAPE.sub(_unescaped_pair, field)
    return field.replace("\\=", "=")  # no other escape to interfere with


def _unescaped_pair(pair: re.Match[str]) -> str:
    return pair.group(1)


def _duplicated(keys: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    duplicates: list[str] = []
    for key in keys:
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return tuple(duplicates)


def _parse_unusual_extension(body: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """An empty extension, legacy single-quoted pairs, or a malformed one."""
    if not body:
        return {}, ()
    if _LEGACY_FIRST_KEY.match(body) is None:
        raise CefSyntaxError(
            "cef_extension_malformed",
            f"extension does not start with key=: {body[:40]!r}",
        )

    values: dict[str, str] = {}
    keys: list[str] = []
    for pair in _LEGACY_SEPARATOR.split(body[1:].removesuffix("'")):
        key, _, raw = pair.partition("=")
        values[key] = unescape_value(raw.rstrip(_BLANK))
        keys.append(key)
    return values, _duplicated(keys)


def _split_escaped_header(text: str, start: int) -> list[str]:
    """The seven unescaped header fields and the extension text."""
    fields, end = _terminated_fields(text, start)
    if len(fields) < len(HEADER_FIELD_NAMES):
        raise _incomplete_header(text, fields, end)
    fields = [_unescape_header_field(field) for field in fields]
    fields.append(text[end:])
    return fields


def _terminated_fields(text: str, start: int) -> tuple[list[str], int]:
    """Up to seven raw header fields, each ended by an unescaped ``|``.

    A plain split is rejoined wherever a piece ends in an odd number of
    backslashes, i.e. where its ``|`` was escaped.

    Returns:
        The fields and the index just past the last field's ``|``.
    """
    fields: list[str] = []
    pending: str | None = None
    end = start
    for piece in text[start:].split("|")[:-1]:
        end += len(piece) + 1
        pending = piece if pending is None else f"{pending}|{piece}"
        if (len(pending) - len(pending.rstrip("\\"))) % 2 == 0:
            fields.append(pending)
            pending = None
            if len(fields) == len(HEADER_FIELD_NAMES):
                break
    if pending is not None:
        end -= len(pending) + 1
    return fields, end


def _parse_version(field: str) -> str:
    """The digits of ``CEF:<digits>``, spaces before them tolerated."""
    version = _VERSION.fullmatch(field, len("CEF:"))
    if version is None:
        raise CefSyntaxError(
            "cef_version_invalid",
            f"CEF version is not an integer: {field[4:24]!r}",
        )
    return version.group(1)


def _incomplete_header(text: str, fields: list[str], end: int) -> CefSyntaxError:
    """Say how many of the seven header fields arrived, and which is missing.

    Text after the last ``|`` counts as one more (unterminated) field, unless
    it reads as an extension, i.e. the header was cut short.
    """
    rest = text[end:]
    found = len(fields)
    if rest.strip(_BLANK) and not _STARTS_WITH_KEY.match(rest):
        found += 1
    if found == len(HEADER_FIELD_NAMES):
        message = "incomplete CEF header: 7th pipe (after Severity) missing"
    else:
        missing = HEADER_FIELD_NAMES[found]
        message = (
            f"incomplete CEF header: only {found} of 7 header fields (no {missing})"
        )
    return CefSyntaxError("cef_header_incomplete", message)
