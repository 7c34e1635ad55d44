"""Which existing backup a create in doubt made: the matching rules, and the claims.

Against a server that ignores ``Idempotency-Key``, a create whose answer was lost can
only find its backup by what it asked for: a manual backup of the same server, with
the description the server would have kept, made since the call began. This module
holds those rules as plain functions over backups and times, and the per-client
record that hands each found backup to one call only. Reading the backups is the
caller's part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from .._core.errors import AmbiguousCreateError
from .._core.models import (
    Backup,
    BackupType,
)

__all__ = ["Claims", "call_start", "made_since", "same_create"]

logger = logging.getLogger("asyncbackups")

# Without a Date header only our own clock is known, which may be off by much more.
_NO_DATE_MARGIN = timedelta(seconds=60)
# Our clock and the server's Date header disagreeing by more than this means one of
# them is wrong; the window then opens at the earlier of the two.
_CLOCK_TOLERANCE = timedelta(seconds=5)
_ONE_SECOND = timedelta(seconds=1)
# Claims matter only while creates for the same server and description overlap; a
# fleet of 100,000 servers must not keep one per server.
_CLAIMED_LIMIT = 4096
# Creates in doubt are remembered by description only, for the next resumed run of it.
_IN_DOUBT_LIMIT = 64


def same_create(server_id: int, description: str | None) -> tuple[int, str]:
    """The key of a create: its server, and its description as DRF would keep it.

    DRF trims surrounding whitespace and may store ``""`` or null for no description.
    """
    return server_id, (description or "").strip()


def call_start(date: datetime | None, elapsed: float, started_wall: datetime) -> datetime:
    """The earliest moment a backup made by the call can be stamped with.

    ``date`` is the server's ``Date`` header on the reconcile's first answer, read
    ``elapsed`` seconds after the call began (``started_wall`` by our clock). The
    header's clock counts first; it has whole seconds, so the window may open up to a
    second early. When the two clocks disagree by more than a few seconds, one of them
    is wrong, and the window opens at the earlier.
    """
    if date is None:
        return started_wall - _NO_DATE_MARGIN
    by_server = date - timedelta(seconds=elapsed)
    ours_now = started_wall + timedelta(seconds=elapsed)
    if abs(ours_now - date) > _CLOCK_TOLERANCE:
        return min(by_server, started_wall)
    return by_server


def made_since(created_at: datetime, since: datetime) -> bool:
    """Whether a backup stamped ``created_at`` can have been made at ``since`` or later."""
    if created_at.microsecond == 0:
        # A stamp in whole seconds may be the floor of a moment after ``since``.
        return created_at > since - _ONE_SECOND
    return created_at >= since


class Claims:
    """One client's record of creates in flight and backups already handed out.

    A backup adopted by one call is never adopted by another; and several backups can
    be this client's own only while as many of its creates for the same server and
    description are in flight. More than that is reported, never guessed. It also keeps,
    per description, when a create last ended in doubt, for a resumed run to know that
    one of its earlier attempts may still have creates on the wire.
    """

    __slots__ = ("_changed", "_claimed", "_in_doubt", "_in_flight", "_reconciling")

    def __init__(self) -> None:
        self._claimed: dict[int, None] = {}
        self._in_flight: dict[tuple[int, str], int] = {}
        self._reconciling: dict[tuple[int, str], int] = {}
        self._in_doubt: dict[str, float] = {}
        # Set, and replaced, whenever a create ends or starts reconciling.
        self._changed: asyncio.Event | None = None

    def begin(self, key: tuple[int, str]) -> None:
        """A create for ``key`` starts."""
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def end(self, key: tuple[int, str]) -> None:
        """A create for ``key`` ended, however it ended (its backup already claimed)."""
        _decrement(self._in_flight, key)
        self._notify()

    async def reconciling(self, key: tuple[int, str]) -> None:
        """A create for ``key`` is in doubt: wait until its backup can be told apart.

        Another create of the same server and description still waiting for its answer
        may have made a backup this call would otherwise adopt, and then be handed the
        same backup by the server. So this waits until every other such create has
        ended (claiming what it got) or is in doubt as well; creates in doubt are
        interchangeable, and share out what they find. Each create's own timeouts bound
        the wait. Pair with :meth:`reconciled`.
        """
        self._reconciling[key] = self._reconciling.get(key, 0) + 1
        self._notify()
        while self._in_flight.get(key, 0) > self._reconciling[key]:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def reconciled(self, key: tuple[int, str]) -> None:
        """The reconcile :meth:`reconciling` began has ended."""
        _decrement(self._reconciling, key)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def left_in_doubt(self, description: str, at: float) -> None:
        """A create with ``description`` ended at ``at`` (monotonic) with its request
        perhaps still on its way to the server: cancelled after sending, or failed after
        an attempt that may have reached it.

        A resumed run of that description on this client then knows that an earlier
        attempt exists, even if none of its backups has landed yet.
        """
        description = description.strip()
        self._in_doubt.pop(description, None)
        self._in_doubt[description] = at
        if len(self._in_doubt) > _IN_DOUBT_LIMIT:
            del self._in_doubt[next(iter(self._in_doubt))]

    def last_in_doubt(self, description: str) -> float | None:
        """When a create with ``description`` last ended in doubt (monotonic), if ever."""
        return self._in_doubt.get(description.strip())

    def claim(self, backup_id: int) -> None:
        """``backup_id`` is one call's result from now on."""
        self._claimed[backup_id] = None
        if len(self._claimed) > _CLAIMED_LIMIT:
            del self._claimed[next(iter(self._claimed))]

    def adopt(
        self,
        key: tuple[int, str],
        backups: Iterable[Backup],
        since: datetime,
        *,
        idempotency_key: str,
    ) -> Backup | None:
        """The backup the call of ``key`` made, claimed for it; ``None`` if none matches.

        Raises :class:`AmbiguousCreateError` when more unclaimed backups match than this
        client has creates in flight for ``key``. No await may come between reading
        ``backups`` and this call: another call may claim one meanwhile.
        """
        server_id, description = key
        matches = sorted(
            (
                backup
                for backup in backups
                if backup.server_id == server_id
                and backup.backup_type is BackupType.MANUAL
                and (backup.description or "").strip() == description
                and made_since(backup.created_at, since)
                and backup.id not in self._claimed
            ),
            key=lambda backup: (backup.created_at, backup.id),
        )
        if not matches:
            logger.info("create for server %d: no backup from the earlier attempt", server_id)
            return None
        if len(matches) > self._in_flight.get(key, 1):
            ids = ", ".join(str(backup.id) for backup in matches)
            raise AmbiguousCreateError(
                f"create for server {server_id} was in doubt, and {len(matches)} backups "
                f"with its description were made since it began ({ids}): another client "
                "made the same backup at the same moment, or a delayed request landed "
                "late. Not guessing which is this call's: check them and delete any extra",
                server_id=server_id,
                candidates=matches,
                idempotency_key=idempotency_key,
            )
        chosen = matches[0]
        self.claim(chosen.id)
        logger.info(
            "create for server %d: the earlier attempt made backup %d; adopting it",
            server_id,
            chosen.id,
        )
        return chosen


def _decrement(counts: dict[tuple[int, str], int], key: tuple[int, str]) -> None:
    left = counts.pop(key, 1) - 1
    if left > 0:
        counts[key] = left
