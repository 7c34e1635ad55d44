"""When to poll: the poller's plan as pure functions of time.

Every function takes the current time ``now`` (seconds of the poller's clock) and plain
numbers, and returns a time or a choice, so the plan is tested with numbers alone.

- A *wait* polls on a growing, jittered interval; a round serves it once half its
  interval has passed, so waits due close together share one round.
- A fleet's *watches* are planned from how long backups take. The first watch (the
  *probe*) is polled closely until its backup ends; the time it took is *learned*, and
  the other watches are first polled about then. Until that is known, a large fleet's
  watches wait (*blind*) rather than poll a list of thousands on a schedule made for one.
- Rounds of watches are spaced so that polling takes a small share of the fleet's
  requests, and each round reads the list across all servers or server by server,
  whichever costs fewer pages.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from typing import NamedTuple

__all__ = [
    "LARGE_FLEET",
    "PAGE_LENGTH",
    "Plan",
    "across_cost",
    "blind_due",
    "first_watch_due",
    "interval",
    "jitter",
    "learned_duration",
    "next_poll",
    "overdue_due",
    "probe_due",
    "reads_across",
    "round_gap",
]

# Intervals grow by this factor per poll, and vary by this fraction either way so that
# waits started together drift apart instead of polling in lockstep.
GROWTH = 1.5
JITTER = 0.15
# A wait is served by a round once this fraction of its interval has passed, so waits
# with close due times share one round instead of each triggering its own.
EARLY_FRACTION = 0.5
# The API's page length, as far as the poller assumes one before it has read a list.
PAGE_LENGTH = 100
# From this many watches on, a round across the list costs several pages.
LARGE_FLEET = 2 * PAGE_LENGTH
# Watches planned blind (nothing learned yet, the probe still running) are first polled
# this many times their longest interval late, as a safety net.
BLIND_FACTOR = 4
# The probe is first polled after this many seconds, then every tenth of its age.
PROBE_START = 0.5
PROBE_STEP = 0.1
# The share of a fleet's requests its polls may take: a round across the whole list
# costs its pages, so the rounds are spaced to stay within it.
POLL_BUDGET = 0.025
# Rounds of watches are never further apart than this share of the learned duration.
LEARNED_GAP = 0.25


class Plan(NamedTuple):
    """A wait's next poll: ``due`` when it should be polled, ``earliest`` when a round
    may serve it already."""

    due: float
    earliest: float


def jitter() -> float:
    """A random factor near 1 for :func:`interval` (the one thing here not pure)."""
    return random.uniform(1 - JITTER, 1 + JITTER)


def interval(
    polls: int, *, poll_interval: float, max_poll_interval: float, jitter: float = 1.0
) -> float:
    """The pause after a wait's ``polls``-th poll: growing from ``poll_interval`` by
    :data:`GROWTH` a poll, times ``jitter``, never below ``poll_interval`` nor above
    ``max_poll_interval``."""
    grown = poll_interval * GROWTH ** min(polls, 64)
    return min(max(grown * jitter, poll_interval), max_poll_interval)


def next_poll(now: float, pause: float, *, at_least: float = 0.0) -> Plan:
    """A wait polled at ``now``, to be polled again ``pause`` seconds later.

    ``at_least`` (a ``Retry-After``) is a floor that no round undercuts: a wait told to
    hold back is served no earlier than when it is due.
    """
    pause = max(pause, at_least)
    due = now + pause
    return Plan(due, due if at_least else now + pause * EARLY_FRACTION)


def first_watch_due(
    now: float,
    *,
    poll_interval: float,
    max_poll_interval: float,
    took: float | None,
    probing: bool,
    watches: int,
) -> float:
    """When a watch begun at ``now`` is first polled.

    ``took`` is how long backups took, once learned; ``probing`` whether a probe is
    already running; ``watches`` how many the poller follows before this one.
    """
    if took is not None:
        return now + took
    if not probing:
        # Nothing learned yet: this watch becomes the probe, polled closely, so that
        # how long backups take is known early; the others wait for that.
        return now + min(poll_interval, PROBE_START)
    if watches < LARGE_FLEET:
        # A round over a small fleet costs a page or two: poll as a wait would.
        return now + poll_interval
    # Planned once the probe ends; polled blind only if that takes very long (a probe
    # stuck in progress must not leave every other watch unpolled).
    return blind_due(now, max_poll_interval=max_poll_interval)


def blind_due(now: float, *, max_poll_interval: float) -> float:
    """When a watch planned before anything was learned is polled anyway."""
    return now + BLIND_FACTOR * max_poll_interval


def probe_due(now: float, *, started: float, max_poll_interval: float) -> float:
    """When the probe, begun at ``started`` and read at ``now``, is next polled.

    Closely, but in proportion to how long it has run: a tenth of a long backup's time
    is as good an estimate, for few requests.
    """
    step = max(PROBE_START, (now - started) * PROBE_STEP)
    return now + min(step, max_poll_interval)


def overdue_due(now: float, *, took: float, max_poll_interval: float) -> float:
    """When a watch read at ``now``, past its expected end, is next polled: soon, in
    proportion to how long backups take."""
    return now + min(max(took * PROBE_STEP, PROBE_START / 2), max_poll_interval)


def learned_duration(age: float, *, last_seen_running: float | None = None) -> float:
    """How long a backup took, seen final at ``age`` seconds into its watch.

    For the probe, ``last_seen_running`` is its age at the poll before, which saw it
    still running: it ended in between, so halfway is the estimate.
    """
    if last_seen_running is None or last_seen_running >= age:
        return age
    return (last_seen_running + age) / 2


def round_gap(
    now: float,
    *,
    watches: int,
    pages_across: int,
    latest_due: float,
    max_poll_interval: float,
    took: float | None,
) -> float:
    """How long the next round of watches waits after the one ending at ``now``.

    A round across the list costs about a request per page, whoever it serves
    (``pages_across``, the most it took so far; 0 if none was read): the watches' polls
    get a :data:`POLL_BUDGET` share of the fleet's requests, so the rounds left are
    spread until ``latest_due``, the last watch's due time - but never so far apart that
    a wait is reported much later than a poll of its own would see it
    (``max_poll_interval``, the shortest of the watches').
    """
    pages = pages_across or max(1, math.ceil(watches / PAGE_LENGTH))
    rounds = max(1, int(POLL_BUDGET * watches / pages))
    cap = max_poll_interval if took is None else min(max_poll_interval, took * LEARNED_GAP)
    return min((max(latest_due, now) - now) / rounds, cap)


def across_cost(pages_last_time: int | None, *, wanted: int) -> int:
    """The pages a read across the list costs: what it took last time, else an estimate
    from the ``wanted`` backups."""
    return pages_last_time or max(1, math.ceil(wanted / PAGE_LENGTH))


def reads_across(
    server_ids: Iterable[int], *, across_cost: int, server_pages: Mapping[int, int]
) -> bool:
    """Whether to read the list across all servers rather than server by server.

    ``server_ids`` are the wanted backups' servers (repeats allowed); reading one costs
    ``server_pages[server]`` pages, 1 if never read. Counting stops as soon as reading
    them one by one costs more than reading across: a fleet's round never builds a set
    of all its servers.
    """
    servers: set[int] = set()
    per_server = 0
    for server in server_ids:
        if server not in servers:
            servers.add(server)
            per_server += server_pages.get(server, 1)
            if per_server > across_cost and len(servers) > 1:
                break
    return len(servers) > 1 and across_cost < per_server
