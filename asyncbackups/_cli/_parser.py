"""The argument parser: every command, its options, and the examples its ``--help`` shows.

Connection options (``--token``, ``--base-url``, ``--timeout``, ``--max-retries``) and
``--json`` are accepted before or after the command. They are defined on the top
parser and again on each command with a suppressed default, so a value given in
either place survives; :func:`parse_arguments` fills in what was not given.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from asyncbackups import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN, __version__
from asyncbackups.testing import add_serve_arguments

from ._exit_codes import EXIT_STATUS_HELP, UsageError

__all__ = ["PROG", "build_parser", "parse_arguments", "parse_id"]

PROG = "asyncbackups"
DEFAULT_DEMO_SERVERS = 300
DEFAULT_DEMO_BACKUP_SECONDS = 2.5

# What each global option is when it was not given; ``None`` leaves it to the SDK
# (which reads the environment itself).
_GLOBAL_DEFAULTS: dict[str, Any] = {
    "token": None,
    "base_url": None,
    "request_timeout": None,
    "max_retries": None,
    "json": False,
}

_WHOLE_NUMBER = re.compile(r"\s*\+?([0-9]+)\s*")

_RAW = argparse.RawDescriptionHelpFormatter


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose mistakes raise :class:`UsageError`.

    argparse would print the usage and an error on several lines and exit; the
    command line promises one error line and its own exit-status mapping instead.
    """

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` naming the mistake and where help is."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- option types -----------------------------------------------------------------------


def parse_id(text: str) -> int:
    """A server or backup ID: a positive whole number; ``ValueError`` otherwise."""
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"expected a positive whole number, got {text!r}")
    return int(match.group(1))


def _id(text: str) -> int:
    try:
        return parse_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    match = _WHOLE_NUMBER.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(match.group(1))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # NaN fails this test too
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text!r}")
    return value


# -- shared options -----------------------------------------------------------------------


_JSON_OPTION: dict[str, Any] = {
    "action": "store_true",
    "default": argparse.SUPPRESS,
    "help": "machine-readable JSON on stdout (errors as one JSON line on stderr)",
}


def _connection_options(*, timeout_flag: bool = True) -> Parser:
    """The connection options and ``--json``, as a parent parser.

    ``wait`` has its own ``--timeout`` (how long to wait), so there the per-request
    timeout is spelled ``--request-timeout`` only.
    """
    parent = Parser(add_help=False)
    group = parent.add_argument_group("connection options (before or after the command)")
    group.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help=f"API token (default: ${ENV_TOKEN}); never printed",
    )
    group.add_argument(
        "--base-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=f"API base URL (default: ${ENV_BASE_URL}, else {DEFAULT_BASE_URL})",
    )
    flags = ("--timeout", "--request-timeout") if timeout_flag else ("--request-timeout",)
    group.add_argument(
        *flags,
        dest="request_timeout",
        type=_positive_seconds,
        default=argparse.SUPPRESS,
        metavar="S",
        help="seconds per HTTP attempt (default: 30)",
    )
    group.add_argument(
        "--max-retries",
        type=_count,
        default=argparse.SUPPRESS,
        metavar="N",
        help="extra attempts after a retryable failure (default: 3; 0 disables)",
    )
    group.add_argument("--json", **_JSON_OPTION)
    return parent


def _wait_options(parser: argparse.ArgumentParser, *, timeout_flag: str) -> None:
    parser.add_argument(
        timeout_flag,
        dest="wait_timeout",
        type=_seconds,
        metavar="S",
        help="give up waiting after S seconds (default: 1800)",
    )
    parser.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        metavar="S",
        help="seconds between the first polls, growing to 30 (default: 2)",
    )


def _epilog(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


# -- the parser ---------------------------------------------------------------------------


def build_parser() -> Parser:
    """The parser of the whole command line, with every command."""
    connection = _connection_options()
    parser = Parser(
        prog=PROG,
        description="Back up, list, wait for and restore VPS backups from the command line.",
        epilog=_epilog(
            "asyncbackups demo                      # everything, against a built-in fake API",
            f"export {ENV_TOKEN}=...          # or pass --token",
            "asyncbackups list --server-id 12345",
            "asyncbackups create 12345 --description 'before upgrade' --wait",
            "asyncbackups fleet --from-file servers.txt --wait",
        )
        + "\n\nenvironment:\n"
        f"  {ENV_TOKEN:<21}  API token (--token wins)\n"
        f"  {ENV_BASE_URL:<21}  API base URL (--base-url wins)\n\n" + EXIT_STATUS_HELP,
        formatter_class=_RAW,
        parents=[connection],
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )

    def command(name: str, summary: str, epilog: str, *, parents: Sequence[Parser]) -> Parser:
        sub: Parser = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=epilog,
            formatter_class=_RAW,
            parents=list(parents),
            allow_abbrev=False,
        )
        return sub

    listing = command(
        "list",
        "List backups in the order the API gives: a table, or --json.",
        _epilog(
            "asyncbackups list",
            "asyncbackups list --server-id 12345 --type manual",
            "asyncbackups list --json | jq '.[] | select(.status == \"failed\") | .id'",
        )
        + "\n\nexit status: 0 listed, 1 API error, 2 usage error",
        parents=[connection],
    )
    listing.add_argument("--server-id", type=_id, metavar="N", help="only this server's backups")
    listing.add_argument(
        "--type",
        dest="backup_type",
        choices=("manual", "automatic"),
        help="only manual or only automatic backups",
    )

    create = command(
        "create",
        "Start a manual backup of a server (and optionally wait for it).",
        _epilog(
            "asyncbackups create 12345",
            "asyncbackups create 12345 --description 'before upgrade' --wait",
        )
        + "\n\nexit status: 0 started (or completed with --wait), 1 API error, "
        "3 the backup failed or the wait timed out",
        parents=[connection],
    )
    create.add_argument("server_id", type=_id, metavar="SERVER_ID")
    create.add_argument("--description", metavar="TEXT", help="at most 255 characters")
    create.add_argument("--wait", action="store_true", help="wait until the backup completes")
    _wait_options(create, timeout_flag="--wait-timeout")

    delete = command(
        "delete",
        "Delete a backup for good.",
        _epilog("asyncbackups delete 502") + "\n\nexit status: 0 deleted, 1 API error (404: none)",
        parents=[connection],
    )
    delete.add_argument("backup_id", type=_id, metavar="BACKUP_ID")

    restore = command(
        "restore",
        "Restore a server from one of its completed backups, overwriting its disk.",
        _epilog(
            "asyncbackups restore 12345 501          # asks first",
            "asyncbackups restore 12345 501 --yes    # in scripts",
        )
        + "\n\nWithout --yes it asks on the terminal; anything but y/yes (or end of input)"
        "\ncancels, and nothing is sent."
        "\n\nexit status: 0 accepted, 1 API error, 5 not confirmed",
        parents=[connection],
    )
    restore.add_argument("server_id", type=_id, metavar="SERVER_ID")
    restore.add_argument("backup_id", type=_id, metavar="BACKUP_ID")
    restore.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    wait = command(
        "wait",
        "Wait until a backup completes.",
        _epilog(
            "asyncbackups wait 502",
            "asyncbackups wait 502 --timeout 600 --request-timeout 10",
        )
        + "\n\nHere --timeout is how long to wait in all; the per-request timeout is"
        "\n--request-timeout (or --timeout before the command)."
        "\n\nexit status: 0 completed, 1 API error (404: no such backup), "
        "3 the backup failed or the wait timed out",
        parents=[_connection_options(timeout_flag=False)],
    )
    wait.add_argument("backup_id", type=_id, metavar="BACKUP_ID")
    _wait_options(wait, timeout_flag="--timeout")

    fleet = command(
        "fleet",
        "Back up many servers at once, with a progress bar and a summary of failures.",
        _epilog(
            "asyncbackups fleet 12 13 14 --wait",
            "asyncbackups fleet --from-file servers.txt --concurrency 32 --wait",
            "grep -v staging servers.txt | asyncbackups fleet --from-file - --json",
        )
        + "\n\nA --from-file has one server ID a line; blank lines and # comments are skipped."
        "\nWhen output is not a terminal, each server is one line: 'server 12 ok backup 502'."
        "\n\nexit status: 0 every server ok, 1 API error, 2 usage error, "
        "4 some servers failed",
        parents=[connection],
    )
    fleet.add_argument("server_ids", type=_id, nargs="*", metavar="SERVER_ID")
    fleet.add_argument(
        "--from-file", metavar="PATH", help="read server IDs from PATH ('-' for stdin)"
    )
    fleet.add_argument(
        "--concurrency", type=_id, metavar="N", help="creates in flight at once (default: 64)"
    )
    fleet.add_argument("--description", metavar="TEXT", help="description of every backup")
    fleet.add_argument(
        "--wait", action="store_true", help="wait until every backup completes or fails"
    )
    _wait_options(fleet, timeout_flag="--wait-timeout")

    json_only = Parser(add_help=False)
    json_only.add_argument("--json", **_JSON_OPTION)

    serve = command(
        "serve",
        "Serve the built-in fake Backups API (on 127.0.0.1 by default) until Ctrl-C.",
        _epilog(
            "asyncbackups serve --servers 500 --failing-servers 7,42",
            "asyncbackups serve --port 0 --backup-seconds 1   # then run its export lines",
            "asyncbackups serve --chaos 0.1 --seed 3          # about 1 request in 10 misbehaves",
        )
        + "\n\nIt prints its base URL and the token it accepts (a test token, not yours)."
        "\nThe options are those of 'python -m asyncbackups.testing'."
        "\n\nexit status: 0 stopped, 1 could not listen, 2 usage error",
        parents=[json_only],
    )
    add_serve_arguments(serve)

    demo = command(
        "demo",
        "Back up a whole fleet against an in-process fake API, then list, restore, delete.",
        _epilog("asyncbackups demo", "asyncbackups demo --servers 1000 --backup-seconds 5")
        + "\n\nNeeds no token and no network: the fake API runs inside this process."
        "\n\nexit status: 0 the demo ran (its planned failures included)",
        parents=[json_only],
    )
    demo.add_argument(
        "--servers",
        type=_id,
        default=DEFAULT_DEMO_SERVERS,
        metavar="N",
        help=f"servers in the fleet (default: {DEFAULT_DEMO_SERVERS})",
    )
    demo.add_argument(
        "--backup-seconds",
        type=_positive_seconds,
        default=DEFAULT_DEMO_BACKUP_SECONDS,
        metavar="S",
        help=f"how long each backup takes (default: {DEFAULT_DEMO_BACKUP_SECONDS})",
    )
    return parser


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a command line; every global option is present afterwards.

    Raises :class:`UsageError` for a mistake, ``SystemExit(0)`` after ``--help``.
    """
    args = build_parser().parse_args(argv)
    for name, default in _GLOBAL_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args
