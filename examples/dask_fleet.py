"""Back up a large fleet on a Dask cluster: one backup per server, even when workers die.

The recipe: split the fleet into shards (about four per worker thread), run one Dask task
per shard, and in each task run ``asyncio.run`` over ``client.backups.stream_many(shard,
description=..., resume=True)``. Each task returns plain dicts (picklable, JSON-ready),
which are gathered into a :class:`FleetReport`.

Why a retried shard makes no second backup: with ``resume=True`` the API itself is the
journal. Before backing anything up, a shard reads the manual backups and *adopts* any
that already carry the run's description (``outcome.adopted``) instead of making
another. A worker killed mid-shard may also leave creates *on the wire*, which the API
still carries out after the retried shard has read the list. So:

- every create of the run carries an ``Idempotency-Key`` derived from the description
  and the server (see ``stream_many``): the retried shard sends the same key as the dead
  one, and an API that honours keys makes one backup whatever the timing;
- a shard sets a Dask ``Event`` of its own before its first create; a retry finds it set
  and, before creating anything, waits ``settle_timeout`` (default: the client's
  per-request timeout, 30 s) for the dead attempt's creates to land, then reads again.
  That covers an API that ignores keys. Pass ``settle_timeout=0`` (``--settle-timeout
  0``) only when the API honours ``Idempotency-Key``.

What is guaranteed. Every server gets one row. Every server whose row is ``ok`` has
exactly one backup with the run's description, whether workers die, shards raise and are
retried, or you run the script again, provided that:

1. the description names this run and nothing else, and every attempt uses it;
2. the API honours ``Idempotency-Key``, or else every create reaches the API and is
   carried out within ``settle_timeout`` of being sent (keep it at least the client's
   per-request ``timeout``, after which the client gives up on a create, as by default);
3. no two attempts of a shard run at once: Dask runs a task once at a time, but running
   the script again while an earlier run's tasks still run on an external scheduler (a
   crashed driver leaves them running) races them;
4. a script run again starts at least ``settle_timeout`` after the earlier run died. (A
   shard that finds backups of the run on its servers waits by itself, as a retry does;
   one that finds none cannot know that creates for its servers may be on the wire.)

With an API that honours keys, only (1) is needed, and ``settle_timeout=0`` saves the
wait. A server whose row is not ``ok`` failed on the API's side.

Name the run in the description, e.g. ``"weekly 2026-W48"``: it is what ties a retried
or re-run shard to the backups of the same run, and what keeps next week's run from
adopting this week's backups. Re-run with the same description to retry the servers
that failed: the others are adopted.

Dask re-runs a task in two cases. A task on a worker that dies (killed, out of memory,
node lost) is rescheduled by the scheduler, up to ``distributed.scheduler.allowed-failures``
times (3 by default) before it fails with ``KilledWorker``. A task that *raises* (the API
unreachable for the whole shard, say) is retried up to ``retries`` times. A server that
merely fails does not raise: it comes back as a dict with ``ok: False`` and an ``error``.

What it reads: one task first reads the account's manual backups once, to find when the
run started (its oldest backup, or now); each shard then reads only the backups made
since (less 10 minutes for clock skew), when the API lists newest first.

Workers need ``asyncbackups`` installed and, unless you pass them, ``ASYNCBACKUPS_TOKEN``
(and ``ASYNCBACKUPS_BASE_URL`` if not the default) in their environment; prefer that to
passing ``token=``, which travels with the task through the scheduler. Run as a script,
this file's functions are shipped to the workers by value; imported as a module from
your own code, make it importable there (install it, or ``client.upload_file(path)``).

Usage::

    python examples/dask_fleet.py --scheduler tcp://scheduler:8786 \\
        --description "weekly 2026-W48" servers.txt      # one server ID a line

Without ``--scheduler`` it starts a ``LocalCluster`` on this machine. The same code runs
on dask-kubernetes, dask-jobqueue or any other Dask cluster: only the address changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncbackups import BackupOutcome, BackupsClient

if TYPE_CHECKING:
    import distributed

__all__ = [
    "FleetReport",
    "backup_fleet",
    "backup_shard",
    "default_shard_size",
    "run_started",
    "shards",
]

SHARDS_PER_THREAD = 4  # enough that a slow shard does not keep the others' workers idle
MAX_SHARD_SIZE = 500


def backup_shard(
    server_ids: list[int],
    *,
    description: str,
    since: datetime | None = None,
    base_url: str | None = None,
    token: str | None = None,
    wait: bool = False,
    settle_timeout: float | None = None,
    started_event: str | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Back up one shard of servers; runs inside a Dask worker (or anywhere).

    Safe to run again with the same ``description``: servers already backed up by an
    earlier (perhaps killed) attempt are adopted, not backed up twice. ``since`` is the
    run's start (see :func:`run_started`); ``started_event`` names a Dask ``Event`` that
    this shard sets before its first create, so that a retry knows it is one and lets
    the dead attempt's creates land first (``settle_timeout``). ``token`` and
    ``base_url`` default to ``$ASYNCBACKUPS_TOKEN`` / ``$ASYNCBACKUPS_BASE_URL``;
    ``client_options`` go to ``BackupsClient`` (``timeout``, ``rate_limit``, ...).

    Returns ``{"rows": [one dict per server, in the shard's order], "retried": bool,
    "settle_seconds": float}``.
    """
    retried = False
    if started_event is not None:
        import distributed

        started = distributed.Event(started_event)
        retried = started.is_set()
        started.set()  # before any create: a later attempt must know this one may have sent some
    waited: list[float] = []

    async def run() -> list[BackupOutcome]:
        async with BackupsClient(token, base_url=base_url, **(client_options or {})) as client:
            stream = client.backups.stream_many(
                server_ids,
                description=description,
                resume=True,
                wait=wait,
                since=since,
                earlier_attempt=retried,
                settle_timeout=settle_timeout,
                on_settle=waited.append,
            )
            return [outcome async for outcome in stream]

    # A Dask task runs in a worker thread with no event loop, so asyncio.run is right.
    outcomes = asyncio.run(run())
    position = {server_id: index for index, server_id in enumerate(server_ids)}
    outcomes.sort(key=lambda outcome: position[outcome.server_id])
    return {
        "rows": [_as_dict(outcome) for outcome in outcomes],
        "retried": retried,
        "settle_seconds": sum(waited),
    }


