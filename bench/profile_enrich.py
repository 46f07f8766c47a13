"""Where the enrich worker's time goes, per event, on packed and unpacked input.

Enrich is the slowest stage per core (see the other benchmarks), so this is the
profile that matters. A Faust worker (``python -m cefpipe enrich``) runs on each
raw topic of :mod:`bench.bench_enrich`; from its first finished batch to its
last row, py-spy samples it while the benchmark counts the events it finished
and the CPU it used (whole batches only: a packed batch holds tens of thousands
of events, so a fixed sampling window would cut one in two). Each sample is
charged to the deepest frame that belongs to a known part (so time inside
``re`` called by the CEF parser counts as parsing), and CPU per event is split
in those proportions.

One message per record reproduces the worker as it was before ingest packed
messages (every record paid Faust's per-event path); packed input is the
worker now. Raw profiles (py-spy's collapsed stacks, for any flame graph tool)
are kept with ``--out DIR``.

Usage::

    .venv/bin/python -m bench.profile_enrich [--out DIR]
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.bench_enrich import (
    CONSUMED,
    FAUST_GROUP,
    RUN_TIMEOUT_SECS,
    Bench,
    Input,
    fill_packed,
    fill_single,
)
from bench.children import (
    Children,
    cefpipe_argv,
    cpu_seconds,
    exit_on_sigterm,
    metric,
)
from bench.corpus import syslog_messages
from bench.kafka import (
    TopicCounter,
    delete_group,
    delete_topics,
    free_port,
    new_topics,
    running_broker,
    set_env,
)
from bench.progress import sample_until
from bench.report import detail, options, summary, work_dir

_PARSING = tuple(
    f"enrich/{name}.py"
    for name in ("pipeline", "cef", "syslog", "mapping", "contrast", "timestamps")
)
# Parts of the worker: (part, file path prefixes, function names or None for any).
# A sample belongs to the part of its deepest frame that matches a rule; the
# rules are tried in order for each frame.
PARTS: tuple[tuple[str, tuple[str, ...], frozenset[str] | None], ...] = (
    ("encode_row", ("enrich/pipeline.py",), frozenset({"encode_row"})),
    (
        "produce",
        ("enrich/batch.py",),
        frozenset({"BatchEnricher._produce", "BatchEnricher.completed"}),
    ),
    (
        "unpack+headers",
        ("enrich/batch.py",),
        frozenset({"_messages", "_envelope", "_without_packing"}),
    ),
    ("unpack+headers", ("cefpipe/records.py",), None),
    ("parse+map", _PARSING, None),
    ("batch loop", ("enrich/batch.py", "enrich/app.py"), None),
    ("aiokafka", ("aiokafka/", "kafka/"), None),
    # The worker's frame at the top of a stack: time in uvloop's own C code.
    ("event loop", ("mode/worker.py",), frozenset({"Worker.execute_from_commandline"})),
    ("faust+mode", ("faust/", "mode/"), None),
    ("event loop", ("asyncio/", "uvloop/"), None),
)
OTHER = "other"


def _frame(text: str) -> tuple[str, str]:
    """(function, file) of one py-spy frame, ``function (file:line)``."""
    function, _, where = text.rpartition(" (")
    return function.split(".<locals>.")[0], where.rsplit(":", 1)[0]


@dataclass(frozen=True)
class Profile:
    input: Input
    events: int
    cpu_secs: float
    samples: Counter[str]

    @property
    def us_per_event(self) -> float:
        return self.cpu_secs * 1e6 / max(self.events, 1)

    def share(self, part: str) -> float:
        return self.samples[part] / max(sum(self.samples.values()), 1)


def part_of(stack: str) -> str:
    """The part a collapsed stack belongs to: its deepest recognised frame's."""
    for text in reversed(stack.split(";")):
        function, path = _frame(text)
        for part, prefixes, functions in PARTS:
            if path.startswith(prefixes) and (
                functions is None or function in functions
            ):
                return part
    return OTHER


