"""The SDK's objects as JSON documents and as (escaped) lines of text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from asyncbackups import (
    APIStatusError,
    Backup,
    BackupFailedError,
    BackupOutcome,
    BadRequestError,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)

from .escaping import escape

__all__ = [
    "backup_json",
    "describe_backup",
    "error_json",
    "failure_reason",
    "outcome_json",
    "outcome_line",
    "timestamp",
]


def timestamp(moment: datetime | None) -> str | None:
    """An instant the way the API writes it: ISO 8601 in UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def backup_json(backup: Backup) -> dict[str, Any]:
    """A backup in the API's own JSON shape (plus ``message`` when the API sent one)."""
    data: dict[str, Any] = {
        "id": backup.id,
        "server": {"id": backup.server.id, "name": backup.server.name},
        "backup_type": backup.backup_type.value,
        "status": backup.status.value,
        "size_mb": backup.size_mb,
        "created_at": timestamp(backup.created_at),
        "expires_at": timestamp(backup.expires_at),
        "description": backup.description,
    }
    if backup.message is not None:
        data["message"] = backup.message
    return data


def error_json(error: BaseException) -> dict[str, Any]:
    """What a machine needs to know about an error: its type and the SDK's details."""
    data: dict[str, Any] = {"type": type(error).__name__}
    if isinstance(error, APIStatusError):
        data["status_code"] = error.status_code
        if error.request_id:
            data["request_id"] = error.request_id
    if isinstance(error, BadRequestError) and error.field_errors:
        data["field_errors"] = error.field_errors
    if isinstance(error, RateLimitError | ServerError) and error.retry_after is not None:
        data["retry_after"] = error.retry_after
    if isinstance(error, WaitTimeoutError | BackupFailedError) and error.backup is not None:
        data["backup"] = backup_json(error.backup)
    return data


def describe_backup(backup: Backup) -> str:
    """``backup 502 of server 12345 (web-server-01): completed, 4523 MB``, escaped."""
    name = f" ({escape(backup.server.name)})" if backup.server.name else ""
    size = f", {backup.size_mb} MB" if backup.size_mb is not None else ""
    status = escape(backup.status.value)
    return f"backup {backup.id} of server {backup.server_id}{name}: {status}{size}"


def failure_reason(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> str:
    """Why a fleet server failed, in a few words."""
    error = outcome.error
    if isinstance(error, BackupFailedError):
        return "the backup ended failed"
    if isinstance(error, WaitTimeoutError):
        status = escape(error.backup.status.value) if error.backup is not None else "unknown"
        return f"still {status} at the wait deadline"
    if error is None:
        return "no backup was made"
    return explain(error)


def outcome_line(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> str:
    """``server 12 ok backup 502``, or ``server 7 failed backup 503: <why>``; a backup
    still running (a fleet without ``--wait``) is ``server 12 started backup 502``."""
    backup = f" backup {outcome.backup.id}" if outcome.backup is not None else ""
    if outcome.ok:
        adopted = " (adopted)" if outcome.adopted else ""
        done = outcome.backup is None or outcome.backup.is_final
        return f"server {outcome.server_id} {'ok' if done else 'started'}{backup}{adopted}"
    return f"server {outcome.server_id} failed{backup}: {failure_reason(outcome, explain)}"


def outcome_json(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> dict[str, Any]:
    """One fleet outcome: the server, whether it is ok, its backup and its error."""
    error = None
    if outcome.error is not None:
        error = {"message": explain(outcome.error), **error_json(outcome.error)}
    return {
        "server_id": outcome.server_id,
        "ok": outcome.ok,
        "adopted": outcome.adopted,
        "backup": None if outcome.backup is None else backup_json(outcome.backup),
        "error": error,
    }
