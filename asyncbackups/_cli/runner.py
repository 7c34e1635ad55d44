"""One run of the command line: parse it, run one command, turn what it raised into a status.

Every failure becomes one line on stderr (a JSON object under ``--json``) with the token
hidden, and an exit status from ``exit_codes``; the SDK's logs reach stderr only under
``--debug``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

import click

from asyncbackups import ENV_TOKEN, BackupFailedError, BackupsError, WaitTimeoutError

from .app import cli
from .base import COMPLETE_VAR, PROG
from .exit_codes import CommandError, ExitCode
from .invocation import RunState
from .output import Output, OutputError, OutputFormat, error_json, one_line

__all__ = ["run"]

_LOGGER = "asyncbackups"
# Shorter "tokens" are no secret worth hiding, and hiding them would garble messages.
_MIN_SECRET = 4


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``asyncbackups`` with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Never raises for what a user or the API can do: every failure is one line on
    stderr (a JSON object under ``--json``) and a status from ``asyncbackups --help``.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:
        from click.shell_completion import shell_complete

        return shell_complete(cli, {"obj": RunState()}, PROG, COMPLETE_VAR, instruction)
    # Until the options are parsed only a guess can say whether errors should be JSON.
    state = RunState(out=Output(_guess_format(arguments)))
    state.secrets.append(os.environ.get(ENV_TOKEN) or "")
    state.secrets.extend(_token_flags(arguments))
    try:
        with _logging(state), cli.make_context(PROG, arguments, obj=state) as ctx:
            result = cli.invoke(ctx)
        return int(result) if isinstance(result, int) else ExitCode.OK
    except click.exceptions.Exit as done:  # --help, --version
        return done.exit_code
    except click.ClickException as error:
        return _fail(state, _usage_message(error), ExitCode.USAGE)
    except (KeyboardInterrupt, click.Abort):
        return _fail(state, "interrupted", ExitCode.INTERRUPTED)
    except OutputError as error:
        _silence_stdout()
        return _fail(state, error.message, error.exit_code)
    except CommandError as error:
        return _fail(state, error.message, error.exit_code, error.cause)
    except (WaitTimeoutError, BackupFailedError) as error:
        return _fail(state, state.explainer.explain(error), ExitCode.BACKUP_FAILED, error)
    except BackupsError as error:
        # A call that used all its attempts says so: how many, in how long.
        attempts = state.retries.gave_up(error)
        message = state.explainer.explain(error, attempts=attempts)
        return _fail(state, message, ExitCode.API_ERROR, error)
    except (TypeError, ValueError) as error:
        # The SDK raises these for caller mistakes (bad settings, a too long
        # description) before it sends anything: a usage error, not a crash. Its
        # keyword for plain http is a flag here.
        message = str(error).replace("allow_plain_http=True", "--allow-plain-http")
        return _fail(state, message, ExitCode.USAGE, error)
    except BrokenPipeError:
        # The reader left (`| head -1`): what it wanted it has; stop quietly.
        _silence_stdout()
        return ExitCode.OK


def _guess_format(arguments: Sequence[str]) -> OutputFormat:
    fmt = OutputFormat.TABLE
    for index, argument in enumerate(arguments):
        if argument == "--":
            break
        if argument == "--json":
            fmt = OutputFormat.JSON
        elif argument == "--json-lines":
            fmt = OutputFormat.JSON_LINES
        elif argument in ("--output", "-o") and index + 1 < len(arguments):
            with contextlib.suppress(ValueError):
                fmt = OutputFormat(arguments[index + 1].lower())
        elif argument.startswith("--output="):
            with contextlib.suppress(ValueError):
                fmt = OutputFormat(argument.removeprefix("--output=").lower())
    return fmt


def _token_flags(arguments: Sequence[str]) -> list[str]:
    """Tokens given as ``--token T`` or ``--token=T``: never to be echoed back."""
    found = []
    for index, argument in enumerate(arguments):
        if argument == "--token" and index + 1 < len(arguments):
            found.append(arguments[index + 1])
        elif argument.startswith("--token="):
            found.append(argument.removeprefix("--token="))
    return found


def _usage_message(error: click.ClickException) -> str:
    message = error.format_message()
    ctx = getattr(error, "ctx", None)
    path = ctx.command_path if isinstance(ctx, click.Context) else PROG
    return f"{message} (see '{path} --help')"


def _fail(
    state: RunState,
    message: str,
    exit_code: ExitCode,
    error: BaseException | None = None,
) -> int:
    """Report a failure as one line on stderr and return its exit status."""
    text = one_line(message) or (type(error).__name__ if error is not None else "failed")
    # The SDK keeps the token out of its messages; this is the last line of defence.
    for secret in state.secrets:
        if len(secret) >= _MIN_SECRET:
            text = text.replace(secret, "***")
    details = error_json(error) if error is not None else None
    state.out.error(text, exit_code=int(exit_code), details=details)
    return exit_code


class _Redact(logging.Filter):
    """Hides the token in any record, should one ever carry it."""

    def __init__(self, state: RunState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for secret in self._state.secrets:
            if len(secret) >= _MIN_SECRET:
                hidden = hidden.replace(secret, "***")
        if hidden != message:
            record.msg, record.args = hidden, None
        return True


class _Formatter(logging.Formatter):
    """``debug: asyncbackups: GET .../backups/ attempt 1 -> 200 in 4.4 ms``."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


@contextlib.contextmanager
def _logging(state: RunState) -> Iterator[None]:
    """The SDK's logs for this run: all of them on stderr under ``--debug``, else none.

    Without ``--debug`` (and without ``ASYNCBACKUPS_LOG``) the SDK's warnings would
    reach stderr through logging's last resort and break the one-error-line promise.
    """
    logger = logging.getLogger(_LOGGER)
    level = logger.level
    handler: logging.Handler = logging.NullHandler()
    debug_handler = _StderrHandler()
    debug_handler.setFormatter(_Formatter())
    debug_handler.addFilter(_Redact(state))
    logger.addHandler(handler)
    installed: list[logging.Handler] = [handler]

    def switch_on() -> None:
        if debug_handler not in logger.handlers:
            logger.addHandler(debug_handler)
            installed.append(debug_handler)
            logger.setLevel(logging.DEBUG)

    state.debug_hook = switch_on
    try:
        yield
    finally:
        for added in installed:
            logger.removeHandler(added)
        logger.setLevel(level)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (captured, say): nothing left to flush into a pipe
