"""The command line's parser, on click: every command, its options, help and completion.

Why click: it is well kept, has no dependencies, completes commands, options and
``click.Choice`` values in bash, zsh and fish out of the box, and suggests the nearest
option for a mistyped one. Here it is given lower-case ``usage:`` lines, examples kept
as written, and "did you mean" for commands.

Global options (connection, output, ``--debug``) are accepted before or after the
command: they are defined on the group and again on each command, and a value given
after the command wins. ``serve`` takes exactly the options of the standalone fake
(``python -m asyncbackups.testing``): they are read from ``add_serve_arguments``.
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from asyncbackups import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_LOG, ENV_TOKEN, __version__
from asyncbackups.testing import add_serve_arguments

from ._config import ENV_PROFILE, ENV_TOKEN_FILE
from ._exit_codes import EXIT_STATUS_HELP, UsageError
from ._fleet_run import parse_id
from ._invocation import ConnectionFlags, Invocation, RunState
from ._output import Output, OutputFormat

__all__ = [
    "COMPLETE_VAR",
    "PROG",
    "SHELLS",
    "build_cli",
    "parse_id",
    "serve_namespace",
    "serve_option_names",
]

PROG = "asyncbackups"
COMPLETE_VAR = "_ASYNCBACKUPS_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
DEFAULT_DEMO_SERVERS = 300
DEFAULT_DEMO_BACKUP_SECONDS = 2.5
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 80}

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    _IntType = click.ParamType[int]
    _FloatType = click.ParamType[float]
    _AnyType = click.ParamType[Any]
else:  # not generic at run time in every click this supports
    _IntType = _FloatType = _AnyType = click.ParamType


# -- value types --------------------------------------------------------------------------


class _Id(_IntType):
    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        try:
            return parse_id(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class _Seconds(_FloatType):
    name = "seconds"

    def __init__(self, *, allow_zero: bool) -> None:
        self.allow_zero = allow_zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected seconds, got {value!r}", param, ctx)
        if not (seconds >= 0 and math.isfinite(seconds)):
            self.fail(f"expected a non-negative number of seconds, got {value!r}", param, ctx)
        if seconds == 0 and not self.allow_zero:
            self.fail(f"expected more than 0 seconds, got {value!r}", param, ctx)
        return seconds


class _Count(_IntType):
    name = "count"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip().removeprefix("+")
        if not text.isascii() or not text.isdigit():
            self.fail(f"expected a whole number, got {value!r}", param, ctx)
        return int(text)


ID = _Id()
SECONDS = _Seconds(allow_zero=True)
POSITIVE_SECONDS = _Seconds(allow_zero=False)
COUNT = _Count()


# -- help that reads like the rest of the tools -------------------------------------------


class GlobalOption(click.Option):
    """An option every API command takes, before or after its name."""


class _Help:
    """Lower-case ``usage:``, examples kept as written, global options apart."""

    epilog: str | None

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        pieces = self.collect_usage_pieces(ctx)  # type: ignore[attr-defined]
        formatter.write_usage(ctx.command_path, " ".join(pieces), prefix="usage: ")

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.epilog:
            formatter.write_paragraph()
            for line in self.epilog.splitlines():
                formatter.write(f"{line}\n" if line else "\n")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):  # type: ignore[attr-defined]
            record = param.get_help_record(ctx)
            if record is None or isinstance(param, click.Argument):
                continue
            (shared if isinstance(param, GlobalOption) else own).append(record)
        if own:
            with formatter.section("options"):
                formatter.write_dl(own)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)
        if shared:
            with formatter.section("global options"):
                formatter.write_dl(shared)


class Command(_Help, click.Command):
    """A command with this command line's help layout."""


