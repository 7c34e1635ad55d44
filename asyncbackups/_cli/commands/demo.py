"""``asyncbackups demo``: a fleet backup against an in-process fake, then list, restore, delete.

Exit status 0 when it ran: the servers it sets up to fail are part of the show.
``FakeBackupsAPI`` loads aiohttp.web, so it is imported only when the demo runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Sequence
from typing import Any

import click

from asyncbackups import Backup, BackupOutcome, BackupsClient, BackupType, FleetResult

from ..base import Command, examples
from ..exit_codes import ExitCode
from ..invocation import Invocation
from ..messages import Explainer
from ..options import command_invocation, output_options
from ..output import backup_json, escape, outcome_json
from ..params import ID, POSITIVE_SECONDS
from ..server_ids import ServerIds
from .fleet import FleetRun

__all__ = ["demo"]

DEFAULT_SERVERS = 300
DEFAULT_BACKUP_SECONDS = 2.5
_HOST = "127.0.0.1"


@click.command(
    "demo",
    cls=Command,
    short_help="Back up a whole fleet against an in-process fake API.",
    help="Back up a whole fleet against an in-process fake API, then list, restore "
    "and delete. Needs no token and no network.",
    epilog=examples(
        "asyncbackups demo",
        "asyncbackups demo --servers 1000 --backup-seconds 5",
        exit_status="0 the demo ran (its planned failures included)",
    ),
)
@click.option(
    "--servers",
    type=ID,
    default=DEFAULT_SERVERS,
    metavar="N",
    help=f"servers in the fleet (default: {DEFAULT_SERVERS})",
)
@click.option(
    "--backup-seconds",
    type=POSITIVE_SECONDS,
    default=DEFAULT_BACKUP_SECONDS,
    metavar="S",
    help=f"how long each backup takes (default: {DEFAULT_BACKUP_SECONDS})",
)
@output_options
@click.pass_context
def demo(ctx: click.Context, /, servers: int, backup_seconds: float, **params: Any) -> int:
    invocation = command_invocation(ctx, params, connects=False)
    return asyncio.run(_demo(invocation, servers, backup_seconds))


def _failing_servers(servers: int) -> list[int]:
    """A quarter and three quarters into the fleet: two failures, whatever its size."""
    return sorted({i for i in (servers // 4, servers * 3 // 4) if i >= 1})


def _requests_text(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    routes = ", ".join(f"{route} {count}" for route, count in counts.items())
    return f"{total} ({routes})"


def _to_delete(fleet: FleetResult, listed: Sequence[Backup]) -> tuple[Backup, str] | None:
    """The backup the demo deletes, and why: a failed one first, else an old one."""
    for outcome in fleet.failed:
        if outcome.backup is not None:
            return outcome.backup, f"the failed backup of server {outcome.server_id}"
    for backup in reversed(listed):  # the fake lists newest first
        if backup.backup_type is BackupType.AUTOMATIC:
            return backup, f"the old automatic backup of server {backup.server_id}"
    return None


async def _demo(invocation: Invocation, servers: int, backup_seconds: float) -> int:
    from asyncbackups.testing import FakeBackupsAPI

    out = invocation.out
    started = time.monotonic()
    failing = _failing_servers(servers)
    # Polls a tenth of a backup apart at first, never more than a fifth: a wait hears of
    # completion soon after it happens, in a few shared rounds.
    poll_interval = max(0.01, backup_seconds / 10)
    report: dict[str, Any] = {"servers": servers, "failing_servers": failing}
    api = FakeBackupsAPI(
        token=secrets.token_urlsafe(16),
        backup_seconds=backup_seconds,
        sample_data=False,
        fleet=servers,
        failing_servers=failing,
        host=_HOST,
    )
    async with api, BackupsClient(api.token, base_url=api.base_url) as client:
        invocation.state.explainer = Explainer(api.base_url)
        report["base_url"] = api.base_url
        if not out.json_mode:
            fails = " and ".join(map(str, failing)) or "none"
            out.line(f"Fake Backups API in this process at {api.base_url}")
            out.line(
                f"{servers} servers, backups take {backup_seconds:g} s, "
                f"servers set to fail: {fails}."
            )
        run = FleetRun(invocation, ServerIds(range(1, servers + 1)), wait=True, description=None)
        landed: list[BackupOutcome] = []
        stream = client.backups.stream_many(
            range(1, servers + 1),
            description="asyncbackups demo",
            wait=True,
            poll_interval=poll_interval,
            max_poll_interval=backup_seconds / 5,
            on_created=run.progress.created,
        )
        with run.progress:
            async with contextlib.aclosing(stream) as outcomes:
                async for outcome in outcomes:
                    landed.append(outcome)
                    run.land(outcome, quiet_json=True)
        landed.sort(key=lambda outcome: outcome.server_id)
        fleet = FleetResult(landed)
        fleet_seconds = time.monotonic() - run.started
        report["fleet"] = {
            "succeeded": len(fleet.succeeded),
            "failed": len(fleet.failed),
            "seconds": round(fleet_seconds, 3),
            "failures": [outcome_json(outcome, invocation.explain) for outcome in fleet.failed],
        }
        if not out.json_mode:
            run.report(interrupted=False)

        listed: list[Backup] = []
        chosen = next((o for o in fleet.succeeded if o.backup is not None), None)
        if chosen is not None and chosen.backup is not None:
            listed = await client.backups.list(server_id=chosen.server_id)
            report["listed"] = [backup_json(backup) for backup in listed]
            result = await client.servers.restore(chosen.server_id, chosen.backup.id)
            report["restored"] = {
                "server_id": chosen.server_id,
                "backup_id": chosen.backup.id,
                "status": result.status,
            }
            if not out.json_mode:
                out.line()
                out.backups(listed, title=f"Backups of server {chosen.server_id}")
                out.line(
                    f"restore of server {chosen.server_id} from backup {chosen.backup.id}: "
                    f"{escape(result.status or 'accepted')}"
                )

        victim = _to_delete(fleet, listed)
        if victim is not None:
            backup, why = victim
            await client.backups.delete(backup.id)
            report["deleted"] = backup.id
            if not out.json_mode:
                out.line(f"deleted backup {backup.id}, {why}")

        counts = {f"{method} {route}": count for (method, route), count in api.requests.items()}
    counts = dict(sorted(counts.items(), key=lambda item: -item[1]))
    seconds = time.monotonic() - started
    total = sum(counts.values())
    report.update(
        succeeded=len(fleet.succeeded),
        failed=len(fleet.failed),
        requests=total,
        requests_by_route=counts,
        requests_per_server=round(total / servers, 2),
        seconds=round(seconds, 3),
    )
    if out.json_mode:
        out.json(report)
    else:
        failed_ids = ", ".join(str(o.server_id) for o in fleet.failed)
        out.line()
        out.fields(
            [
                ("servers", str(servers)),
                ("succeeded", str(len(fleet.succeeded))),
                ("failed", f"{len(fleet.failed)} ({failed_ids})" if failed_ids else "0"),
                ("HTTP requests", _requests_text(counts)),
                ("requests per server", f"{total / servers:.2f}"),
                ("wall time", f"{seconds:.1f} s"),
            ],
            title="Summary",
        )
    return ExitCode.OK
