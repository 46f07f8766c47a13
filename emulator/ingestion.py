"""The Logs Ingestion API upload endpoint, as strict as the real service or more.

``POST /dataCollectionRules/{dcr}/streams/{stream}?api-version=...`` is checked
in this order, each refusal answered with the service's error shape
(``{"error": {"code", "message"}}`` plus ``x-ms-error-code`` and
``x-ms-request-id`` headers):

1. bearer token present, known, unexpired and issued for Azure Monitor (401);
2. a supported ``api-version`` (400);
3. the configured rule's immutable id and stream (404);
4. at most 1,048,576 bytes on the wire (413 ``ContentLengthLimitExceeded``);
5. gzip, when declared, that inflates to at most 50 MiB (413
   ``PayloadSizeLimitExceeded``) and is well formed (400);
6. a JSON array of objects whose keys are declared stream columns and whose
   values fit the column types (400, naming the first bad record and column).

An upload that passes may still meet an injected fault (see
:mod:`emulator.faults`); otherwise its rows are stored and the answer is 204.
Every upload is kept in a bounded in-memory request log and counted in metrics.

The error codes for 401, 400 and 404 are this emulator's choice: the service's
exact codes for those cases are not published.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web
from prometheus_client import Counter

from cefpipe.schema import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    STREAM_COLUMNS,
    ColumnType,
)
from cefpipe.settings import EmulatorSettings
from emulator.entra import MONITOR_AUDIENCE, TokenIssuer, TokenVerdict
from emulator.faults import Fault, FaultBoard, FaultKind, find_marked_value
from emulator.store import Store

logger = logging.getLogger(__name__)

# TODO: the per-rule rate limits (12,000 requests and 2 GB a minute) are not
# enforced; a 429 fault stands in for throttling.
MAX_CONTENT_LENGTH_BYTES: Final = 1_048_576
MAX_DECOMPRESSED_BYTES: Final = 50 * 1024 * 1024
API_VERSIONS: Final = frozenset({"2023-01-01", "2021-11-01-preview"})
CONTENT_LENGTH_MESSAGE: Final = (
    f"Maximum allowed content length: {MAX_CONTENT_LENGTH_BYTES} bytes."
)
# An oversized body is still read (and thrown away) up to this much, so the
# client reads our 413 rather than a reset connection.
_DISCARD_LIMIT_BYTES: Final = 64 * 1024 * 1024
REQUEST_LOG_ENTRIES: Final = 100_000

REQUESTS = Counter(
    "cefpipe_emulator_requests_total",
    "Uploads answered by the emulator, by HTTP status and error code.",
    ["status", "reason"],
)
STORED_ROWS = Counter(
    "cefpipe_emulator_stored_rows_total", "Rows the emulator accepted and stored."
)
RECEIVED_BYTES = Counter(
    "cefpipe_emulator_received_bytes_total", "Upload body bytes as sent on the wire."
)
DECOMPRESSED_BYTES = Counter(
    "cefpipe_emulator_decompressed_bytes_total",
    "Upload body bytes after gzip decoding.",
)

# Answers for a status fault that brings no code or message of its own.
_FAULT_DEFAULTS: Final[dict[int, tuple[str, str]]] = {
    408: ("RequestTimeout", "The request timed out before it could be processed."),
    413: ("ContentLengthLimitExceeded", CONTENT_LENGTH_MESSAGE),
    429: ("TooManyRequests", "Too many requests. Retry after the given delay."),
    500: ("InternalServerError", "The service met an internal error."),
    502: ("BadGateway", "The service received a bad answer from upstream."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The service timed out waiting for upstream."),
}


class UploadError(Exception):
    """An upload the service refuses: the status and error to answer with."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class RequestRecord:
    """What the request log keeps about one upload; never its payload."""

    time: str
    request_id: str
    client_request_id: str | None
    content_encoding: str | None
    status: int | None = None
    error_code: str | None = None
    wire_bytes: int = 0
    decompressed_bytes: int = 0
    rows: int = 0
    fault: str | None = None
    duration_ms: float = 0.0


