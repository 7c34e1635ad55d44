"""``asyncbackups status``: the profile, base URL and token in use, and where each came from.

Like ``gh auth status``: what a command would connect with, the token masked, the
config file's profiles with any mistake in them, and a warning for a token file others
can read. Offline unless ``--check`` asks the API whether it takes the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from asyncbackups import BackupsClient, BackupsError

from ..base import Command, examples
from ..config import ConfigFile, Settings, config_path, mask_token, read_config, resolve_settings
from ..exit_codes import CommandError, ExitCode, UsageError
from ..invocation import Invocation, run_with_client
from ..options import command_invocation, connection_options, output_options, pop_globals
from ..output import error_json, escape

__all__ = ["status"]


@click.command(
    "status",
    cls=Command,
    short_help="Show the profile, base URL and token in use (token masked).",
    help="Show what the other commands would connect with: the profile, the base URL "
    "and the token (masked), where each comes from, and any mistake in the config "
    "file's profiles. Sends nothing unless --check is given.",
    epilog=examples(
        "asyncbackups status",
        "asyncbackups --profile staging status --check",
        "asyncbackups status --json | jq -r .base_url",
        exit_status="0 a token is set (and, with --check, the API took it), 1 the\n"
        "API refused the token or could not be reached, 2 no token, or the\n"
        "profile in use cannot be used",
    ),
)
@click.option(
    "--check", is_flag=True, help="also ask the API whether it takes the token (one request)"
)
@connection_options
@output_options
@click.pass_context
def status(ctx: click.Context, /, **params: Any) -> int:
    invocation = command_invocation(ctx, params)
    return show_status(invocation, check=pop_globals(params)["check"])


@dataclass
class _Found:
    """What status found: the settings when they resolve, else why not."""

    config: ConfigFile | None
    config_problem: str | None
    settings: Settings | None
    problem: str | None


def _look(invocation: Invocation) -> _Found:
    flags = invocation.flags
    config: ConfigFile | None = None
    config_problem = None
    try:
        config = read_config(config_path())
    except UsageError as error:
        config_problem = error.message
    settings: Settings | None = None
    problem = None
    try:
        settings = resolve_settings(
            token=flags.token,
            token_file=flags.token_file,
            base_url=flags.base_url,
            profile=flags.profile,
            timeout=flags.timeout,
            max_retries=flags.max_retries,
        )
    except UsageError as error:
        problem = error.message
    if problem is None and settings is not None and not settings.token:
        try:
            settings.require_token()
        except UsageError as error:
            problem = error.message
    return _Found(config, config_problem, settings, problem)


def _document(found: _Found) -> dict[str, Any]:
    """Everything status found, as JSON."""
    settings = found.settings
    profiles = [] if found.config is None else list(found.config.profiles.values())
    token: dict[str, Any] | None = None
    if settings is not None:
        token = {
            "set": bool(settings.token),
            "masked": mask_token(settings.token) if settings.token else None,
            "source": settings.token_source,
            "file": settings.token_file,
        }
    return {
        "profile": None if settings is None else settings.profile,
        "profile_source": None if settings is None else settings.profile_source,
        "config_file": str(config_path()),
        "config_file_exists": found.config is not None and found.config.exists,
        "base_url": None if settings is None else settings.base_url,
        "base_url_source": None if settings is None else settings.base_url_source,
        "token": token,
        "profiles": [
            {"name": profile.name, "usable": not profile.problems, "problems": [*profile.problems]}
            for profile in profiles
        ],
        "warnings": [] if settings is None else [*settings.warnings],
        "problem": found.problem,  # what stops the commands: no token, a broken profile
        "config_error": found.config_problem,  # a config file no profile can be read from
    }


def _pairs(found: _Found) -> list[tuple[str, str]]:
    """Everything status found, as (escaped) names and values for people."""
    settings = found.settings
    pairs: list[tuple[str, str]] = []
    if settings is not None:
        chosen = settings.profile
        if chosen is None:
            pairs.append(("profile", "none"))
        elif settings.profile_source == "default":
            pairs.append(("profile", f"{escape(chosen)} (used when none is named)"))
        else:
            pairs.append(("profile", f"{escape(chosen)} (from {settings.profile_source})"))
        url, url_source = escape(settings.base_url), escape(settings.base_url_source)
        pairs.append(("base URL", f"{url} (from {url_source})"))
        if settings.token:
            source = escape(settings.token_source or "?")
            file = f", file {escape(settings.token_file)}" if settings.token_file else ""
            pairs.append(("token", f"{mask_token(settings.token)} (from {source}{file})"))
        else:
            pairs.append(("token", "none"))
    path = escape(str(config_path()))
    if found.config is None:
        pairs.append(("config file", path))
        if found.config_problem is not None and found.config_problem != found.problem:
            pairs.append(("problem", escape(found.config_problem)))
    elif not found.config.exists:
        pairs.append(("config file", f"{path} (none there)"))
    else:
        names = ", ".join(escape(name) for name in found.config.profiles) or "none"
        pairs.append(("config file", path))
        pairs.append(("profiles", names))
        for profile in found.config.profiles.values():
            pairs.extend(("problem", escape(problem)) for problem in profile.problems)
    if settings is not None:
        pairs.extend(("warning", escape(warning)) for warning in settings.warnings)
    return pairs


def show_status(invocation: Invocation, *, check: bool) -> int:
    """Show the settings in force; with ``check``, try the token on the API."""
    out = invocation.out
    found = _look(invocation)
    document = _document(found)
    if check and found.problem is None and found.settings is not None:
        document["check"] = _check(invocation)
    if out.json_mode:
        out.json(document)
    else:
        pairs = _pairs(found)
        if "check" in document:
            pairs.append(("API", escape(document["check"]["message"])))
        out.fields(pairs, title=None)
    if found.problem is not None:
        raise UsageError(found.problem)
    if "check" in document and not document["check"]["ok"]:
        raise CommandError(document["check"]["message"], ExitCode.API_ERROR)
    return ExitCode.OK


def _check(invocation: Invocation) -> dict[str, Any]:
    """Read the first page of the backups list: does the API take the token?

    The client is any command's (retries shown, the same options), so a token file
    open to others is warned about on stderr here too.
    """
    client = invocation.client()

    async def work(client: BackupsClient) -> int:
        listing = client.backups.iter()
        try:
            async for _ in listing:
                break  # the first page is the answer
        finally:
            close = getattr(listing, "aclose", None)
            if close is not None:
                await close()
        return ExitCode.OK

    try:
        run_with_client(client, work)
    except BackupsError as error:
        return {"ok": False, "message": invocation.explain(error), "error": error_json(error)}
    return {"ok": True, "message": "the API took the token"}
