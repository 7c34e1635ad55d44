"""``Output``: where and how one command speaks, in the format ``--output`` chose.

Streams are looked up on every write, so redirections made after start-up (pytest's
capture among them) are honoured. A failed write that is not a closed pipe becomes
:class:`OutputError`: one error line, exit status 1.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from asyncbackups import Backup

from ..exit_codes import CommandError, ExitCode
from .escaping import escape, json_text
from .live import FleetProgress, WaitStatus
from .streaming import Look, TableStream
from .tables import (
    BACKUP_COLUMNS,
    Column,
    backup_row,
    choose_columns,
    field_lines,
    records,
    rich_fields,
    rich_overhead,
    rich_table,
    text_table,
)
from .terminal import is_terminal, rich_console, terminal_width

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Output", "OutputError", "OutputFormat"]


def _field_name(header: str) -> str:
    """``SIZE (MB)`` as a field's name: ``size (MB)``; units keep their capitals."""
    name, bracket, unit = header.partition(" (")
    return name.lower() + bracket + unit


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


class Output:
    """Where and how one command speaks, in one :class:`OutputFormat`."""

    def __init__(self, output_format: OutputFormat = OutputFormat.TABLE) -> None:
        self.format = output_format
        self._stream: TableStream | None = None  # its count line gives way to notices

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

    def write_text(self, text: str) -> None:
        """Write ``text`` as it is (no newline added) on stdout, flushed; errors as
        :meth:`write`'s."""
        try:
            sys.stdout.write(text)
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

        Under a live progress bar rich shows it above the bar; a table being written
        takes its count line away first. A failure to write is ignored: a notice is
        never worth failing the command for.
        """
        try:
            if self._stream is not None:
                self._stream.make_room()
            sys.stderr.write(escape(text) + "\n")
            sys.stderr.flush()
        except OSError:
            pass

    def error(self, message: str, *, exit_code: int, details: dict[str, Any] | None = None) -> None:
        """Write the one line that says why the command failed, on stderr."""
        if self.json_mode:
            payload = {"error": {"message": message, "exit_code": exit_code, **(details or {})}}
            text = json_text(payload, compact=True)
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
        if console is not None:
            keep = choose_columns(columns, rows, console.width, overhead=rich_overhead)
            if keep is not None:
                self._print_rich(console, rich_table(columns, rows, keep, title=title))
                return
            lines = records(columns, rows)  # too narrow for any table
        else:
            lines = text_table(columns, rows, terminal_width(sys.stdout))
        if title:
            self.line(title)
        for text in lines:
            self.line(text)

    def table_stream(
        self,
        columns: Sequence[Column],
        *,
        chosen: Sequence[int] | None = None,
        wide: bool = False,
        noun: str = "rows",
    ) -> TableStream:
        """A table written as its rows arrive (``async with``; see :class:`TableStream`).

        ``table``: rich's look on a terminal with rich, aligned columns otherwise, fit to
        the terminal unless ``wide``; ``plain``: one tab-separated line per row.
        ``chosen``: the indexes of the columns to show, in order (none is dropped);
        ``noun``: what a row is, for the count shown while reading.
        """
        if self.plain:
            look = Look(width=None, plain=True)
        else:
            console = self._console()
            if console is not None:
                colour = console.color_system is not None and not console.no_color
                look = Look(width=console.width, box=True, colour=colour, terminal=True)
            else:
                terminal = is_terminal(sys.stdout)
                look = Look(width=terminal_width(sys.stdout), terminal=terminal)
        self._stream = TableStream(
            columns, look=look, write=self.write_text, chosen=chosen, wide=wide, noun=noun
        )
        return self._stream

    def fields(self, pairs: Sequence[tuple[str, str]], *, title: str | None) -> None:
        """A titled list of names and (escaped) values, like a summary or one backup."""
        if self.plain:
            for name, value in pairs:
                self.line(f"{name}\t{value}")
            return
        console = self._console()
        if console is not None:
            self._print_rich(console, rich_fields(pairs, title=title))
            return
        if title:
            self.line(title)
        for text in field_lines(pairs):
            self.line(text)

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
            (_field_name(column.header), cell)
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
