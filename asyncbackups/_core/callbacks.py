"""Calling what the caller handed us: plain or async callbacks alike."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["call_back"]


async def call_back(callback: Callable[[Any], Any] | None, value: Any) -> None:
    """Call a plain or async callback; what it raises propagates."""
    if callback is None:
        return
    result = callback(value)
    if inspect.isawaitable(result):
        await result
