"""Backup hygiene as plain functions: which backups a prune takes, which servers lack one.

Nothing here reads or deletes; ``_resources/hygiene.py`` does the I/O and hands these
functions what it read and the API's time ("now"). The rules:

*Prune* (:func:`plan_prune`). Only ``manual`` backups are ever planned (automatic ones
expire on their own), and of those only ``completed`` and ``failed`` ones: never one
``in_progress``, nor one whose status the SDK does not know (it may be in use). Per
server, with the manual backups ordered newest first by ``created_at`` (then ID):

- ``keep_last=N`` keeps the newest ``N`` *completed* manual backups of the server. A
  failed or in-progress backup never counts towards ``N``, so it cannot push a good
  backup out; a failed one is not kept by this rule.
- ``older_than=span`` lets a backup go only when it was created more than ``span``
  before now (one exactly ``span`` old stays).
- Both given: a backup goes only when both rules let it.
- Whatever the rules say, the server's newest completed manual backup stays, unless
  ``keep_none=True``. Automatic backups cannot stand in for it: they expire.

*Coverage* (:class:`CoverageTally`). A server is covered when its newest ``completed``
backup, of either type, was created within ``within`` of now (one exactly ``within``
old counts; one stamped after now counts too). Failed and in-progress backups never do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import attrs

from .checks import check_id
from .errors import BackupsError
from .models import Backup, BackupStatus, BackupType

__all__ = [
    "CoverageReport",
    "CoverageTally",
    "PrunePlan",
    "PruneResult",
    "check_prune_rules",
    "check_server_ids",
    "check_within",
    "coverage_report",
    "plan_prune",
]

# The statuses a prune may take; anything else (in progress, or unknown) is left alone.
_FINAL = (BackupStatus.COMPLETED, BackupStatus.FAILED)


@attrs.frozen
class PrunePlan:
    """What a prune would delete, and the rules it was made with; nothing is deleted yet.

    Made by ``client.backups.plan_prune(...)``; handed to ``client.backups.prune(plan)``
    (by any client: a plan is plain data, and it pickles).
    """

    to_delete: list[Backup]
    """The backups to delete, oldest first (by ``created_at``, then ID)."""
    per_server: dict[int, int]
    """How many backups of each server the plan deletes (``0``: none).

    Keyed by the servers asked for, in the order given, or else by every server with
    manual backups, by ID.
    """
    kept_per_server: dict[int, int]
    """How many manual backups each server keeps (in-progress ones included); same keys."""
    keep_last: int | None
    """The ``keep_last`` rule (``None``: not given)."""
    older_than: timedelta | None
    """The ``older_than`` rule (``None``: not given)."""
    keep_none: bool
    """Whether a server's newest completed manual backup could go too."""
    server_ids: tuple[int, ...] | None
    """The servers the plan was made for (``None``: every server)."""
    as_of: datetime
    """The API's time the rules were measured against (its ``Date`` header)."""

    @property
    def size_mb(self) -> int:
        """The megabytes the plan frees: the sum of the known sizes."""
        return sum(backup.size_mb or 0 for backup in self.to_delete)


@attrs.frozen
class PruneResult:
    """What ``client.backups.prune(plan)`` did with each backup of the plan.

    Every backup of the plan is in exactly one list, each in the plan's order (oldest
    first).
    """

    deleted: list[int]
    """IDs of the backups deleted."""
    already_gone: list[int]
    """IDs answered 404: someone else deleted them first. That is success too."""
    failed: list[tuple[int, BackupsError]]
    """``(backup ID, error)`` for each delete that failed; the backup may still exist."""

    @property
    def ok(self) -> bool:
        """Whether no delete failed (true for an empty plan)."""
        return not self.failed

    def raise_for_failures(self) -> None:
        """Raise one ``ExceptionGroup`` holding every failure; do nothing if none.

        Each exception carries a note naming its backup.
        """
        if not self.failed:
            return
        errors: list[Exception] = []
        for backup_id, error in self.failed:
            note = f"backup {backup_id}"
            if note not in getattr(error, "__notes__", ()):
                error.add_note(note)
            errors.append(error)
        total = len(self.deleted) + len(self.already_gone) + len(self.failed)
        raise ExceptionGroup(f"{len(errors)} of {total} deletes failed", errors)


