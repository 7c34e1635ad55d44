"""Asking first, or only showing: what ``--yes`` and ``--dry-run`` do for the commands
that destroy (``delete``, ``restore``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .exit_codes import CommandError, ExitCode, UsageError
from .invocation import Invocation
from .output import escape, is_terminal, json_text

__all__ = ["ask", "confirm", "print_dry_run"]


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


def ask(question: str, *, action: str, yes: bool) -> None:
    """Go on only after a yes on the terminal (or ``--yes``); otherwise send nothing.

    Without a terminal on stdin there is no one to ask: that is a refusal (exit 2), so
    that ``echo y | asyncbackups restore ...`` cannot restore by accident.
    """
    if yes:
        return
    if not is_terminal(sys.stdin):
        raise UsageError(
            f"{action} needs a yes, and stdin is no terminal to ask on; nothing was sent "
            "(pass --yes to confirm in a script)"
        )
    if not confirm(question):
        raise CommandError(
            f"{action} not confirmed; nothing was sent (pass --yes to skip the question)",
            ExitCode.NOT_CONFIRMED,
        )


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
