"""Whether a stream is a terminal, how wide it is, and rich on it when rich is installed."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["is_terminal", "rich_console", "terminal_width"]


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal (``False`` for ``None`` or a closed stream)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty at all, or a closed stream
        return False


def rich_console(stream: TextIO) -> Console | None:
    """A rich console drawing on ``stream``, or ``None`` for plain text.

    ``None`` when the stream is not a terminal or rich is not installed.
    """
    if not is_terminal(stream):
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    # Data (descriptions, server names) may hold brackets: never read them as markup.
    return Console(file=stream, markup=False, highlight=False)


def terminal_width(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` is, or ``None`` when it is no terminal."""
    if not is_terminal(stream):
        return None
    return shutil.get_terminal_size().columns
