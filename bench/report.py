"""How every benchmark script talks: detail lines indented, one summary line flush.

``run_all`` keeps each script's lines that do not start with a space as its
summary; everything else is detail for the reader of the full output.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


def detail(text: str) -> None:
    print(f"  {text}", flush=True)


def summary(label: str, text: str) -> None:
    print(f"{label}: {text}", flush=True)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "MISSED"


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def options(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run: tiny corpus, 1 round"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs) afterwards"
    )
    return parser


@contextmanager
def work_dir(keep: bool, name: str) -> Iterator[Path]:
    """A private directory for homes and logs; removed afterwards unless ``keep``."""
    if keep:
        path = Path(tempfile.mkdtemp(prefix=f"cefpipe-bench-{name}-"))
        detail(f"work directory (kept): {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"cefpipe-bench-{name}-") as scratch:
        yield Path(scratch)


def interleaved(rounds: int, subjects: Sequence[str]) -> list[tuple[int, str]]:
    """Round by round, every subject once, in the same order each round."""
    return [(number, subject) for number in range(rounds) for subject in subjects]
