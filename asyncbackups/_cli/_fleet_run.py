"""``fleet``: back up many servers, streaming each outcome as it lands.

Built on ``client.backups.stream_many``: server IDs are read lazily (a file of a
million lines is never held whole), outcomes are reported in completion order (one
flushed JSON line each under ``--json-lines``, so a killed run still leaves a record
of what it finished), and ``--resume`` with the same ``--description`` adopts the
backups an earlier, interrupted run made instead of making them again. When it finds
any, it first waits ``--settle-timeout`` (default ``--timeout``) for creates the
interrupted run still had on the wire to land, and says so on stderr.

A regular ``--from-file`` is read twice, a line at a time: once to check every line
(so a typo on line 900,000 is reported before anything is sent) and count them (the
bar's total), once to feed the run. Standard input is read once, as it comes: a bad
line there stops the launching of more servers, lets those started finish, and is
reported with status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import IO, Any

from asyncbackups import BackupOutcome, BackupsClient, ClientStats

from ._commands import run_with_client, wait_options
from ._exit_codes import CommandError, ExitCode, UsageError
from ._invocation import Invocation
from ._output import Column, Output, escape, failure_reason, json_text, one_line, outcome_json

__all__ = ["FleetRun", "ServerIds", "fleet_command", "parse_id"]

# How often a throttled run's rate and time left are refreshed, in seconds.
_RATE_REFRESH = 1.0
# Failures beyond this many are counted, not listed, in a human summary (--json has all).
_MAX_FAILURE_ROWS = 20
_STDIN_CHUNK = 65_536


def parse_id(text: str) -> int:
    """A server or backup ID: a positive whole number; ``ValueError`` otherwise."""
    stripped = text.strip().removeprefix("+")
    if not stripped.isascii() or not stripped.isdigit() or int(stripped) <= 0:
        raise ValueError(f"expected a positive whole number, got {text!r}")
    return int(stripped)


def _entry(line: str) -> str:
    return line.split("#", 1)[0].strip()


class ServerIds:
    """The servers of one run: from the command line, a file, or stdin.

    ``total`` is known for the command line and regular files (``None`` for stdin).
    ``position`` maps each server handed out so far to its place in the input, for
    output in input order, when ``track_positions`` is set. ``problem`` is set when
    reading stopped at a bad line.
    """

    def __init__(self, ids: Sequence[int] = (), *, path: str | None = None) -> None:
        self._ids = list(ids)
        self._path = path
        self.name = "stdin" if path == "-" else (path or "the command line")
        self.total: int | None = len(self._ids) if path is None else None
        self.position: dict[int, int] = {}
        self.track_positions = False  # only a --json document needs input order
        self.problem: UsageError | None = None
        self.count = 0
        self._regular = False
        if len(self._ids) != len(set(self._ids)):
            repeated = sorted(_repeats(self._ids))
            raise UsageError(f"SERVER_ID repeats {repeated}; each server is backed up once")
        if path is not None and path != "-":
            self._regular = _is_regular_file(path)
            if self._regular:
                self.total = self._check_file(path)

    # -- checking --------------------------------------------------------------------------

    def _open(self, path: str) -> IO[str]:
        try:
            return open(path, encoding="utf-8")
        except OSError as error:
            raise UsageError(
                f"cannot read {path}: {one_line(error.strerror or str(error))}"
            ) from None

    def _check_file(self, path: str) -> int:
        """Check every line of a regular file, a line at a time; return how many IDs."""
        seen: set[int] = set()
        with self._open(path) as file:
            try:
                for number, line in enumerate(file, start=1):
                    entry = _entry(line)
                    if entry:
                        self._checked(entry, number, seen)
            except UnicodeDecodeError as error:
                raise UsageError(f"cannot read {path}: {one_line(str(error))}") from None
        if not seen:
            raise UsageError(f"no server IDs in {path}")
        return len(seen)

    def _checked(self, entry: str, number: int, seen: set[int] | None) -> int:
        try:
            server_id = parse_id(entry)
        except ValueError:
            raise UsageError(
                f"{self.name} line {number}: {escape(repr(entry))} is not a server ID"
            ) from None
        if seen is None:
            return server_id
        if server_id in seen:
            raise UsageError(
                f"{self.name} line {number}: server_ids repeats [{server_id}]; "
                "each server is backed up once"
            )
        seen.add(server_id)
        return server_id

    def _hand_out(self, server_id: int) -> int:
        if self.track_positions:
            self.position[server_id] = self.count
        self.count += 1
        return server_id

    # -- reading ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:
        """The IDs, checked as they are read (a regular file's were checked already)."""
        if self._path is None:
            for server_id in self._ids:
                yield self._hand_out(server_id)
            return
        if self._path == "-":
            yield from self._read(sys.stdin if sys.stdin is not None else (), seen=set())
            return
        with self._open(self._path) as file:
            # Checked whole before: no second set of every ID (the SDK keeps one).
            yield from self._read(file, seen=None if self._regular else set())

    def _read(self, lines: Iterable[str], *, seen: set[int] | None) -> Iterator[int]:
        for number, line in enumerate(lines, start=1):
            entry = _entry(line)
            if not entry:
                continue
            try:
                server_id = self._checked(entry, number, seen)
            except UsageError as problem:
                self.problem = problem  # stop launching more; those started finish
                return
            yield self._hand_out(server_id)

    async def _read_async(self, lines: AsyncIterator[str]) -> AsyncIterator[int]:
        seen: set[int] = set()
        number = 0
        async for line in lines:
            number += 1
            entry = _entry(line)
            if not entry:
                continue
            try:
                server_id = self._checked(entry, number, seen)
            except UsageError as problem:
                self.problem = problem
                return
            yield self._hand_out(server_id)

    async def _stream(self) -> AsyncIterator[int]:
        """Stdin or a pipe, read as it comes without blocking the event loop."""
        if self._path == "-":
            async for server_id in self._read_async(_lines(sys.stdin)):
                yield server_id
            return
        assert self._path is not None
        with self._open(self._path) as file:
            async for server_id in self._read_async(_lines(file)):
                yield server_id

    def source(self) -> Iterable[int] | AsyncIterator[int]:
        """What to hand ``stream_many``: an iterable, or an async one for stdin or a pipe."""
        if self._path is not None and not self._regular:
            return self._stream()
        return iter(self)


def _repeats(ids: Iterable[int]) -> set[int]:
    seen: set[int] = set()
    repeated: set[int] = set()
    for server_id in ids:
        (repeated if server_id in seen else seen).add(server_id)
    return repeated


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {one_line(error.strerror or str(error))}") from None


async def _lines(stream: IO[str] | None) -> AsyncIterator[str]:
    """Lines of a stream that may block (a pipe), read in a worker thread.

    Reads whatever is there (up to 64 KiB) at a time, so a slow writer's lines are
    taken as they come and a fast one's in large gulps.
    """
    if stream is None:
        return
    raw = getattr(stream, "buffer", None)
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # a text stream without bytes underneath (a StringIO)
        while line := await asyncio.to_thread(stream.readline):
            yield line
        return
    pending = b""
    while chunk := await asyncio.to_thread(read1, _STDIN_CHUNK):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield _decode(line)
    if pending:
        yield _decode(pending)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("utf-8", "backslashreplace")  # reported as not an ID


def _server_ids(server_ids: Sequence[int], from_file: str | None) -> ServerIds:
    if from_file is not None and server_ids:
        raise UsageError("give server IDs or --from-file, not both")
    if from_file is not None:
        return ServerIds(path=from_file)
    if not server_ids:
        raise UsageError("give at least one SERVER_ID, or --from-file PATH")
    return ServerIds(server_ids)


# -- the run ------------------------------------------------------------------------------


def fleet_command(
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
) -> int:
    """``fleet``: back up many servers; status 4 when any of them failed."""
    if resume and not (description or "").strip():
        raise UsageError(
            "--resume needs the --description that named the run (like 'weekly 2026-W48')"
        )
    ids = _server_ids(server_ids, from_file)
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
            on_created=run.progress.created,
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
            raise ids.problem
        if run.failed:
            raise CommandError(
                f"{run.failed} of {run.landed} server backups failed", ExitCode.FLEET_FAILURES
            )
        return ExitCode.OK

    return run_with_client(client, work)


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
        self.failures: list[BackupOutcome] = []
        self.kept: list[BackupOutcome] = []  # --json only: its one document has them all
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

    def land(self, outcome: BackupOutcome, *, quiet_json: bool = False) -> None:
        """Count one outcome and show it as the format asks (``quiet_json``: not as JSON)."""
        self.landed += 1
        self.adopted += outcome.adopted
        if not outcome.ok:
            self.failed += 1
            if len(self.failures) < _MAX_FAILURE_ROWS:
                self.failures.append(outcome)
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

    def report(self, *, interrupted: bool, stats: ClientStats | None = None) -> None:
        """The closing words: every outcome under ``--json``, else counts and failures."""
        seconds = time.monotonic() - self.started
        throttled = 0 if stats is None else stats.throttled
        unfinished = self.progress.unfinished()
        if self.out.json_lines:
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
            self.out.json(document)
            return
        if self.out.plain:
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
        else:
            self.out.line(
                f"{ok} of {self.landed} servers ok, {self.failed} failed in {seconds:.1f} s"
                f"{adopted}"
            )
        if throttled and stats is not None:
            pace = "" if stats.rate_limit is None else f", paced at {stats.rate_limit:g} req/s"
            self.out.line(f"throttled by the API {throttled} times{pace}")
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