def _as_dict(outcome: BackupOutcome) -> dict[str, Any]:
    """An outcome as plain data: no SDK types cross back to the client."""
    backup, error = outcome.backup, outcome.error
    return {
        "server_id": outcome.server_id,
        "backup_id": None if backup is None else backup.id,
        "status": None if backup is None else str(backup.status.value),
        "ok": outcome.ok,
        "adopted": outcome.adopted,
        "error": None if error is None else f"{type(error).__name__}: {error}",
    }


def run_started(
    description: str, *, base_url: str | None = None, token: str | None = None
) -> datetime:
    """When the run named ``description`` started: its oldest backup's time, or now.

    Every shard of the run, retries and later runs of the script included, reads only
    the backups made since (less a margin for clock skew). One whole read of the
    account's manual backups, run once per call of :func:`backup_fleet`.
    """
    now = datetime.now(UTC)  # before the read: a backup made meanwhile is newer still

    async def oldest() -> datetime | None:
        async with BackupsClient(token, base_url=base_url) as client:
            found = None
            async for backup in client.backups.iter(backup_type="manual"):
                if (backup.description or "").strip() == description.strip():
                    found = min(found or backup.created_at, backup.created_at)
            return found

    found = asyncio.run(oldest())
    return now if found is None else min(found, now)


def shards(server_ids: Iterable[int], size: int) -> list[list[int]]:
    """Split the fleet into consecutive shards of at most ``size`` servers."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"shard size must be a positive int, not {size!r}")
    ids = list(server_ids)
    if len(set(ids)) != len(ids):
        # Two shards racing on one server could both back it up: refuse up front.
        raise ValueError("server_ids repeats a server; each server is backed up once")
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def default_shard_size(fleet: int, threads: int) -> int:
    """About ``SHARDS_PER_THREAD`` shards per worker thread, of 1 to ``MAX_SHARD_SIZE``."""
    return max(1, min(MAX_SHARD_SIZE, math.ceil(fleet / (SHARDS_PER_THREAD * max(threads, 1)))))


@dataclasses.dataclass(frozen=True)
class FleetReport:
    """What a run did: one row per server (in input order), and how the shards went."""

    rows: list[dict[str, Any]]
    shards: int
    # Run again: their worker died (while running them, or holding their result), or
    # they raised.
    shards_retried: int
    shards_settled: int  # waited for an earlier attempt's creates to land
    settle_seconds: float  # all those waits together

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The rows of the servers that were not backed up."""
        return [row for row in self.rows if not row["ok"]]

    @property
    def adopted(self) -> int:
        """Servers whose backup an earlier attempt made (adopted, not made again)."""
        return sum(row["adopted"] for row in self.rows)


