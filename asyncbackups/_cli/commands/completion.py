"""``asyncbackups completion``: a script that makes the shell complete the command line."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from ..base import COMPLETE_VAR, PROG, Command, examples

__all__ = ["SHELLS", "completion"]

SHELLS = ("bash", "zsh", "fish")


@click.command(
    "completion",
    cls=Command,
    short_help="Print a shell completion script (bash, zsh or fish).",
    help="Print a script that makes the shell complete commands, options and values.",
    epilog=examples(
        "asyncbackups completion bash               # prints the script",
        'eval "$(asyncbackups completion bash)"      # in ~/.bashrc',
        'eval "$(asyncbackups completion zsh)"       # in ~/.zshrc',
        "asyncbackups completion fish > ~/.config/fish/completions/asyncbackups.fish",
        exit_status="0 printed, 2 usage error",
    ),
)
@click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
@click.pass_context
def completion(ctx: click.Context, /, shell: str) -> int:
    completer = get_completion_class(shell)
    assert completer is not None
    # The script names the program and its variable; the root command answers it.
    script = completer(ctx.find_root().command, {}, PROG, COMPLETE_VAR).source()
    click.echo(script.rstrip("\n"))
    return 0
