"""What the fake was asked: request counters by route, and a log of recent requests."""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ._faults import FaultKind

__all__ = ["Journal", "RecordedRequest"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it, and how it answered.

    ``path`` is relative to ``/api/v1/`` (the full path if outside it); ``template`` is
    the route it matched, like ``"backups/{id}/"`` (``None``: no route). ``status`` is
    ``None`` when the connection was dropped instead of answered. ``throttled`` marks
    a request the rate limit refused (a 429 the views never saw).
    """

    method: str
    path: str
    template: str | None
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    idempotency_key: str | None = None
    status: int | None = None
    fault: FaultKind | None = None
    replayed: bool = False
    throttled: bool = False

    def json(self) -> Any:
        """The request body decoded as JSON; raises ``ValueError`` if it is not JSON."""
        return json.loads(self.body)


class Journal:
    """Counts every request by (method, route template) and keeps the latest ones.

    Only the last ``max_records`` requests are kept in ``records``, so a long-running
    fake stays small; the counters cover every request. Safe to read from any thread.
    """

    def __init__(self, *, max_records: int = 10_000) -> None:
        """Keep the last ``max_records`` requests."""
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._records: deque[RecordedRequest] = deque(maxlen=max_records)

    def record(self, request: RecordedRequest) -> None:
        """Count and keep one answered (or dropped) request."""
        key = (request.method, request.template or request.path)
        with self._lock:
            self._counts[key] += 1
            self._records.append(request)

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """Requests by ``(method, template)``, e.g. ``("GET", "backups/{id}/")`` (a copy)."""
        with self._lock:
            return Counter(self._counts)

    @property
    def records(self) -> list[RecordedRequest]:
        """The most recent requests, oldest first (a copy)."""
        with self._lock:
            return list(self._records)

    def reset_counts(self) -> Counter[tuple[str, str]]:
        """Zero the counters (keeping the log); return them as they stood, in one step."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            return counts

    def clear(self) -> None:
        """Forget the counters and the kept requests."""
        with self._lock:
            self._counts.clear()
            self._records.clear()
