"""Resumed fleet runs: the rules, as plain functions over backups and times.

A run with ``resume=True`` is identified by its description, and the API is its journal.
This module holds what such a run decides without any I/O (the reading is
``_backups``'s part):

- :func:`run_idempotency_key`: the ``Idempotency-Key`` a run's create sends for a server,
  the same in every attempt of the run, so a server that honours keys makes one backup
  however the attempts interleave;
- :class:`RunBackups`: what a read of the manual backups found of the run, per server:
  the backup to adopt, the failed ones (which move the key on), and whether anything
  of the run exists at all (which tells that an earlier attempt ran);
- :class:`ReadWindow`: when a newest-first read has passed the run's start and may stop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Sequence
from datetime import datetime, timedelta

from .models import (
    Backup,
    BackupStatus,
    BackupType,
)

__all__ = ["CLOCK_SKEW", "RUN_KEY_PREFIX", "ReadWindow", "RunBackups", "run_idempotency_key"]

RUN_KEY_PREFIX = "asyncbackups-run-"
# ``since`` comes from the caller's clock (a Dask driver's, say) and ``created_at`` from
# the API's: a read stops only this far before ``since``, which covers any clock that
# NTP keeps, and a badly drifting VM's for a while.
CLOCK_SKEW = timedelta(minutes=10)


def run_idempotency_key(description: str, server_id: int, generation: int = 0) -> str:
    """The ``Idempotency-Key`` of a resumable run's create for one server.

    ``"asyncbackups-run-"`` followed by the first 32 hex digits of the SHA-256 of
    ``"v1\\0<description, stripped>\\0<server_id>\\0<generation>"`` (UTF-8), where
    ``generation`` is how many of the run's backups of that server have ended ``failed``
    (so a failed backup is followed by a fresh one, not the failed one replayed).
    The same in every process and every attempt; a new description makes new keys.
    """
    text = f"v1\0{description.strip()}\0{server_id}\0{generation}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return RUN_KEY_PREFIX + digest[:32]


class RunBackups:
    """What reads of the manual backups found of one run (one description).

    ``servers`` is the run's servers when known (``None``: any server may be the run's).
    Pages may repeat a backup (a list that grows while it is read shifts its pages), so
    everything is kept by backup ID.
    """

    __slots__ = ("_best", "_description", "_failed", "_servers", "seen")

    def __init__(self, description: str, servers: Container[int] | None = None) -> None:
        self._description = description.strip()
        self._servers = servers
        self._best: dict[int, Backup] = {}
        self._failed: dict[int, set[int]] = {}
        # A backup of the run on one of its servers, in any status: an earlier attempt
        # of the run sent creates, and some of them may still be on their way.
        self.seen = False

    def add(self, backups: Iterable[Backup]) -> None:
        """Take in a page of backups (those of other runs and servers are skipped)."""
        for backup in backups:
            if (
                backup.backup_type is not BackupType.MANUAL
                or (backup.description or "").strip() != self._description
                or (self._servers is not None and backup.server_id not in self._servers)
            ):
                continue
            self.seen = True
            server_id = backup.server_id
            if backup.status is BackupStatus.FAILED:
                self._failed.setdefault(server_id, set()).add(backup.id)
                continue
            held = self._best.get(server_id)
            if held is None or _rank(backup) > _rank(held):
                self._best[server_id] = backup

    def take(self, server_id: int) -> Backup | None:
        """The backup a resumed run adopts for ``server_id`` (handed out once), or ``None``.

        Completed before in progress, then the newest; a failed one never.
        """
        return self._best.pop(server_id, None)

    def generation(self, server_id: int) -> int:
        """How many of the run's backups of ``server_id`` were seen ``failed``."""
        return len(self._failed.get(server_id, ()))


def _rank(backup: Backup) -> tuple[bool, datetime, int]:
    return (backup.status is BackupStatus.COMPLETED, backup.created_at, backup.id)


class ReadWindow:
    """When a read of a newest-first list may stop: past ``since`` (less ``CLOCK_SKEW``).

    ``since`` is the earliest moment a backup of the run can carry. The API does not
    document its order, so the order is checked on every backup read, across pages: a
    read stops only at a page wholly older than the horizon after everything so far
    came newest first. Pages in any other order are read to the end.
    """

    __slots__ = ("_horizon", "_ordered", "_previous")

    def __init__(self, since: datetime) -> None:
        self._horizon = since - CLOCK_SKEW
        self._previous: datetime | None = None
        self._ordered = True

    def passed(self, backups: Sequence[Backup]) -> bool:
        """Take in the next page; whether every later page is older than the run."""
        for backup in backups:
            if self._previous is not None and backup.created_at > self._previous:
                self._ordered = False
            self._previous = backup.created_at
        return self._ordered and bool(backups) and backups[0].created_at < self._horizon
