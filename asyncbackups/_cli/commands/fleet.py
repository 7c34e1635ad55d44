"""``asyncbackups fleet``: back up many servers, streaming each outcome as it lands.

Built on ``client.backups.stream_many``: server IDs are read lazily (a file of a
million lines is never held whole, see ``server_ids``), outcomes are reported in
completion order (one flushed JSON line each under ``--json-lines``, so a killed run
still leaves a record of what it finished), and ``--resume`` with the same
``--description`` adopts the backups an earlier, interrupted run made instead of making
them again. When it finds any, it first waits ``--settle-timeout`` (default
``--timeout``) for creates the interrupted run still had on the wire to land, and says
so on stderr. :class:`FleetRun` reports a run; ``demo`` shows its fleet with it too.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import click

from asyncbackups import BackupOutcome, BackupsClient, ClientStats

from ..base import Command, examples
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation, run_with_client
from ..options import (
    command_invocation,
    connection_options,
    output_options,
    pop_globals,
    wait_options,
    wait_timing,
)
from ..output import (
    Column,
    Output,
    backup_json,
    escape,
    failure_reason,
    json_text,
    outcome_json,
)
from ..params import DESCRIPTION, DESCRIPTION_MAX, ID, SECONDS
from ..server_ids import ServerIds, server_ids_to_back_up
from .wait import command_hint

__all__ = ["FleetRun", "fleet"]

# How often a throttled run's rate and time left are refreshed, in seconds.
_RATE_REFRESH = 1.0
# Failures beyond this many are counted, not listed, in a human summary (--json has all).
_MAX_FAILURE_ROWS = 20


@click.command(
    "fleet",
    cls=Command,
    short_help="Back up many servers at once, with progress and a summary.",
    help="Back up many servers at once. Each outcome is reported as it lands; a "
    "run stopped half-way is picked up again with --resume and the same --description.",
    epilog=examples(
        "asyncbackups fleet 12 13 14 --wait",
        "asyncbackups fleet --from-file servers.txt --description 'weekly W48' \\",
        "    --json-lines > w48.jsonl                # killed? run it again:",
        "asyncbackups fleet --from-file servers.txt --description 'weekly W48' --resume",
        "grep -v staging servers.txt | asyncbackups fleet --from-file - --wait",
        notes="A --from-file has one server ID a line; blank lines and # comments are\n"
        "skipped. Every line is checked before anything is sent (stdin is read\n"
        "to its end first, unless --stream). Off a terminal each server is one\n"
        "line: 'server 12 ok backup 502' ('started' without --wait: still running).\n"
        "Ctrl-C prints what landed and each backup still running, with its server.",
        exit_status="0 every server ok, 1 API error, 2 usage error,\n"
        "4 some servers failed, 130 interrupted",
    ),
)
@click.argument("server_ids", type=ID, nargs=-1, metavar="[SERVER_ID]...")
@click.option(
    "--from-file",
    metavar="PATH",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="read server IDs from PATH ('-' for stdin); every line is checked before anything is sent",
)
@click.option(
    "--stream",
    "stream_input",
    is_flag=True,
    help="with --from-file - (or a pipe): start on each line as it comes instead of "
    "reading and checking the whole input first. A bad line stops the run there: "
    "it reports how many backups were made, and --resume with the same "
    "--description picks up after the fix",
)
@click.option(
    "--description",
    type=DESCRIPTION,
    metavar="TEXT",
    help=f"description of every backup (at most {DESCRIPTION_MAX} characters)",
)
@click.option(
    "--resume",
    is_flag=True,
    help="adopt the backups made by an earlier run with this --description",
)
@click.option(
    "--settle-timeout",
    type=SECONDS,
    metavar="S",
    help="with --resume, how long to let an earlier run's creates land before "
    "creating (default: --timeout; 0 only for an API that honours Idempotency-Key)",
)
@click.option("--concurrency", type=ID, metavar="N", help="creates in flight at once (default: 64)")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0.001, max=1e6),
    metavar="R",
    help="requests a second at most (default: $ASYNCBACKUPS_RATE_LIMIT, else learned "
    "from the API's rate-limit headers and 429s)",
)
@click.option("--wait", is_flag=True, help="wait until every backup completes or fails")
@wait_timing
@click.option("--dry-run", is_flag=True, help="print what would be sent; send nothing")
@connection_options
@output_options
@click.pass_context
def fleet(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    options = pop_globals(params)
    options["server_ids"] = list(options["server_ids"])
    return back_up_fleet(invocation, **options)


def back_up_fleet(
    invocation: Invocation,
    *,
    server_ids: Sequence[int],
    from_file: str | None,
    concurrency: int | None,
    description: str | None,
    wait: bool,
    wait_timeout: float | None,
    poll_interval: float | None,
    resume: bool,
    dry_run: bool,
    settle_timeout: float | None = None,
    rate_limit: float | None = None,
    stream_input: bool = False,
) -> int:
    """Back up many servers; status 4 when any of them failed."""
    if resume and not (description or "").strip():
        raise UsageError(
            "--resume needs the --description that named the run (like 'weekly 2026-W48')"
        )
    ids = server_ids_to_back_up(server_ids, from_file, stream=stream_input)
    if dry_run:
        return _dry_run(invocation, ids, description=description, resume=resume)
    client = invocation.client(rate_limit=rate_limit)
    ids.track_positions = invocation.json_mode and not invocation.out.json_lines
    run = FleetRun(invocation, ids, wait=wait, description=description)

    async def work(client: BackupsClient) -> int:
        stream = client.backups.stream_many(
            ids.source(),
            description=description,
            wait=wait,
            concurrency=concurrency,
            resume=resume,
            on_created=run.created,
            settle_timeout=settle_timeout,
            on_settle=run.settling,
            **wait_options(wait_timeout, poll_interval, timeout_keyword="wait_timeout"),
        )
        watch = asyncio.create_task(run.watch_rate(client))
        try:
            with run.progress:
                async with contextlib.aclosing(stream) as outcomes:
                    async for outcome in outcomes:
                        run.land(outcome)
        except asyncio.CancelledError:  # Ctrl-C: say what landed, then exit 130
            run.report(interrupted=True, stats=client.stats)
            raise
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if ids.count == 0:
            raise ids.problem or UsageError(f"no server IDs in {ids.name}")
        run.report(interrupted=False, stats=client.stats)
        if ids.problem is not None:
            raise ids.stopped(made=run.progress.made, description=description)
        if run.failed:
            raise CommandError(
                f"{run.failed} of {run.landed} server backups failed", ExitCode.FLEET_FAILURES
            )
        return ExitCode.OK

    return run_with_client(client, work)


def _by_server(outcome: BackupOutcome) -> int:
    return outcome.server_id


class FleetRun:
    """What a fleet run has seen so far, and how it reports it."""

    def __init__(
        self, invocation: Invocation, ids: ServerIds, *, wait: bool, description: str | None
    ) -> None:
        self.invocation = invocation
        self.description = description
        self.out: Output = invocation.out
        self.ids = ids
        self.wait = wait
        self.started = time.monotonic()
        self.landed = 0
        self.failed = 0
        self.adopted = 0
        self.failures: list[BackupOutcome] = []  # the lowest server IDs, in their order
        self.kept: list[BackupOutcome] = []  # --json only: its one document has them all
        # Backups made but not landed: at Ctrl-C, what is still running, and where.
        self.running: dict[int, BackupOutcome] = {}
        self.progress = self.out.fleet_progress(ids.total, wait=wait, explain=self.explain)

    def explain(self, error: BaseException) -> str:
        return self.invocation.explain(error)

    def settling(self, seconds: float) -> None:
        """A resumed run waits for an earlier attempt's creates to land: say so, on
        stderr, so that the output stays the outcomes alone."""
        self.out.notice(f"waiting {seconds:g} s for an earlier attempt's requests to land")

    async def watch_rate(self, client: BackupsClient) -> None:
        """While the API throttles the run, show the rate it runs at and the time left."""
        while True:
            await asyncio.sleep(_RATE_REFRESH)
            stats = client.stats
            if not stats.throttled or stats.rate_limit is None:
                continue
            left = None
            total = self.ids.total
            if total is not None:
                # Creates still to send, at the governor's rate: polls share what is left.
                left = max(0, total - self.progress.made) / stats.rate_limit
            self.progress.throttled(stats.rate_limit, left)

    def created(self, outcome: BackupOutcome) -> None:
        """A server's backup was made (or adopted): ``stream_many``'s ``on_created``."""
        if outcome.backup is not None:
            self.running[outcome.server_id] = outcome
        self.progress.created(outcome)

    def land(self, outcome: BackupOutcome, *, quiet_json: bool = False) -> None:
        """Count one outcome and show it as the format asks (``quiet_json``: not as JSON)."""
        self.landed += 1
        self.adopted += outcome.adopted
        self.running.pop(outcome.server_id, None)
        if not outcome.ok:
            self.failed += 1
            bisect.insort(self.failures, outcome, key=_by_server)
            del self.failures[_MAX_FAILURE_ROWS:]
        if quiet_json and self.out.json_mode:
            pass
        elif self.out.json_lines:
            self.out.json(self._outcome_json(outcome))
        elif self.out.json_mode:
            self.kept.append(outcome)
        elif self.out.plain:
            self.out.line(self._plain_outcome(outcome))
        self.progress.landed(outcome)

    def _reason(self, outcome: BackupOutcome) -> str:
        def explain(error: BaseException) -> str:
            return self.invocation.explain(error, server_id=outcome.server_id)

        return failure_reason(outcome, explain)

    def _plain_outcome(self, outcome: BackupOutcome) -> str:
        """``12<TAB>ok<TAB>502``, or ``7<TAB>failed<TAB>503<TAB><why>``."""
        backup = "-" if outcome.backup is None else str(outcome.backup.id)
        if outcome.ok:
            return f"{outcome.server_id}\tok\t{backup}"
        return f"{outcome.server_id}\tfailed\t{backup}\t{self._reason(outcome)}"

    def _outcome_json(self, outcome: BackupOutcome) -> dict[str, Any]:
        def explain(error: BaseException) -> str:
            return self.invocation.explain(error, server_id=outcome.server_id)

        return outcome_json(outcome, explain)

    def _running_json(self) -> list[dict[str, Any]]:
        """The backups still running, in input order (``--json``) or by server."""
        order = sorted(
            self.running.values(),
            key=lambda outcome: (self.ids.position.get(outcome.server_id, 0), outcome.server_id),
        )
        return [
            {
                "server_id": outcome.server_id,
                "adopted": outcome.adopted,
                "backup": None if outcome.backup is None else backup_json(outcome.backup),
            }
            for outcome in order
        ]

    def report(self, *, interrupted: bool, stats: ClientStats | None = None) -> None:
        """The closing words: every outcome under ``--json``, else counts and failures.

        Interrupted, it also names each backup made but not finished, with its server:
        ``running`` under ``--json``, one ``"running": true`` record each under
        ``--json-lines``, a table for people.
        """
        seconds = time.monotonic() - self.started
        throttled = 0 if stats is None else stats.throttled
        unfinished = self.progress.unfinished()
        if self.out.json_lines:
            if interrupted:
                for record in self._running_json():
                    self.out.json(
                        {
                            "server_id": record["server_id"],
                            "ok": False,
                            "adopted": record["adopted"],
                            "backup": record["backup"],
                            "error": {
                                "message": "interrupted while the backup was still running",
                                "type": "Interrupted",
                            },
                            "running": True,
                        }
                    )
            return
        if self.out.json_mode:
            self.kept.sort(key=lambda outcome: self.ids.position.get(outcome.server_id, 0))
            document: dict[str, Any] = {
                "servers": self.ids.total if self.ids.total is not None else self.ids.count,
                "finished": self.landed,
                "succeeded": self.landed - self.failed,
                "failed": self.failed,
                "adopted": self.adopted,
                "throttled": throttled,
                "rate_limit": None if stats is None else stats.rate_limit,
                "seconds": round(seconds, 3),
                "outcomes": [self._outcome_json(outcome) for outcome in self.kept],
            }
            if interrupted:
                document["interrupted"] = True
                document["unfinished"] = unfinished
                document["running"] = self._running_json()
            self.out.json(document)
            return
        if self.out.plain:
            if interrupted:
                for outcome in self._still_running():
                    backup = "-" if outcome.backup is None else str(outcome.backup.id)
                    self.out.line(f"{outcome.server_id}\trunning\t{backup}")
            return
        total = self.ids.total if self.ids.total is not None else self.ids.count
        ok = self.landed - self.failed
        adopted = f" ({self.adopted} adopted from an earlier run)" if self.adopted else ""
        if interrupted:
            self.out.line(
                f"interrupted: {self.landed} of {total} servers finished, {ok} ok, "
                f"{self.failed} failed in {seconds:.1f} s{adopted}"
            )
            if unfinished and self.description:
                self.out.line(
                    f"{unfinished} backups still running; to adopt them, run it again with --resume"
                )
            elif unfinished:
                self.out.line(f"{unfinished} backups still running on the server")
        elif self.wait:
            self.out.line(
                f"{ok} of {self.landed} servers ok, {self.failed} failed in {seconds:.1f} s"
                f"{adopted}"
            )
        else:
            # Without --wait a backup counts once it is made: it is still running.
            self.out.line(
                f"{ok} of {self.landed} servers started a backup, {self.failed} failed "
                f"in {seconds:.1f} s{adopted}"
            )
        if throttled and stats is not None:
            pace = "" if stats.rate_limit is None else f", paced at {stats.rate_limit:g} req/s"
            self.out.line(f"throttled by the API {throttled} times{pace}")
        if interrupted and self.running:
            self._running_table()
        if not self.failures:
            return
        rows = [
            [
                str(outcome.server_id),
                "-" if outcome.backup is None else str(outcome.backup.id),
                "-" if outcome.backup is None else escape(outcome.backup.status.value),
                self._reason(outcome),
            ]
            for outcome in self.failures
        ]
        columns = (
            Column("SERVER", right=True),
            Column("BACKUP", right=True),
            Column("STATUS"),
            Column("ERROR", fold=True, priority=1, min_width=16),
        )
        self.out.table(columns, rows, title="Failed servers")
        if self.failed > len(self.failures):
            self.out.line(
                f"... and {self.failed - len(self.failures)} more (--json-lines lists them all)"
            )

    def _running_table(self) -> None:
        """The backups still running at Ctrl-C, by server, and how to follow one."""
        shown = self._still_running()[:_MAX_FAILURE_ROWS]
        rows = [
            [
                str(outcome.server_id),
                "-" if outcome.backup is None else str(outcome.backup.id),
                "-" if outcome.backup is None else escape(outcome.backup.status.value),
            ]
            for outcome in shown
        ]
        columns = (Column("SERVER", right=True), Column("BACKUP", right=True), Column("STATUS"))
        self.out.table(columns, rows, title="Still running")
        if len(self.running) > len(shown):
            self.out.line(f"... and {len(self.running) - len(shown)} more (--json lists them all)")
        if len(shown) == 1 and shown[0].backup is not None:
            hint = command_hint(self.invocation, "wait", str(shown[0].backup.id))
            self.out.line(f"follow it with: {hint}")

    def _still_running(self) -> list[BackupOutcome]:
        return sorted(self.running.values(), key=_by_server)


def _dry_run(
    invocation: Invocation, ids: ServerIds, *, description: str | None, resume: bool
) -> int:
    """Print the creates a run would send, one a server; send nothing."""
    out = invocation.out
    url = f"{invocation.base_url()}backups/"
    requests: list[dict[str, Any]] = []
    for server_id in ids:
        body: dict[str, Any] = {"server_id": server_id}
        if description is not None:
            body["description"] = description
        request = {"method": "POST", "url": url, "json": body}
        if out.json_lines:
            out.json({"dry_run": True, **request})
        elif out.json_mode:
            requests.append(request)
        else:
            out.line(f"would send POST {escape(url)} {json_text(body, compact=True)}")
    if ids.problem is not None:
        raise ids.problem
    if ids.count == 0:
        raise UsageError(f"no server IDs in {ids.name}")
    if out.json_mode and not out.json_lines:
        out.json({"dry_run": True, "servers": ids.count, "resume": resume, "requests": requests})
    elif not out.json_mode:
        if resume:
            out.line(
                f"with --resume, a server that already has a manual backup described "
                f"{escape(repr(description))} (not failed) is adopted instead"
            )
        out.line(f"dry run: {ids.count} servers, nothing was sent")
    return ExitCode.OK