class RequestLog:
    """The newest uploads, oldest first; safe to read from any thread."""

    def __init__(self, max_entries: int = REQUEST_LOG_ENTRIES) -> None:
        self._entries: collections.deque[RequestRecord] = collections.deque(
            maxlen=max_entries
        )
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._entries.append(record)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dataclasses.asdict(record) for record in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class IngestionEndpoint:
    """The upload handler, bound to the emulator's token issuer, faults and store."""

    settings: EmulatorSettings
    tokens: TokenIssuer
    faults: FaultBoard
    store: Store
    log: RequestLog

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/dataCollectionRules/{dcr}/streams/{stream}", self.upload)]

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Answer one upload, then log and count it whatever happened."""
        started = time.perf_counter()
        record = RequestRecord(
            time=_utc_now_iso(),
            request_id=str(uuid.uuid4()),
            client_request_id=request.headers.get("x-ms-client-request-id"),
            content_encoding=request.headers.get("Content-Encoding"),
        )
        try:
            return await self._answer(request, record)
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            self._account(record)

    async def _answer(
        self, request: web.Request, record: RequestRecord
    ) -> web.StreamResponse:
        try:
            body = await _read_body(request, record)
            self._authorize(request)
            _check_api_version(request)
            self._check_target(request)
            _check_wire_size(request, record.wire_bytes)
            payload = _decode(body, record.content_encoding)
            record.decompressed_bytes = len(payload)
            rows = parse_rows(payload, self.settings.stream_name)
            record.rows = len(rows)

            fault = self.faults.choose(rows)
            if fault is not None:
                record.fault = fault.describe()
                if fault.kind is FaultKind.DROP:
                    return _drop_connection(request)
                await _apply_fault(fault, rows)

            await self._store_rows(rows, record)
            return _no_content(request, record)
        except UploadError as error:
            return _error_response(request, record, error)

    def _authorize(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UploadError(
                401,
                "AuthenticationFailed",
                "Authentication failed: the Authorization header is missing or "
                "is not a bearer token.",
            )
        verdict = self.tokens.verdict(token.strip(), MONITOR_AUDIENCE)
        if verdict is TokenVerdict.UNKNOWN:
            raise UploadError(
                401, "InvalidAuthenticationToken", "The access token is invalid."
            )
        if verdict is TokenVerdict.EXPIRED:
            raise UploadError(
                401, "TokenExpired", "The access token has expired. Get a new one."
            )
        if verdict is TokenVerdict.WRONG_AUDIENCE:
            raise UploadError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token was not issued for '{MONITOR_AUDIENCE}'.",
            )

    def _check_target(self, request: web.Request) -> None:
        dcr = request.match_info["dcr"]
        stream = request.match_info["stream"]
        if dcr != self.settings.dcr_immutable_id:
            raise UploadError(
                404,
                "DataCollectionRuleNotFound",
                f"Data collection rule with immutable Id '{dcr}' was not found.",
            )
        if stream != self.settings.stream_name:
            raise UploadError(
                404,
                "StreamNotFound",
                f"Stream '{stream}' is not declared in data collection rule '{dcr}'.",
            )

    async def _store_rows(
        self, rows: list[dict[str, Any]], record: RequestRecord
    ) -> None:
        """Store the rows as the table keeps them; a row without TimeGenerated
        gets the ingestion time, as the service stamps it."""
        # TODO: the service also re-stamps (or drops; its docs disagree) rows
        # whose TimeGenerated is over two days old or a day ahead, and cuts
        # values over 64 KB; neither is emulated, rows are stored as sent.
        ingested_at = _utc_now_iso()
        for row in rows:
            if row.get("TimeGenerated") is None:
                row["TimeGenerated"] = ingested_at
        await asyncio.to_thread(
            self.store.insert,
            rows,
            request_id=record.request_id,
            ingested_at=ingested_at,
        )
        STORED_ROWS.inc(len(rows))

    def _account(self, record: RequestRecord) -> None:
        self.log.append(record)
        REQUESTS.labels(
            status=str(record.status or "none"), reason=record.error_code or "none"
        ).inc()
        RECEIVED_BYTES.inc(record.wire_bytes)
        DECOMPRESSED_BYTES.inc(record.decompressed_bytes)
        logger.info(
            "upload answered status=%s code=%s rows=%d wire_bytes=%d raw_bytes=%d "
            "ms=%.1f request_id=%s fault=%s",
            record.status or "none",
            record.error_code or "-",
            record.rows,
            record.wire_bytes,
            record.decompressed_bytes,
            record.duration_ms,
            record.request_id,
            record.fault or "-",
        )


def parse_rows(payload: bytes, stream: str) -> list[dict[str, Any]]:
    """The records of an upload body, each checked against the stream columns.

    Stricter than the service on purpose: it answers 204 to a bare object
    and silently stores nothing, which hides a client bug; here that is a 400.

    Raises:
        UploadError: 400 for bad JSON, a body that is not an array of
            objects, or the first undeclared column or ill-typed value.
    """
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise UploadError(
            400, "InvalidJson", f"The request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(document, list):
        raise UploadError(
            400, "InvalidPayload", "The request body must be a JSON array of records."
        )
    for index, record in enumerate(document):
        _check_record(index, record, stream)
    return document


def _check_record(index: int, record: object, stream: str) -> None:
    if not isinstance(record, dict):
        raise UploadError(
            400, "InvalidPayload", f"Record {index} is not a JSON object."
        )
    for column, value in record.items():
        kind = STREAM_COLUMNS.get(column)
        if kind is None:
            raise UploadError(
                400,
                "InvalidPayload",
                f"Record {index}: column '{column}' is not declared in stream "
                f"'{stream}'.",
            )
        if value is not None and not value_fits(kind, value):
            raise UploadError(
                400,
                "InvalidPayload",
                f"Record {index}: the value of column '{column}' is not a valid "
                f"{kind.value}.",
            )


def value_fits(kind: ColumnType, value: object) -> bool:
    """Whether a non-null JSON value can be stored in a column of ``kind``."""
    if kind is ColumnType.STRING:
        return isinstance(value, str)
    if kind is ColumnType.REAL:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is ColumnType.DATETIME:
        return isinstance(value, str) and _is_iso8601(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    if kind is ColumnType.INT:
        return INT32_MIN <= value <= INT32_MAX
    return INT64_MIN <= value <= INT64_MAX


def _is_iso8601(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


async def _read_body(request: web.Request, record: RequestRecord) -> bytes:
    """The raw body as sent (never inflated by the server); past the size limit
    the rest is counted and thrown away."""
    kept = bytearray()
    async for chunk in request.content.iter_any():
        record.wire_bytes += len(chunk)
        if record.wire_bytes <= MAX_CONTENT_LENGTH_BYTES:
            kept += chunk
        if record.wire_bytes > _DISCARD_LIMIT_BYTES:
            break
    return bytes(kept)


def _check_api_version(request: web.Request) -> None:
    version = request.query.get("api-version")
    if version is None:
        raise UploadError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required.",
        )
    if version not in API_VERSIONS:
        supported = ", ".join(sorted(API_VERSIONS))
        raise UploadError(
            400,
            "UnsupportedApiVersion",
            f"The api-version '{version}' is not supported. Supported versions: "
            f"{supported}.",
        )


def _check_wire_size(request: web.Request, received: int) -> None:
    declared = request.content_length or 0
    if max(declared, received) > MAX_CONTENT_LENGTH_BYTES:
        raise UploadError(413, "ContentLengthLimitExceeded", CONTENT_LENGTH_MESSAGE)


def _decode(body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UploadError(
            400,
            "UnsupportedContentEncoding",
            f"Content-Encoding '{content_encoding}' is not supported; use gzip.",
        )
    return _gunzip(body, MAX_DECOMPRESSED_BYTES)


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip data (one or more members) without ever exceeding ``limit``."""
    out = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise UploadError(
                400, "InvalidContentEncoding", f"The body is not valid gzip: {exc}."
            ) from None
        if len(out) > limit:
            raise UploadError(
                413,
                "PayloadSizeLimitExceeded",
                f"Maximum allowed decompressed payload size: {limit} bytes.",
            )
        if not inflater.eof:
            raise UploadError(
                400, "InvalidContentEncoding", "The gzip body is truncated."
            )
        rest = inflater.unused_data
    return bytes(out)


