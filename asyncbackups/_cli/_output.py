"""How commands speak: JSON for machines, rich on a terminal, plain lines otherwise.

rich is an optional extra (``asyncbackups[cli]``). It is imported only when the stream
it would draw on is a terminal; without it, or when output is piped, everything is
plain text, one record a line, easy to grep. Streams are looked up on every write, so
redirections made after start-up (pytest's capture among them) are honoured.

Under ``--json`` stdout carries exactly one JSON document; live feedback (progress
bars, spinners) then goes to stderr, and only when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from asyncbackups import (
    APIStatusError,
    Backup,
    BackupFailedError,
    BackupOutcome,
    BadRequestError,
    FleetResult,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.status import Status

__all__ = [
    "Column",
    "FleetProgress",
    "Output",
    "WaitStatus",
    "backup_json",
    "describe_backup",
    "error_json",
    "one_line",
    "outcome_json",
    "outcome_line",
]

# Failures beyond this many are counted, not listed, in a human summary (--json has all).
_MAX_FAILURE_ROWS = 20
_STATUS_STYLES = {"completed": "green", "failed": "red", "in_progress": "yellow"}


def rich_console(stream: TextIO) -> Console | None:
    """A rich console drawing on ``stream``, or ``None`` for plain text.

    ``None`` when the stream is not a terminal or rich is not installed.
    """
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):  # no isatty at all, or a closed stream
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    # Data (descriptions, server names) may hold brackets: never read them as markup.
    return Console(file=stream, markup=False, highlight=False)


# -- text and JSON for the SDK's objects ------------------------------------------------


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, made one space."""
    return " ".join(text.split())


def timestamp(moment: datetime | None) -> str | None:
    """An instant the way the API writes it: ISO 8601 in UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def _table_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def backup_json(backup: Backup) -> dict[str, Any]:
    """A backup in the API's own JSON shape (plus ``message`` when the API sent one)."""
    data: dict[str, Any] = {
        "id": backup.id,
        "server": {"id": backup.server.id, "name": backup.server.name},
        "backup_type": backup.backup_type.value,
        "status": backup.status.value,
        "size_mb": backup.size_mb,
        "created_at": timestamp(backup.created_at),
        "expires_at": timestamp(backup.expires_at),
        "description": backup.description,
    }
    if backup.message is not None:
        data["message"] = backup.message
    return data


def error_json(error: BaseException) -> dict[str, Any]:
    """What a machine needs to know about an error: its type and the SDK's details."""
    data: dict[str, Any] = {"type": type(error).__name__}
    if isinstance(error, APIStatusError):
        data["status_code"] = error.status_code
    if isinstance(error, BadRequestError) and error.field_errors:
        data["field_errors"] = error.field_errors
    if isinstance(error, RateLimitError | ServerError) and error.retry_after is not None:
        data["retry_after"] = error.retry_after
    if isinstance(error, WaitTimeoutError | BackupFailedError) and error.backup is not None:
        data["backup"] = backup_json(error.backup)
    return data


def describe_backup(backup: Backup) -> str:
    """``backup 502 of server 12345 (web-server-01): completed, 4523 MB``."""
    name = f" ({backup.server.name})" if backup.server.name else ""
    size = f", {backup.size_mb} MB" if backup.size_mb is not None else ""
    return f"backup {backup.id} of server {backup.server_id}{name}: {backup.status.value}{size}"


def failure_reason(outcome: BackupOutcome) -> str:
    """Why a fleet server failed, in a few words."""
    error = outcome.error
    if isinstance(error, BackupFailedError):
        return "the backup ended failed"
    if isinstance(error, WaitTimeoutError):
        status = error.backup.status.value if error.backup is not None else "unknown"
        return f"still {status} at the wait deadline"
    if error is None:
        return "no backup was made"
    return one_line(str(error)) or type(error).__name__


def outcome_line(outcome: BackupOutcome) -> str:
    """``server 12 ok backup 502``, or ``server 7 failed backup 503: <why>``."""
    backup = f" backup {outcome.backup.id}" if outcome.backup is not None else ""
    if outcome.ok:
        return f"server {outcome.server_id} ok{backup}"
    return f"server {outcome.server_id} failed{backup}: {failure_reason(outcome)}"


