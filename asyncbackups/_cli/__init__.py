"""The ``asyncbackups`` command line, built on the public API like any user's program.

``main`` is the console script's entry point (``asyncbackups._cli:main``). The command
line is the ``cli`` extra (click, and rich for tables and progress bars): the SDK never
imports it, and without click ``main`` says which extra to install instead of failing.

Inside: ``app`` (the root group; it adds every command), ``commands/`` (one module per
command: its options, help and body), ``base`` (the program's name, help layout, the
group), ``params`` (value types), ``options`` (the option groups commands share),
``invocation`` (one run's output and settings), ``config`` (flags, environment,
profiles), ``server_ids`` (a fleet's IDs from arguments, a file or stdin), ``confirm``
(asking first, dry runs), ``output/`` (escaping, tables, live views, JSON),
``messages`` (errors an operator can act on), ``exit_codes`` and ``runner`` (one run,
its failures made exit statuses).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .exit_codes import ExitCode

__all__ = ["main"]

MISSING_EXTRA = (
    "asyncbackups: the command line needs its extra: pip install 'asyncbackups[cli]' "
    "(from a checkout: pip install '.[cli]')"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``asyncbackups`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Never raises for what a user or the API can do: every failure is one line on
    stderr and a status from ``asyncbackups --help``. Without click (the ``cli``
    extra) that line is :data:`MISSING_EXTRA`, and the status 2.
    """
    try:
        from .runner import run
    except ImportError as error:
        if (error.name or "").partition(".")[0] != "click":
            raise
        sys.stderr.write(MISSING_EXTRA + "\n")
        return ExitCode.USAGE
    return run(argv)
