"""What every command is built from: the program's name, its help layout, the group.

Why click: it is well kept, has no dependencies, completes commands, options and
``click.Choice`` values in bash, zsh and fish out of the box, and suggests the nearest
option for a mistyped one. Here it is given lower-case ``usage:`` lines, examples kept
as written, global options listed apart, and "did you mean" for commands.
"""

from __future__ import annotations

import difflib
from typing import Any

import click

__all__ = [
    "COMPLETE_VAR",
    "CONTEXT_SETTINGS",
    "PROG",
    "Command",
    "GlobalOption",
    "Group",
    "examples",
]

PROG = "asyncbackups"
COMPLETE_VAR = "_ASYNCBACKUPS_COMPLETE"
# Commands inherit these from the group: help fits 80 columns on any terminal.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 80}


class GlobalOption(click.Option):
    """An option every API command takes, before or after its name."""


def examples(*lines: str, notes: str = "", exit_status: str = "") -> str:
    """A command's epilog: ``examples:`` with ``lines``, then ``notes`` and its exit status."""
    text = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    if notes:
        text += "\n\n" + notes
    if exit_status:
        text += "\n\nexit status: " + exit_status
    return text


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
    """The top command: commands in the order added, "did you mean" for typos."""

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
