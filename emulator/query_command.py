"""``cefpipe query``: run a connector query over the emulator's stored rows.

Reads the SQLite store directly, so it works whether or not the emulator is
running; before the first upload there is simply nothing to show.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from typing import Final, TextIO

import orjson

from cefpipe.settings import Settings
from emulator.queries import PROJECTED_COLUMNS, Query, QueryRow, run_query
from emulator.store import read_rows

# Widest a value may be in the text table; JSON output is never shortened.
MAX_CELL_CHARS: Final = 48
_ELLIPSIS: Final = "…"
_CONTROLS_TO_SPACES: Final = {code: " " for code in range(32)}


def run(settings: Settings, query: str, *, as_json: bool) -> int:
    """Print the rows of ``query`` (all-attacks or effective-attacks).

    Args:
        settings: where the store lives.
        query: the query's command-line name.
        as_json: one JSON object per row, with exactly the projected columns.

    Returns:
        The exit status: 0 on success, 1 if the store cannot be read, 2 for an
        unknown query.
    """
    try:
        chosen = Query(query)
    except ValueError:
        print(f"cefpipe query: unknown query {query!r}", file=sys.stderr)
        return 2
    try:
        stored = read_rows(settings.emulator_db_file)
    except sqlite3.Error as exc:
        print(
            f"cefpipe query: cannot read {settings.emulator_db_file}: {exc}",
            file=sys.stderr,
        )
        return 1

    if not stored and not settings.emulator_db_file.exists():
        print(
            f"cefpipe query: no rows stored yet ({settings.emulator_db_file} does "
            "not exist; is CEFPIPE_HOME the stack's?)",
            file=sys.stderr,
        )
    results = run_query(chosen, stored)
    if as_json:
        write_json_lines(results, sys.stdout)
    else:
        write_table(results, sys.stdout)
    return 0


def write_json_lines(rows: Sequence[QueryRow], out: TextIO) -> None:
    for row in rows:
        out.write(orjson.dumps(row).decode() + "\n")


def write_table(rows: Sequence[QueryRow], out: TextIO) -> None:
    """An aligned table with a header, long values shortened, and a row count."""
    cells = [[_shorten(row[column]) for column in PROJECTED_COLUMNS] for row in rows]
    widths = [
        max([len(header), *(len(line[index]) for line in cells)])
        for index, header in enumerate(PROJECTED_COLUMNS)
    ]
    out.write(_line(PROJECTED_COLUMNS, widths))
    out.write(_line(["-" * width for width in widths], widths))
    for line in cells:
        out.write(_line(line, widths))
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def _line(values: Sequence[str], widths: Sequence[int]) -> str:
    padded = (value.ljust(width) for value, width in zip(values, widths, strict=True))
    return "  ".join(padded).rstrip() + "\n"


def _shorten(value: str) -> str:
    """One line, at most MAX_CELL_CHARS wide."""
    flat = value.translate(_CONTROLS_TO_SPACES)
    if len(flat) <= MAX_CELL_CHARS:
        return flat
    return flat[: MAX_CELL_CHARS - len(_ELLIPSIS)] + _ELLIPSIS
