"""Per-client counters, and the read-only snapshot ``client.stats`` hands out."""

from __future__ import annotations

from collections import Counter
from types import MappingProxyType
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
    )

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.retries = 0
        self.reconciles = 0
        self.rate_limit_pauses = 0
        self.poll_rounds = 0
        self.bytes_read = 0

    def snapshot(self) -> ClientStats:
        """The counts as they stand now; later calls do not change it."""
        return ClientStats(
            requests=MappingProxyType(dict(self.requests)),
            retries=self.retries,
            reconciles=self.reconciles,
            rate_limit_pauses=self.rate_limit_pauses,
            poll_rounds=self.poll_rounds,
            bytes_read=self.bytes_read,
        )


def _frozen_mapping(value: Any) -> MappingProxyType[str, int]:
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class ClientStats:
    """A snapshot of what one client (and every copy made by ``with_options``) did.

    ``requests`` counts HTTP requests sent by route (``"GET backups/"``,
    ``"POST backups/"``, ``"GET backups/{id}/"``...), every attempt and page included.
    ``retries`` counts attempts after a first one; ``reconciles`` the reads a create in
    doubt made to find its backup; ``rate_limit_pauses`` the 429s that paused the whole
    client; ``poll_rounds`` the shared poller's rounds; ``bytes_read`` the answers'
    bodies, decompressed.
    """

    requests: MappingProxyType[str, int] = attrs.field(converter=_frozen_mapping)
    retries: int
    reconciles: int
    rate_limit_pauses: int
    poll_rounds: int
    bytes_read: int

    @property
    def total_requests(self) -> int:
        """Every HTTP request sent, whatever its route."""
        return sum(self.requests.values())

    def __reduce__(self) -> tuple[Any, ...]:
        # A mapping proxy does not pickle; its dict does.
        return (_rebuild_stats, (dict(self.requests), attrs.asdict(self, recurse=False)))


def _rebuild_stats(requests: dict[str, int], values: dict[str, Any]) -> ClientStats:
    return ClientStats(**{**values, "requests": requests})
