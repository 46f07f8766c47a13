"""Run every benchmark against one shared broker and collect their summary lines.

``make bench`` runs this. Each benchmark is its own script (see BENCHMARKS.md),
run here as a child process with ``KAFKA_BOOTSTRAP_SERVERS`` pointing at a
broker started once for all of them (unless that variable is already set).
Every line a script prints is shown as it comes; the lines that do not start
with a space are its summary, repeated at the end (and written to ``--output``).
A script that fails is reported and the others still run.

Usage::

    .venv/bin/python -m bench.run_all [--quick] [--output FILE]
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.children import exit_on_sigterm
from bench.kafka import running_broker
from bench.report import options, work_dir

SCRIPTS = (
    "bench.bench_parser",
    "bench.bench_ingest",
    "bench.bench_enrich",
    "bench.bench_sink",
    "bench.bench_e2e",
    "bench.profile_enrich",
)
REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    """What ran the benchmarks: cores, memory, CPU model, Python, commit."""
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    memory_gib = int(meminfo[1]) / 1024 / 1024
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores, {memory_gib:.0f} GiB, {model}; Python "
        f"{platform.python_version()}; commit {commit or 'unknown'}"
    )


def run_script(
    module: str, env: dict[str, str], extra: Sequence[str], log: Path
) -> tuple[list[str], int]:
    """Run one benchmark, echoing its output; its summary lines and exit code."""
    summaries: list[str] = []
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *extra],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=REPO,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                print(line, end="", flush=True)
                if line.strip() and not line.startswith(" "):
                    summaries.append(line.rstrip())
            return summaries, process.wait()
        finally:
            if process.poll() is None:  # interrupted: let it clean up after itself
                process.terminate()
                process.wait(120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    quick = ["--quick"] if args.quick else []

    started = time.monotonic()
    header = [
        f"cefpipe benchmarks, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
        + (" (quick)" if args.quick else ""),
        f"machine: {machine()}",
    ]
    print("\n".join(header), flush=True)
    results: list[str] = []
    failures = 0
    with work_dir(args.keep, "all") as work, running_broker(work) as broker:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
        for module in SCRIPTS:
            extra = list(quick)
            if module == "bench.bench_e2e" and broker.pid is not None:
                extra += ["--broker-pid", str(broker.pid)]
            print(f"\n== {module}", flush=True)
            log = work / f"{module}.stderr"
            began = time.monotonic()
            summaries, code = run_script(module, env, extra, log)
            print(f"   ({time.monotonic() - began:.0f}s)", flush=True)
            if code != 0:
                failures += 1
                tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                summaries = [f"{module}: FAILED (exit {code})", *tail]
            results.extend(summaries)

    footer = f"total {time.monotonic() - started:.0f}s"
    print("\n== summary\n" + "\n".join([*header, *results, footer]), flush=True)
    if args.output:
        args.output.write_text("\n".join([*header, *results, footer]) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
