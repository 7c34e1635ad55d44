"""Per-client counters, and the read-only snapshot ``client.stats`` hands out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

__all__ = ["ClientStats", "Counters"]


class Counters:
    """What a client did, counted as it happens (shared by a client and its copies)."""

    __slots__ = (
        "bytes_read",
        "poll_rounds",
        "rate_limit_pauses",
        "reconciles",
        "requests",
        "retries",
        "throttled",
    )

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.retries = 0
        self.reconciles = 0
        self.rate_limit_pauses = 0
        self.throttled = 0
        self.poll_rounds = 0
        self.bytes_read = 0

    def snapshot(self, *, rate_limit: float | None = None) -> ClientStats:
        """The counts as they stand now; later calls do not change it.

        ``rate_limit`` is the rate the governor runs at now, which it, not the counters,
        knows.
        """
        return ClientStats(
            requests=RouteCounts(self.requests),
            retries=self.retries,
            reconciles=self.reconciles,
            rate_limit_pauses=self.rate_limit_pauses,
            poll_rounds=self.poll_rounds,
            bytes_read=self.bytes_read,
            throttled=self.throttled,
            rate_limit=rate_limit,
        )


class RouteCounts(Mapping[str, int]):
    """Requests by route: a read-only mapping that pickles and copies."""

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self._counts = dict(counts or {})

    def __getitem__(self, route: str) -> int:
        return self._counts[route]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return f"RouteCounts({self._counts!r})"

    def __eq__(self, other: object) -> bool:
        return dict(self._counts) == dict(other) if isinstance(other, Mapping) else NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._counts.items()))

    def __getstate__(self) -> dict[str, int]:
        return self._counts

    def __setstate__(self, state: dict[str, int]) -> None:
        self._counts = dict(state)


def _frozen_mapping(value: Any) -> RouteCounts:
    return value if isinstance(value, RouteCounts) else RouteCounts(value)


@attrs.frozen(kw_only=True)
class ClientStats:
    """A snapshot of what one client (and every copy made by ``with_options``) did.

    ``requests`` counts HTTP requests sent by route (``"GET backups/"``,
    ``"POST backups/"``, ``"GET backups/{id}/"``...), every attempt and page included.
    ``retries`` counts attempts after a first one; ``reconciles`` the reads a create in
    doubt made to find its backup; ``rate_limit_pauses`` the 429s that paused the whole
    client; ``poll_rounds`` the shared poller's rounds; ``bytes_read`` the answers'
    bodies, decompressed. ``throttled`` counts the 429 answers met; ``rate_limit`` is the
    rate the client's governor runs at now, in requests a second (``None``: it does not
    pace, having met no limit).
    """

    requests: RouteCounts = attrs.field(converter=_frozen_mapping)
    retries: int
    reconciles: int
    rate_limit_pauses: int
    poll_rounds: int
    bytes_read: int
    throttled: int = 0
    rate_limit: float | None = None

    @property
    def total_requests(self) -> int:
        """Every HTTP request sent, whatever its route."""
        return sum(self.requests.values())
