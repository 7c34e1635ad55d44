"""How commands speak: tables or plain lines for people, JSON or JSON lines for machines.

``--output`` picks one of four formats (:class:`OutputFormat`):

- ``table`` (the default): aligned columns with a header; on a terminal, with rich
  installed (the ``cli`` extra), boxed tables, colours, progress bars and spinners.
  Tables fit the terminal: free text folds, low-priority columns drop.
- ``plain``: text without colours, boxes or headers; a table is one tab-separated line
  per row, progress is one line per event.
- ``json``: exactly one JSON document on stdout.
- ``json-lines``: one compact JSON object per line, written (and flushed) as each
  record is known, so a killed run still leaves a record of what it finished.

By concern: ``escaping`` (API text made terminal-safe, JSON text), ``documents`` (the
SDK's objects as JSON and lines), ``tables`` (which columns fit, and how they are drawn),
``streaming`` (a table written as its rows arrive), ``live`` (progress bars and
spinners), ``terminal`` (is it one, how wide, rich on it) and ``writer``
(:class:`Output`, the one object commands write through).
"""

from __future__ import annotations

from .documents import (
    backup_json,
    describe_backup,
    error_json,
    failure_reason,
    outcome_json,
    outcome_line,
    timestamp,
)
from .escaping import cell_width, escape, json_text, one_line
from .live import FleetProgress, WaitStatus
from .streaming import TableStream
from .tables import BACKUP_COLUMNS, Column, backup_row, choose_columns
from .terminal import is_terminal, rich_console
from .writer import Output, OutputError, OutputFormat

__all__ = [
    "BACKUP_COLUMNS",
    "Column",
    "FleetProgress",
    "Output",
    "OutputError",
    "OutputFormat",
    "TableStream",
    "WaitStatus",
    "backup_json",
    "backup_row",
    "cell_width",
    "choose_columns",
    "describe_backup",
    "error_json",
    "escape",
    "failure_reason",
    "is_terminal",
    "json_text",
    "one_line",
    "outcome_json",
    "outcome_line",
    "rich_console",
    "timestamp",
]
