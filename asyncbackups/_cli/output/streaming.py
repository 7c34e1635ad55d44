"""A table written as its rows arrive: ``list`` shows the first page while it reads the next.

rich's ``Table`` measures every row before it draws any, at a cost per row that kept a
terminal blank until a long list's last page was in, and long after
(benchmarks/bench_cli_list.py measures it). Here the columns are chosen, and their
widths fixed, from the first rows (the first page), and every later batch is laid out
as text at once. On a terminal with rich installed the table looks as rich draws one (the same
heavy-headed box, bold headers, coloured statuses); in a pipe it is the aligned columns
of :func:`~asyncbackups._cli.output.tables.text_table`.

A later cell wider than its column folds onto more lines on a terminal (the box stays
straight, nothing is cut), and in a pipe overflows its column (one line per row). Rows
are written at most :data:`_TICK` seconds after they arrive, and on a terminal a dim
line below them counts what has been read so far until the last page is in. A footer
(dim, terminal only) names the columns dropped to fit, and how to show them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from .escaping import cell_width
from .tables import Column, choose_columns, fold, rich_overhead

__all__ = ["Look", "TableStream"]

# How long a row waits, at most, before it is written.
_TICK = 0.1
# Rows that make a batch worth writing at once, whatever the time.
_BATCH = 2000

_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
_RESET = "\x1b[0m"
_ERASE_LINE = "\r\x1b[2K"


def _text_overhead(count: int) -> int:
    return 2 * max(count - 1, 0)


@dataclass(frozen=True, kw_only=True)
class Look:
    """How a stream draws: ``box`` (rich's look, on a terminal), ``text`` (aligned
    columns, the default) or ``plain`` (tab-separated, no header); ``colour``: ANSI
    styles allowed; ``terminal``: stdout is a terminal (a count line and a footer may be
    drawn, a wide cell folds); ``width``: the cells a line may take (``None``: no limit).
    """

    width: int | None
    box: bool = False
    colour: bool = False
    plain: bool = False
    terminal: bool = False


class TableStream:
    """Rows of (escaped) cells written in batches as they arrive; see the module docstring.

    Use as an async context manager, :meth:`add` each row, and leave the block (which
    writes the rest, the bottom border and the footer). ``chosen``: the indexes of the
    columns asked for (``--columns``), which never drop; ``wide``: no column drops and
    none folds. ``write`` takes text ending with a newline (or not, for the progress
    line) and writes it at once.
    """

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        look: Look,
        write: Callable[[str], None],
        chosen: Sequence[int] | None = None,
        wide: bool = False,
        noun: str = "rows",
    ) -> None:
        self._columns = list(columns)
        self._look = look
        self._write = write
        self._chosen = list(chosen) if chosen is not None else None
        self._wide = wide
        self._noun = noun
        self._pending: list[Sequence[str]] = []
        self.count = 0
        self._keep: list[int] | None = None
        self._widths: list[int] = []
        self._records = False
        self._hidden: list[int] = []
        self._progress_shown = False
        self._reading = True
        self._ticker: asyncio.Task[None] | None = None
        self._failed: Exception | None = None

    # -- feeding ------------------------------------------------------------------------

    def add(self, row: Sequence[str]) -> None:
        """One row; written with its batch at the next tick (or once a batch is full).

        Raises what writing an earlier batch raised (a closed pipe, a full disk), so
        that the reading stops with it.
        """
        if self._failed is not None:
            raise self._failed
        self._pending.append(row)
        self.count += 1
        if len(self._pending) >= _BATCH:
            self.flush()

    async def __aenter__(self) -> TableStream:
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._reading = False
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C or a cancel: leave the screen tidy, write no more rows.
            self._clear_progress()
            return
        if self._failed is not None:
            if exc is self._failed:
                return
            raise self._failed
        self.close()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            try:
                self.flush()
            except Exception as error:  # the reader's next add() raises it
                self._failed = error
                return

    # -- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the rows that arrived since the last flush; on a terminal, below them,
        how many have been read so far."""
        rows, self._pending = self._pending, []
        if not rows:
            return  # nothing new: the count below the rows still holds
        text = self._lines(rows)
        progress = ""
        if self._reading and self._look.terminal:
            progress = self._style(f"reading… {self.count:,} {self._noun} so far", "dim")
        erase = _ERASE_LINE if self._progress_shown else ""
        self._progress_shown = bool(progress)
        self._write(erase + text + progress)

    def close(self) -> None:
        """Write what is left, the table's end, and the footer."""
        self._reading = False
        rows, self._pending = self._pending, []
        text = self._lines(rows) if rows else ""
        if self._keep is not None and self._look.box and not self._records:
            text += self._border("└", "┴", "┘", "─") + "\n"
        text += self._footer()
        erase = _ERASE_LINE if self._progress_shown else ""
        self._progress_shown = False
        if erase or text:
            self._write(erase + text)

    def make_room(self) -> None:
        """Take the count line away so that a notice can be written on its own line;
        the next batch brings it back."""
        self._clear_progress()

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self._progress_shown = False
            with contextlib.suppress(OSError):
                self._write(_ERASE_LINE)

    # -- layout -------------------------------------------------------------------------

    def _lines(self, rows: Sequence[Sequence[str]]) -> str:
        if self._look.plain:
            keep = self._chosen if self._chosen is not None else range(len(self._columns))
            return "".join("\t".join(row[index] for index in keep) + "\n" for row in rows)
        first = self._keep is None
        if first:
            self._lay_out(rows)
        if self._records:
            return self._record_lines(rows, first=first)
        parts: list[str] = []
        if first:
            parts.append(self._header())
        for row in rows:
            parts.append(self._row(row))
        return "".join(parts)

    def _lay_out(self, rows: Sequence[Sequence[str]]) -> None:
        """Choose the columns and fix their widths from the first rows."""
        look = self._look
        columns = self._columns
        overhead = rich_overhead if look.box else _text_overhead
        candidates = self._chosen if self._chosen is not None else list(range(len(columns)))
        # Asked for by name, or --wide: nothing drops. Otherwise by priority, to fit.
        fixed = self._wide or self._chosen is not None
        shown = [
            columns[index]._replace(priority=0) if fixed else columns[index] for index in candidates
        ]
        # Columns whose values the API's format bounds are that wide from the start.
        cells = [[row[index] for index in candidates] for row in rows]
        cells.append([" " * column.widest for column in shown])
        width = None if self._wide else look.width
        kept = choose_columns(shown, cells, width, overhead=overhead)
        if kept is None:
            self._records = True
            self._keep = list(candidates)
            return
        self._keep = [candidates[index] for index in kept]
        if self._chosen is None:
            self._hidden = [index for index in candidates if index not in self._keep]
        natural = [
            max(
                cell_width(columns[index].header),
                columns[index].widest,
                max((cell_width(row[index]) for row in rows), default=0),
            )
            for index in self._keep
        ]
        if width is not None:
            # A fold column takes what the others leave, down to its minimum.
            chosen = [columns[index] for index in self._keep]
            fixed_cells = sum(
                w for w, column in zip(natural, chosen, strict=True) if not column.fold
            )
            free = width - fixed_cells - overhead(len(chosen))
            natural = [
                max(min(w, free), _fold_min(column)) if column.fold else w
                for w, column in zip(natural, chosen, strict=True)
            ]
        self._widths = natural

    def _style(self, text: str, style: str | None) -> str:
        if not style or not self._look.colour:
            return text
        code = _SGR.get(style)
        return f"\x1b[{code}m{text}{_RESET}" if code else text

    def _border(self, left: str, middle: str, right: str, line: str) -> str:
        return left + middle.join(line * (width + 2) for width in self._widths) + right

    def _header(self) -> str:
        assert self._keep is not None
        columns = [self._columns[index] for index in self._keep]
        cells = [
            _pad(column.header, width, column.right, self._style(column.header, "bold"))
            for column, width in zip(columns, self._widths, strict=True)
        ]
        if self._look.box:
            return (
                self._border("┏", "┳", "┓", "━")
                + "\n┃ "
                + " ┃ ".join(cells)
                + " ┃\n"
                + self._border("┡", "╇", "┩", "━")
                + "\n"
            )
        return "  ".join(cells).rstrip() + "\n"

    def _row(self, row: Sequence[str]) -> str:
        assert self._keep is not None
        look = self._look
        columns = self._columns
        keep = self._keep
        widths = self._widths
        cells = [row[index] for index in keep]
        # On a terminal a cell wider than its column folds, so the columns stay
        # straight; in a pipe it overflows, so a row stays one line.
        may_fold = look.terminal and not self._wide
        pieces: list[list[str]] = []
        tall = 1
        for text, width in zip(cells, widths, strict=True):
            if may_fold and cell_width(text) > width:
                piece = fold(text, width)
                tall = max(tall, len(piece))
            else:
                piece = [text]
            pieces.append(piece)
        if look.box:
            separator, left, right = " │ ", "│ ", " │"
        else:
            separator, left, right = "  ", "", ""
        lines = []
        for line_number in range(tall):
            padded = []
            for piece, width, index in zip(pieces, widths, keep, strict=True):
                column = columns[index]
                text = piece[line_number] if line_number < len(piece) else ""
                shown = text
                if column.style is not None and text:
                    shown = self._style(text, column.style(text))
                padded.append(_pad(text, width, column.right, shown))
            line = left + separator.join(padded) + right
            lines.append(line if look.box else line.rstrip())
        return "\n".join(lines) + "\n"

    def _record_lines(self, rows: Sequence[Sequence[str]], *, first: bool) -> str:
        """Blocks of ``HEADER: value`` lines: a terminal too narrow for any table."""
        assert self._keep is not None
        blocks = []
        for row in rows:
            blocks.append(
                "".join(
                    f"{self._columns[index].header}: {row[index]}\n"
                    for index in self._keep
                    if row[index]
                )
            )
        text = "\n".join(blocks)
        return text if first else "\n" + text

    def _footer(self) -> str:
        """A dim line naming the columns dropped to fit (a terminal only)."""
        if not self._hidden or not self._look.terminal or self._look.width is None:
            return ""
        names = ", ".join(self._columns[index].key for index in self._hidden)
        lines = fold(
            f"hidden to fit {self._look.width} columns: {names} (show with --wide or --columns)",
            self._look.width,
        )
        return "".join(self._style(line, "dim") + "\n" for line in lines)


def _fold_min(column: Column) -> int:
    return max(column.min_width, cell_width(column.header))


def _pad(text: str, width: int, right: bool, shown: str | None = None) -> str:
    """``text`` padded to ``width`` cells; ``shown``: the same text with its styles."""
    pad = " " * max(width - cell_width(text), 0)
    shown = text if shown is None else shown
    return pad + shown if right else shown + pad
