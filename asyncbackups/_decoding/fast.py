"""An optional fast path for list pages, with msgspec (the ``[fast]`` extra).

msgspec decodes a page's bytes straight into the frozen attrs models, in C, in about
0.8 x the time of the standard library's ``json.loads`` alone for a 1,000-backup page,
where parsing then structuring in Python takes about 2 x (benchmarks/bench_decode.py).

It only ever accepts *less* than the SDK's own decoder: a page it cannot decode, or
decodes to something the SDK's rules could read differently (a timestamp not written
in UTC with ``Z``), returns ``None`` and takes the general path,
which accepts or explains exactly as before. So there is one behaviour; a differential
test holds the fast path to the general one. The one known difference is orjson's, not
this path's: integers past 64 bits, which orjson reads as floats (and the SDK then
refuses) where msgspec and the standard library keep them exact.
"""

from __future__ import annotations

import gc
import re
import sys
from datetime import UTC
from typing import Any

from .._core.models import Backup

__all__ = ["decode_page_bytes"]


def _build() -> Any:
    try:
        import msgspec
    except ImportError:  # the default install: the general path does all the work
        return None

    class _Page(msgspec.Struct):
        results: list[Backup]
        count: Any = None
        next: Any = None

    return msgspec.json.Decoder(_Page)


_SUBMICROSECOND = re.compile(rb"\.[0-9]{7}")
# Bodies from this size (about 300 backups) decode with the garbage collector paused.
_PAUSE_GC_FROM = 64 * 1024

# Built on the first page, not at import: importing msgspec costs the SDK's own import
# time a tenth (benchmarks/bench_import.py).
_DECODERS: list[Any] = []


def _decoder() -> Any:
    if not _DECODERS:
        _DECODERS.append(_build())
    return _DECODERS[0]


def decode_page_bytes(body: bytes) -> tuple[list[Backup], str | None, int | None] | None:
    """A DRF page's backups, ``next`` link and usable ``count``; ``None`` to take the
    general path (no msgspec, a bare list, anything unusual)."""
    decoder = _DECODERS[0] if _DECODERS else _decoder()
    if decoder is None or (b"." in body and _SUBMICROSECOND.search(body)):
        # Fractions finer than a microsecond: msgspec rounds them, fromisoformat cuts
        # them; the general path decides (a regular expression scan costs ~50 us a page).
        return None
    try:
        if len(body) < _PAUSE_GC_FROM or not gc.isenabled():
            page = decoder.decode(body)
        else:
            # Each model the decoder makes is tracked by the garbage collector, which
            # would otherwise run several young collections over a page half built:
            # paused, a 1,000-backup page decodes 3-8% faster, a 10,000-backup one 20-30%
            # (benchmarks/bench_decode.py). msgspec runs no Python code while it
            # decodes, so no other thread can see the collector paused.
            gc.disable()
            try:
                page = decoder.decode(body)
            finally:
                gc.enable()
    except Exception:  # msgspec refused it: the general path accepts or explains
        return None
    next_link = page.next
    if next_link is not None and type(next_link) is not str:
        return None
    for backup in page.results:
        expires = backup.expires_at
        # "Z" decodes to UTC itself; anything else (naive, another offset) is read by
        # the general path's rules.
        if backup.created_at.tzinfo is not UTC or (
            expires is not None and expires.tzinfo is not UTC
        ):
            return None
    count = page.count
    if type(count) is not int or not 0 <= count <= sys.maxsize:
        count = None
    return page.results, next_link or None, count
