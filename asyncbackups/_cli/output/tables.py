"""Tables that fit the terminal: which columns to keep, and how each path draws them.

Free text folds, low-priority columns drop (see :class:`Column`), and a terminal too
narrow for even the priority-0 columns gets one field a line. :func:`choose_columns`
makes that choice for both paths: on a terminal with rich installed rich's ``Table``
draws the columns kept (:func:`rich_table`); everywhere else (a pipe, a file, a terminal
without rich) :func:`text_table` lays them out as aligned text.

Why a text layout of our own beside rich's ``Table``: rich is optional (the ``cli``
extra brings it, a bare click does not, and the command line must then still fit the
terminal: tests/test_cli_output.py holds that path to 80 columns), and rich shrinks and
wraps columns but never drops the least important ones, nor falls back to one field a
line. Piped output stays the plain aligned columns scripts already parse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from asyncbackups import Backup

from .escaping import cell_width, escape

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

__all__ = [
    "BACKUP_COLUMNS",
    "Column",
    "backup_row",
    "choose_columns",
    "field_lines",
    "fold",
    "records",
    "rich_fields",
    "rich_overhead",
    "rich_table",
    "text_table",
]

_STATUS_STYLES = {"completed": "green", "failed": "red", "in_progress": "yellow"}


class Column(NamedTuple):
    """A table column.

    ``priority`` 0 is never dropped nor cut (IDs, statuses); when the terminal is too
    narrow, the column with the highest priority number drops first. A ``fold`` column
    is free text: it folds onto more lines, down to ``min_width`` cells, before it drops.
    ``name`` is how ``list --columns`` names it (default: the header's first word,
    lower-cased). ``widest``: the most cells its values take, when the API's format
    bounds them (a status, a time); a table drawn as its rows arrive makes the column
    that wide from the start.
    """

    header: str
    right: bool = False
    style: Callable[[str], str | None] | None = None
    priority: int = 0
    fold: bool = False
    min_width: int = 12
    name: str = ""
    widest: int = 0

    @property
    def key(self) -> str:
        """The column's name for ``--columns``."""
        return self.name or self.header.split()[0].lower()


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
    Column("TYPE", priority=2, widest=len("automatic")),
    Column("STATUS", style=_status_style, widest=len("in_progress")),
    Column("NAME", priority=5),
    Column("SIZE (MB)", right=True, priority=6),
    Column("CREATED (UTC)", priority=3, widest=len("2025-01-16 03:00")),
    Column("EXPIRES (UTC)", priority=7, widest=len("2025-01-16 03:00")),
    Column("DESCRIPTION", priority=4, fold=True),
)


def _table_time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


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


# -- which columns fit ------------------------------------------------------------------


def _natural_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max([cell_width(column.header), *(cell_width(row[index]) for row in rows)])
        for index, column in enumerate(columns)
    ]


def _fold_min(column: Column) -> int:
    return max(column.min_width, cell_width(column.header))


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
            cells += min(natural[index], _fold_min(column)) if column.fold else natural[index]
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


def rich_overhead(count: int) -> int:
    """What rich's default box takes beside the cells of ``count`` columns."""
    return 3 * count + 1  # a padding cell each side of every cell, a border between and around


def _text_overhead(count: int) -> int:
    return 2 * max(count - 1, 0)


# -- drawn by rich ----------------------------------------------------------------------


def rich_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    keep: Sequence[int],
    *,
    title: str | None,
) -> Table:
    """The columns ``keep`` of a table as rich draws it: fold columns fold, others whole."""
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
                min_width=min(width, _fold_min(column)),
            )
        else:
            table.add_column(column.header, justify=justify, no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(
            *(Text(row[index], style=_style(columns[index], row[index])) for index in keep)
        )
    return table


def rich_fields(pairs: Sequence[tuple[str, str]], *, title: str | None) -> Table:
    """Names and values as a rich table without a header; long values fold."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold", ratio=1)
    for name, value in pairs:
        table.add_row(Text(name), Text(value))
    return table


# -- laid out as text -------------------------------------------------------------------


def text_table(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> list[str]:
    """A table as aligned lines within ``width`` cells (``None``: no limit).

    Falls back to :func:`records` when even the priority-0 columns do not fit.
    """
    keep = choose_columns(columns, rows, width, overhead=_text_overhead)
    if keep is None:
        return records(columns, rows)
    chosen = [columns[index] for index in keep]
    cells = [[column.header for column in chosen], *[[row[i] for i in keep] for row in rows]]
    widths = _natural_widths(chosen, cells[1:])
    if width is not None:
        # A fold column takes what the others leave, at least its minimum.
        fixed = sum(w for w, column in zip(widths, chosen, strict=True) if not column.fold)
        free = width - fixed - _text_overhead(len(chosen))
        widths = [
            max(min(w, free), _fold_min(column)) if column.fold else w
            for w, column in zip(widths, chosen, strict=True)
        ]
    lines = []
    for row in cells:
        lines.extend(_text_row(chosen, row, widths))
    return lines


def _text_row(columns: Sequence[Column], row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row as one or more lines: fold cells wrap onto lines of their own."""
    pieces = [
        fold(text, width) if column.fold else [text]
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


def fold(text: str, width: int) -> list[str]:
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


def records(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as blocks of ``HEADER: value`` lines: a terminal too narrow for any table."""
    lines: list[str] = []
    for number, row in enumerate(rows):
        if number:
            lines.append("")
        lines.extend(
            f"{column.header}: {text}" for column, text in zip(columns, row, strict=True) if text
        )
    return lines


def field_lines(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Names and values as indented, aligned lines: ``  name  value``."""
    width = max(cell_width(name) for name, _ in pairs)
    return [f"  {name}{' ' * (width - cell_width(name))}  {value}" for name, value in pairs]
