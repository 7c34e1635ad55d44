"""OpenTelemetry's header capture never records the token, whatever it is told.

The SDK's own session puts ``Authorization`` on each request in a middleware, after
aiohttp has shown the request's headers to its ``TraceConfig``s, so a trace config that
captures every request header (``captured_request_headers=[".*"]`` with no
``sensitive_headers``, or ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST``
for ``AioHttpClientInstrumentor``) records the others and never the token. Also held
here, as the tracing guide states them: the instrumentor and ``trace_configs`` together
give two spans per attempt, and the ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``
variables do nothing for ``create_trace_config()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.aiohttp_client import (
    AioHttpClientInstrumentor,
    create_trace_config,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncbackups import BackupsClient
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "s3cr3t-token-for-tracing"
CAPTURE_ALL = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def instrumented(
    spans: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemorySpanExporter]:
    """``AioHttpClientInstrumentor`` on, told by the environment to capture every header."""
    provider, exporter = spans
    monkeypatch.setenv(CAPTURE_ALL, ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


async def _work(api: FakeBackupsAPI, **options: Any) -> int:
    """A read, a list, a create and a delete; the number of HTTP attempts they made."""
    async with BackupsClient(TOKEN, base_url=api.base_url, **options) as client:
        await client.backups.get(501)
        await client.backups.list(server_id=12345)
        made = await client.backups.create(12345, description="traced")
        await client.backups.delete(made.id)
    assert all(record.status is not None and record.status < 300 for record in api.request_log)
    return len(api.request_log)


def _attributes(finished: tuple[ReadableSpan, ...]) -> list[tuple[str, str]]:
    return [
        (key, str(value)) for span in finished for key, value in (span.attributes or {}).items()
    ]


async def test_capturing_every_request_header_records_all_but_the_token(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    config = create_trace_config(
        tracer_provider=provider,
        captured_request_headers=[".*"],
        captured_response_headers=[".*"],
    )
    async with FakeBackupsAPI(token=TOKEN) as api:
        attempts = await _work(api, trace_configs=[config])
    finished = exporter.get_finished_spans()
    assert len(finished) == attempts == 4  # one span per attempt: get, list, create, delete
    attributes = _attributes(finished)
    names = {key for key, _ in attributes}
    assert "http.request.header.user_agent" in names  # capture is on...
    assert not any("authorization" in key for key in names)  # ...and skips the token
    assert not any(TOKEN in value for _, value in attributes)


async def test_the_instrumentor_told_by_the_environment_never_records_the_token(
    instrumented: InMemorySpanExporter,
) -> None:
    async with FakeBackupsAPI(token=TOKEN) as api:
        attempts = await _work(api)
    finished = instrumented.get_finished_spans()
    assert len(finished) == attempts
    attributes = _attributes(finished)
    assert any(key.startswith("http.request.header.") for key, _ in attributes)
    assert not any(TOKEN in value for _, value in attributes)


async def test_the_instrumentor_and_trace_configs_together_give_two_spans_an_attempt(
    instrumented: InMemorySpanExporter, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, _ = spans
    async with FakeBackupsAPI(token=TOKEN) as api:
        attempts = await _work(api, trace_configs=[create_trace_config(tracer_provider=provider)])
    assert len(instrumented.get_finished_spans()) == 2 * attempts


async def test_the_capture_variables_do_nothing_for_create_trace_config(
    spans: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    provider, exporter = spans
    monkeypatch.setenv(CAPTURE_ALL, ".*")
    async with FakeBackupsAPI(token=TOKEN) as api:
        await _work(api, trace_configs=[create_trace_config(tracer_provider=provider)])
    names = {key for key, _ in _attributes(exporter.get_finished_spans())}
    assert not any(key.startswith("http.request.header.") for key in names)