def tally(collapsed: str) -> Counter[str]:
    """Samples per part, from py-spy's raw (collapsed stack) output."""
    samples: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples[part_of(stack)] += int(count)
    return samples


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    return found


def profile(bench: Bench, source: Input, out: Path) -> Profile:
    """Run one worker on ``source`` and sample it while it is busy."""
    delete_group(bench.bootstrap, FAUST_GROUP)
    enriched, dead = new_topics(bench.bootstrap, "enriched", "dead")
    port = free_port()
    env = set_env(
        CEFPIPE_HOME=str(bench.work / "enrich-home"),
        CEFPIPE_INSTANCE="bench-profile",
        KAFKA_BOOTSTRAP_SERVERS=bench.bootstrap,
        TOPIC_RAW=source.topic,
        TOPIC_ENRICHED=enriched,
        TOPIC_DEAD_LETTER=dead,
        ENRICH_METRICS_PORT=str(port),
        LOG_FORMAT="json",
        ENRICH_CONSUMER_GROUP=FAUST_GROUP,
    )
    worker = bench.children.start("enrich-profiled", cefpipe_argv("enrich"), env)
    try:
        _wait_busy(port, worker)
        events_before = bench.counter.records(enriched)
        cpu_before = cpu_seconds(worker.pid)
        command = [py_spy(), "record", "--pid", str(worker.pid), "--rate", "200"]
        command += ["--format", "raw", "--nonblocking", "--output", str(out)]
        spy = bench.children.start("py-spy", command, set_env())
        sample_until(
            lambda: bench.counter.records(enriched), source.messages, RUN_TIMEOUT_SECS
        )
        cpu = cpu_seconds(worker.pid) - cpu_before
        events = source.messages - events_before
        spy.send_signal(signal.SIGINT)  # py-spy writes its profile and exits
        spy.wait(30)
    finally:
        bench.children.stop(worker)
        delete_group(bench.bootstrap, FAUST_GROUP)
        delete_topics(bench.bootstrap, [enriched, dead])
    return Profile(source, events, cpu, tally(out.read_text()))


def _wait_busy(port: int, worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the enrich worker exited with {worker.returncode}")
        try:
            if metric(port, CONSUMED) > 0:
                return
        except OSError:
            pass  # its metrics page is not up yet
        time.sleep(0.05)
    raise RuntimeError("the enrich worker did not start consuming")


def describe(result: Profile) -> str:
    if not result.events or not result.samples:
        return f"{result.input.name}: no events finished while sampled"
    parts = sorted(
        (part for part in result.samples if result.share(part) >= 0.01),
        key=result.share,
        reverse=True,
    )
    cost = ", ".join(
        f"{part} {result.share(part) * result.us_per_event:.0f}" for part in parts
    )
    return f"{result.input.name}: {result.us_per_event:.0f} CPU-us/event = {cost}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = options(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--single-messages", type=int, default=50_000)
    parser.add_argument("--out", type=Path, help="keep the raw profiles here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.single_messages = 40_000, 10_000
    exit_on_sigterm()

    corpus = syslog_messages(max(args.messages, args.single_messages))
    with (
        work_dir(args.keep, "profile") as work,
        running_broker(work) as broker,
        Children(work / "logs") as children,
        TopicCounter(broker.bootstrap) as counter,
    ):
        out = args.out or work
        out.mkdir(parents=True, exist_ok=True)
        bench = Bench(children, broker.bootstrap, counter, work)
        inputs = [
            fill_single(bench, corpus[: args.single_messages]),
            fill_packed(bench, corpus[: args.messages]),
        ]
        results = []
        for source in inputs:
            slug = "single" if source.records == source.messages else "packed"
            path = out / f"enrich-{slug}.collapsed"
            results.append(profile(bench, source, path))
            detail(f"{describe(results[-1])} (µs per event by part)")
            if args.out:
                detail(f"raw profile: {path}")

    summary(
        "profile",
        "enrich worker (py-spy, CPU per event split by where samples fall) | "
        + " | ".join(describe(result) for result in results),
    )


if __name__ == "__main__":
    main()
