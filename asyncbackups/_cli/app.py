"""The root command: ``asyncbackups`` with its global options, and every command in it."""

from __future__ import annotations

from typing import Any

import click

from asyncbackups import ENV_BASE_URL, ENV_LOG, ENV_TOKEN, __version__

from .base import CONTEXT_SETTINGS, PROG, Group, examples
from .commands.completion import completion
from .commands.coverage import coverage
from .commands.create import create
from .commands.delete import delete
from .commands.demo import demo
from .commands.fleet import fleet
from .commands.get import get
from .commands.help import help_
from .commands.list import list_
from .commands.prune import prune
from .commands.restore import restore
from .commands.serve import serve
from .commands.status import status
from .commands.wait import wait
from .config import ENV_PROFILE, ENV_TOKEN_FILE
from .exit_codes import EXIT_STATUS_HELP
from .options import connection_options, output_format, output_options, run_state
from .output import Output

__all__ = ["cli"]

_EPILOG = (
    examples(
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


@click.group(
    cls=Group,
    name=PROG,
    invoke_without_command=True,
    context_settings=CONTEXT_SETTINGS,
    epilog=_EPILOG,
    help="Back up, list, wait for and restore VPS backups from the command line.",
)
@connection_options
@output_options
@click.version_option(__version__, "--version", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, /, **params: Any) -> int:
    """The global options given before the command; the help when no command is given."""
    state = run_state(ctx)
    fmt = output_format(ctx, params)
    if fmt is not None:
        state.out = Output(fmt)
    state.set_debug(bool(params.get("debug")))
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
    return 0


# In the order --help lists them.
for _command in (
    list_,
    get,
    create,
    wait,
    delete,
    restore,
    fleet,
    prune,
    coverage,
    status,
    serve,
    demo,
    completion,
    help_,
):
    cli.add_command(_command)
