"""The API documentation's example answer, as data, taken from the fake's sample data."""

from __future__ import annotations

from typing import Any

from asyncbackups.testing import BackupsState

# The three backups of server 12345 exactly as the API's documentation shows them.
SEED_BACKUPS: list[dict[str, Any]] = [
    backup.to_json() for backup in BackupsState().backups(server_id=12345)
]
SEED_LIST: dict[str, Any] = {"count": len(SEED_BACKUPS), "results": SEED_BACKUPS}
