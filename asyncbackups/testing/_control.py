"""The fake's own routes beside the API: its stats, so another process can measure it.

They live under ``/_fake/``, outside the API's ``/api/v1/``, so no client of the API
reaches them by accident:

``GET /_fake/stats`` (also ``HEAD``)
    200 with the counts so far, e.g.::

        {"requests": {"GET backups/": 12, "POST backups/": 3},
         "faults": {"status_before": 1},
         "throttled": 4,
         "servers": 3,
         "backups": {"in_progress": 2, "completed": 5, "failed": 1},
         "restores": 0,
         "rate_limit": {"rate": 20.0, "burst": 20.0}}

    ``requests`` counts every API request by ``"METHOD route"``, the route named as
    ``FakeBackupsAPI.requests`` names it (``"GET backups/{id}/"``; a path no route
    matched counts under itself), the throttled ones included; ``faults`` counts
    injected faults by kind; ``throttled`` counts the requests the rate limit answered
    429 (not the injected 429s, which ``faults`` counts); ``backups`` counts stored
    backups by status as of now, the three documented ones always present;
    ``rate_limit`` is the limit in force (``null`` without one).

``POST /_fake/reset-stats``
    Zero the request, fault and throttled counters and answer 200 with the stats as
    they stood just before, in one step, so reading counts interval by interval loses
    no request.
    Backups, servers and restores are the data itself and are left alone.

Both need no token, and ignore one that is sent: they reveal only counts, and whatever
measures the fake should not need the API's secret. They are never counted, logged,
faulted or throttled (nor spend a token of the rate limit), so measuring the fake does
not change what it measures. Another path under
``/_fake/`` is 404; another method is 405.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._faults import Faults
from ._journal import Journal
from ._rate_limit import RateLimiter
from ._state import BackupsState
from ._views import Reply

__all__ = ["CONTROL_PREFIX", "Control", "route_name"]

CONTROL_PREFIX: Final = "/_fake/"


def route_name(method: str, route: str) -> str:
    """How the stats name a route: ``route_name("GET", "backups/")`` is ``"GET backups/"``."""
    return f"{method} {route}"


def _render(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class Control:
    """The stats of one fake, read (or reset) in-process or through ``/_fake/`` routes."""

    def __init__(
        self, state: BackupsState, journal: Journal, faults: Faults, rate_limiter: RateLimiter
    ) -> None:
        """Report on ``state``, the requests in ``journal``, the faults and the rate limit."""
        self._state = state
        self._journal = journal
        self._faults = faults
        self._rate_limiter = rate_limiter
        self._routes: Mapping[str, Mapping[str, Callable[[], dict[str, Any]]]] = {
            "stats": {"GET": self.stats},
            "reset-stats": {"POST": self.reset_stats},
        }

    def stats(self) -> dict[str, Any]:
        """The counts so far, as ``GET /_fake/stats`` answers them (see the module docs)."""
        return self._assemble(
            self._journal.counts, self._faults.injected, self._rate_limiter.throttled
        )

    def reset_stats(self) -> dict[str, Any]:
        """Zero the request, fault and throttled counters; return the stats as they stood."""
        return self._assemble(
            self._journal.reset_counts(),
            self._faults.reset_counters(),
            self._rate_limiter.reset_throttled(),
        )

    def handle(self, method: str, path: str) -> Reply:
        """Answer a request for ``path`` (absolute, under ``CONTROL_PREFIX``)."""
        name = path.removeprefix(CONTROL_PREFIX).removesuffix("/")
        views = self._routes.get(name)
        if views is None:
            return Reply(404, _render({"detail": "Not found."}))
        allowed = [*views, "HEAD"] if "GET" in views else [*views]
        view = views.get("GET" if method == "HEAD" else method)
        if view is None:
            detail = {"detail": f'Method "{method}" not allowed.'}
            return Reply(405, _render(detail), (("Allow", ", ".join(allowed)),))
        return Reply(200, _render(view()), (("Cache-Control", "no-store"),))

    def _assemble(
        self, requests: Counter[tuple[str, str]], faults: Counter[str], throttled: int
    ) -> dict[str, Any]:
        state = self._state.stats()
        return {
            "requests": {
                route_name(method, route): count
                for (method, route), count in sorted(requests.items())
            },
            "faults": {str(kind): count for kind, count in sorted(faults.items())},
            "throttled": throttled,
            "servers": state["servers"],
            "backups": state["backups"],
            "restores": state["restores"],
            "rate_limit": self._rate_limiter.config(),
        }