def outcome_json(outcome: BackupOutcome) -> dict[str, Any]:
    """One fleet outcome: the server, whether it is ok, its backup and its error."""
    error = None
    if outcome.error is not None:
        error = {"message": one_line(str(outcome.error)), **error_json(outcome.error)}
    return {
        "server_id": outcome.server_id,
        "ok": outcome.ok,
        "backup": None if outcome.backup is None else backup_json(outcome.backup),
        "error": error,
    }


# -- tables -----------------------------------------------------------------------------


class Column(NamedTuple):
    """A table column: its header, alignment, a style chosen from the cell's text, and
    whether rich may wrap it when the terminal is narrow (only free text should).
    """

    header: str
    right: bool = False
    style: Callable[[str], str | None] | None = None
    wrap: bool = False


def _status_style(text: str) -> str | None:
    return _STATUS_STYLES.get(text)


BACKUP_COLUMNS = (
    Column("ID", right=True),
    Column("SERVER"),
    Column("TYPE"),
    Column("STATUS", style=_status_style),
    Column("SIZE (MB)", right=True),
    Column("CREATED (UTC)"),
    Column("EXPIRES (UTC)"),
    Column("DESCRIPTION", wrap=True),
)


def backup_row(backup: Backup) -> list[str]:
    """One backup as the cells of ``BACKUP_COLUMNS``."""
    server = str(backup.server_id)
    if backup.server.name:
        server += f" {backup.server.name}"
    return [
        str(backup.id),
        server,
        backup.backup_type.value,
        backup.status.value,
        "-" if backup.size_mb is None else str(backup.size_mb),
        _table_time(backup.created_at),
        _table_time(backup.expires_at),
        backup.description or "",
    ]