class Group(_Help, click.Group):
    """The top command: commands in the order defined, "did you mean" for typos."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=60)))
        if rows:
            with formatter.section("commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            name = args[0] if args else ""
            if name.startswith("-") or name in self.commands:
                raise  # an option's mistake, not a command's
            message = f"No such command {name!r}."
            close = difflib.get_close_matches(name, list(self.commands), n=1, cutoff=0.5)
            if close:
                message += f" Did you mean {close[0]!r}?"
            raise click.UsageError(message, ctx) from None


# -- the options every API command shares -------------------------------------------------

OUTPUT_CHOICES = tuple(item.value for item in OutputFormat)
_CONNECTION_NAMES = ("token", "token_file", "base_url", "profile", "timeout", "max_retries")
_OUTPUT_NAMES = ("output", "json", "json_lines", "debug")


def _global(*decls: str, **attrs: Any) -> Callable[[F], F]:
    return click.option(*decls, cls=GlobalOption, **attrs)


def connection_options(function: F) -> F:
    """``--token``, ``--token-file``, ``--base-url``, ``--profile``, ``--timeout``,
    ``--max-retries``."""
    decorators = [
        _global(
            "--token", metavar="TOKEN", help=f"API token (default: ${ENV_TOKEN}); never printed"
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
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def output_options(function: F) -> F:
    """``--output``, ``--json``, ``--json-lines``, ``-v``/``--debug``."""
    decorators = [
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
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT)


def _output_format(ctx: click.Context, params: dict[str, Any]) -> OutputFormat | None:
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


def _state(ctx: click.Context) -> RunState:
    state = ctx.find_object(RunState)
    if state is None:
        state = ctx.ensure_object(RunState)
    return state


def _invocation(ctx: click.Context, params: dict[str, Any], *, connects: bool = True) -> Invocation:
    """Merge the global options given before and after the command; set up the output."""
    state = _state(ctx)
    state.command = ctx.info_name
    parent = ctx.parent
    top: dict[str, Any] = dict(parent.params) if parent is not None else {}
    fmt = _output_format(ctx, params) or (
        _output_format(parent, top) if parent is not None else None
    )
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
    return Invocation(state, flags)


def _pop_globals(params: dict[str, Any]) -> dict[str, Any]:
    for name in (*_CONNECTION_NAMES, *_OUTPUT_NAMES, "request_timeout"):
        params.pop(name, None)
    return params


def _examples(*lines: str, notes: str = "", exit_status: str = "") -> str:
    text = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    if notes:
        text += "\n\n" + notes
    if exit_status:
        text += "\n\nexit status: " + exit_status
    return text


# -- the command line ---------------------------------------------------------------------

_TOP_EPILOG = (
    _examples(
        "asyncbackups demo                     # all of it, against a built-in fake API",
        f"export {ENV_TOKEN}=...         # or --token, --token-file, --profile",
        "asyncbackups list --server-id 12345 --status failed",
        "asyncbackups create 12345 --description 'before upgrade' --wait",
        "asyncbackups fleet --from-file servers.txt --description 'weekly W48' --wait",
        "asyncbackups help fleet",
    )
    + "\n\nenvironment (a flag wins over the environment, which wins over a profile):\n"
    f"  {ENV_TOKEN:<23}  API token (--token wins)\n"
    f"  {ENV_TOKEN_FILE:<23}  a file holding the token (--token-file wins)\n"
    f"  {ENV_BASE_URL:<23}  API base URL (--base-url wins)\n"
    f"  {ENV_PROFILE:<23}  profile of the config file (--profile wins)\n"
    f"  {ENV_LOG:<23}  debug, info or warning: the SDK's logs on stderr\n"
    "  HTTPS_PROXY, NO_PROXY    a proxy to reach the API through\n"
    "\nconfig file: $XDG_CONFIG_HOME/asyncbackups/config.toml (~/.config by default):\n"
    "  [profiles.staging]\n"
    '  base_url = "https://staging.example.com/api/v1/"\n'
    '  token_file = "~/.config/asyncbackups/staging.token"\n'
    '\nshell completion: eval "$(asyncbackups completion bash)" (or zsh, fish)\n\n'
    + EXIT_STATUS_HELP
)


def build_cli() -> Group:
    """The whole command line: a click group with every command."""

    @click.group(
        cls=Group,
        name=PROG,
        invoke_without_command=True,
        context_settings=CONTEXT_SETTINGS,
        epilog=_TOP_EPILOG,
        help="Back up, list, wait for and restore VPS backups from the command line.",
    )
    @connection_options
    @output_options
    @click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
    @click.pass_context
    def cli(ctx: click.Context, /, **params: Any) -> int:
        state = _state(ctx)
        fmt = _output_format(ctx, params)
        if fmt is not None:
            state.out = Output(fmt)
        state.set_debug(bool(params.get("debug")))
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())
        return 0

    # -- list, get ------------------------------------------------------------------------

    @cli.command(
        "list",
        cls=Command,
        short_help="List backups: every page, filtered, as a table or JSON.",
        help="List backups in the order the API gives, filtered and limited as asked.",
        epilog=_examples(
            "asyncbackups list",
            "asyncbackups list --server-id 12345 --type manual",
            "asyncbackups list --status failed --limit 20",
            "asyncbackups list --output json-lines | jq -r 'select(.size_mb > 4000) | .id'",
            exit_status="0 listed, 1 API error, 2 usage error",
        ),
    )
    @click.option("--server-id", type=ID, metavar="N", help="only this server's backups")
    @click.option(
        "--type",
        "backup_type",
        type=click.Choice(["manual", "automatic"], case_sensitive=False),
        help="only manual or only automatic backups",
    )
    @click.option(
        "--status",
        type=click.Choice(["in_progress", "completed", "failed"], case_sensitive=False),
        help="only backups in this status",
    )
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        metavar="N",
        help="at most N backups (reads no more pages than needed)",
    )
    @connection_options
    @output_options
    @click.pass_context
    def list_(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import list_command

        invocation = _invocation(ctx, params)
        options = _pop_globals(params)
        if options["backup_type"] is not None:
            options["backup_type"] = options["backup_type"].lower()
        if options["status"] is not None:
            options["status"] = options["status"].lower()
        return list_command(invocation, **options)

    @cli.command(
        "get",
        cls=Command,
        short_help="Show one backup.",
        help="Show one backup: its server, type, status, size, times and description.",
        epilog=_examples(
            "asyncbackups get 501",
            "asyncbackups get 501 --json | jq .status",
            exit_status="0 shown, 1 API error (404: no such backup), 2 usage error",
        ),
    )
    @click.argument("backup_id", type=ID, metavar="BACKUP_ID")
    @connection_options
    @output_options
    @click.pass_context
    def get(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import get_command

        invocation = _invocation(ctx, params)
        return get_command(invocation, **_pop_globals(params))

    # -- create, wait ---------------------------------------------------------------------

    def wait_timing(function: F) -> F:
        function = click.option(
            "--poll-interval",
            type=POSITIVE_SECONDS,
            metavar="S",
            help="seconds between the first polls, growing to 30 (default: 2)",
        )(function)
        return click.option(
            "--wait-timeout",
            type=SECONDS,
            metavar="S",
            help="give up waiting after S seconds in all (default: 1800)",
        )(function)

    @cli.command(
        "create",
        cls=Command,
        short_help="Start a manual backup of a server (and maybe wait for it).",
        help="Start a manual backup of a server; with --wait, wait until it completes.",
        epilog=_examples(
            "asyncbackups create 12345",
            "asyncbackups create 12345 --description 'before upgrade' --wait",
            "asyncbackups create 12345 --wait --wait-timeout 600 --json",
            notes="Under --json a backup that failed or timed out is still printed on stdout.",
            exit_status="0 started (or completed with --wait), 1 API error,\n"
            "3 the backup failed or the wait timed out",
        ),
    )
    @click.argument("server_id", type=ID, metavar="SERVER_ID")
    @click.option("--description", metavar="TEXT", help="at most 255 characters")
    @click.option("--wait", is_flag=True, help="wait until the backup completes")
    @wait_timing
    @connection_options
    @output_options
    @click.pass_context
    def create(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import create_command

        invocation = _invocation(ctx, params)
        return create_command(invocation, **_pop_globals(params))

    @cli.command(
        "wait",
        cls=Command,
        short_help="Wait until a backup completes.",
        help="Wait until a backup completes; its failure or the deadline is exit status 3.",
        epilog=_examples(
            "asyncbackups wait 502",
            "asyncbackups wait 502 --wait-timeout 600 --timeout 10",
            notes="--wait-timeout is how long to wait in all; --timeout is per request.\n"
            "Under --json a backup that failed or timed out is still printed on stdout.",
            exit_status="0 completed, 1 API error (404: no such backup),\n"
            "3 the backup failed or the wait timed out",
        ),
    )
    @click.argument("backup_id", type=ID, metavar="BACKUP_ID")
    @wait_timing
    @connection_options
    @output_options
    @click.pass_context
    def wait(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import wait_command

        invocation = _invocation(ctx, params)
        return wait_command(invocation, **_pop_globals(params))

    # -- delete, restore ------------------------------------------------------------------

    def confirmation(function: F) -> F:
        function = click.option(
            "--dry-run", is_flag=True, help="print what would be sent; send nothing"
        )(function)
        return click.option(
            "-y", "--yes", is_flag=True, help="do not ask (needed without a terminal)"
        )(function)

    @cli.command(
        "delete",
        cls=Command,
        short_help="Delete backups for good (asks first).",
        help="Delete one or more backups for good. Asks first on the terminal; without "
        "one (in a script, or with input piped in) it refuses unless --yes is given.",
        epilog=_examples(
            "asyncbackups delete 502                # asks first",
            "asyncbackups delete 502 503 504 --yes  # in scripts",
            exit_status="0 deleted, 1 API error (404: no such backup), 2 usage error or\n"
            "no terminal to ask on, 5 not confirmed",
        ),
    )
    @click.argument("backup_ids", type=ID, nargs=-1, required=True, metavar="BACKUP_ID...")
    @confirmation
    @connection_options
    @output_options
    @click.pass_context
    def delete(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import delete_command

        invocation = _invocation(ctx, params)
        options = _pop_globals(params)
        options["backup_ids"] = list(options["backup_ids"])
        return delete_command(invocation, **options)

    @cli.command(
        "restore",
        cls=Command,
        short_help="Restore a server from a backup, overwriting its disk (asks first).",
        help="Restore a server from one of its completed backups, overwriting its disk. "
        "Asks first on the terminal; without one it refuses unless --yes is given.",
        epilog=_examples(
            "asyncbackups restore 12345 501          # asks first",
            "asyncbackups restore 12345 501 --yes    # in scripts",
            "asyncbackups restore 12345 501 --dry-run",
            exit_status="0 accepted, 1 API error, 2 usage error or no terminal to ask on,\n"
            "5 not confirmed",
        ),
    )
    @click.argument("server_id", type=ID, metavar="SERVER_ID")
    @click.argument("backup_id", type=ID, metavar="BACKUP_ID")
    @confirmation
    @connection_options
    @output_options
    @click.pass_context
    def restore(ctx: click.Context, /, **params: Any) -> int:
        from ._commands import restore_command

        invocation = _invocation(ctx, params)
        return restore_command(invocation, **_pop_globals(params))

    # -- fleet ----------------------------------------------------------------------------

    @cli.command(
        "fleet",
        cls=Command,
        short_help="Back up many servers at once, with progress and a summary.",
        help="Back up many servers at once. Each outcome is reported as it lands; a "
        "run stopped half-way is picked up again with --resume and the same --description.",
        epilog=_examples(
            "asyncbackups fleet 12 13 14 --wait",
            "asyncbackups fleet --from-file servers.txt --description 'weekly W48' \\",
            "    --json-lines > w48.jsonl                # killed? run it again:",
            "asyncbackups fleet --from-file servers.txt --description 'weekly W48' --resume",
            "grep -v staging servers.txt | asyncbackups fleet --from-file - --wait",
            notes="A --from-file has one server ID a line; blank lines and # comments are\n"
            "skipped. It is read a line at a time, never whole. Off a terminal each\n"
            "server is one line: 'server 12 ok backup 502'. Ctrl-C prints what landed.",
            exit_status="0 every server ok, 1 API error, 2 usage error,\n"
            "4 some servers failed, 130 interrupted",
        ),
    )
    @click.argument("server_ids", type=ID, nargs=-1, metavar="[SERVER_ID]...")
    @click.option(
        "--from-file",
        metavar="PATH",
        type=click.Path(dir_okay=False, allow_dash=True),
        help="read server IDs from PATH ('-' for stdin)",
    )
    @click.option("--description", metavar="TEXT", help="description of every backup")
    @click.option(
        "--resume",
        is_flag=True,
        help="adopt the backups made by an earlier run with this --description",
    )
    @click.option(
        "--settle-timeout",
        type=SECONDS,
        metavar="S",
        help="with --resume, how long to let an earlier run's creates land before "
        "creating (default: --timeout; 0 only for an API that honours Idempotency-Key)",
    )
    @click.option(
        "--concurrency", type=ID, metavar="N", help="creates in flight at once (default: 64)"
    )
    @click.option(
        "--rate-limit",
        type=click.FloatRange(min=0.001, max=1e6),
        metavar="R",
        help="requests a second at most (default: $ASYNCBACKUPS_RATE_LIMIT, else learned "
        "from the API's rate-limit headers and 429s)",
    )
    @click.option("--wait", is_flag=True, help="wait until every backup completes or fails")
    @wait_timing
    @click.option("--dry-run", is_flag=True, help="print what would be sent; send nothing")
    @connection_options
    @output_options
    @click.pass_context
    def fleet(ctx: click.Context, /, **params: Any) -> int:
        from ._fleet_run import fleet_command

        invocation = _invocation(ctx, params)
        options = _pop_globals(params)
        options["server_ids"] = list(options["server_ids"])
        return fleet_command(invocation, **options)

    # -- serve, demo ----------------------------------------------------------------------

    @cli.command(
        "serve",
        cls=Command,
        short_help="Serve the built-in fake Backups API on loopback until Ctrl-C.",
        help="Serve the built-in fake Backups API (on 127.0.0.1 by default) until Ctrl-C. "
        "It prints its base URL and the token it accepts (a test token, not yours). "
        "The options are those of 'python -m asyncbackups.testing'.",
        epilog=_examples(
            "asyncbackups serve --servers 500 --failing-servers 7,42",
            "asyncbackups serve --port 0 --backup-seconds 1   # then run its export lines",
            "asyncbackups serve --chaos 0.1 --seed 3          # 1 request in 10 misbehaves",
            exit_status="0 stopped, 1 could not listen, 2 usage error",
        ),
    )
    @_serve_options
    @output_options
    @click.pass_context
    def serve(ctx: click.Context, /, **params: Any) -> int:
        from ._fake import serve_command

        invocation = _invocation(ctx, params, connects=False)
        return serve_command(invocation, _serve_arguments(ctx, params))

    @cli.command(
        "demo",
        cls=Command,
        short_help="Back up a whole fleet against an in-process fake API.",
        help="Back up a whole fleet against an in-process fake API, then list, restore "
        "and delete. Needs no token and no network.",
        epilog=_examples(
            "asyncbackups demo",
            "asyncbackups demo --servers 1000 --backup-seconds 5",
            exit_status="0 the demo ran (its planned failures included)",
        ),
    )
    @click.option(
        "--servers",
        type=ID,
        default=DEFAULT_DEMO_SERVERS,
        metavar="N",
        help=f"servers in the fleet (default: {DEFAULT_DEMO_SERVERS})",
    )
    @click.option(
        "--backup-seconds",
        type=POSITIVE_SECONDS,
        default=DEFAULT_DEMO_BACKUP_SECONDS,
        metavar="S",
        help=f"how long each backup takes (default: {DEFAULT_DEMO_BACKUP_SECONDS})",
    )
    @output_options
    @click.pass_context
    def demo(ctx: click.Context, /, **params: Any) -> int:
        from ._fake import demo_command

        invocation = _invocation(ctx, params, connects=False)
        options = _pop_globals(params)
        return demo_command(invocation, **options)

    # -- completion, help -----------------------------------------------------------------

    @cli.command(
        "completion",
        cls=Command,
        short_help="Print a shell completion script (bash, zsh or fish).",
        help="Print a script that makes the shell complete commands, options and values.",
        epilog=_examples(
            "asyncbackups completion bash               # prints the script",
            'eval "$(asyncbackups completion bash)"      # in ~/.bashrc',
            'eval "$(asyncbackups completion zsh)"       # in ~/.zshrc',
            "asyncbackups completion fish > ~/.config/fish/completions/asyncbackups.fish",
            exit_status="0 printed, 2 usage error",
        ),
    )
    @click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
    def completion(shell: str) -> int:
        from click.shell_completion import get_completion_class

        completer = get_completion_class(shell)
        assert completer is not None
        script = completer(cli, {}, PROG, COMPLETE_VAR).source()
        click.echo(script.rstrip("\n"))
        return 0

    def _complete_command(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        return [name for name in cli.list_commands(ctx) if name.startswith(incomplete)]

    @cli.command(
        "help",
        cls=Command,
        short_help="Show the help of the command line or of one command.",
        help="Show the help of the command line, or of COMMAND.",
        epilog=_examples("asyncbackups help", "asyncbackups help fleet", exit_status="0 shown"),
    )
    @click.argument(
        "command", required=False, metavar="[COMMAND]", shell_complete=_complete_command
    )
    @click.pass_context
    def help_(ctx: click.Context, command: str | None) -> int:
        top = ctx.parent if ctx.parent is not None else ctx
        if command is None:
            click.echo(top.get_help())
            return 0
        _, found, _ = cli.resolve_command(top, [command])
        assert found is not None
        with click.Context(found, info_name=command, parent=top) as sub:
            click.echo(found.get_help(sub))
        return 0

    del list_, get, create, wait, delete, restore, fleet, serve, demo, completion, help_
    return cli


# -- serve: the standalone fake's options, as click options --------------------------------


class _Recorder(argparse.ArgumentParser):
    """Records what ``add_serve_arguments`` adds, to declare the same options in click."""

    def __init__(self) -> None:
        super().__init__(add_help=False)
        self.recorded: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        self.recorded.append((tuple(args), dict(kwargs)))
        return super().add_argument(*args, **kwargs)


class _ArgparseType(_AnyType):
    """An argparse ``type=`` callable as a click type, its errors as click's."""

    def __init__(self, convert: Callable[[str], Any], metavar: str | None) -> None:
        self._convert = convert
        self.name = getattr(convert, "__name__", "value").strip("_") or "value"
        self._metavar = metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self._convert(value)
        except argparse.ArgumentTypeError as error:
            self.fail(str(error), param, ctx)
        except (TypeError, ValueError):
            self.fail(f"invalid {self.name} value: {value!r}", param, ctx)


