"""Where the command line's settings come from: flags, the environment, a profile.

Precedence, for every setting: **flag > environment > profile > default**.

- token: ``--token`` or ``--token-file PATH``; else ``$ASYNCBACKUPS_TOKEN`` or
  ``$ASYNCBACKUPS_TOKEN_FILE``; else the profile's ``token_file``; else none (a usage
  error for the commands that call the API).
- base URL: ``--base-url``; else ``$ASYNCBACKUPS_BASE_URL``; else the profile's
  ``base_url``; else the public API.
- profile: ``--profile NAME``; else ``$ASYNCBACKUPS_PROFILE``; else ``default`` when the
  config file has one; else none.

The config file is ``$XDG_CONFIG_HOME/asyncbackups/config.toml`` (``~/.config`` when
``XDG_CONFIG_HOME`` is unset), optional, with one table per profile::

    [profiles.staging]
    base_url = "https://staging.example.com/api/v1/"
    token_file = "~/.config/asyncbackups/staging.token"   # relative: to this file

(top-level ``[staging]`` tables are read as profiles too). A token file holds the token
alone; surrounding whitespace is ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncbackups import DEFAULT_BASE_URL, ENV_BASE_URL, ENV_TOKEN

from .exit_codes import UsageError
from .output.escaping import one_line

__all__ = [
    "ENV_PROFILE",
    "ENV_TOKEN_FILE",
    "PROFILE_KEYS",
    "Settings",
    "config_path",
    "resolve_settings",
]

ENV_TOKEN_FILE = "ASYNCBACKUPS_TOKEN_FILE"
ENV_PROFILE = "ASYNCBACKUPS_PROFILE"
DEFAULT_PROFILE = "default"
PROFILE_KEYS = ("base_url", "token_file")


@dataclass(frozen=True)
class Settings:
    """What the API commands connect with; ``token`` never shows in ``repr``."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    token_source: str | None = None
    profile: str | None = None
    timeout: float | None = None
    max_retries: int | None = None

    def require_token(self) -> str:
        """The token, or a :class:`UsageError` that says every way to give one."""
        if not self.token:
            raise UsageError(
                f"no API token: pass --token or --token-file, set ${ENV_TOKEN} or "
                f"${ENV_TOKEN_FILE}, or choose a --profile with a token_file"
            )
        return self.token


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/asyncbackups/config.toml`` (``~/.config`` by default)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "asyncbackups" / "config.toml"


def read_token_file(path: str, *, source: str) -> str:
    """The token in ``path``; a :class:`UsageError` naming ``source`` when unusable."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(
            f"cannot read the token file {path!r} ({source}): {one_line(str(reason))}"
        ) from None
    token = text.strip()
    if not token:
        raise UsageError(f"the token file {path!r} ({source}) is empty")
    if any(char.isspace() for char in token):
        raise UsageError(f"the token file {path!r} ({source}) holds more than one word")
    return token


def _load_profiles(path: Path) -> dict[str, dict[str, Any]] | None:
    """The profiles in the config file, or ``None`` when there is no file."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML: {one_line(str(error))}") from None
    tables = data.get("profiles", data)
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: 'profiles' must be a table of profiles")
    profiles: dict[str, dict[str, Any]] = {}
    for name, values in tables.items():
        if not isinstance(values, dict):
            continue  # a top-level key that is not a profile table
        for key, value in values.items():
            if key not in PROFILE_KEYS:
                close = difflib.get_close_matches(key, PROFILE_KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                known = ", ".join(PROFILE_KEYS)
                raise UsageError(
                    f"{path}: profile {name!r} has an unknown key {key!r}{hint} (known: {known})"
                )
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{path}: profile {name!r}: {key} must be a non-empty string")
        profiles[name] = values
    return profiles


def _choose_profile(
    flag: str | None, environ: Mapping[str, str], path: Path
) -> tuple[str | None, dict[str, Any]]:
    """The profile in force and its values (empty when there is none)."""
    named = flag or environ.get(ENV_PROFILE) or None
    source = "--profile" if flag else f"${ENV_PROFILE}"
    profiles = _load_profiles(path)
    if named is None:
        if profiles and DEFAULT_PROFILE in profiles:
            return DEFAULT_PROFILE, profiles[DEFAULT_PROFILE]
        return None, {}
    if profiles is None:
        raise UsageError(f"no profile {named!r} ({source}): there is no config file {path}")
    if named not in profiles:
        close = difflib.get_close_matches(named, list(profiles), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(profiles)) or "none"
        raise UsageError(f"no profile {named!r} in {path}{hint} (profiles: {known})")
    return named, profiles[named]


def resolve_settings(
    *,
    token: str | None = None,
    token_file: str | None = None,
    base_url: str | None = None,
    profile: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings in force, from the flags given (``None``: not given) and beyond.

    The config file is read only when a profile is named or a value is still missing.
    Raises :class:`UsageError` for an unusable token file, config file or profile.
    """
    environ = os.environ if environ is None else environ
    if token is not None and token_file is not None:
        raise UsageError("give --token or --token-file, not both")
    env_token = environ.get(ENV_TOKEN) or None
    env_token_file = environ.get(ENV_TOKEN_FILE) or None
    env_base_url = environ.get(ENV_BASE_URL) or None
    named_profile = profile or environ.get(ENV_PROFILE) or None

    chosen: str | None = None
    values: dict[str, Any] = {}
    path = config_path(environ)
    token_known = any(v is not None for v in (token, token_file, env_token, env_token_file))
    base_url_known = base_url is not None or env_base_url is not None
    if named_profile is not None or not (token_known and base_url_known):
        chosen, values = _choose_profile(profile, environ, path)

    resolved_token: str | None
    if token is not None:
        resolved_token, source = token, "--token"
    elif token_file is not None:
        resolved_token, source = read_token_file(token_file, source="--token-file"), "--token-file"
    elif env_token is not None:
        resolved_token, source = env_token, f"${ENV_TOKEN}"
    elif env_token_file is not None:
        source = f"${ENV_TOKEN_FILE}"
        resolved_token = read_token_file(env_token_file, source=source)
    elif "token_file" in values:
        source = f"profile {chosen!r}"
        resolved = Path(values["token_file"]).expanduser()
        if not resolved.is_absolute():
            resolved = path.parent / resolved
        resolved_token = read_token_file(str(resolved), source=source)
    else:
        resolved_token, source = None, None

    if base_url is not None:
        resolved_url = base_url
    elif env_base_url is not None:
        resolved_url = env_base_url
    elif "base_url" in values:
        resolved_url = values["base_url"]
    else:
        resolved_url = DEFAULT_BASE_URL
    return Settings(
        base_url=resolved_url,
        token=resolved_token,
        token_source=source,
        profile=chosen,
        timeout=timeout,
        max_retries=max_retries,
    )
