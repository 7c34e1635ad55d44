"""The fake's data: servers, backups and restores, indexed for fast filtered pages.

Pure Python, no I/O: the HTTP layer asks questions of a ``BackupsState`` and renders the
answers. A backup's status is not stored but computed from the clock whenever it is
read, so driving the clock is all it takes to finish backups.

Every public method takes one lock, so tests may read and change the state from another
thread while the server answers requests.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ._clock import Clock

__all__ = [
    "AUTOMATIC",
    "BACKUP_TYPES",
    "COMPLETED",
    "FAILED",
    "IN_PROGRESS",
    "MANUAL",
    "SAMPLE_SERVER_ID",
    "BackupsState",
    "FakeBackup",
    "FakeServer",
    "RestoreRecord",
    "RestoreRefusedError",
    "UnknownBackupError",
    "UnknownServerError",
    "isoformat",
]

MANUAL: Final = "manual"
AUTOMATIC: Final = "automatic"
BACKUP_TYPES: Final = (MANUAL, AUTOMATIC)

IN_PROGRESS: Final = "in_progress"
COMPLETED: Final = "completed"
FAILED: Final = "failed"

# The API documentation's example server, which the sample data reproduces.
SAMPLE_SERVER_ID: Final = 12345

DEFAULT_RETENTION: Final = timedelta(days=30)
_AUTOMATIC_DESCRIPTION: Final = "Automatic daily backup"


class UnknownServerError(LookupError):
    """No server has this id."""


class UnknownBackupError(LookupError):
    """No backup has this id."""


class RestoreRefusedError(ValueError):
    """The backup exists but cannot restore this server; the message says why."""


def isoformat(moment: datetime) -> str:
    """Render an instant the way Django REST Framework does: UTC, ``Z``, no zero micros."""
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _size_for(server_id: int, backup_id: int) -> int:
    # Deterministic but varied, so tests can predict sizes and still tell backups apart.
    return 1024 + (server_id * 2_654_435_761 + backup_id * 40_503) % 7_168


@dataclass(frozen=True, slots=True)
class FakeServer:
    """A server the fake knows; backups of a ``failing`` server end ``failed``."""

    id: int
    name: str
    failing: bool


@dataclass(frozen=True, slots=True)
class FakeBackup:
    """A snapshot of one stored backup, its status read from the clock when it was taken."""

    id: int
    server_id: int
    server_name: str
    backup_type: str
    status: str
    size_mb: int | None
    created_at: datetime
    expires_at: datetime | None
    description: str | None

    def to_json(self, *, null_description: bool = False) -> dict[str, Any]:
        """The backup as the API renders it (without the create call's ``message``).

        A backup made without a description renders it as ``""``, as the API's
        documentation shows (a string) and a Django REST Framework ``CharField`` with
        ``blank=True`` answers; ``null_description`` renders ``null`` instead, as a
        nullable field would.
        """
        description = self.description
        if description is None and not null_description:
            description = ""
        return {
            "id": self.id,
            "server": {"id": self.server_id, "name": self.server_name},
            "backup_type": self.backup_type,
            "status": self.status,
            "size_mb": self.size_mb,
            "created_at": isoformat(self.created_at),
            "expires_at": None if self.expires_at is None else isoformat(self.expires_at),
            "description": description,
        }


@dataclass(frozen=True, slots=True)
class RestoreRecord:
    """One accepted restore request, in the order they arrived."""

    server_id: int
    backup_id: int
    requested_at: datetime


class _Server:
    __slots__ = ("failing", "id", "name")

    def __init__(self, server_id: int, name: str, failing: bool) -> None:
        self.id = server_id
        self.name = name
        self.failing = failing


class _Backup:
    __slots__ = (
        "backup_type",
        "created_at",
        "description",
        "expires_at",
        "fails",
        "finishes_at",
        "id",
        "server",
        "settled_status",
        "size_mb",
    )

    def __init__(
        self,
        *,
        backup_id: int,
        server: _Server,
        backup_type: str,
        created_at: datetime,
        finishes_at: datetime,
        fails: bool,
        size_mb: int,
        description: str | None,
        expires_at: datetime | None,
        settled_status: str | None,
    ) -> None:
        self.id = backup_id
        self.server = server
        self.backup_type = backup_type
        self.created_at = created_at
        self.finishes_at = finishes_at
        self.fails = fails
        self.size_mb = size_mb
        self.description = description
        self.expires_at = expires_at
        # A settled status wins over the clock: seed data, fleets and set_status use it.
        self.settled_status = settled_status

    def status(self, now: datetime) -> str:
        if self.settled_status is not None:
            return self.settled_status
        if now < self.finishes_at:
            return IN_PROGRESS
        return FAILED if self.fails else COMPLETED

    def snapshot(self, now: datetime) -> FakeBackup:
        status = self.status(now)
        return FakeBackup(
            id=self.id,
            server_id=self.server.id,
            server_name=self.server.name,
            backup_type=self.backup_type,
            status=status,
            size_mb=self.size_mb if status == COMPLETED else None,
            created_at=self.created_at,
            expires_at=self.expires_at,
            description=self.description,
        )


_finish_time = operator.itemgetter(0)


class _StatusTally:
    """Backups by status, kept up to date as they change, so counting walks no backups.

    A settled status is counted as such. A clock-driven backup is filed by when it
    finishes, in one sorted list per outcome: at any instant those finished by then are
    ``completed`` (or ``failed``) and the rest ``in_progress``, which two binary searches
    tell, whichever way the clock has moved.
    """

    __slots__ = ("_finishing", "_settled")

    def __init__(self) -> None:
        self._settled: Counter[str] = Counter()
        # (finishes_at, id) of clock-driven backups, ascending: [succeeding, failing].
        self._finishing: tuple[list[tuple[datetime, int]], list[tuple[datetime, int]]] = ([], [])

    def add(self, backup: _Backup) -> None:
        if backup.settled_status is not None:
            self._settled[backup.settled_status] += 1
            return
        entries = self._finishing[backup.fails]
        entry = (backup.finishes_at, backup.id)
        # New backups mostly finish last, so appending is the common case.
        if not entries or entries[-1] < entry:
            entries.append(entry)
        else:
            bisect.insort(entries, entry)

    def remove(self, backup: _Backup) -> None:
        status = backup.settled_status
        if status is not None:
            self._settled[status] -= 1
            if not self._settled[status]:
                del self._settled[status]
            return
        entries = self._finishing[backup.fails]
        del entries[bisect.bisect_left(entries, (backup.finishes_at, backup.id))]

    def counts(self, now: datetime) -> dict[str, int]:
        succeeding, failing = self._finishing
        completed = bisect.bisect_right(succeeding, now, key=_finish_time)
        failed = bisect.bisect_right(failing, now, key=_finish_time)
        counts = {
            IN_PROGRESS: len(succeeding) - completed + len(failing) - failed,
            COMPLETED: completed,
            FAILED: failed,
        }
        for status, count in sorted(self._settled.items()):
            counts[status] = counts.get(status, 0) + count
        return counts


def _ids_from(start: int, count: int, *, skipping: frozenset[int]) -> list[int]:
    """``count`` ids from ``start`` up, leaving out those in ``skipping``."""
    ids = (server_id for server_id in itertools.count(start) if server_id not in skipping)
    return list(itertools.islice(ids, count))


def _check_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


class BackupsState:
    """Servers, backups and restores of one fake API, with a clock that drives them.

    With ``sample_data`` (the default) it holds exactly the API documentation's example:
    server 12345 ``web-server-01`` with backups 501, 499 and 495, and the next backup
    created gets id 502; a fleet (``add_fleet``) numbers its servers around server 12345,
    so the example stays intact whatever the fleet's size. A created backup is
    ``in_progress`` for ``backup_seconds`` of the clock's time, then ``completed`` with a
    deterministic size, or ``failed`` when its server is failing at that moment.
    Automatic backups expire ``automatic_retention`` after creation; manual ones never.

    Lists come newest first (highest id first), like the API; a filtered page costs time
    in proportion to the page, not to the number of stored backups, and so does
    ``stats()``, whose counts by status are kept as backups change.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        backup_seconds: float = 5.0,
        sample_data: bool = True,
        automatic_retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        """Build the state; ``clock`` defaults to a fresh running ``Clock``."""
        self.clock = clock if clock is not None else Clock()
        self._backup_seconds = 0.0
        self.backup_seconds = backup_seconds
        self.automatic_retention = automatic_retention
        self._lock = threading.RLock()
        self._servers: dict[int, _Server] = {}
        self._backups: dict[int, _Backup] = {}
        # Ascending backup ids per (server_id, backup_type) filter, None meaning "any".
        self._index: dict[tuple[int | None, str | None], list[int]] = {}
        self._tally = _StatusTally()
        self._restores: list[RestoreRecord] = []
        self._next_id = 1
        # Servers of the sample data, which fleets number around.
        self._sample_server_ids: frozenset[int] = frozenset()
        if sample_data:
            self._add_sample_data()

    # -- configuration -------------------------------------------------------------

    @property
    def backup_seconds(self) -> float:
        """How long a newly created backup stays ``in_progress`` (clock seconds)."""
        return self._backup_seconds

    @backup_seconds.setter
    def backup_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"backup_seconds must be >= 0, got {value}")
        self._backup_seconds = float(value)

    @property
    def next_backup_id(self) -> int:
        """The id the next created backup will get."""
        with self._lock:
            return self._next_id

    # -- servers -------------------------------------------------------------------

    def add_server(
        self, server_id: int, name: str | None = None, *, failing: bool = False
    ) -> FakeServer:
        """Add a server with no backups; ``name`` defaults to ``server-<id>``.

        Raises ``ValueError`` if the id is not a positive int or is already taken.
        """
        _check_id(server_id, "server_id")
        with self._lock:
            if server_id in self._servers:
                raise ValueError(f"server {server_id} already exists")
            server = _Server(server_id, name or f"server-{server_id}", failing)
            self._servers[server_id] = server
            return FakeServer(server.id, server.name, server.failing)

    def add_fleet(
        self, count: int, *, start: int = 1, failing: Iterable[int] = ()
    ) -> list[FakeServer]:
        """Add ``count`` servers from ``start`` up, named ``fleet-0001``…, each with one backup.

        The fleet's ids run ``start``..``start+count-1``, except that it steps around the
        sample server (12345) when the sample data is loaded: that id stays the sample's,
        and the fleet takes one more id at its end instead, so ``add_fleet(20_000)`` adds
        servers 1..20,001 but 12345, and still exactly 20,000 of them. Each gets one
        completed automatic backup, taken at the last 03:00 UTC, with the next backup
        ids (never those of the sample's backups). ``failing`` lists ids among them whose
        future backups fail. Returns the servers added, by id. Raises ``ValueError`` if
        any of the ids is already taken by another server (nothing is added then).
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        _check_id(start, "start")
        failing_ids = set(failing)
        now = self.clock.now()
        taken_at = now.replace(hour=3, minute=0, second=0, microsecond=0)
        if taken_at > now:
            taken_at -= timedelta(days=1)
        with self._lock:
            ids = _ids_from(start, count, skipping=self._sample_server_ids)
            clashes = [server_id for server_id in ids if server_id in self._servers]
            if clashes:
                raise ValueError(
                    f"servers already exist: {clashes[:5]}; number the fleet elsewhere with start="
                )
            added = []
            for server_id in ids:
                server = _Server(server_id, f"fleet-{server_id:04d}", server_id in failing_ids)
                self._servers[server_id] = server
                self._insert(
                    server,
                    backup_id=self._next_id,
                    backup_type=AUTOMATIC,
                    created_at=taken_at,
                    description=_AUTOMATIC_DESCRIPTION,
                    settled_status=COMPLETED,
                )
                added.append(FakeServer(server.id, server.name, server.failing))
            return added

    def set_failing(self, server_id: int, failing: bool = True) -> None:
        """Make this server's backups fail (or succeed) from now on.

        Backups of the server still in progress follow the new setting; finished ones
        keep their outcome. Raises ``UnknownServerError`` for an unknown id.
        """
        with self._lock:
            server = self._server(server_id)
            server.failing = failing
            now = self.clock.now()
            for backup_id in self._index.get((server_id, None), ()):
                backup = self._backups[backup_id]
                if backup.settled_status is None and now < backup.finishes_at:
                    self._tally.remove(backup)
                    backup.fails = failing
                    self._tally.add(backup)

    def server(self, server_id: int) -> FakeServer:
        """The server with this id; raises ``UnknownServerError``."""
        with self._lock:
            server = self._server(server_id)
            return FakeServer(server.id, server.name, server.failing)

    def has_server(self, server_id: int) -> bool:
        """Whether a server has this id."""
        with self._lock:
            return server_id in self._servers

    def servers(self) -> list[FakeServer]:
        """Every server, by ascending id."""
        with self._lock:
            return [
                FakeServer(server.id, server.name, server.failing)
                for _, server in sorted(self._servers.items())
            ]

    # -- backups -------------------------------------------------------------------

    def create_backup(self, server_id: int, description: str | None = None) -> FakeBackup:
        """Start a manual backup the way the API's create call does; return its snapshot.

        Raises ``UnknownServerError`` for an unknown server.
        """
        with self._lock:
            server = self._server(server_id)
            created_at = self.clock.now()
            backup = self._insert(
                server,
                backup_id=self._next_id,
                backup_type=MANUAL,
                created_at=created_at,
                description=description,
                finishes_at=created_at + timedelta(seconds=self._backup_seconds),
            )
            return backup.snapshot(created_at)

    def add_backup(
        self,
        server_id: int,
        *,
        backup_type: str = MANUAL,
        status: str | None = None,
        description: str | None = None,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
        size_mb: int | None = None,
        backup_id: int | None = None,
    ) -> FakeBackup:
        """Store a backup directly, to set up a test; return its snapshot.

        With ``status=None`` it follows the normal lifecycle from ``created_at`` (default:
        now); any other status, including ones the API does not document, is fixed until
        ``set_status`` changes it. ``expires_at`` defaults to the retention rule,
        ``size_mb`` to the deterministic size, ``backup_id`` to the next id. Raises
        ``UnknownServerError``, or ``ValueError`` for a taken id or an unknown type.
        """
        if backup_type not in BACKUP_TYPES:
            raise ValueError(f"backup_type must be one of {BACKUP_TYPES}, got {backup_type!r}")
        with self._lock:
            server = self._server(server_id)
            if backup_id is None:
                backup_id = self._next_id
            elif _check_id(backup_id, "backup_id") in self._backups:
                raise ValueError(f"backup {backup_id} already exists")
            created = self.clock.now() if created_at is None else created_at
            backup = self._insert(
                server,
                backup_id=backup_id,
                backup_type=backup_type,
                created_at=created,
                description=description,
                finishes_at=created + timedelta(seconds=self._backup_seconds),
                settled_status=status,
                size_mb=size_mb,
                expires_at=expires_at,
            )
            return backup.snapshot(self.clock.now())

    def set_status(self, backup_id: int, status: str | None) -> FakeBackup:
        """Pin a backup's status (any text), or with ``None`` let the clock decide again.

        Raises ``UnknownBackupError``.
        """
        with self._lock:
            backup = self._backup(backup_id)
            self._tally.remove(backup)
            backup.settled_status = status
            self._tally.add(backup)
            return backup.snapshot(self.clock.now())

    def backup(self, backup_id: int) -> FakeBackup:
        """The backup with this id, as of now; raises ``UnknownBackupError``."""
        with self._lock:
            return self._backup(backup_id).snapshot(self.clock.now())

    def backups(
        self, *, server_id: int | None = None, backup_type: str | None = None
    ) -> list[FakeBackup]:
        """Every backup matching the filters, newest (highest id) first."""
        return self.page(server_id=server_id, backup_type=backup_type)[1]

    def count(self, *, server_id: int | None = None, backup_type: str | None = None) -> int:
        """How many backups match the filters."""
        with self._lock:
            return len(self._index.get((server_id, backup_type), ()))

    def status_counts(self) -> dict[str, int]:
        """How many backups have each status now: ``in_progress``, ``completed``, ``failed``.

        Those three are always present (0 when none); a status pinned with
        ``set_status`` to another text is counted under that text too. Costs no walk
        over the backups.
        """
        with self._lock:
            return self._tally.counts(self.clock.now())

    def stats(self) -> dict[str, Any]:
        """``{"servers": N, "backups": status_counts(), "restores": N}``, from one view."""
        with self._lock:
            return {
                "servers": len(self._servers),
                "backups": self._tally.counts(self.clock.now()),
                "restores": len(self._restores),
            }

    def page(
        self,
        *,
        server_id: int | None = None,
        backup_type: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[int, list[FakeBackup]]:
        """The total matching the filters and ``limit`` of them from ``offset``, newest first.

        Both come from one consistent view of the data.
        """
        with self._lock:
            ids = self._index.get((server_id, backup_type), [])
            total = len(ids)
            # The index is ascending, so the newest-first window is read from its end.
            stop = max(total - offset, 0)
            start = 0 if limit is None else max(stop - limit, 0)
            now = self.clock.now()
            backups = self._backups
            return total, [backups[i].snapshot(now) for i in reversed(ids[start:stop])]

    def delete_backup(self, backup_id: int) -> FakeBackup:
        """Remove a backup (whatever its status); return its last snapshot.

        Raises ``UnknownBackupError``.
        """
        with self._lock:
            backup = self._backup(backup_id)
            snapshot = backup.snapshot(self.clock.now())
            del self._backups[backup_id]
            self._tally.remove(backup)
            for key in self._keys(backup):
                ids = self._index[key]
                del ids[bisect.bisect_left(ids, backup_id)]
                if not ids:
                    del self._index[key]
            return snapshot

    # -- restores ------------------------------------------------------------------

    def restore(self, server_id: int, backup_id: int) -> RestoreRecord:
        """Accept a restore of this server from one of its completed backups.

        Raises ``UnknownServerError``, ``UnknownBackupError``, or ``RestoreRefusedError``
        when the backup belongs to another server or is not completed.
        """
        with self._lock:
            self._server(server_id)
            backup = self._backup(backup_id)
            if backup.server.id != server_id:
                raise RestoreRefusedError(
                    f"Backup {backup_id} does not belong to server {server_id}."
                )
            now = self.clock.now()
            status = backup.status(now)
            if status != COMPLETED:
                raise RestoreRefusedError(
                    f"Backup {backup_id} is not completed (status: {status})."
                )
            record = RestoreRecord(server_id, backup_id, now)
            self._restores.append(record)
            return record

    @property
    def restores(self) -> list[RestoreRecord]:
        """Every accepted restore, oldest first."""
        with self._lock:
            return list(self._restores)

    # -- internals -----------------------------------------------------------------

    def _server(self, server_id: int) -> _Server:
        try:
            return self._servers[server_id]
        except KeyError:
            raise UnknownServerError(f"no server {server_id}") from None

    def _backup(self, backup_id: int) -> _Backup:
        try:
            return self._backups[backup_id]
        except KeyError:
            raise UnknownBackupError(f"no backup {backup_id}") from None

    @staticmethod
    def _keys(backup: _Backup) -> tuple[tuple[int | None, str | None], ...]:
        server_id, kind = backup.server.id, backup.backup_type
        return ((None, None), (server_id, None), (None, kind), (server_id, kind))

    def _insert(
        self,
        server: _Server,
        *,
        backup_id: int,
        backup_type: str,
        created_at: datetime,
        description: str | None,
        finishes_at: datetime | None = None,
        settled_status: str | None = None,
        size_mb: int | None = None,
        expires_at: datetime | None = None,
    ) -> _Backup:
        if expires_at is None and backup_type == AUTOMATIC:
            expires_at = created_at + self.automatic_retention
        backup = _Backup(
            backup_id=backup_id,
            server=server,
            backup_type=backup_type,
            created_at=created_at,
            finishes_at=created_at if finishes_at is None else finishes_at,
            fails=server.failing,
            size_mb=_size_for(server.id, backup_id) if size_mb is None else size_mb,
            description=description,
            expires_at=expires_at,
            settled_status=settled_status,
        )
        self._backups[backup_id] = backup
        self._tally.add(backup)
        for key in self._keys(backup):
            ids = self._index.setdefault(key, [])
            # Ids are handed out in ascending order, so appending is the common case.
            if not ids or ids[-1] < backup_id:
                ids.append(backup_id)
            else:
                bisect.insort(ids, backup_id)
        self._next_id = max(self._next_id, backup_id + 1)
        return backup

    def _add_sample_data(self) -> None:
        # Exactly the API documentation's example answers; their expiry dates are
        # calendar months, so they are given rather than derived from the retention rule.
        server = _Server(SAMPLE_SERVER_ID, "web-server-01", False)
        self._servers[server.id] = server
        self._sample_server_ids = frozenset({server.id})
        samples = [
            (501, AUTOMATIC, 4523, "2025-01-16T03:00:00", "2025-02-16T03:00:00"),
            (499, MANUAL, 4456, "2025-01-14T10:30:00", None),
            (495, AUTOMATIC, 4389, "2025-01-15T03:00:00", "2025-02-15T03:00:00"),
        ]
        for backup_id, kind, size, created, expires in samples:
            self._insert(
                server,
                backup_id=backup_id,
                backup_type=kind,
                created_at=datetime.fromisoformat(created).replace(tzinfo=UTC),
                description=_AUTOMATIC_DESCRIPTION if kind == AUTOMATIC else "Pre-update backup",
                settled_status=COMPLETED,
                size_mb=size,
                expires_at=(
                    datetime.fromisoformat(expires).replace(tzinfo=UTC) if expires else None
                ),
            )
