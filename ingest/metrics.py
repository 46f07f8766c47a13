"""What the syslog listener counts; served by :class:`cefpipe.metrics.MetricsServer`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from cefpipe.metrics import ERRORS as ERRORS  # this stage's errors, by kind

MESSAGES_RECEIVED = Counter(
    "cefpipe_ingest_messages_received",
    "Syslog messages cut from the wire, by transport.",
    ["transport"],
)
BYTES_RECEIVED = Counter(
    "cefpipe_ingest_bytes_received",
    "Bytes read from syslog senders, by transport.",
    ["transport"],
)
MESSAGES_PUBLISHED = Counter(
    "cefpipe_ingest_messages_published",
    "Messages the broker acknowledged on the raw topic.",
)
RECORDS_PUBLISHED = Counter(
    "cefpipe_ingest_records_published",
    "Raw records the broker acknowledged (one record may pack several messages).",
)
MESSAGES_DEAD_LETTERED = Counter(
    "cefpipe_ingest_messages_dead_lettered",
    "Messages sent to the dead-letter topic instead of the raw topic, by reason.",
    ["reason"],
)
EMPTY_FRAMES = Counter(
    "cefpipe_ingest_empty_frames",
    "Zero-length frames (consecutive delimiters): framing, not messages.",
)
CONNECTIONS_OPEN = Gauge(
    "cefpipe_ingest_connections_open",
    "Stream connections open now, by transport.",
    ["transport"],
)
CONNECTIONS_REFUSED = Counter(
    "cefpipe_ingest_connections_refused",
    "Stream connections closed on arrival, by reason: sender_limit or total_limit "
    "(every candidate for eviction was busy), or shutting_down.",
    ["reason"],
)
CONNECTIONS_EVICTED = Counter(
    "cefpipe_ingest_connections_evicted",
    "Idle stream connections closed to admit a new one, by the limit reached: "
    "sender_limit or total_limit.",
    ["reason"],
)
DATAGRAMS_KERNEL_DROPPED = Counter(
    "cefpipe_ingest_kernel_dropped_datagrams",
    "UDP datagrams the kernel dropped because the socket's receive buffer was full.",
)
PRODUCER_QUEUE = Gauge(
    "cefpipe_ingest_producer_queue_messages",
    "Messages waiting in the Kafka producer's local queue.",
)
BACKPRESSURE_SECONDS = Counter(
    "cefpipe_ingest_backpressure_seconds",
    "Time spent not reading from senders because the producer queue was full.",
)
