"""The option groups commands share, and how a command turns them into its invocation.

Global options (connection, output, ``--debug``) are accepted before or after the
command: they are defined on the group and again on each command, and a value given
after the command wins (:func:`command_invocation` merges the two).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from asyncbackups import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN

from .base import GlobalOption
from .config import ENV_PROFILE, ENV_TOKEN_FILE
from .exit_codes import UsageError
from .invocation import ConnectionFlags, Invocation, RunState
from .output import Output, OutputFormat
from .params import COUNT, POSITIVE_SECONDS, SECONDS

__all__ = [
    "command_invocation",
    "confirmation",
    "connection_options",
    "output_format",
    "output_options",
    "pop_globals",
    "run_state",
    "wait_options",
    "wait_timing",
]

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_CHOICES = tuple(item.value for item in OutputFormat)
_CONNECTION_NAMES = ("token", "token_file", "base_url", "profile", "timeout", "max_retries")
_OUTPUT_NAMES = ("output", "json", "json_lines", "debug")


def _apply(function: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _global(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=GlobalOption, **attrs)


def connection_options(function: F) -> F:
    """``--token``, ``--token-file``, ``--base-url``, ``--profile``, ``--timeout``,
    ``--max-retries``, ``--allow-plain-http``."""
    return _apply(
        function,
        [
            _global(
                "--token",
                metavar="TOKEN",
                help=f"API token (default: ${ENV_TOKEN}); never printed",
            ),
            _global(
                "--token-file",
                metavar="PATH",
                type=click.Path(dir_okay=False),
                help=f"read the token from PATH (default: ${ENV_TOKEN_FILE})",
            ),
            _global(
                "--base-url",
                metavar="URL",
                help=f"API base URL (default: ${ENV_BASE_URL}, else {DEFAULT_BASE_URL})",
            ),
            _global(
                "--profile",
                metavar="NAME",
                help=f"a profile of the config file (default: ${ENV_PROFILE}, else 'default')",
            ),
            _global(
                "--timeout",
                type=POSITIVE_SECONDS,
                metavar="S",
                help="seconds per HTTP request (default: 30)",
            ),
            _global("--request-timeout", type=POSITIVE_SECONDS, hidden=True),
            _global(
                "--max-retries",
                type=COUNT,
                metavar="N",
                help="extra attempts after a retryable failure (default: 3; 0 disables)",
            ),
            _global(
                "--allow-plain-http",
                is_flag=True,
                help="let the token cross the network over plain http:// (an http "
                "--base-url off loopback, or through a proxy off loopback): a trusted "
                "network only",
            ),
        ],
    )


def output_options(function: F) -> F:
    """``--output``, ``--json``, ``--json-lines``, ``-v``/``--debug``."""
    return _apply(
        function,
        [
            _global(
                "-o",
                "--output",
                type=click.Choice(OUTPUT_CHOICES, case_sensitive=False),
                metavar="FORMAT",
                help="table (default), plain, json or json-lines",
            ),
            _global("--json", is_flag=True, help="the same as --output json"),
            _global("--json-lines", is_flag=True, help="the same as --output json-lines"),
            _global(
                "-v",
                "--debug",
                is_flag=True,
                help="log the SDK's requests, retries and pauses on stderr",
            ),
        ],
    )


def wait_timing(function: F) -> F:
    """``--wait-timeout`` and ``--poll-interval``: how long, and how often, to poll."""
    return _apply(
        function,
        [
            click.option(
                "--wait-timeout",
                type=SECONDS,
                metavar="S",
                help="give up waiting after S seconds in all (default: 1800)",
            ),
            click.option(
                "--poll-interval",
                type=POSITIVE_SECONDS,
                metavar="S",
                help="seconds between the first polls, growing to 30 (default: 2)",
            ),
        ],
    )


def wait_options(
    wait_timeout: float | None, poll_interval: float | None, *, timeout_keyword: str = "timeout"
) -> dict[str, Any]:
    """:func:`wait_timing`'s values as SDK keywords; unset ones left out.

    What is left out keeps the SDK's default (a 1800 s deadline, 2 s first polls).
    """
    options: dict[str, Any] = {}
    if wait_timeout is not None:
        options[timeout_keyword] = wait_timeout
    if poll_interval is not None:
        options["poll_interval"] = poll_interval
    return options


def confirmation(function: F) -> F:
    """``-y``/``--yes`` and ``--dry-run``, for the commands that ask first."""
    return _apply(
        function,
        [
            click.option(
                "-y", "--yes", is_flag=True, help="do not ask (needed without a terminal)"
            ),
            click.option("--dry-run", is_flag=True, help="print what would be sent; send nothing"),
        ],
    )


# -- from options to an invocation ----------------------------------------------------


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT)


def output_format(ctx: click.Context, params: dict[str, Any]) -> OutputFormat | None:
    """The format asked for at one level (group or command), or ``None``."""
    asked = set()
    if params.get("output") is not None and _given(ctx, "output"):
        asked.add(OutputFormat(params["output"].lower()))
    if params.get("json"):
        asked.add(OutputFormat.JSON)
    if params.get("json_lines"):
        asked.add(OutputFormat.JSON_LINES)
    if len(asked) > 1:
        chosen = ", ".join(sorted(item.value for item in asked))
        raise UsageError(f"choose one output format, not {chosen}")
    return asked.pop() if asked else None


def run_state(ctx: click.Context) -> RunState:
    """The run's state, shared with ``runner.run`` (made here when run without it)."""
    state = ctx.find_object(RunState)
    if state is None:
        state = ctx.ensure_object(RunState)
    return state


def command_invocation(
    ctx: click.Context, params: dict[str, Any], *, connects: bool = True
) -> Invocation:
    """Merge the global options given before and after the command; set up the output.

    ``connects``: whether the command talks to the API (and so reads the connection
    options); ``serve`` and ``demo`` do not.
    """
    state = run_state(ctx)
    parent = ctx.parent
    top: dict[str, Any] = dict(parent.params) if parent is not None else {}
    fmt = output_format(ctx, params) or (output_format(parent, top) if parent is not None else None)
    state.out = Output(fmt or OutputFormat.TABLE)
    state.set_debug(bool(params.get("debug") or top.get("debug")))
    flags = ConnectionFlags()
    if connects:
        for name in _CONNECTION_NAMES:
            value = params.get(name)
            if value is None:
                value = top.get(name)
            setattr(flags, name, value)
        if flags.timeout is None:
            flags.timeout = params.get("request_timeout") or top.get("request_timeout")
        flags.allow_plain_http = bool(params.get("allow_plain_http") or top.get("allow_plain_http"))
    return Invocation(state, flags)


def pop_globals(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the global options: what is left is the command's own."""
    for name in (*_CONNECTION_NAMES, *_OUTPUT_NAMES, "request_timeout", "allow_plain_http"):
        params.pop(name, None)
    return params
