"""``main``: parse the command line, run one command, turn what it raised into a status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from asyncbackups import ENV_TOKEN, BackupFailedError, BackupsError, WaitTimeoutError

from ._commands import (
    create_command,
    delete_command,
    fleet_command,
    list_command,
    restore_command,
    wait_command,
)
from ._exit_codes import CommandError, ExitCode
from ._fake import demo_command, serve_command
from ._output import Output, error_json, one_line
from ._parser import parse_arguments

__all__ = ["main"]

Command = Callable[[argparse.Namespace, Output], int]

COMMANDS: dict[str, Command] = {
    "list": list_command,
    "create": create_command,
    "delete": delete_command,
    "restore": restore_command,
    "wait": wait_command,
    "fleet": fleet_command,
    "serve": serve_command,
    "demo": demo_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``asyncbackups`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Never raises for what a user or the API can do: every failure is one line on
    stderr (a JSON object under ``--json``) and a status from ``asyncbackups --help``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    # Before parsing succeeds only a guess can say whether errors should be JSON.
    out = Output(json_mode="--json" in arguments)
    secrets_to_hide = [os.environ.get(ENV_TOKEN) or ""]
    try:
        try:
            args = parse_arguments(arguments)
        except SystemExit as done:  # --help and --version print, then exit 0
            return done.code if isinstance(done.code, int) else ExitCode.OK
        out = Output(json_mode=args.json)
        secrets_to_hide.append(args.token or "")
        return COMMANDS[args.command](args, out)
    except KeyboardInterrupt:
        return _fail(out, "interrupted", ExitCode.INTERRUPTED)
    except CommandError as error:
        return _fail(out, error.message, error.exit_code)
    except (WaitTimeoutError, BackupFailedError) as error:
        return _fail(out, str(error), ExitCode.BACKUP_FAILED, error, secrets_to_hide)
    except BackupsError as error:
        return _fail(out, str(error), ExitCode.API_ERROR, error, secrets_to_hide)
    except (TypeError, ValueError) as error:
        # The SDK raises these for caller mistakes (bad settings, repeated fleet IDs)
        # before it sends anything: a usage error, not a crash.
        return _fail(out, str(error), ExitCode.USAGE, error, secrets_to_hide)
    except BrokenPipeError:
        # The reader left (`| head`); stop writing to it, and let the exit say so.
        _silence_stdout()
        return ExitCode.API_ERROR


def _fail(
    out: Output,
    message: str,
    exit_code: ExitCode,
    error: BaseException | None = None,
    secrets_to_hide: Sequence[str] = (),
) -> int:
    """Report a failure as one line on stderr and return its exit status."""
    text = one_line(message) or (type(error).__name__ if error is not None else "failed")
    # The SDK keeps the token out of its messages; this is the last line of defence.
    for secret in secrets_to_hide:
        if secret:
            text = text.replace(secret, "***")
    out.error(text, exit_code=int(exit_code), details=error_json(error) if error else None)
    return exit_code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (captured, say): nothing left to flush into a pipe
