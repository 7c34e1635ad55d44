"""How commands speak: tables or plain lines for people, JSON or JSON lines for machines.

``--output`` picks one of four formats (:class:`OutputFormat`):

- ``table`` (the default): aligned columns with a header; on a terminal, with rich
  installed (the ``cli`` extra), boxed tables, colours, progress bars and spinners.
  Tables fit the terminal: free text folds, low-priority columns drop (see :class:`Column`).
- ``plain``: text without colours, boxes or headers; a table is one tab-separated line
  per row, progress is one line per event.
- ``json``: exactly one JSON document on stdout.
- ``json-lines``: one compact JSON object per line, written (and flushed) as each
  record is known, so a killed run still leaves a record of what it finished.

Text that came from the API (descriptions, names, messages) is shown with its control
characters escaped (``\\x1b``, ``\\n``, bidi overrides) in table and plain output, so an
API answer can never drive the terminal; JSON keeps the exact text (escaped as JSON).

Streams are looked up on every write, so redirections made after start-up (pytest's
capture among them) are honoured. A failed write that is not a closed pipe becomes
:class:`OutputError`: one error line, exit status 1.
"""

from __future__ import annotations

import enum
import json
import math
import re
import shutil
import sys
import time
import unicodedata
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
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)

from ._exit_codes import CommandError, ExitCode

if TYPE_CHECKING:
    from rich.console import Console, JustifyMethod
    from rich.progress import Progress, TaskID
    from rich.status import Status

__all__ = [
    "BACKUP_COLUMNS",
    "Column",
    "FleetProgress",
    "Output",
    "OutputError",
    "OutputFormat",
    "WaitStatus",
    "backup_json",
    "backup_row",
    "choose_columns",
    "describe_backup",
    "error_json",
    "escape",
    "json_text",
    "one_line",
    "outcome_json",
    "outcome_line",
    "rich_console",
    "timestamp",
]

_STATUS_STYLES = {"completed": "green", "failed": "red", "in_progress": "yellow"}

# Control characters (C0, DEL, C1), bidi embeddings, overrides and isolates, and the
# Unicode line and paragraph separators: none may reach a terminal raw.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw of those (it escapes C0 itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


class OutputFormat(enum.StrEnum):
    """The values of ``--output``."""

    TABLE = "table"
    PLAIN = "plain"
    JSON = "json"
    JSON_LINES = "json-lines"


class OutputError(CommandError):
    """stdout could not be written (a full disk, an I/O error): exit status 1."""

    def __init__(self, error: OSError) -> None:
        reason = error.strerror or type(error).__name__
        super().__init__(f"cannot write output: {reason}", ExitCode.API_ERROR)


# -- text -------------------------------------------------------------------------------


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` safe for a terminal: control and bidi characters shown as escapes.

    ``"\\x1b[2J"`` becomes the visible ``\\x1b[2J``; printable text is unchanged.
    """
    return _UNSAFE.sub(_escape_char, text)


def one_line(text: str) -> str:
    """``text`` on one safe line: runs of whitespace made one space, controls escaped."""
    return escape(" ".join(text.split()))


def json_text(data: Any, *, compact: bool = False) -> str:
    """``data`` as JSON that keeps every character's exact text yet is terminal-safe.

    Non-ASCII text stays readable; control and bidi characters become ``\\u200e``-style
    escapes (which any JSON reader turns back into the exact text).
    """
    text = json.dumps(data, indent=None if compact else 2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` takes: wide (CJK) characters two, combining none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width


