"""Idempotency-Key bookkeeping: the first answer to each key, replayed on its repeats."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["IdempotencyKeyReusedError", "IdempotencyStore"]

T = TypeVar("T")


class IdempotencyKeyReusedError(ValueError):
    """The key was first used for a different request (another path or body)."""


class IdempotencyStore(Generic[T]):
    """The first answer given under each (scope, key), with the request it answered.

    ``scope`` separates callers (the fake uses the token), so two clients cannot see each
    other's answers. The oldest keys are forgotten beyond ``max_keys``, which keeps a
    long-running fake's memory bounded. Safe to use from several threads.
    """

    def __init__(self, *, max_keys: int = 100_000) -> None:
        """Remember at most ``max_keys`` keys, forgetting the oldest first."""
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, T]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lookup(self, scope: str, key: str, fingerprint: bytes) -> T | None:
        """The remembered answer for this key, or ``None`` if the key is new.

        Raises ``IdempotencyKeyReusedError`` if the key answered a request with another
        ``fingerprint``: replaying that answer would be a lie about this request.
        """
        with self._lock:
            entry = self._entries.get((scope, key))
        if entry is None:
            return None
        first_fingerprint, answer = entry
        if first_fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(key)
        return answer

    def remember(self, scope: str, key: str, fingerprint: bytes, answer: T) -> None:
        """Keep ``answer`` as the one to replay for this key; the first one stays."""
        with self._lock:
            self._entries.setdefault((scope, key), (fingerprint, answer))
            while len(self._entries) > self._max_keys:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
