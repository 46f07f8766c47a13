"""The shared cases with their right answers, as copied into ``tests/data/cases``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.framing import FrameDecoder

CASES_DIR = Path(__file__).resolve().parent.parent / "data" / "cases"

# Rejection reason codes for the reason texts the cases use.
REASON_CODES = {
    "empty message": "empty_message",
    "not CEF": "not_cef",
    "malformed CEF": "cef_header_incomplete",
    "incomplete CEF header": "cef_header_incomplete",
    "CEF version is not an integer": "cef_version_invalid",
    "extension does not start with key=": "cef_extension_malformed",
}


def load(name: str) -> list[dict[str, Any]]:
    lines = (CASES_DIR / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def wire_bytes(case: dict[str, Any]) -> bytes:
    """The message bytes as enrich receives them (framing removed)."""
    raw = bytes.fromhex(case["raw_hex"]) if "raw_hex" in case else case["raw"].encode()
    if case.get("transport") == "tcp-octet-counted":
        decoder = FrameDecoder(1 << 20)
        frames = [*decoder.feed(raw), *decoder.close()]
        assert len(frames) == 1
        assert frames[0].octet_counted
        return frames[0].data
    return raw


def reason_code(reason_text: str) -> str:
    """The reason code a case's reason text stands for."""
    for prefix, code in REASON_CODES.items():
        if reason_text.startswith(prefix):
            return code
    raise AssertionError(f"no reason code for {reason_text!r}")
