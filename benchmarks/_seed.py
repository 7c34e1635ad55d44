"""The API documentation's example answer, as data: light to import, even with no SDK."""

from __future__ import annotations

from typing import Any

# The API documentation's three backups of server 12345 (as in tests/conftest.py SEED_LIST).
SEED_BACKUPS: list[dict[str, Any]] = [
    {
        "id": 501,
        "server": {"id": 12345, "name": "web-server-01"},
        "backup_type": "automatic",
        "status": "completed",
        "size_mb": 4523,
        "created_at": "2025-01-16T03:00:00Z",
        "expires_at": "2025-02-16T03:00:00Z",
        "description": "Automatic daily backup",
    },
    {
        "id": 499,
        "server": {"id": 12345, "name": "web-server-01"},
        "backup_type": "manual",
        "status": "completed",
        "size_mb": 4456,
        "created_at": "2025-01-14T10:30:00Z",
        "expires_at": None,
        "description": "Pre-update backup",
    },
    {
        "id": 495,
        "server": {"id": 12345, "name": "web-server-01"},
        "backup_type": "automatic",
        "status": "completed",
        "size_mb": 4389,
        "created_at": "2025-01-15T03:00:00Z",
        "expires_at": "2025-02-15T03:00:00Z",
        "description": "Automatic daily backup",
    },
]
SEED_LIST: dict[str, Any] = {"count": 3, "results": SEED_BACKUPS}
