"""The benchmarks' own code stays runnable: generators, packing and the parser core.

Nothing here times anything or needs a broker; the benchmarks' numbers are
checked by running ``make bench``, not by the suite.
"""

from __future__ import annotations

from bench.bench_ingest import packed
from bench.bench_parser import cefpipe_right, measure, summary
from bench.corpus import (
    SEED,
    make_corpus,
    receive_timed_messages,
    syslog_messages,
)
from bench.profile_enrich import part_of, tally
from bench.progress import Point, percentile, steady_window
from bench.senders import fleet
from cefpipe.records import pack_messages, unpack_messages
from enrich.pipeline import Enriched, Envelope, enrich
from enrich.timestamps import format_receive_time


def test_the_corpus_is_the_same_for_the_same_seed() -> None:
    assert make_corpus(50) == make_corpus(50, SEED)
    assert make_corpus(50, SEED + 1) != make_corpus(50)


def test_every_generated_line_parses_to_its_answer() -> None:
    assert all(cefpipe_right(sample) for sample in make_corpus(300))


def test_the_corpus_has_the_variety_it_promises() -> None:
    lines = [sample.line for sample in make_corpus(500)]
    assert any("\\=" in line for line in lines)  # escapes
    assert any("2001:db8::17" in line for line in lines)  # IPv6 sources
    assert any("<129>1 " in line for line in lines)  # RFC 5424
    assert len({sample.header[2] for sample in make_corpus(500)}) >= 4  # agents


def test_receive_timed_messages_take_the_receive_time() -> None:
    received_us = 1_800_000_000_000_000
    for message in receive_timed_messages(40):
        outcome = enrich(message, Envelope(received_at_us=received_us))
        assert isinstance(outcome, Enriched)
        assert outcome.row["TimeGenerated"] == format_receive_time(received_us)


def test_the_parser_benchmark_core_runs_on_a_tiny_corpus() -> None:
    result = measure(make_corpus(30), rounds=1)
    assert result.cefpipe_right == 30
    assert result.case_total > 0
    assert summary(result).startswith("lines=30 ")


def test_packing_like_ingest_keeps_every_message() -> None:
    messages = syslog_messages(200)
    groups = packed(messages, limit=4096)
    assert len(groups) > 1
    unpacked = [
        message
        for group in groups
        for message in unpack_messages(pack_messages(group), len(group))
    ]
    assert unpacked == messages


def test_a_fleet_deals_every_message_once() -> None:
    messages = syslog_messages(103)
    agents = fleet(messages, 10)
    assert len({agent.source for agent in agents}) == 10
    assert sorted(m for agent in agents for m in agent.messages) == sorted(messages)
    assert fleet(messages, 1)[0].source == "127.0.0.1"


def test_the_steady_window_leaves_out_start_up_and_tail() -> None:
    points = [Point(0.0, 0, False), Point(1.0, 0, False)]
    points += [Point(1.0 + n, 100 * n, True) for n in range(1, 11)]
    window = steady_window(points, 1000)
    assert window.first.done == 100
    assert window.last.done == 1000
    assert window.rate == 100.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0


def test_profile_samples_go_to_the_deepest_known_part() -> None:
    parse = (
        "run (enrich/main.py:63);BatchEnricher.submit (enrich/batch.py:126);"
        "enrich (enrich/pipeline.py:78);_compile (re/__init__.py:10)"
    )
    faust = "Worker.execute_from_commandline (mode/worker.py:264);ack (faust/x.py:1)"
    loop = "run (enrich/main.py:63);Worker.execute_from_commandline (mode/worker.py:2)"
    assert part_of(parse) == "parse+map"
    assert part_of(faust) == "faust+mode"
    assert part_of(loop) == "event loop"
    assert tally(f"{parse} 3\n{faust} 2\n") == {"parse+map": 3, "faust+mode": 2}
