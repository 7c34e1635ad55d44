"""A stateful, fault-injecting fake of the Backups API, and a pytest fixture around it.

The fake is a real HTTP server (aiohttp.web) on loopback that any client can talk to::

    async with FakeBackupsAPI(backup_seconds=2) as api:
        client = BackupsClient(api.token, base_url=api.base_url)
        api.advance(2)                       # time is driven, not waited for
        api.faults.status_before(429, retry_after=0.05, times=1)

``python -m asyncbackups.testing --port 8000 --servers 100`` serves it as a process (see
``--help``). Whatever runs it, the fake can be measured from outside: ``GET /_fake/stats``
(beside the API, not under ``/api/v1/``; no token needed, never counted, never faulted)
answers its counts as JSON, and ``FakeBackupsAPI.stats()`` returns the same dict::

    $ curl http://127.0.0.1:8000/_fake/stats
    {"requests":{"GET backups/":12,"POST backups/":3},"faults":{},"throttled":0,
     "servers":101,"backups":{"in_progress":2,"completed":102,"failed":1},"restores":0,
     "rate_limit":null}

``requests`` counts API requests by ``"METHOD route"`` (``"GET backups/{id}/"``),
``faults`` the injected faults by kind, ``throttled`` the requests the rate limit
answered 429, ``backups`` the stored backups by status now, and ``rate_limit`` is the
limit in force (``null``, or ``{"rate": 20.0, "burst": 20.0}``).
``POST /_fake/reset-stats`` (``FakeBackupsAPI.reset_stats()``) zeroes the request,
fault and throttled counters and answers the stats as they stood just before.

The fake can also behave like a rate-limited provider:
``FakeBackupsAPI(rate_limit=20, burst=40, rate_limit_headers=True)`` (or
``--rate-limit 20 --burst 40 [--no-rate-limit-headers]``) shares one token bucket
among all clients, refilled at ``rate_limit`` a second on the fake's clock (so
``advance`` refills it), holding ``burst`` (default ``max(1, rate_limit)``, one second's
worth). Each API request takes a token; one that finds none gets ``429`` with
``Retry-After`` (whole seconds until a token, rounded up, at least 1) and is not
processed. With the headers on, every API answer carries ``RateLimit-Limit`` (the
capacity), ``RateLimit-Remaining`` (whole tokens left) and ``RateLimit-Reset`` (the
UNIX time, in whole seconds, when the bucket is full again). ``set_rate_limit`` changes
it while running.

Fleets of any size work with the sample data: a fleet numbers its servers from 1 but
steps around the sample server 12345 (taking one more id at its end instead), so
``--servers 20000`` gives 20,000 fleet servers plus the documentation's example intact.

``FakeBackupsAPI`` (and the ``serve``/``run``/``main`` entry points) load aiohttp.web on
first use, so importing this package, as the pytest plugin does in every run, is cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._arguments import add_serve_arguments, build_parser
from ._clock import Clock
from ._faults import Fault, FaultKind, FaultRule, Faults, When
from ._journal import Journal, RecordedRequest
from ._state import (
    BackupsState,
    FakeBackup,
    FakeServer,
    RestoreRecord,
    RestoreRefusedError,
    UnknownBackupError,
    UnknownServerError,
)

if TYPE_CHECKING:
    from ._fake_api import FakeBackupsAPI
    from ._serve import announce, fake_from_arguments, main, run, serve

__all__ = [
    "BackupsState",
    "Clock",
    "FakeBackup",
    "FakeBackupsAPI",
    "FakeServer",
    "Fault",
    "FaultKind",
    "FaultRule",
    "Faults",
    "Journal",
    "RecordedRequest",
    "RestoreRecord",
    "RestoreRefusedError",
    "UnknownBackupError",
    "UnknownServerError",
    "When",
    "add_serve_arguments",
    "announce",
    "build_parser",
    "fake_from_arguments",
    "main",
    "run",
    "serve",
]

# The names whose modules import aiohttp, loaded when first used.
_LAZY = {
    "FakeBackupsAPI": "._fake_api",
    "announce": "._serve",
    "fake_from_arguments": "._serve",
    "main": "._serve",
    "run": "._serve",
    "serve": "._serve",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
