"""Exit statuses of the command line, and the error that ends a command with one."""

from __future__ import annotations

import enum

__all__ = ["EXIT_STATUS_HELP", "CommandError", "ExitCode", "UsageError"]


class ExitCode(enum.IntEnum):
    """What ``asyncbackups`` exits with; ``EXIT_STATUS_HELP`` is how ``--help`` lists them."""

    OK = 0
    API_ERROR = 1
    USAGE = 2
    BACKUP_FAILED = 3
    FLEET_FAILURES = 4
    NOT_CONFIRMED = 5
    COVERAGE_MISSING = 6
    INTERRUPTED = 130


EXIT_STATUS_HELP = """\
exit status:
  0    success (also when the reader of the output left early, as | head does)
  1    API or network error (an error status, no connection, a malformed
       answer), or the output could not be written (a full disk)
  2    usage error (a bad option or ID, no token, an unreadable --from-file),
       or restore/delete/prune refused: no terminal to ask on and no --yes
  3    a backup ended FAILED, or waiting for it timed out
  4    fleet finished, but some servers failed (see the summary)
  5    restore, delete or prune not confirmed on the terminal: nothing was sent
  6    coverage: some servers have no completed backup in the window
  130  interrupted (Ctrl-C); fleet prints the outcomes it has first"""


class CommandError(Exception):
    """Ends a command: the message becomes its one error line, ``exit_code`` its status."""

    def __init__(
        self,
        message: str,
        exit_code: ExitCode = ExitCode.API_ERROR,
        *,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.cause = cause


class UsageError(CommandError):
    """A mistake in the command line itself; exit status 2, nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)
