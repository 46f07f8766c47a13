"""One HTTP attempt of one batch through the Logs Ingestion SDK, as plain facts.

The gzip body goes to ``LogsIngestionClient.upload`` wrapped in a seekable
stream: the SDK then sends it untouched with ``Content-Encoding: gzip`` and
keeps its bearer-token authentication in charge. azure-core's own retries are
off, and its five-minute socket timeouts replaced: what to do after a failure is
decided by :mod:`sink.retry`, with the whole picture in view.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineResponse
from azure.monitor.ingestion import LogsIngestionClient

from cefpipe.settings import SinkSettings
from sink.batch import Batch
from sink.credential import RenewableCredential
from sink.retry import Attempt, Failure, parse_retry_after

_INGESTION_PATH = "/dataCollectionRules/"
_MAX_MESSAGE_CHARS = 300  # service messages can be long; a log line should not be


class Uploader:
    """Sends batches to one data collection rule's stream.

    Thread-safe: upload threads share one client (and its connection pool).

    Args:
        sink: endpoint, rule, stream, scope, CA file and timeouts.
        credential: the identity; renewed by the delivery loop after a 401.
        client_options: extra keyword arguments for the SDK client, such as a
            test transport.
    """

    def __init__(
        self,
        sink: SinkSettings,
        credential: RenewableCredential,
        **client_options: Any,
    ) -> None:
        self._rule_id = sink.dcr_immutable_id
        self._stream_name = sink.stream_name
        options: dict[str, Any] = {
            "credential_scopes": [sink.token_scope],
            "retry_total": 0,
            "connection_timeout": sink.connect_timeout_secs,
            "read_timeout": sink.read_timeout_secs,
        }
        if sink.ca_file:
            options["connection_verify"] = str(sink.ca_file)
        options.update(client_options)
        self._client = LogsIngestionClient(sink.endpoint, credential, **options)

    def upload(self, batch: Batch) -> Attempt:
        """Send ``batch`` once and report what happened; never raises for I/O."""
        answers: list[PipelineResponse[Any, Any]] = []
        started = time.monotonic()
        try:
            self._client.upload(
                self._rule_id,
                self._stream_name,
                io.BytesIO(batch.body),
                request_id=batch.batch_id,
                raw_response_hook=answers.append,
            )
        except Exception as exc:  # every failure becomes data for the classifier
            return _failed_attempt(exc, time.monotonic() - started)
        headers = answers[-1].http_response.headers if answers else {}
        return Attempt(
            status=answers[-1].http_response.status_code if answers else 204,
            request_id=headers.get("x-ms-request-id", ""),
            elapsed_secs=time.monotonic() - started,
        )

    def close(self) -> None:
        self._client.close()


def _failed_attempt(exc: Exception, elapsed_secs: float) -> Attempt:
    """Turn an exception from the SDK into the facts of the attempt."""
    if isinstance(exc, HttpResponseError) and _from_ingestion(exc):
        return _answered_with_error(exc, elapsed_secs)
    failure = _failure_kind(exc)
    return Attempt(
        status=None,
        failure=failure,
        message=_short(f"{type(exc).__name__}: {exc}"),
        elapsed_secs=elapsed_secs,
    )


def _answered_with_error(exc: HttpResponseError, elapsed_secs: float) -> Attempt:
    response = exc.response
    assert response is not None
    headers: Mapping[str, str] = dict(getattr(response, "headers", {}).items())
    lowered = {name.lower(): value for name, value in headers.items()}
    code = exc.error.code if exc.error is not None and exc.error.code else ""
    return Attempt(
        status=response.status_code,
        error_code=code or lowered.get("x-ms-error-code", ""),
        request_id=lowered.get("x-ms-request-id", ""),
        retry_after_secs=parse_retry_after(headers, time.time()),
        message=_short(exc.message or str(exc)),
        elapsed_secs=elapsed_secs,
    )


def _from_ingestion(exc: HttpResponseError) -> bool:
    """True when the error carries the ingestion endpoint's answer.

    A credential's error can carry the *authority's* answer instead (a 400 or
    401 from the token endpoint), which says nothing about the rows.
    """
    response = exc.response
    if response is None:
        return False
    request = getattr(response, "request", None)
    return request is None or _INGESTION_PATH in str(getattr(request, "url", ""))


def _failure_kind(exc: Exception) -> Failure:
    if isinstance(exc, (ServiceRequestTimeoutError, ServiceResponseTimeoutError)):
        return Failure.TIMEOUT
    if isinstance(exc, ClientAuthenticationError):  # raised by the token request
        return Failure.CREDENTIAL
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, HttpResponseError)):
        return Failure.CONNECTION
    return Failure.UNEXPECTED


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "…"
