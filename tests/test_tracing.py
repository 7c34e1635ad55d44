"""Observability: aiohttp ``trace_configs`` (OpenTelemetry included) and ``client.stats``."""

from __future__ import annotations

import asyncio
import copy
import pickle
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
import pytest
from conftest import (
    BACKUP_499,
    BACKUP_501,
    CREATED_502,
    TOKEN,
    LoopbackAPI,
    loopback_client,
    page,
    until,
)
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncbackups import Backup, BackupsClient, BackupStatus, ClientStats, ServerError
from asyncbackups.testing import FakeBackupsAPI


def _recording_trace_config() -> tuple[aiohttp.TraceConfig, list[tuple[str, str]]]:
    started: list[tuple[str, str]] = []

    async def on_request_start(
        session: aiohttp.ClientSession,
        context: SimpleNamespace,
        params: aiohttp.TraceRequestStartParams,
    ) -> None:
        started.append((params.method, str(params.url)))

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    return config, started


# -- plain aiohttp trace configs --------------------------------------------------------


async def test_trace_config_hears_one_request_start_per_http_attempt(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    config, started = _recording_trace_config()
    async with loopback_client(scripted_api, trace_configs=[config]) as client:
        await client.backups.get(501)
    assert started == [("GET", scripted_api.url("backups/501/"))] * 2
    assert len(scripted_api.seen) == 2


async def test_trace_config_hears_every_page_and_write(scripted_api: LoopbackAPI) -> None:
    second = scripted_api.url("backups/?page=2")
    scripted_api.answer(
        "GET", "backups/", payload={**page([BACKUP_501], next_url=second), "count": 2}
    )
    scripted_api.answer("GET", "backups/?page=2", payload={**page([BACKUP_499]), "count": 2})
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    scripted_api.answer("DELETE", "backups/501/", status=204)
    config, started = _recording_trace_config()
    async with loopback_client(scripted_api, trace_configs=[config]) as client:
        await client.backups.list()
        await client.backups.create(12345, description="x")
        await client.backups.delete(501)
    assert started == [
        ("GET", scripted_api.url("backups/")),
        ("GET", second),
        ("POST", scripted_api.url("backups/")),
        ("DELETE", scripted_api.url("backups/501/")),
    ]


async def test_trace_configs_are_shared_by_a_copy_made_by_with_options(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    config, started = _recording_trace_config()
    async with loopback_client(scripted_api, trace_configs=[config]) as client:
        await client.with_options(timeout=5.0).backups.get(501)
    assert len(started) == 1


async def test_trace_configs_with_a_borrowed_session_raise_value_error() -> None:
    config, _ = _recording_trace_config()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="trace_configs"):
            BackupsClient(
                TOKEN,
                base_url="http://127.0.0.1:9/api/v1/",
                session=session,
                trace_configs=[config],
            )


def test_trace_configs_that_are_not_trace_configs_raise_type_error() -> None:
    with pytest.raises(TypeError, match="TraceConfig"):
        BackupsClient(
            TOKEN,
            base_url="http://127.0.0.1:9/api/v1/",
            trace_configs=[object()],  # type: ignore[list-item]
        )


# -- OpenTelemetry ----------------------------------------------------------------------


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _span_texts(span: Any) -> list[str]:
    """Everything a span would export as text: name, attributes, events and links."""
    texts = [span.name, *(f"{k}={v}" for k, v in (span.attributes or {}).items())]
    for event in span.events:
        texts.append(event.name)
        texts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
    return texts


def _status_code(span: Any) -> Any:
    attributes = span.attributes or {}
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


async def test_opentelemetry_records_one_span_per_http_attempt(
    scripted_api: LoopbackAPI, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    config = create_trace_config(tracer_provider=provider)
    async with loopback_client(scripted_api, trace_configs=[config]) as client:
        await client.backups.get(501)
    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    assert [_status_code(span) for span in finished] == [503, 200]
    assert len(scripted_api.seen) == 2


async def test_opentelemetry_spans_never_hold_the_token(
    scripted_api: LoopbackAPI, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    # The server echoes the token in an error body and a header: still not in any span.
    scripted_api.answer(
        "GET",
        "backups/501/",
        status=503,
        payload={"detail": f"bad token {TOKEN}"},
        headers={"X-Echo": TOKEN},
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    config = create_trace_config(tracer_provider=provider)
    async with loopback_client(scripted_api, trace_configs=[config]) as client:
        await client.backups.get(501)
        await client.backups.create(12345, description="x")
    finished = exporter.get_finished_spans()
    assert len(finished) == 3
    for span in finished:
        for text in _span_texts(span):
            assert TOKEN not in text


async def test_opentelemetry_records_a_span_for_a_failed_call_too(
    scripted_api: LoopbackAPI, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    scripted_api.answer("GET", "backups/501/", status=503, payload={"detail": "busy"})
    config = create_trace_config(tracer_provider=provider)
    async with loopback_client(scripted_api, trace_configs=[config], max_retries=1) as client:
        with pytest.raises(ServerError):
            await client.backups.get(501)
    assert [_status_code(span) for span in exporter.get_finished_spans()] == [503, 503]


# -- client.stats -----------------------------------------------------------------------


async def test_stats_count_requests_by_route_retries_and_bytes(scripted_api: LoopbackAPI) -> None:
    second = scripted_api.url("backups/?page=2&server_id=12345")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("GET", "backups/499/", payload=BACKUP_499)
    scripted_api.answer(
        "GET",
        "backups/?server_id=12345",
        payload={**page([BACKUP_501], next_url=second), "count": 2},
    )
    scripted_api.answer(
        "GET", "backups/?page=2&server_id=12345", payload={**page([BACKUP_499]), "count": 2}
    )
    scripted_api.answer("POST", "backups/", status=503, payload={"detail": "busy"})
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    async with loopback_client(scripted_api) as client:
        assert client.stats.requests == {}
        await client.backups.get(501)
        await client.backups.get(499)
        await client.backups.list(server_id=12345)
        await client.backups.create(12345, description="x")
        stats = client.stats
    assert isinstance(stats, ClientStats)
    assert stats.requests == {"GET backups/{id}/": 2, "GET backups/": 2, "POST backups/": 2}
    assert stats.total_requests == len(scripted_api.seen) == 6
    assert stats.retries == 1
    assert stats.reconciles == 0  # a 503 certainly did not create: nothing to reconcile
    assert stats.rate_limit_pauses == 0
    assert stats.poll_rounds == 0
    assert stats.bytes_read > 0


async def test_stats_count_a_reconcile_after_an_ambiguous_create(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("POST", "backups/", status=502, payload={"detail": "gateway"})
    scripted_api.answer("POST", "backups/", status=201, payload=CREATED_502)
    scripted_api.answer("GET", "backups/?backup_type=manual&server_id=12345", payload=page([]))
    async with loopback_client(scripted_api) as client:
        await client.backups.create(12345, description="x")
        stats = client.stats
    assert stats.reconciles == 1
    assert stats.retries == 1
    assert stats.requests == {"POST backups/": 2, "GET backups/": 1}


async def test_stats_count_rate_limit_pauses(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer(
        "GET",
        "backups/501/",
        status=429,
        payload={"detail": "slow down"},
        headers={"Retry-After": "0.05"},
    )
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        stats = client.stats
    assert stats.rate_limit_pauses == 1
    assert stats.retries == 1
    assert stats.requests == {"GET backups/{id}/": 2}


async def test_stats_count_the_poll_rounds_of_a_wait() -> None:
    async with (
        FakeBackupsAPI(backup_seconds=60) as api,
        BackupsClient(
            api.token, base_url=api.base_url, retry_backoff=0, max_retry_backoff=0
        ) as client,
    ):
        backup = await client.backups.create(12345, description="x")
        heard: list[Backup] = []
        waiting = asyncio.create_task(
            client.backups.wait_until_completed(backup, poll_interval=0.01, on_update=heard.append)
        )
        await until(lambda: len(heard) >= 1)
        api.advance(60)
        done = await waiting
        stats = client.stats
    assert done.status is BackupStatus.COMPLETED
    assert stats.poll_rounds >= 2
    # Each round read the list once, and nothing else was read.
    assert stats.poll_rounds == api.requests[("GET", "backups/")]
    assert stats.requests == {"POST backups/": 1, "GET backups/": stats.poll_rounds}


async def test_stats_snapshot_does_not_change_after_later_calls(
    scripted_api: LoopbackAPI,
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        before = client.stats
        kept = (dict(before.requests), attrs.astuple(before, recurse=False)[1:])
        await client.backups.get(501)
        after = client.stats
    assert (dict(before.requests), attrs.astuple(before, recurse=False)[1:]) == kept
    assert before.requests == {"GET backups/{id}/": 1}
    assert after.requests == {"GET backups/{id}/": 2}
    assert after.bytes_read == 2 * before.bytes_read


async def test_stats_snapshot_cannot_be_mutated(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        stats = client.stats
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.retries = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.requests["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        del stats.requests["GET backups/{id}/"]  # type: ignore[attr-defined]
    assert stats.requests == {"GET backups/{id}/": 1}
    assert client.stats.requests == {"GET backups/{id}/": 1}


async def test_stats_snapshot_pickles(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        stats = client.stats
    copied = pickle.loads(pickle.dumps(stats))
    assert copied == stats
    with pytest.raises(TypeError):
        copied.requests["x"] = 1  # type: ignore[index]


async def test_stats_snapshot_deep_copies(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
        stats = client.stats
    assert copy.deepcopy(stats) == stats
