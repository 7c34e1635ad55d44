"""The server IDs of a fleet run: from the command line, a file, or stdin.

Every line is checked before anything is sent, so a typo on line 900,000 is reported
with status 2 and no backup made. A regular ``--from-file`` is read twice, a line at a
time: once to check every line and count them (the bar's total), once to feed the run.
Standard input (or a pipe), which can be read only once, is read whole first, its IDs
kept in a compact array (8 bytes each).

Only when streaming is asked for (``fleet --stream``) is stdin read as it comes,
without blocking the event loop: backups start before the input ends, and a bad line
stops the launching of more servers there, lets those started finish, and is reported
(:meth:`ServerIds.stopped`) with how many were made and how to resume.
"""

from __future__ import annotations

import array
import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import IO

from .exit_codes import UsageError
from .output import escape, one_line
from .params import parse_id

__all__ = ["ServerIds", "server_ids_to_back_up"]

_STDIN_CHUNK = 65_536


def _entry(line: str) -> str:
    return line.split("#", 1)[0].strip()


class ServerIds:
    """The servers of one run: from the command line, a file, or stdin.

    ``total`` is known unless stdin is streamed (then ``None``). ``position`` maps
    each server handed out so far to its place in the input, for output in input
    order, when ``track_positions`` is set. ``problem`` is set when reading a streamed
    input stopped at a bad line.

    Raises :class:`UsageError` for a bad or repeated ID anywhere in the input, before
    anything is handed out, unless ``stream`` is set and the input is stdin or a pipe.
    """

    def __init__(
        self, ids: Sequence[int] = (), *, path: str | None = None, stream: bool = False
    ) -> None:
        self._ids: Sequence[int] = list(ids)
        self._path = path
        self.name = "stdin" if path == "-" else (path or "the command line")
        self.total: int | None = len(self._ids) if path is None else None
        self.position: dict[int, int] = {}
        self.track_positions = False  # only a --json document needs input order
        self.problem: UsageError | None = None
        self.count = 0
        self.streamed = False
        self._regular = False
        if len(self._ids) != len(set(self._ids)):
            repeated = sorted(_repeats(self._ids))
            raise UsageError(f"SERVER_ID repeats {repeated}; each server is backed up once")
        if path is None:
            return
        self._regular = path != "-" and _is_regular_file(path)
        if self._regular:
            self.total = self._check_file(path)
        elif stream:
            self.streamed = True
        else:
            # Read once, whole, and checked: from here on it is like the command line.
            self._ids = self._check_stream(path)
            self.total = len(self._ids)
            self._path = None

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

    def _check_stream(self, path: str) -> array.array[int]:
        """Read stdin or a pipe to its end, checking every line; the IDs in input order."""
        ids: array.array[int] = array.array("q")
        seen: set[int] = set()
        if path == "-":
            stream = sys.stdin
            raw = getattr(stream, "buffer", None)
            lines: Iterable[str] = (
                (_decode(line) for line in raw) if raw is not None else (stream or ())
            )
            self._check_lines(lines, ids, seen)
        else:
            with self._open(path) as file:
                try:
                    self._check_lines(file, ids, seen)
                except UnicodeDecodeError as error:
                    raise UsageError(f"cannot read {path}: {one_line(str(error))}") from None
        if not ids:
            raise UsageError(f"no server IDs in {self.name}")
        return ids

    def _check_lines(self, lines: Iterable[str], ids: array.array[int], seen: set[int]) -> None:
        for number, line in enumerate(lines, start=1):
            entry = _entry(line)
            if entry:
                ids.append(self._checked(entry, number, seen))

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
        """What to hand ``stream_many``: an iterable, or an async one for a streamed input."""
        if self.streamed:
            return self._stream()
        return iter(self)

    def stopped(self, *, made: int, description: str | None) -> UsageError:
        """The error for a streamed input that stopped at a bad line after ``made`` backups:
        what was wrong, what was done, and how to go on without making them twice."""
        assert self.problem is not None
        done = f"stopped there after sending {self.count} servers ({made} backups made)"
        if not made:
            return UsageError(f"{self.problem.message}; {done}")
        if description:
            hint = (
                "fix the input and run it again with --resume and the same --description "
                "to adopt them"
            )
        else:
            hint = (
                "without a --description a run cannot be resumed, so take the servers "
                "already backed up out of the input before running it again"
            )
        return UsageError(f"{self.problem.message}; {done}; {hint}")


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


def server_ids_to_back_up(
    server_ids: Sequence[int], from_file: str | None, *, stream: bool = False
) -> ServerIds:
    """The servers named on the command line, or in ``--from-file``: exactly one of them.

    ``stream``: read stdin or a pipe as it comes instead of checking it whole first.
    """
    if from_file is not None and server_ids:
        raise UsageError("give server IDs or --from-file, not both")
    if stream and from_file is None:
        raise UsageError("--stream reads --from-file as it comes: give --from-file - or a pipe")
    if from_file is not None:
        return ServerIds(path=from_file, stream=stream)
    if not server_ids:
        raise UsageError("give at least one SERVER_ID, or --from-file PATH")
    return ServerIds(server_ids)
