"""``asyncbackups help``: the help of the command line, or of one command."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from ..base import Command, examples

__all__ = ["help_"]


def _root(ctx: click.Context) -> click.Group:
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    return root


def _complete_command(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    names = _root(ctx).list_commands(ctx)
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


@click.command(
    "help",
    cls=Command,
    short_help="Show the help of the command line or of one command.",
    help="Show the help of the command line, or of COMMAND.",
    epilog=examples("asyncbackups help", "asyncbackups help fleet", exit_status="0 shown"),
)
@click.argument("command", required=False, metavar="[COMMAND]", shell_complete=_complete_command)
@click.pass_context
def help_(ctx: click.Context, /, command: str | None) -> int:
    top = ctx.parent if ctx.parent is not None else ctx
    if command is None:
        click.echo(top.get_help())
        return 0
    _, found, _ = _root(ctx).resolve_command(top, [command])
    assert found is not None
    with click.Context(found, info_name=command, parent=top) as sub:
        click.echo(found.get_help(sub))
    return 0
