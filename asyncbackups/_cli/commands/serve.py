"""``asyncbackups serve``: the built-in fake API on loopback until Ctrl-C.

Its options are the fake's own. click takes the global output options and hands
everything else, unprocessed, to an argparse parser filled by the fake's
``add_serve_arguments`` (the one ``python -m asyncbackups.testing`` uses), so
``serve --help`` is the fake's help and an option the fake gains works here unchanged.
``asyncbackups.testing`` is imported only when ``serve`` runs (its fake loads aiohttp.web).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.shell_completion import CompletionItem

from ..base import Command, examples
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation
from ..options import command_invocation, output_options
from ..output import one_line

if TYPE_CHECKING:
    from asyncbackups.testing import FakeBackupsAPI

__all__ = ["ServeCommand", "serve", "serve_namespace"]


class _FakeParser(argparse.ArgumentParser):
    """The fake's options; its mistakes become click's usage errors (one line, status 2)."""

    def __init__(self, ctx: click.Context, **settings: Any) -> None:
        # Set first: argparse's __init__ adds -h/--help through add_argument below.
        self.options: list[argparse.Action] = []
        self._ctx = ctx
        super().__init__(**settings)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """Add an argument as argparse does, and keep its options for shell completion."""
        action = super().add_argument(*args, **kwargs)
        if action.option_strings:
            self.options.append(action)
        return action

    def error(self, message: str) -> NoReturn:
        raise click.UsageError(message, self._ctx)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # After --help (its mistakes go through error above).
        if message:
            click.echo(message, err=True, nl=False)
        raise click.exceptions.Exit(status)


class ServeCommand(Command):
    """A command whose options are read by the fake's own parser, help included."""

    def fake_parser(self, ctx: click.Context) -> _FakeParser:
        """The fake's parser, with this command's help around its options.

        Laid out as wide as click lays out every other command's help; the global
        options, examples and exit statuses follow the fake's options.
        """
        from asyncbackups.testing import add_serve_arguments

        formatter = ctx.make_formatter()
        with formatter.indentation():
            formatter.write_text(self.help or "")
        description = formatter.getvalue().rstrip("\n")
        formatter = ctx.make_formatter()
        self.format_options(ctx, formatter)  # the global options: serve has none of its own
        self.format_epilog(ctx, formatter)
        parser = _FakeParser(
            ctx,
            prog=ctx.command_path,
            description=description,
            epilog=formatter.getvalue().strip("\n"),
            formatter_class=functools.partial(
                argparse.RawDescriptionHelpFormatter, width=formatter.width
            ),
        )
        add_serve_arguments(parser)
        return parser

    def get_help(self, ctx: click.Context) -> str:
        return self.fake_parser(ctx).format_help().rstrip("\n")

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        fake: list[CompletionItem] = []
        if incomplete.startswith("-"):
            fake = [
                CompletionItem(name, help=action.help)
                for action in self.fake_parser(ctx).options
                for name in action.option_strings
                if name.startswith(incomplete)
            ]
        return fake + super().shell_complete(ctx, incomplete)


@click.command(
    "serve",
    cls=ServeCommand,
    add_help_option=False,  # --help is the fake parser's
    context_settings={"ignore_unknown_options": True},
    short_help="Serve the built-in fake Backups API on loopback until Ctrl-C.",
    help="Serve the built-in fake Backups API (on 127.0.0.1 by default) until Ctrl-C. "
    "It prints its base URL and the token it accepts (a test token, not yours). "
    "The options are those of 'python -m asyncbackups.testing'.",
    epilog=examples(
        "asyncbackups serve --servers 500 --failing-servers 7,42",
        "asyncbackups serve --port 0 --backup-seconds 1   # then run its export lines",
        "asyncbackups serve --chaos 0.1 --seed 3          # 1 request in 10 misbehaves",
        exit_status="0 stopped, 1 could not listen, 2 usage error",
    ),
)
@output_options
@click.argument("fake_arguments", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def serve(ctx: click.Context, /, fake_arguments: tuple[str, ...], **params: Any) -> int:
    assert isinstance(ctx.command, ServeCommand)
    args = ctx.command.fake_parser(ctx).parse_args(fake_arguments)
    invocation = command_invocation(ctx, params, connects=False)
    return serve_fake(invocation, args)


def serve_fake(invocation: Invocation, args: argparse.Namespace) -> int:
    """Serve the fake until SIGINT/SIGTERM, as ``python -m asyncbackups.testing`` does.

    Prints its URL and token: the fake's own (``--token``), never the caller's.
    """
    from asyncbackups.testing import announce, fake_from_arguments, run

    out = invocation.out
    try:
        api = fake_from_arguments(args)
    except (ValueError, LookupError) as error:  # a bad token, an unknown failing server
        raise UsageError(one_line(str(error))) from None

    def announce_json(api: FakeBackupsAPI) -> None:
        out.json({"base_url": api.base_url, "token": api.token}, compact=True)

    try:
        run(api, on_ready=announce_json if out.json_mode else announce)
    except OSError as error:
        reason = one_line(error.strerror or str(error))
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {reason}") from None
    return ExitCode.OK


def serve_namespace(argv: Sequence[str]) -> argparse.Namespace:
    """What ``asyncbackups serve ARGV`` hands the fake: ARGV through click, then its parser."""
    with serve.make_context("serve", list(argv)) as ctx:
        return serve.fake_parser(ctx).parse_args(ctx.params["fake_arguments"])
