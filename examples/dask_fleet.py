"""Back up a large fleet on a Dask cluster, safely retried when a worker dies.

The recipe: split the fleet into shards, run one Dask task per shard, and in each task
run ``asyncio.run`` over ``client.backups.stream_many(shard, description=..., resume=True)``.
Each task returns plain dicts (picklable, JSON-ready), which are gathered and flattened.

Why retries are safe: with ``resume=True`` the API itself is the journal. Before backing
anything up, a shard reads the manual backups and *adopts* any that already carry the
run's description (``outcome.adopted``) instead of making another. So when a worker dies
halfway through a shard and Dask runs the shard again elsewhere, the servers already done
are adopted and only the rest are backed up: every server ends with exactly one backup,
even on an API that ignores ``Idempotency-Key``. The same holds when you run the whole
script again after a crash, or to retry the servers that failed: use the same description.

Name the run in the description, e.g. ``"weekly 2026-W48"``: it is what ties a retried
or re-run shard to the backups of the same run, and what keeps next week's run from
adopting this week's backups. Never reuse a description for a different run.

Dask re-runs a task in two cases. A task on a worker that dies (killed, out of memory,
node lost) is rescheduled by the scheduler, up to ``distributed.scheduler.allowed-failures``
times (3 by default) before it fails with ``KilledWorker``. A task that *raises* (the API
unreachable for the whole shard, say) is retried up to ``retries`` times. A server that
merely fails does not raise: it comes back as a dict with ``ok: False`` and an ``error``.

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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from asyncbackups import BackupOutcome, BackupsClient

if TYPE_CHECKING:
    import distributed

__all__ = ["backup_fleet", "backup_shard", "shards"]


def backup_shard(
    server_ids: list[int],
    *,
    description: str,
    base_url: str | None = None,
    token: str | None = None,
    wait: bool = False,
) -> list[dict[str, Any]]:
    """Back up one shard of servers; runs inside a Dask worker (or anywhere).

    Safe to run again with the same ``description``: servers already backed up by an
    earlier (perhaps killed) attempt are adopted, not backed up twice. ``token`` and
    ``base_url`` default to ``$ASYNCBACKUPS_TOKEN`` / ``$ASYNCBACKUPS_BASE_URL``.
    Returns one dict per server, in the shard's order.
    """

    async def run() -> list[BackupOutcome]:
        async with BackupsClient(token, base_url=base_url) as client:
            stream = client.backups.stream_many(
                server_ids, description=description, resume=True, wait=wait
            )
            return [outcome async for outcome in stream]

    # A Dask task runs in a worker thread with no event loop, so asyncio.run is right.
    outcomes = asyncio.run(run())
    position = {server_id: index for index, server_id in enumerate(server_ids)}
    outcomes.sort(key=lambda outcome: position[outcome.server_id])
    return [_as_dict(outcome) for outcome in outcomes]


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


def shards(server_ids: Iterable[int], size: int) -> list[list[int]]:
    """Split the fleet into consecutive shards of at most ``size`` servers."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"shard size must be a positive int, not {size!r}")
    ids = list(server_ids)
    if len(set(ids)) != len(ids):
        # Two shards racing on one server could both back it up: refuse up front.
        raise ValueError("server_ids repeats a server; each server is backed up once")
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def backup_fleet(
    client: distributed.Client,
    server_ids: Iterable[int],
    *,
    description: str,
    shard_size: int = 500,
    retries: int = 3,
    task: Callable[..., list[dict[str, Any]]] = backup_shard,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Back up every server on the cluster behind ``client``: one task per shard.

    ``kw`` goes to each task (``wait``, ``base_url``, ``token``); ``task`` is
    ``backup_shard`` or a wrapper of it (to add metrics, or to inject faults in tests).
    Returns one dict per server, in input order. Raises what a shard raised once its
    ``retries`` are spent, or ``KilledWorker`` if its workers kept dying.
    """
    if not description or not description.strip():
        raise ValueError("a description that names the run is needed to resume safely")
    futures = client.map(
        task,
        shards(server_ids, shard_size),
        description=description,
        retries=retries,  # re-run a shard that raised; a dead worker's shard is rescheduled
        pure=False,  # each call is real work, never deduplicated or cached by Dask
        **kw,
    )
    return [row for shard in client.gather(futures) for row in shard]


def _main() -> int:
    import argparse
    import sys

    import distributed

    parser = argparse.ArgumentParser(description="Back up a fleet on a Dask cluster.")
    parser.add_argument("servers", help="a file of server IDs, one a line ('-' for stdin)")
    parser.add_argument("--description", required=True, help='names the run: "weekly 2026-W48"')
    parser.add_argument("--scheduler", help="tcp://host:8786 (default: a LocalCluster here)")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--wait", action="store_true", help="wait for every backup to complete")
    args = parser.parse_args()

    with sys.stdin if args.servers == "-" else open(args.servers) as lines:
        server_ids = [int(line) for line in lines if line.strip()]
    with distributed.Client(args.scheduler) as client:  # None: start a LocalCluster
        rows = backup_fleet(
            client,
            server_ids,
            description=args.description,
            shard_size=args.shard_size,
            wait=args.wait,
        )
    failed = [row for row in rows if not row["ok"]]
    for row in failed:
        print(f"server {row['server_id']}: {row['error']}", file=sys.stderr)
    adopted = sum(row["adopted"] for row in rows)
    print(
        f"{len(rows) - len(failed)} backed up ({adopted} from an earlier attempt), "
        f"{len(failed)} failed"
    )
    # Re-run with the same description to retry the failures: the rest are adopted.
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_main())