def timestamp(moment: datetime | None) -> str | None:
    """An instant the way the API writes it: ISO 8601 in UTC with a ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def _table_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# -- JSON and text for the SDK's objects ------------------------------------------------


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
        if error.request_id:
            data["request_id"] = error.request_id
    if isinstance(error, BadRequestError) and error.field_errors:
        data["field_errors"] = error.field_errors
    if isinstance(error, RateLimitError | ServerError) and error.retry_after is not None:
        data["retry_after"] = error.retry_after
    if isinstance(error, WaitTimeoutError | BackupFailedError) and error.backup is not None:
        data["backup"] = backup_json(error.backup)
    return data


def describe_backup(backup: Backup) -> str:
    """``backup 502 of server 12345 (web-server-01): completed, 4523 MB``, escaped."""
    name = f" ({escape(backup.server.name)})" if backup.server.name else ""
    size = f", {backup.size_mb} MB" if backup.size_mb is not None else ""
    status = escape(backup.status.value)
    return f"backup {backup.id} of server {backup.server_id}{name}: {status}{size}"


def failure_reason(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> str:
    """Why a fleet server failed, in a few words."""
    error = outcome.error
    if isinstance(error, BackupFailedError):
        return "the backup ended failed"
    if isinstance(error, WaitTimeoutError):
        status = escape(error.backup.status.value) if error.backup is not None else "unknown"
        return f"still {status} at the wait deadline"
    if error is None:
        return "no backup was made"
    return explain(error)


def outcome_line(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> str:
    """``server 12 ok backup 502``, or ``server 7 failed backup 503: <why>``."""
    backup = f" backup {outcome.backup.id}" if outcome.backup is not None else ""
    if outcome.ok:
        adopted = " (adopted)" if outcome.adopted else ""
        return f"server {outcome.server_id} ok{backup}{adopted}"
    return f"server {outcome.server_id} failed{backup}: {failure_reason(outcome, explain)}"


def outcome_json(outcome: BackupOutcome, explain: Callable[[BaseException], str]) -> dict[str, Any]:
    """One fleet outcome: the server, whether it is ok, its backup and its error."""
    error = None
    if outcome.error is not None:
        error = {"message": explain(outcome.error), **error_json(outcome.error)}
    return {
        "server_id": outcome.server_id,
        "ok": outcome.ok,
        "adopted": outcome.adopted,
        "backup": None if outcome.backup is None else backup_json(outcome.backup),
        "error": error,
    }


# -- tables -----------------------------------------------------------------------------


class Column(NamedTuple):
    """A table column.

    ``priority`` 0 is never dropped nor cut (IDs, statuses); when the terminal is too
    narrow, the column with the highest priority number drops first. A ``fold`` column
    is free text: it folds onto more lines, down to ``min_width`` cells, before it drops.
    """

    header: str
    right: bool = False
    style: Callable[[str], str | None] | None = None
    priority: int = 0
    fold: bool = False
    min_width: int = 12


def _status_style(text: str) -> str | None:
    return _STATUS_STYLES.get(text)


def _style(column: Column, text: str) -> str:
    if column.style is None:
        return ""
    return column.style(text) or ""


# The drop order at narrow widths: expiry, size, server name, then the description
# (which folds first), then creation time, then type. ID, server and status always stay.
BACKUP_COLUMNS = (
    Column("ID", right=True),
    Column("SERVER", right=True),
    Column("TYPE", priority=2),
    Column("STATUS", style=_status_style),
    Column("NAME", priority=5),
    Column("SIZE (MB)", right=True, priority=6),
    Column("CREATED (UTC)", priority=3),
    Column("EXPIRES (UTC)", priority=7),
    Column("DESCRIPTION", priority=4, fold=True),
)


def backup_row(backup: Backup) -> list[str]:
    """One backup as the (escaped) cells of ``BACKUP_COLUMNS``."""
    return [
        str(backup.id),
        str(backup.server_id),
        escape(backup.backup_type.value),
        escape(backup.status.value),
        escape(backup.server.name or ""),
        "-" if backup.size_mb is None else str(backup.size_mb),
        _table_time(backup.created_at),
        _table_time(backup.expires_at),
        escape(backup.description or ""),
    ]


def _natural_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max([cell_width(column.header), *(cell_width(row[index]) for row in rows)])
        for index, column in enumerate(columns)
    ]


def choose_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None,
    *,
    overhead: Callable[[int], int],
) -> list[int] | None:
    """The indexes of the columns that fit in ``width`` cells, in their order.

    Columns drop by priority (highest number first) until the rest fits, counting a
    fold column at its ``min_width``. ``overhead(n)`` is what borders and padding take
    for ``n`` columns. ``None`` when even the priority-0 columns do not fit.
    """
    keep = list(range(len(columns)))
    if width is None:
        return keep
    natural = _natural_widths(columns, rows)

    def need(indexes: Sequence[int]) -> int:
        cells = 0
        for index in indexes:
            column = columns[index]
            fold_min = max(column.min_width, cell_width(column.header))
            cells += min(natural[index], fold_min) if column.fold else natural[index]
        return cells + overhead(len(indexes))

    droppable = sorted(
        (index for index in keep if columns[index].priority > 0),
        key=lambda index: -columns[index].priority,
    )
    while need(keep) > width and droppable:
        keep.remove(droppable.pop(0))
    if need(keep) > width:
        return None
    return keep


def _rich_overhead(count: int) -> int:
    return 3 * count + 1  # a padding cell each side of every cell, a border between and around


def _plain_overhead(count: int) -> int:
    return 2 * max(count - 1, 0)


def _plain_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> list[str]:
    keep = choose_columns(columns, rows, width, overhead=_plain_overhead)
    if keep is None:
        return _records(columns, rows)
    chosen = [columns[index] for index in keep]
    cells = [[column.header for column in chosen], *[[row[i] for i in keep] for row in rows]]
    widths = _natural_widths(chosen, cells[1:])
    if width is not None:
        # A fold column takes what the others leave, at least its minimum.
        fixed = sum(w for w, column in zip(widths, chosen, strict=True) if not column.fold)
        free = width - fixed - _plain_overhead(len(chosen))
        widths = [
            max(min(w, free), max(column.min_width, cell_width(column.header)))
            if column.fold
            else w
            for w, column in zip(widths, chosen, strict=True)
        ]
    lines = []
    for row in cells:
        lines.extend(_plain_row(chosen, row, widths))
    return lines


def _plain_row(columns: Sequence[Column], row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row as one or more lines: fold cells wrap onto lines of their own."""
    pieces = [
        _fold(text, width) if column.fold else [text]
        for text, width, column in zip(row, widths, columns, strict=True)
    ]
    lines = []
    for line_number in range(max(len(piece) for piece in pieces)):
        padded = []
        for piece, width, column in zip(pieces, widths, columns, strict=True):
            text = piece[line_number] if line_number < len(piece) else ""
            pad = " " * max(width - cell_width(text), 0)
            padded.append(pad + text if column.right else text + pad)
        lines.append("  ".join(padded).rstrip())
    return lines