@attrs.frozen
class CoverageReport:
    """Which servers have a recent good backup: ``client.backups.coverage(...)``."""

    covered: dict[int, Backup]
    """Each covered server's newest completed backup (either type), in input order."""
    missing: list[int]
    """The servers without a completed backup in the window, in input order."""
    within: timedelta
    """The window: how recent a backup must be."""
    as_of: datetime
    """The API's time the window ends at (its ``Date`` header)."""

    @property
    def ok(self) -> bool:
        """Whether every server is covered (true when none was asked about)."""
        return not self.missing


# -- checks of what a caller passes --------------------------------------------------------


def check_prune_rules(keep_last: object, older_than: object, keep_none: object) -> None:
    """``TypeError``/``ValueError`` unless the rules make sense; see :func:`plan_prune`."""
    if keep_last is not None:
        if type(keep_last) is not int:
            raise TypeError(f"keep_last must be an int, not {type(keep_last).__name__}")
        if keep_last < 0:
            raise ValueError(f"keep_last must be 0 or more, got {keep_last}")
    if older_than is not None:
        _check_span("older_than", older_than)
    if not isinstance(keep_none, bool):
        raise TypeError(f"keep_none must be a bool, not {type(keep_none).__name__}")
    if keep_last is None and older_than is None:
        raise ValueError(
            "give keep_last, older_than or both: with neither, every manual backup "
            "would be a candidate"
        )


def check_within(within: object) -> timedelta:
    """``within`` if it is a positive ``timedelta``; ``TypeError``/``ValueError`` if not."""
    return _check_span("within", within)


def _check_span(name: str, value: object) -> timedelta:
    if not isinstance(value, timedelta):
        raise TypeError(
            f"{name} must be a datetime.timedelta (like timedelta(days=30)), "
            f"not {type(value).__name__}"
        )
    if value <= timedelta(0):
        raise ValueError(f"{name} must be more than zero, got {value}")
    return value


def check_server_ids(server_ids: object) -> tuple[int, ...]:
    """The IDs as a tuple, each a positive ``int`` given once.

    ``TypeError`` for a string or a non-iterable, or an ID that is not an ``int``;
    ``ValueError`` for one that is not positive, or given twice.
    """
    if isinstance(server_ids, str | bytes):
        raise TypeError("server_ids must be an iterable of ints, not a string")
    if not isinstance(server_ids, Iterable):
        raise TypeError(f"server_ids must be an iterable of ints, not {type(server_ids).__name__}")
    ids = tuple(server_ids)
    seen: set[int] = set()
    for server_id in ids:
        check_id(server_id, "server_id")
        if server_id in seen:
            raise ValueError(f"server_ids repeats [{server_id}]; give each server once")
        seen.add(server_id)
    return ids


def _check_now(as_of: object) -> datetime:
    if not isinstance(as_of, datetime):
        raise TypeError(f"as_of must be a datetime, not {type(as_of).__name__}")
    if as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware, like datetime.now(UTC)")
    return as_of


def _before(as_of: datetime, span: timedelta) -> datetime | None:
    """``as_of - span``, or ``None`` when that is before the first representable instant."""
    try:
        return as_of - span
    except OverflowError:
        return None


def _newest_first(backup: Backup) -> tuple[datetime, int]:
    return (backup.created_at, backup.id)


# -- prune ----------------------------------------------------------------------------------