def _plain_table(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = [[column.header for column in columns], *[list(row) for row in rows]]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    lines = []
    for row in cells:
        padded = [
            text.rjust(width) if column.right else text.ljust(width)
            for text, width, column in zip(row, widths, columns, strict=True)
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


# -- live feedback ------------------------------------------------------------------------


class FleetProgress:
    """Follows a fleet run: a rich bar with ok and failed counts, or a line per server.

    Use as a context manager and pass :meth:`record` as ``create_many``'s
    ``on_progress``. ``succeeded`` and ``failed`` count the outcomes heard so far.
    """

    def __init__(self, total: int, *, label: str, console: Console | None, lines: bool) -> None:
        self.total = total
        self.succeeded = 0
        self.failed = 0
        self._label = label
        self._console = console
        self._lines = lines
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> FleetProgress:
        if self._console is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("[green]{task.fields[succeeded]} ok"),
                TextColumn("[red]{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                self._label, total=self.total, succeeded=0, failed=0
            )
        return self

    def record(self, outcome: BackupOutcome) -> None:
        """Count one server's outcome and show it."""
        if outcome.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, advance=1, succeeded=self.succeeded, failed=self.failed
            )
        elif self._lines:
            print(outcome_line(outcome), file=sys.stdout, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


class WaitStatus:
    """Follows one wait: a rich spinner, or a line each time the status changes.

    Use as a context manager and pass :meth:`update` as ``on_update``. The final
    state is not shown here: the command reports it (or the error does). ``shown``
    is a status already reported, so it is not repeated.
    """

    def __init__(
        self, text: str, *, console: Console | None, lines: bool, shown: str | None = None
    ) -> None:
        self._text = text
        self._console = console
        self._lines = lines
        self._shown = shown
        self._status: Status | None = None

    def __enter__(self) -> WaitStatus:
        if self._console is not None:
            self._status = self._console.status(self._text)
            self._status.start()
        return self

    def update(self, backup: Backup) -> None:
        """Show the latest state of the backup being waited for."""
        if self._status is not None:
            self._status.update(f"{self._text} ({backup.status.value})")
            return
        if self._lines and not backup.is_final and backup.status.value != self._shown:
            self._shown = backup.status.value
            print(describe_backup(backup), file=sys.stdout, flush=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()


# -- the writer ---------------------------------------------------------------------------


class Output:
    """Where and how one command speaks: ``json_mode`` for ``--json``, else for humans."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json_mode = json_mode

    def _console(self) -> Console | None:
        """rich on stdout for human output, or ``None`` for plain text."""
        return None if self.json_mode else rich_console(sys.stdout)

    def _live_console(self) -> Console | None:
        """Where bars and spinners are drawn: off stdout when stdout carries JSON."""
        return rich_console(sys.stderr if self.json_mode else sys.stdout)

    def json(self, data: Any, *, compact: bool = False) -> None:
        """Write ``data`` as the command's one JSON document on stdout.

        ``compact`` puts it on one line, for readers that take a line at a time.
        """
        text = json.dumps(data, indent=None if compact else 2, ensure_ascii=False)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def line(self, text: str = "") -> None:
        """Write one line of human output on stdout."""
        print(text, file=sys.stdout, flush=True)

    def error(self, message: str, *, exit_code: int, details: dict[str, Any] | None = None) -> None:
        """Write the one line that says why the command failed, on stderr."""
        if self.json_mode:
            payload = {"error": {"message": message, "exit_code": exit_code, **(details or {})}}
            text = json.dumps(payload, ensure_ascii=False)
        else:
            text = f"error: {message}"
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def table(
        self, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, title: str | None = None
    ) -> None:
        """A table of text cells: drawn by rich on a terminal, aligned columns otherwise."""
        console = self._console()
        if console is None:
            if title:
                self.line(title)
            for text in _plain_table(columns, rows):
                self.line(text)
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(
                column.header, justify="right" if column.right else "left", no_wrap=not column.wrap
            )
        for row in rows:
            table.add_row(
                *(
                    Text(text, style=(column.style and column.style(text)) or "")
                    for text, column in zip(row, columns, strict=True)
                )
            )
        console.print(table)

    def fields(self, pairs: Sequence[tuple[str, str]], *, title: str) -> None:
        """A titled list of names and values, like a summary."""
        console = self._console()
        if console is None:
            self.line(title)
            width = max(len(name) for name, _ in pairs)
            for name, value in pairs:
                self.line(f"  {name.ljust(width)}  {value}")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for name, value in pairs:
            table.add_row(Text(name), Text(value))
        console.print(table)

    def backups(self, backups: Sequence[Backup], *, title: str | None = None) -> None:
        """A table of backups, one row each, in the order given."""
        if not backups:
            self.line(f"{title}: none" if title else "no backups")
            return
        self.table(BACKUP_COLUMNS, [backup_row(backup) for backup in backups], title=title)

    def fleet_progress(self, total: int, *, label: str) -> FleetProgress:
        """A :class:`FleetProgress` for a run over ``total`` servers."""
        return FleetProgress(
            total, label=label, console=self._live_console(), lines=not self.json_mode
        )

    def wait_status(self, text: str, *, shown: str | None = None) -> WaitStatus:
        """A :class:`WaitStatus` headed ``text``; ``shown``: a status already reported."""
        return WaitStatus(text, console=self._live_console(), lines=not self.json_mode, shown=shown)

    def fleet_summary(self, result: FleetResult, *, seconds: float) -> None:
        """The closing words of a fleet run: counts, time, and a table of the failures."""
        total, failed = len(result.outcomes), result.failed
        self.line(
            f"{len(result.succeeded)} of {total} servers ok, {len(failed)} failed "
            f"in {seconds:.1f} s"
        )
        if not failed:
            return
        rows = [
            [
                str(outcome.server_id),
                "-" if outcome.backup is None else str(outcome.backup.id),
                "-" if outcome.backup is None else outcome.backup.status.value,
                failure_reason(outcome),
            ]
            for outcome in failed[:_MAX_FAILURE_ROWS]
        ]
        columns = (
            Column("SERVER", right=True),
            Column("BACKUP", right=True),
            Column("STATUS", style=_status_style),
            Column("ERROR", wrap=True),
        )
        self.table(columns, rows, title="Failed servers")
        if len(failed) > _MAX_FAILURE_ROWS:
            self.line(f"... and {len(failed) - _MAX_FAILURE_ROWS} more (--json lists them all)")
