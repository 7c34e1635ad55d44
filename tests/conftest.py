"""Shared fixtures and payload builders: the seed's example answers, exactly."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from asyncbackups import BackupsClient

BASE_URL = "https://admin.vps.org/api/v1/"
BACKUPS_URL = BASE_URL + "backups/"
TOKEN = "test-token-5f1c"

# The three backups of server 12345 and the create answer, as the API's docs show them.
BACKUP_501: dict[str, Any] = {
    "id": 501,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "automatic",
    "status": "completed",
    "size_mb": 4523,
    "created_at": "2025-01-16T03:00:00Z",
    "expires_at": "2025-02-16T03:00:00Z",
    "description": "Automatic daily backup",
}
BACKUP_499: dict[str, Any] = {
    "id": 499,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "manual",
    "status": "completed",
    "size_mb": 4456,
    "created_at": "2025-01-14T10:30:00Z",
    "expires_at": None,
    "description": "Pre-update backup",
}
BACKUP_495: dict[str, Any] = {
    "id": 495,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "automatic",
    "status": "completed",
    "size_mb": 4389,
    "created_at": "2025-01-15T03:00:00Z",
    "expires_at": "2025-02-15T03:00:00Z",
    "description": "Automatic daily backup",
}
SEED_LIST: dict[str, Any] = {"count": 3, "results": [BACKUP_501, BACKUP_499, BACKUP_495]}
CREATED_502: dict[str, Any] = {
    "id": 502,
    "server": {"id": 12345, "name": "web-server-01"},
    "backup_type": "manual",
    "status": "in_progress",
    "size_mb": None,
    "created_at": "2025-01-16T15:45:00Z",
    "expires_at": None,
    "description": "Pre-deployment backup",
    "message": "Backup is being created. This may take several minutes depending on server size.",
}
# A shorthand for payload variations: {**BACKUP, "status": "failed"}.
BACKUP = BACKUP_501


def page(results: list[dict[str, Any]], *, next_url: str | None = None) -> dict[str, Any]:
    """A DRF page body."""
    return {"count": len(results), "next": next_url, "previous": None, "results": results}


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's ``stream_writer``."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if "stream_writer" in _RESPONSE_PARAMS:
            kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


_RESPONSE_PARAMS = inspect.signature(aiohttp.ClientResponse.__init__).parameters


class MockAPI(aioresponses):
    """aioresponses that works with every aiohttp this package supports."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(*args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[MockAPI]:
    """HTTP mocked at the aiohttp boundary; nothing leaves the process."""
    with MockAPI() as mocked:
        yield mocked


@pytest.fixture
async def client() -> AsyncIterator[BackupsClient]:
    """A client for the default base URL that retries without sleeping."""
    async with BackupsClient(
        TOKEN, base_url=BASE_URL, retry_backoff=0, max_retry_backoff=0
    ) as backups_client:
        yield backups_client
