"""Checks of what a caller passes in: IDs, numbers, keys and descriptions.

A mistake in the call itself is the caller's, not the network's: it fails before any
request, as a plain ``TypeError`` or ``ValueError``.
"""

from __future__ import annotations

import uuid

__all__ = ["check_description", "check_id", "check_idempotency_key", "check_number"]


def check_id(value: object, name: str = "id") -> int:
    """Return ``value`` if it is a positive ``int``.

    Raises ``TypeError`` for anything that is not an ``int`` (``bool`` and numeric
    strings included) and ``ValueError`` for zero or a negative number.
    """
    if type(value) is not int:
        # bool is an int subclass and "12" looks like one; both are caller mistakes here.
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def check_number(name: str, value: object, *, minimum: float, integer: bool = False) -> None:
    """``TypeError`` unless ``value`` is a real number (an ``int`` if ``integer``; never a
    ``bool``), ``ValueError`` when it is below ``minimum`` or NaN."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if type(value) not in kinds:
        kind = "an int" if integer else "a number"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if not value >= minimum:  # type: ignore[operator]  # also catches NaN
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def check_idempotency_key(key: str | None) -> str:
    """The caller's key after checking it fits in a header, or a fresh uuid4."""
    if key is None:
        return str(uuid.uuid4())
    if not isinstance(key, str):
        raise TypeError(f"idempotency_key must be a str, not {type(key).__name__}")
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise ValueError("idempotency_key must be 1-255 printable ASCII characters")
    return key


def check_description(description: object) -> str | None:
    """``description`` if it is ``None`` or a ``str``; ``TypeError`` otherwise."""
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a str, not {type(description).__name__}")
    return description
