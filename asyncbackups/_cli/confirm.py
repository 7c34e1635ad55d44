"""Asking first, or only showing: what ``--yes`` and ``--dry-run`` do for the commands
that destroy (``delete``, ``restore``).

A question comes with what is at stake (:func:`backup_context`: the server's name, the
backup's date, size and description), read from the API before asking. A "no" is an
answer, not a failure: one plain line, and exit status 5 (``NOT_CONFIRMED``).
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import click

from asyncbackups import Backup

from .exit_codes import ExitCode, UsageError
from .invocation import Invocation
from .output import escape, is_terminal, json_text

__all__ = ["ask", "backup_context", "confirm", "needs_question", "print_dry_run"]

# Backups described in full before one question; more are counted.
_MAX_DESCRIBED = 10


def confirm(question: str) -> bool:
    """Ask ``question`` on the terminal; only ``y`` or ``yes`` is a yes.

    The question goes to stderr so that stdout stays clean for ``--json``; the end of
    input is a no.
    """
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline() if sys.stdin is not None else ""
    if not answer:
        # No typed Enter ended the question's line; end it before what follows.
        sys.stderr.write("\n")
        sys.stderr.flush()
    return answer.strip().lower() in {"y", "yes"}


def needs_question(*, action: str, yes: bool) -> bool:
    """Whether to ask before ``action``: not with ``--yes``.

    Without a terminal on stdin there is no one to ask: that is a refusal (exit 2,
    before anything is sent), so that ``echo y | asyncbackups restore ...`` cannot
    restore by accident.
    """
    if yes:
        return False
    if not is_terminal(sys.stdin):
        raise UsageError(
            f"{action} needs a yes, and stdin is no terminal to ask on; nothing was sent "
            "(pass --yes to confirm in a script)"
        )
    return True


def ask(question: str, *, action: str, yes: bool, context: Sequence[str] = ()) -> None:
    """Go on only after a yes on the terminal (or ``--yes``); otherwise send nothing.

    ``context`` (escaped lines) is shown above the question. A "no" ends the command
    with exit status 5 and one plain line saying nothing was sent (no ``error:``: the
    operator decided, nothing failed). Raises :class:`UsageError` without a terminal.
    """
    if not needs_question(action=action, yes=yes):
        return
    if context:
        sys.stderr.write("".join(f"{line}\n" for line in context))
    if not confirm(question):
        sys.stderr.write(f"{action} not confirmed; nothing was sent\n")
        sys.stderr.flush()
        raise click.exceptions.Exit(ExitCode.NOT_CONFIRMED)


def backup_context(backups: Sequence[Backup]) -> list[str]:
    """What deleting or restoring from ``backups`` is about, a few escaped lines each.

    ``backup 702 of server 12345 (web-server-01): manual, completed``, then its date and
    size, then its description, folded to the terminal's width.
    """
    width = max(shutil.get_terminal_size().columns, 40)
    lines: list[str] = []
    for backup in backups[:_MAX_DESCRIBED]:
        name = f" ({escape(backup.server.name)})" if backup.server.name else ""
        kind = f"{escape(backup.backup_type.value)}, {escape(backup.status.value)}"
        lines.append(f"backup {backup.id} of server {backup.server_id}{name}: {kind}")
        created = backup.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        size = "size unknown" if backup.size_mb is None else f"{backup.size_mb} MB"
        lines.append(f"  created {created}, {size}")
        description = escape(backup.description or "")
        if description:
            lines.extend(
                textwrap.wrap(
                    f"description: {description}",
                    width=width - 1,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
        else:
            lines.append("  no description")
    if len(backups) > _MAX_DESCRIBED:
        lines.append(f"... and {len(backups) - _MAX_DESCRIBED} more")
    return lines


def print_dry_run(invocation: Invocation, requests: Sequence[dict[str, Any]]) -> None:
    """Print the requests a command would send (``method``, ``url``, maybe ``json``)."""
    out = invocation.out
    if out.json_lines:
        for request in requests:
            out.json({"dry_run": True, **request})
        return
    if out.json_mode:
        out.json({"dry_run": True, "requests": list(requests)})
        return
    for request in requests:
        body = f" {json_text(request['json'], compact=True)}" if "json" in request else ""
        out.line(f"would send {request['method']} {escape(request['url'])}{body}")
    out.line("dry run: nothing was sent")