def _fold(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells, at spaces where it can be."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        while cell_width(word) > width:
            cut = 0
            while cut < len(word) and cell_width(word[: cut + 1]) <= width:
                cut += 1
            lines.append(word[: max(cut, 1)])
            word = word[max(cut, 1) :]
        line = word
    if line:
        lines.append(line)
    return lines or [""]


def _records(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as blocks of ``HEADER: value`` lines: a terminal too narrow for any table."""
    lines: list[str] = []
    for number, row in enumerate(rows):
        if number:
            lines.append("")
        lines.extend(
            f"{column.header}: {text}" for column, text in zip(columns, row, strict=True) if text
        )
    return lines


# -- rich -------------------------------------------------------------------------------


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # no isatty at all, or a closed stream
        return False


def rich_console(stream: TextIO) -> Console | None:
    """A rich console drawing on ``stream``, or ``None`` for plain text.

    ``None`` when the stream is not a terminal or rich is not installed.
    """
    if not _is_terminal(stream):
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    # Data (descriptions, server names) may hold brackets: never read them as markup.
    return Console(file=stream, markup=False, highlight=False)


def _terminal_width(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` is, or ``None`` when it is no terminal."""
    if not _is_terminal(stream):
        return None
    return shutil.get_terminal_size().columns


# -- live feedback ----------------------------------------------------------------------


def _duration(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"2 h 5 min"``: rounded up, for a time left."""
    seconds = math.ceil(seconds)
    if seconds < 90:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


class FleetProgress:
    """Follows a fleet run in its two phases: backups created, then finished.

    A rich bar per phase (only one, "created", when the run does not wait), or a line
    per server. Pass :meth:`created` as ``stream_many``'s ``on_created`` and call
    :meth:`landed` with each outcome. ``succeeded`` and ``failed`` count the outcomes
    landed so far. ``list_each`` prints every outcome's line even above a bar (a run
    that does not wait lists the backups it created).
    """

    def __init__(
        self,
        total: int | None,
        *,
        wait: bool,
        console: Console | None,
        lines: bool,
        list_each: bool,
        explain: Callable[[BaseException], str],
        write: Callable[[str], None],
    ) -> None:
        self.total = total
        self.succeeded = 0
        self.failed = 0
        self.made = 0
        self._failed_before_made = 0
        self._wait = wait
        self._console = console
        self._lines = lines
        self._list_each = list_each
        self._explain = explain
        self._write = write
        self._progress: Progress | None = None
        self._created_task: TaskID | None = None
        self._finished_task: TaskID | None = None
        self._throttle_note = ""
        self._throttle_noted = -math.inf

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
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._progress.start()
            self._created_task = self._progress.add_task("created ", total=self.total, counts="")
            if self._wait:
                self._finished_task = self._progress.add_task(
                    "finished", total=self.total, counts=self._counts()
                )
        return self

    def _counts(self) -> str:
        return f"[green]{self.succeeded} ok[/] [red]{self.failed} failed[/]"

    def created(self, outcome: BackupOutcome) -> None:
        """A server's backup was made (or adopted): the first phase."""
        self.made += 1
        if self._progress is not None and self._created_task is not None:
            self._progress.update(self._created_task, advance=1)

    def landed(self, outcome: BackupOutcome) -> None:
        """A server's outcome: the second phase (with no wait, the only one)."""
        if outcome.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if outcome.backup is None:
            self._failed_before_made += 1
        # No backup: its create failed, so it never passed the first phase either.
        first_phase_too = outcome.backup is None
        if self._progress is not None:
            if first_phase_too and self._created_task is not None:
                self._progress.update(self._created_task, advance=1)
            if self._finished_task is not None:
                self._progress.update(self._finished_task, advance=1, counts=self._counts())
            elif self._created_task is not None:
                self._progress.update(self._created_task, counts=self._counts())
            if self._list_each:
                from rich.text import Text

                self._progress.console.print(Text(outcome_line(outcome, self._explain)))
        elif self._lines:
            self._write(outcome_line(outcome, self._explain))

    def throttled(self, rate: float, left: float | None) -> None:
        """The API throttles the run: show the rate it runs at, and the time left.

        On a terminal it is the first bar's note; off one, a line each time the
        wording changes (at most one a minute: the rate moves a little all the time).
        """
        text = f"throttled by the API: {rate:.1f} req/s"
        if left is not None:
            text += f", about {_duration(left)} left"
        if self._progress is not None and self._created_task is not None:
            if not self._wait:
                text = f"{text}  {self._counts()}"
            self._progress.update(self._created_task, counts=f"[yellow]{text}[/]")
        elif self._lines:
            now = time.monotonic()
            if text != self._throttle_note and now - self._throttle_noted >= 60.0:
                self._throttle_note, self._throttle_noted = text, now
                self._write(text)

    def unfinished(self) -> int:
        """How many servers' backups were made but have not landed (still running)."""
        landed_after_made = self.succeeded + self.failed
        return max(self.made - landed_after_made + self._failed_before_made, 0)

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
        self,
        text: str,
        *,
        console: Console | None,
        write: Callable[[str], None] | None,
        shown: str | None = None,
    ) -> None:
        self._text = text
        self._console = console
        self._write = write
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
            self._status.update(f"{self._text} ({escape(backup.status.value)})")
            return
        if self._write is not None and not backup.is_final and backup.status.value != self._shown:
            self._shown = backup.status.value
            self._write(describe_backup(backup))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()


# -- the writer -------------------------------------------------------------------------


class Output:
    """Where and how one command speaks, in one :class:`OutputFormat`."""

    def __init__(self, output_format: OutputFormat = OutputFormat.TABLE) -> None:
        self.format = output_format

    @property
    def json_mode(self) -> bool:
        """Whether stdout carries JSON (``json`` or ``json-lines``)."""
        return self.format in (OutputFormat.JSON, OutputFormat.JSON_LINES)

    @property
    def json_lines(self) -> bool:
        """Whether stdout carries one JSON object a line."""
        return self.format is OutputFormat.JSON_LINES

    @property
    def plain(self) -> bool:
        """Whether tables are tab-separated lines without a header."""
        return self.format is OutputFormat.PLAIN

    def _console(self) -> Console | None:
        """rich on stdout for ``table`` output on a terminal, or ``None`` for text."""
        if self.format is not OutputFormat.TABLE:
            return None
        return rich_console(sys.stdout)

    def _live_console(self) -> Console | None:
        """Where bars and spinners are drawn: off stdout when stdout carries JSON."""
        if self.format is OutputFormat.PLAIN:
            return None
        return rich_console(sys.stderr if self.json_mode else sys.stdout)

    # -- writing ------------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write ``text`` and a newline on stdout, flushed.

        A closed pipe raises ``BrokenPipeError`` (the caller exits quietly); any other
        failure is :class:`OutputError`.
        """
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error) from None

    def json(self, data: Any, *, compact: bool = False) -> None:
        """Write ``data`` as JSON: indented under ``json`` (unless ``compact``), one line
        under ``json-lines``."""
        self.write(json_text(data, compact=compact or self.json_lines))

    def line(self, text: str = "") -> None:
        """Write one line of human output on stdout (the caller escapes API text)."""
        self.write(text)

    def notice(self, text: str) -> None:
        """Write a line about the run itself (not its result) on stderr, flushed.

        Under a live progress bar rich shows it above the bar. A failure to write is
        ignored: a notice is never worth failing the command for.
        """
        try:
            sys.stderr.write(escape(text) + "\n")
            sys.stderr.flush()
        except OSError:
            pass

    def error(self, message: str, *, exit_code: int, details: dict[str, Any] | None = None) -> None:
        """Write the one line that says why the command failed, on stderr."""
        if self.json_mode:
            payload = {"error": {"message": message, "exit_code": exit_code, **(details or {})}}
            text = _UNSAFE_IN_JSON.sub(_json_escape, json.dumps(payload, ensure_ascii=False))
        else:
            text = f"error: {message}"
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except OSError:
            pass  # nowhere left to say it; the exit status still does

    def _print_rich(self, console: Console, renderable: Any) -> None:
        try:
            console.print(renderable)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputError(error) from None

    # -- tables -------------------------------------------------------------------------

    def table(
        self, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, title: str | None = None
    ) -> None:
        """A table of (escaped) text cells that fits the terminal.

        ``table``: drawn by rich on a terminal, aligned columns otherwise; ``plain``:
        one tab-separated line per row, no header, every column.
        """
        if self.plain:
            for row in rows:
                self.line("\t".join(row))
            return
        console = self._console()
        if console is None:
            if title:
                self.line(title)
            for text in _plain_table(columns, rows, _terminal_width(sys.stdout)):
                self.line(text)
            return
        keep = choose_columns(columns, rows, console.width, overhead=_rich_overhead)
        if keep is None:
            if title:
                self.line(title)
            for text in _records(columns, rows):
                self.line(text)
            return
        from rich.table import Table
        from rich.text import Text

        chosen = [columns[index] for index in keep]
        natural = _natural_widths(chosen, [[row[i] for i in keep] for row in rows])
        table = Table(title=title, title_justify="left")
        for column, width in zip(chosen, natural, strict=True):
            justify: JustifyMethod = "right" if column.right else "left"
            if column.fold:
                table.add_column(
                    column.header,
                    justify=justify,
                    overflow="fold",
                    ratio=1,
                    min_width=min(width, max(column.min_width, cell_width(column.header))),
                )
            else:
                table.add_column(column.header, justify=justify, no_wrap=True, min_width=width)
        for row in rows:
            table.add_row(
                *(Text(row[index], style=_style(columns[index], row[index])) for index in keep)
            )
        self._print_rich(console, table)

    def fields(self, pairs: Sequence[tuple[str, str]], *, title: str | None) -> None:
        """A titled list of names and (escaped) values, like a summary or one backup."""
        if self.plain:
            for name, value in pairs:
                self.line(f"{name}\t{value}")
            return
        console = self._console()
        if console is None:
            if title:
                self.line(title)
            width = max(cell_width(name) for name, _ in pairs)
            for name, value in pairs:
                self.line(f"  {name}{' ' * (width - cell_width(name))}  {value}")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold", ratio=1)
        for name, value in pairs:
            table.add_row(Text(name), Text(value))
        self._print_rich(console, table)

    def backups(self, backups: Sequence[Backup], *, title: str | None = None) -> None:
        """A table of backups, one row each, in the order given."""
        if not backups:
            if not self.plain:
                self.line(f"{title}: none" if title else "no backups")
            return
        self.table(BACKUP_COLUMNS, [backup_row(backup) for backup in backups], title=title)

    def backup_fields(self, backup: Backup) -> None:
        """One backup, a field a line."""
        if self.plain:
            self.line("\t".join(backup_row(backup)))
            return
        cells = backup_row(backup)
        pairs = [
            (column.header.lower(), cell)
            for column, cell in zip(BACKUP_COLUMNS, cells, strict=True)
            if cell
        ]
        if backup.message:
            pairs.append(("message", escape(backup.message)))
        self.fields(pairs, title=None)

    # -- live feedback ------------------------------------------------------------------

    def fleet_progress(
        self,
        total: int | None,
        *,
        wait: bool,
        explain: Callable[[BaseException], str],
    ) -> FleetProgress:
        """A :class:`FleetProgress` for a run over ``total`` servers (``None``: unknown)."""
        human = self.format is OutputFormat.TABLE
        return FleetProgress(
            total,
            wait=wait,
            console=self._live_console(),
            lines=human,
            list_each=human and not wait,
            explain=explain,
            write=self.write,
        )

    def wait_status(self, text: str, *, shown: str | None = None) -> WaitStatus:
        """A :class:`WaitStatus` headed ``text``; ``shown``: a status already reported."""
        return WaitStatus(
            text,
            console=self._live_console(),
            write=None if self.json_mode else self.write,
            shown=shown,
        )
