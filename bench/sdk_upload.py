"""The peer the sink is measured against: rows passed straight to the Azure SDK.

Reads the enriched topic's rows into memory first (not timed), parses them into
the dicts a caller of ``LogsIngestionClient.upload()`` would hold, then hands
the whole list to ``upload()``, which cuts it into 1 MiB chunks of JSON, gzips
each, and sends them one after another. Settings (endpoint, rule, stream,
identity, CA) come from the environment exactly as the sink's do.

Run by ``bench.bench_sink`` as its own process; writes the wall and CPU
seconds ``upload`` took to RESULT_FILE::

    python -m bench.sdk_upload BOOTSTRAP TOPIC ROWS RESULT_FILE
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from azure.monitor.ingestion import LogsIngestionClient

from bench.kafka import read_topic
from cefpipe.settings import Settings
from sink.credential import build_credential


def main(argv: Sequence[str]) -> int:
    bootstrap, topic, count, result = argv[0], argv[1], int(argv[2]), Path(argv[3])
    sink = Settings.from_env().sink
    rows = [
        orjson.loads(record.value) for record in read_topic(bootstrap, topic, count)
    ]
    credential = build_credential(sink)
    client = LogsIngestionClient(
        sink.endpoint,
        credential,
        credential_scopes=[sink.token_scope],
        connection_verify=str(sink.ca_file),
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    client.upload(sink.dcr_immutable_id, sink.stream_name, rows)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    result.write_text(f"{wall:.3f} {cpu:.3f}\n")
    client.close()
    credential.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
