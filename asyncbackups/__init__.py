"""asyncbackups: the asyncio SDK for the VPS Backups API."""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]
