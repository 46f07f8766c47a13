"""What the sink counts; served by :class:`cefpipe.metrics.MetricsServer`.

Counters are exported with the ``_total`` suffix, so ``cefpipe_sink_rows_delivered``
reads ``cefpipe_sink_rows_delivered_total`` on the metrics page.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_CONSUMED = Counter(
    "cefpipe_sink_rows_consumed",
    "Enriched rows read from Kafka.",
)
ROWS_DELIVERED = Counter(
    "cefpipe_sink_rows_delivered",
    "Rows the service accepted (HTTP 204).",
)
ROWS_DEAD_LETTERED = Counter(
    "cefpipe_sink_rows_dead_lettered",
    "Rows the dead-letter topic acknowledged, by reason.",
    ["reason"],
)
REQUESTS = Counter(
    "cefpipe_sink_requests",
    "Upload attempts, by HTTP status (or failure kind), the service's error code "
    "and the classified reason.",
    ["status", "code", "reason"],
)
RETRIES = Counter(
    "cefpipe_sink_retries",
    "Upload attempts that will be repeated after a wait, by reason.",
    ["reason"],
)
BATCHES = Counter(
    "cefpipe_sink_batches",
    "Batches by final outcome: accepted, split, bisected, dead_lettered, abandoned.",
    ["outcome"],
)
RAW_BYTES = Counter(
    "cefpipe_sink_raw_bytes",
    "Decompressed JSON bytes of accepted requests.",
)
WIRE_BYTES = Counter(
    "cefpipe_sink_wire_bytes",
    "Compressed request bytes sent, every attempt counted.",
)
COMMITS = Counter(
    "cefpipe_sink_commits",
    "Offset commits, by result.",
    ["result"],
)
CONFIG_FAULTS = Counter(
    "cefpipe_sink_config_faults",
    "Answers that mean the sink is misconfigured (403, 404, ...), by reason.",
    ["reason"],
)
PAUSED_SECONDS = Counter(
    "cefpipe_sink_backpressure_seconds",
    "Time the consumer spent paused because too many bytes were buffered.",
)

UPLOAD_SECONDS = Histogram(
    "cefpipe_sink_upload_seconds",
    "Time of one upload attempt, by HTTP status.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
BATCH_WIRE_BYTES = Histogram(
    "cefpipe_sink_batch_wire_bytes",
    "Compressed size of sealed batches: how full requests are.",
    buckets=(
        10_000,
        50_000,
        100_000,
        250_000,
        500_000,
        750_000,
        900_000,
        950_000,
        990_000,
        1_048_576,
    ),
)

IN_FLIGHT_BYTES = Gauge(
    "cefpipe_sink_in_flight_bytes",
    "Decompressed bytes of batches being uploaded now.",
)
IN_FLIGHT_BATCHES = Gauge(
    "cefpipe_sink_in_flight_batches",
    "Batches being uploaded now.",
)
BUFFERED_BYTES = Gauge(
    "cefpipe_sink_buffered_bytes",
    "Decompressed bytes held by the sink: open, waiting and in-flight batches.",
)
CONSUMER_LAG = Gauge(
    "cefpipe_sink_consumer_lag_rows",
    "Rows between the consumer's position and the partition's end, sampled.",
    ["partition"],
)
CONFIG_FAULT_ACTIVE = Gauge(
    "cefpipe_sink_config_fault_active",
    "1 while uploads are stopped by a configuration fault.",
)
