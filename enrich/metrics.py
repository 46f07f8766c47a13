"""What the enrich stage counts: per batch where it can, per event only for rarities."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from cefpipe.metrics import ERRORS as ERRORS  # this stage's errors, by kind

MESSAGES_CONSUMED = Counter(
    "cefpipe_enrich_messages_consumed",
    "Syslog messages taken from the raw topic.",
)
RECORDS_CONSUMED = Counter(
    "cefpipe_enrich_records_consumed",
    "Raw records taken from the raw topic (a record may pack several messages).",
)
ROWS_PRODUCED = Counter(
    "cefpipe_enrich_rows_produced",
    "CommonSecurityLog rows the broker acknowledged on the enriched topic.",
)
MESSAGES_REJECTED = Counter(
    "cefpipe_enrich_messages_rejected",
    "Syslog messages that could not become a row and went to the dead-letter topic.",
    ["reason"],
)
VALUES_TRUNCATED = Counter(
    "cefpipe_enrich_values_truncated",
    "Column values cut to the service's 64 KB field limit, by column.",
    ["column"],
)
DUPLICATE_KEYS = Counter(
    "cefpipe_enrich_duplicate_keys",
    "CEF extension keys that appeared more than once in an event (the last won).",
)
TIMES_OUT_OF_WINDOW = Counter(
    "cefpipe_enrich_times_out_of_window",
    "Rows whose TimeGenerated (from rt or the syslog prefix) lies over two days "
    "before or a day after the receive time; kept, but the service may re-stamp.",
)
UNUSUAL_CEF_VERSIONS = Counter(
    "cefpipe_enrich_unusual_cef_versions",
    "Events accepted although their CEF version is neither 0 nor 1.",
)
DELIVERY_RETRIES = Counter(
    "cefpipe_enrich_delivery_retries",
    "Records produced again after Kafka refused them.",
)
BATCH_SECONDS = Histogram(
    "cefpipe_enrich_batch_seconds",
    "Time to parse, map and deliver one batch of raw records.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_EVENTS = Histogram(
    "cefpipe_enrich_batch_events",
    "Raw records per batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