def backup_fleet(
    client: distributed.Client,
    server_ids: Iterable[int],
    *,
    description: str,
    shard_size: int | None = None,
    retries: int = 3,
    since: datetime | None = None,
    base_url: str | None = None,
    token: str | None = None,
    task: Callable[..., dict[str, Any]] = backup_shard,
    **kw: Any,
) -> FleetReport:
    """Back up every server on the cluster behind ``client``: one task per shard.

    ``shard_size`` defaults to about four shards per worker thread (1 to 500 servers).
    ``since`` defaults to :func:`run_started`, run as a task (where the credentials
    are); pass the value an earlier call used to save that read. ``kw`` goes to each
    task (``wait``, ``settle_timeout``, ``client_options``); ``task`` is ``backup_shard``
    or a wrapper of it
    (to add metrics, or to inject faults in tests). Raises what a shard raised once its
    ``retries`` are spent, or ``KilledWorker`` if its workers kept dying.
    """
    if not description or not description.strip():
        raise ValueError("a description that names the run is needed to resume safely")
    import distributed

    ids = list(server_ids)
    if shard_size is None:
        client.wait_for_workers(1)
        threads = sum(client.nthreads().values())
        shard_size = default_shard_size(len(ids), threads)
    connection = {"base_url": base_url, "token": token}
    if since is None:
        # Once, before any shard: every attempt of every shard gets this same value.
        since = client.submit(run_started, description, pure=False, **connection).result()
    run = uuid.uuid4().hex
    events = [f"dask-fleet-{run}-{index}" for index in range(math.ceil(len(ids) / shard_size))]
    futures = [
        client.submit(
            task,
            shard,
            description=description,
            since=since,
            started_event=event,
            retries=retries,  # re-run a shard that raised; a dead worker's shard is rescheduled
            pure=False,  # each call is real work, never deduplicated or cached by Dask
            **connection,
            **kw,
        )
        for shard, event in zip(shards(ids, shard_size), events, strict=True)
    ]
    try:
        results = client.gather(futures)
    finally:
        for event in events:  # a set Event stays on the scheduler until cleared
            distributed.Event(event, client=client).clear()
    return FleetReport(
        rows=[row for result in results for row in result["rows"]],
        shards=len(results),
        shards_retried=sum(result["retried"] for result in results),
        shards_settled=sum(result["settle_seconds"] > 0 for result in results),
        settle_seconds=sum(result["settle_seconds"] for result in results),
    )


def _main() -> int:
    import argparse
    import sys

    import distributed

    parser = argparse.ArgumentParser(description="Back up a fleet on a Dask cluster.")
    parser.add_argument("servers", help="a file of server IDs, one a line ('-' for stdin)")
    parser.add_argument("--description", required=True, help='names the run: "weekly 2026-W48"')
    parser.add_argument("--scheduler", help="tcp://host:8786 (default: a LocalCluster here)")
    parser.add_argument(
        "--shard-size", type=int, help="servers a task (default: about 4 tasks a worker thread)"
    )
    parser.add_argument("--wait", action="store_true", help="wait for every backup to complete")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        help="seconds a retried shard lets the dead attempt's creates land (default: 30, "
        "the per-request timeout); 0 only if the API honours Idempotency-Key",
    )
    args = parser.parse_args()

    with sys.stdin if args.servers == "-" else open(args.servers) as lines:
        server_ids = [int(line) for line in lines if line.strip()]
    with distributed.Client(args.scheduler) as client:  # None: start a LocalCluster
        report = backup_fleet(
            client,
            server_ids,
            description=args.description,
            shard_size=args.shard_size,
            wait=args.wait,
            settle_timeout=args.settle_timeout,
        )
    for row in report.failed:
        print(f"server {row['server_id']}: {row['error']}", file=sys.stderr)
    print(
        f"{len(report.rows) - len(report.failed)} backed up "
        f"({report.adopted} from an earlier attempt), {len(report.failed)} failed"
    )
    shards = (
        f"{report.shards} shards, {report.shards_retried} run again (a worker died or it raised)"
    )
    if report.shards_settled:
        shards += (
            f"; {report.shards_settled} waited {report.settle_seconds:g} s in all "
            "for an earlier attempt's creates to land"
        )
    print(shards)
    # Re-run with the same description to retry the failures: the rest are adopted.
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(_main())