def _serve_declarations() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    recorder = _Recorder()
    add_serve_arguments(recorder)
    return recorder.recorded


def _serve_options(function: F) -> F:
    """Every option of ``add_serve_arguments``, declared for click."""
    for flags, kwargs in reversed(_serve_declarations()):
        action = kwargs.get("action", "store")
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        default = kwargs.get("default")
        help_text = kwargs.get("help") or ""
        if "%(" in help_text:
            help_text = help_text % {"default": default, "prog": f"{PROG} serve"}
        help_text = help_text.replace("%%", "%")
        attrs: dict[str, Any] = {"help": help_text}
        if action == "store_true":
            attrs.update(is_flag=True, default=False)
        elif action == "store_false":
            attrs.update(is_flag=True, default=True)
        elif action == "store":
            convert = kwargs.get("type")
            choices = kwargs.get("choices")
            if choices is not None:
                attrs["type"] = click.Choice([str(choice) for choice in choices])
            elif convert is not None:
                attrs["type"] = _ArgparseType(convert, kwargs.get("metavar"))
            attrs["default"] = default
            attrs["show_default"] = False
            if kwargs.get("metavar"):
                attrs["metavar"] = kwargs["metavar"]
        else:
            raise TypeError(f"serve option {flags[0]}: argparse action {action!r} is not mapped")
        function = click.option(*flags, dest, **attrs)(function)
    return function


def serve_option_names() -> set[str]:
    """The option strings ``serve`` takes from the standalone fake."""
    return {flag for flags, _ in _serve_declarations() for flag in flags}


def _serve_arguments(ctx: click.Context, params: dict[str, Any]) -> argparse.Namespace:
    names = {
        kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        for flags, kwargs in _serve_declarations()
    }
    values = {name: params[name] for name in names}
    # click hands a default over as declared; argparse would convert a string default.
    for flags, kwargs in _serve_declarations():
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        convert = kwargs.get("type")
        if isinstance(values[dest], str) and convert is not None and not _given(ctx, dest):
            values[dest] = convert(values[dest])
    return argparse.Namespace(**values)


def serve_namespace(argv: Sequence[str]) -> argparse.Namespace:
    """What ``asyncbackups serve ARGV`` hands the fake, as the standalone parser would."""
    cli = build_cli()
    command = cli.get_command(click.Context(cli), "serve")
    assert command is not None
    with command.make_context("serve", list(argv)) as ctx:
        return _serve_arguments(ctx, ctx.params)
