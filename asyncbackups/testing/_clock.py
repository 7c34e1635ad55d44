"""The fake's clock: real UTC time plus an offset that tests drive instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    return moment.astimezone(UTC)


class Clock:
    """A UTC clock that tests move forward instead of sleeping.

    ``now()`` is the real time plus an offset, so the clock keeps running on its own;
    ``advance(seconds)`` moves it forward at once, and with it everything the fake times:
    backup completion, ``created_at`` of new backups and the ``Date`` header.
    ``freeze()`` stops it (at its current reading or a given instant) so timestamps become
    exactly predictable; a frozen clock still moves with ``advance``.

    Every method is safe to call from any thread, which the threaded fake relies on.
    """

    def __init__(self, *, start: datetime | None = None, frozen: bool = False) -> None:
        """Start at the real time, or at ``start`` (timezone-aware) and run from there."""
        self._lock = threading.Lock()
        self._offset = timedelta()
        self._frozen_at: datetime | None = None
        if frozen:
            self.freeze(start)
        elif start is not None:
            self.move_to(start)

    def __repr__(self) -> str:
        state = "frozen" if self.frozen else "running"
        return f"<Clock {self.now().isoformat()} {state}>"

    @property
    def frozen(self) -> bool:
        """Whether the clock stands still between calls to ``advance``."""
        return self._frozen_at is not None

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new reading.

        Raises ``ValueError`` for a negative amount: the fake's lifecycles assume time
        never runs backwards (use ``move_to`` to set an arbitrary instant on purpose).
        """
        if seconds < 0:
            raise ValueError(f"the clock only moves forward, got {seconds} seconds")
        step = timedelta(seconds=seconds)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += step
                return self._frozen_at
            self._offset += step
            return datetime.now(UTC) + self._offset

    def move_to(self, moment: datetime) -> None:
        """Set the clock to ``moment`` (timezone-aware); a frozen clock stays frozen."""
        moment = _require_aware(moment)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = moment
            else:
                self._offset = moment - datetime.now(UTC)

    def freeze(self, at: datetime | None = None) -> datetime:
        """Stop the clock at ``at`` (timezone-aware) or at its current reading; return it."""
        moment = self.now() if at is None else _require_aware(at)
        with self._lock:
            self._frozen_at = moment
        return moment

    def unfreeze(self) -> None:
        """Let a frozen clock run again from where it stood."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - datetime.now(UTC)
                self._frozen_at = None