def plan_prune(
    backups: Iterable[Backup],
    *,
    keep_last: int | None = None,
    older_than: timedelta | None = None,
    keep_none: bool = False,
    as_of: datetime,
    server_ids: Sequence[int] | None = None,
) -> PrunePlan:
    """The backups a prune takes from ``backups`` under the rules (see the module).

    ``backups`` may hold anything a list read gave (automatic ones, other servers',
    the same backup twice): only the manual backups of ``server_ids`` (all servers when
    ``None``) are considered. ``as_of`` (timezone-aware) is now, by the API's clock.
    Raises ``TypeError``/``ValueError`` for bad rules.
    """
    check_prune_rules(keep_last, older_than, keep_none)
    as_of = _check_now(as_of)
    wanted = None if server_ids is None else check_server_ids(server_ids)
    chosen = None if wanted is None else frozenset(wanted)
    by_server: dict[int, dict[int, Backup]] = {}
    for backup in backups:
        if backup.backup_type is not BackupType.MANUAL:
            continue
        if chosen is not None and backup.server_id not in chosen:
            continue
        # A list read while it changes may show a backup twice: one entry per ID.
        by_server.setdefault(backup.server_id, {})[backup.id] = backup
    cutoff = None if older_than is None else _before(as_of, older_than)
    to_delete: list[Backup] = []
    going: dict[int, int] = {}
    staying: dict[int, int] = {}
    for server_id, held in by_server.items():
        manual = sorted(held.values(), key=_newest_first, reverse=True)
        completed = [backup.id for backup in manual if backup.status is BackupStatus.COMPLETED]
        kept: set[int] = set()
        if keep_last is not None:
            kept.update(completed[:keep_last])
        if completed and not keep_none:
            kept.add(completed[0])
        count = 0
        for backup in manual:
            if backup.status not in _FINAL or backup.id in kept:
                continue
            if older_than is not None and (cutoff is None or not backup.created_at < cutoff):
                continue
            to_delete.append(backup)
            count += 1
        going[server_id] = count
        staying[server_id] = len(manual) - count
    to_delete.sort(key=_newest_first)
    order = wanted if wanted is not None else sorted(by_server)
    return PrunePlan(
        to_delete=to_delete,
        per_server={server_id: going.get(server_id, 0) for server_id in order},
        kept_per_server={server_id: staying.get(server_id, 0) for server_id in order},
        keep_last=keep_last,
        older_than=older_than,
        keep_none=keep_none,
        server_ids=wanted,
        as_of=as_of,
    )


# -- coverage -------------------------------------------------------------------------------


class CoverageTally:
    """Each server's newest completed backup, taken in page by page.

    ``server_ids`` are the servers asked about (``None``: every server seen). Only one
    backup a server is held, so a whole account's list costs memory per server, not per
    backup. The window is applied at the end (:meth:`report`): the newest completed
    backup is within it exactly when any completed backup is.
    """

    __slots__ = ("_best", "_order", "_servers")

    def __init__(self, server_ids: Sequence[int] | None = None) -> None:
        self._order = None if server_ids is None else tuple(server_ids)
        self._servers = None if server_ids is None else frozenset(server_ids)
        self._best: dict[int, Backup | None] = {}

    def add(self, backups: Iterable[Backup]) -> None:
        """Take in a page of backups (those of other servers are skipped)."""
        best = self._best
        servers = self._servers
        for backup in backups:
            server_id = backup.server_id
            if servers is not None and server_id not in servers:
                continue
            if backup.status is not BackupStatus.COMPLETED:
                best.setdefault(server_id, None)  # seen, so "every server" includes it
                continue
            held = best.get(server_id)
            if held is None or _newest_first(backup) > _newest_first(held):
                best[server_id] = backup

    def report(self, *, within: timedelta, as_of: datetime) -> CoverageReport:
        """The report for the window ``within`` ending at ``as_of`` (timezone-aware)."""
        within = check_within(within)
        as_of = _check_now(as_of)
        since = _before(as_of, within)
        order = self._order if self._order is not None else sorted(self._best)
        covered: dict[int, Backup] = {}
        missing: list[int] = []
        for server_id in order:
            backup = self._best.get(server_id)
            if backup is not None and (since is None or backup.created_at >= since):
                covered[server_id] = backup
            else:
                missing.append(server_id)
        return CoverageReport(covered=covered, missing=missing, within=within, as_of=as_of)


def coverage_report(
    backups: Iterable[Backup],
    server_ids: Sequence[int] | None,
    *,
    within: timedelta,
    as_of: datetime,
) -> CoverageReport:
    """The coverage of ``server_ids`` (every server seen when ``None``) by ``backups``."""
    tally = CoverageTally(None if server_ids is None else check_server_ids(server_ids))
    tally.add(backups)
    return tally.report(within=within, as_of=as_of)