async def _apply_fault(fault: Fault, rows: list[dict[str, Any]]) -> None:
    """Wait out a delay fault; raise the refusal a status or bad_rows fault makes."""
    if fault.kind is FaultKind.DELAY:
        await asyncio.sleep(fault.secs)
        return
    if fault.kind is FaultKind.BAD_ROWS:
        index, column = find_marked_value(rows, fault.marker) or (0, "")
        raise UploadError(
            400,
            fault.code or "InvalidPayload",
            fault.message
            or f"Record {index}: the value of column '{column}' was rejected.",
        )
    status = fault.status or 500
    code, message = _FAULT_DEFAULTS.get(
        status, ("InjectedFault", f"The emulator answered {status} as instructed.")
    )
    raise UploadError(
        status,
        fault.code or code,
        fault.message or message,
        headers=_retry_headers(fault),
    )


def _retry_headers(fault: Fault) -> dict[str, str]:
    headers: dict[str, str] = {}
    retry_after = fault.retry_after_header(dt.datetime.now(dt.UTC))
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


def _drop_connection(request: web.Request) -> web.StreamResponse:
    """Close the connection unanswered; aiohttp then discards the placeholder."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _no_content(request: web.Request, record: RequestRecord) -> web.Response:
    record.status = 204
    return web.Response(status=204, headers=_service_headers(record))


def _error_response(
    request: web.Request, record: RequestRecord, error: UploadError
) -> web.Response:
    record.status = error.status
    record.error_code = error.code
    headers = {
        **_service_headers(record),
        "x-ms-error-code": error.code,
        **error.headers,
    }
    response = web.json_response(
        {"error": {"code": error.code, "message": error.message}},
        status=error.status,
        headers=headers,
    )
    if not request.content.at_eof():
        # Part of an oversized body is still unread; do not reuse the connection.
        response.force_close()
    return response


def _service_headers(record: RequestRecord) -> dict[str, str]:
    headers = {"x-ms-request-id": record.request_id}
    if record.client_request_id:
        headers["x-ms-client-request-id"] = record.client_request_id
    return headers


def _utc_now_iso() -> str:
    return (
        dt.datetime.now(dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )
