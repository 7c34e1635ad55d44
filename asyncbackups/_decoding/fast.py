"""The fast path: msgspec decodes an answer's bytes straight into the frozen attrs models.

It runs first for every list page and every single backup, and takes an answer only when
the general decoder (:mod:`asyncbackups._decoding.convert`) would give the very same
models. Anything else returns ``None`` and takes the general path, which accepts or
explains as the reference: what msgspec refuses (a whole float for an ID, a byte-order
mark, ``NaN``, ...) and what it reads differently (a timestamp without an offset, which
the general path reads as UTC; one whose instant in UTC may fall outside what
:class:`~datetime.datetime` holds). ``tests/test_decode_differential.py`` holds the two
to the same results.

The garbage collector keeps running: pausing it would speed up a large page, but would
pause it for every thread of the process, whatever they were doing meanwhile.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._core.models import Backup

if TYPE_CHECKING:
    import msgspec

__all__ = ["decode_backup_bytes", "decode_page_bytes"]


def _read_alike(moment: datetime | None) -> bool:
    """Whether the general path reads this timestamp as msgspec did."""
    if moment is None or moment.tzinfo is UTC:
        return True
    # Naive: the general path makes it UTC. Year 1 or 9999 at another offset: its
    # instant in UTC may be out of range, which the general path refuses.
    return moment.tzinfo is not None and moment.year != 1 and moment.year != 9999


def _all_read_alike(backups: Iterable[Backup]) -> bool:
    for backup in backups:
        created, expires = backup.created_at, backup.expires_at
        # The API writes UTC ("Z", which msgspec gives as the UTC singleton): the test
        # inline spares that usual case a call per timestamp.
        if (created.tzinfo is not UTC and not _read_alike(created)) or (
            expires is not None and expires.tzinfo is not UTC and not _read_alike(expires)
        ):
            return False
    return True


@functools.cache
def _decoders() -> tuple[msgspec.json.Decoder[Any], msgspec.json.Decoder[Backup]]:
    # Imported on the first answer, not with the SDK: `import asyncbackups` stays as
    # light as the benchmarks of import time measure it.
    import msgspec

    class Page(msgspec.Struct):
        """A DRF page; the fields it does not name (``previous``) are ignored."""

        results: list[Backup]
        count: Any = None
        next: str | None = None

    # A bare list is what a server without pagination answers.
    return msgspec.json.Decoder(Page | list[Backup]), msgspec.json.Decoder(Backup)


def decode_page_bytes(body: bytes) -> tuple[list[Backup], str | None, int | None] | None:
    """A list answer's backups, ``next`` link and usable ``count``, or ``None`` to leave
    it to the general path.

    ``count`` is kept only as an ``int`` from 0 to ``sys.maxsize``, as the general path
    keeps it.
    """
    try:
        page = _decoders()[0].decode(body)
    except Exception:  # msgspec refused it: the general path accepts or explains
        return None
    if type(page) is list:
        backups, next_link, count = page, None, None
    else:
        backups, next_link, count = page.results, page.next, page.count
    if not _all_read_alike(backups):
        return None
    if type(count) is not int or not 0 <= count <= sys.maxsize:
        count = None
    return backups, next_link or None, count


def decode_backup_bytes(body: bytes) -> Backup | None:
    """One backup, or ``None`` to leave the answer to the general path."""
    try:
        backup = _decoders()[1].decode(body)
    except Exception:  # msgspec refused it: the general path accepts or explains
        return None
    return backup if _all_read_alike((backup,)) else None
