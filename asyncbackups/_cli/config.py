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
alone; surrounding whitespace is ignored. One that group or others may read draws a
warning, as ssh gives for a private key (:attr:`Settings.warnings`).

A mistake inside one profile (an unknown key, a value that is not a string) breaks that
profile only: using it is a usage error naming the file, the line and the key; the other
profiles work. A file that is not TOML at all breaks every profile.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
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
    "ConfigFile",
    "Profile",
    "Settings",
    "config_path",
    "mask_token",
    "read_config",
    "resolve_settings",
]

ENV_TOKEN_FILE = "ASYNCBACKUPS_TOKEN_FILE"
ENV_PROFILE = "ASYNCBACKUPS_PROFILE"
DEFAULT_PROFILE = "default"
PROFILE_KEYS = ("base_url", "token_file")
# Permission bits that let anyone but the owner at a token file (ssh's rule for keys).
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO


@dataclass(frozen=True)
class Settings:
    """What the API commands connect with, and where each value came from.

    ``token`` never shows in ``repr``. The sources are for people (``--token``,
    ``$ASYNCBACKUPS_TOKEN``, ``profile 'staging'``); ``warnings`` are worth a line on
    stderr (a token file others can read).
    """

    base_url: str
    token: str | None = field(default=None, repr=False)
    token_source: str | None = None
    token_file: str | None = None
    base_url_source: str = "default"
    profile: str | None = None
    profile_source: str | None = None
    config_path: Path | None = None
    timeout: float | None = None
    max_retries: int | None = None
    warnings: tuple[str, ...] = ()

    def require_token(self) -> str:
        """The token, or a :class:`UsageError` that says every way to give one."""
        if not self.token:
            raise UsageError(
                f"no API token: pass --token or --token-file, set ${ENV_TOKEN} or "
                f"${ENV_TOKEN_FILE}, or choose a --profile with a token_file"
            )
        return self.token


@dataclass(frozen=True)
class Profile:
    """One profile of the config file; ``problems`` say why it cannot be used (if so)."""

    name: str
    values: Mapping[str, str]
    problems: tuple[str, ...] = ()

    def require_usable(self) -> Mapping[str, str]:
        """The values, or a :class:`UsageError` with the first problem (and a count)."""
        if self.problems:
            more = len(self.problems) - 1
            extra = f" (and {more} more {'problem' if more == 1 else 'problems'})" if more else ""
            raise UsageError(self.problems[0] + extra)
        return self.values


@dataclass(frozen=True)
class ConfigFile:
    """The config file as read: its profiles by name, none when it does not exist."""

    path: Path
    exists: bool
    profiles: dict[str, Profile] = field(default_factory=dict)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/asyncbackups/config.toml`` (``~/.config`` by default)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "asyncbackups" / "config.toml"


def mask_token(token: str) -> str:
    """``********wxyz``: enough to tell two tokens apart, never enough to use one.

    A short token shows no character at all.
    """
    shown = token[-4:] if len(token) >= 16 else ""
    return "*" * 8 + shown


def _token_file_warning(path: str, mode: int, *, source: str) -> str | None:
    if os.name == "nt" or not stat.S_ISREG(mode) or not mode & _OPEN_TO_OTHERS:
        return None
    return (
        f"the token file {path!r} ({source}) is open to group or others (mode "
        f"{stat.S_IMODE(mode):04o}); make it private: chmod 600 {path}"
    )


def read_token_file(path: str, *, source: str) -> tuple[str, str | None]:
    """The token in ``path`` and a warning when others may read the file.

    Raises :class:`UsageError` naming ``source`` when the file is unusable.
    """
    try:
        with Path(path).expanduser().open(encoding="utf-8") as file:
            mode = os.fstat(file.fileno()).st_mode
            text = file.read()
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
    return token, _token_file_warning(path, mode, source=source)


# -- reading the config file ------------------------------------------------------------

# Enough of TOML's syntax to say on which line a profile's key is written: table
# headers, (dotted) keys, inline tables. tomllib reads the values; this only points.
_BARE_OR_QUOTED = r"""[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'"""
_KEY_PATH = rf"(?:{_BARE_OR_QUOTED})(?:\s*\.\s*(?:{_BARE_OR_QUOTED}))*"
_HEADER = re.compile(rf"^\s*\[\s*(?P<path>{_KEY_PATH})\s*\]\s*(?:#.*)?$")
_ASSIGNMENT = re.compile(rf"^\s*(?P<path>{_KEY_PATH})\s*=\s*(?P<value>.*)$")
_INLINE_KEY = re.compile(rf"[{{,]\s*(?P<path>{_KEY_PATH})\s*=")
_PART = re.compile(_BARE_OR_QUOTED)


def _key_parts(path: str) -> tuple[str, ...]:
    parts = []
    for part in _PART.findall(path):
        if part[:1] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each key path is written first: ``("profiles", "staging", "tokn") -> 7``."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        quotes = line.count('"""') + line.count("'''")
        if in_multiline:
            in_multiline = quotes % 2 == 0
            continue
        header = _HEADER.match(line)
        if header is not None:
            table = _key_parts(header.group("path"))
            found.setdefault(table, number)
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment is None:
            continue
        key = (*table, *_key_parts(assignment.group("path")))
        found.setdefault(key, number)
        value = assignment.group("value")
        if value.lstrip().startswith("{"):
            for inner in _INLINE_KEY.finditer(value):
                found.setdefault((*key, *_key_parts(inner.group("path"))), number)
        in_multiline = quotes % 2 == 1
    return found


def _check_profile(
    name: str,
    values: dict[str, Any],
    *,
    where: str,
    prefix: tuple[str, ...],
    lines: Mapping[tuple[str, ...], int],
) -> Profile:
    def at(key: str) -> str:
        line = lines.get((*prefix, name, key))
        return f"{where}:{line}" if line is not None else where

    problems = []
    for key, value in values.items():
        if key not in PROFILE_KEYS:
            close = difflib.get_close_matches(key, PROFILE_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(PROFILE_KEYS)
            problems.append(
                f"{at(key)}: profile {name!r} has an unknown key {key!r}{hint} (known: {known})"
            )
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"{at(key)}: profile {name!r}: {key} must be a non-empty string")
    usable = {key: value for key, value in values.items() if key in PROFILE_KEYS}
    return Profile(name, usable, tuple(problems))


def read_config(path: Path) -> ConfigFile:
    """The profiles of the config file at ``path`` (none when there is no file).

    Raises :class:`UsageError` only when the file as a whole is unusable (unreadable,
    not TOML); a mistake inside a profile is kept in its :attr:`Profile.problems`.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile(path, exists=False)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not valid TOML: it is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path} is not valid TOML: {one_line(str(error))}") from None
    tables = data.get("profiles", data)
    if not isinstance(tables, dict):
        raise UsageError(f"{path}: 'profiles' must be a table of profiles")
    lines = _key_lines(text)
    prefix = ("profiles",) if "profiles" in data else ()
    profiles = {
        name: _check_profile(name, values, where=str(path), prefix=prefix, lines=lines)
        for name, values in tables.items()
        if isinstance(values, dict)  # a top-level key that is not a profile table
    }
    return ConfigFile(path, exists=True, profiles=profiles)


def _choose_profile(
    flag: str | None, environ: Mapping[str, str], path: Path
) -> tuple[Profile | None, str | None]:
    """The profile in force (``None``: none) and what chose it (``--profile``,
    ``$ASYNCBACKUPS_PROFILE``, or ``default``: none was named, and the file has one).

    Raises :class:`UsageError` for a profile named but missing, or broken.
    """
    named = flag or environ.get(ENV_PROFILE) or None
    source = "--profile" if flag else f"${ENV_PROFILE}"
    config = read_config(path)
    if named is None:
        chosen = config.profiles.get(DEFAULT_PROFILE)
        if chosen is None:
            return None, None
        chosen.require_usable()
        return chosen, "default"
    if not config.exists:
        raise UsageError(f"no profile {named!r} ({source}): there is no config file {path}")
    chosen = config.profiles.get(named)
    if chosen is None:
        close = difflib.get_close_matches(named, list(config.profiles), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(config.profiles)) or "none"
        raise UsageError(f"no profile {named!r} in {path}{hint} (profiles: {known})")
    chosen.require_usable()
    return chosen, source


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

    chosen: Profile | None = None
    chosen_by: str | None = None
    path = config_path(environ)
    token_known = any(v is not None for v in (token, token_file, env_token, env_token_file))
    base_url_known = base_url is not None or env_base_url is not None
    if named_profile is not None or not (token_known and base_url_known):
        chosen, chosen_by = _choose_profile(profile, environ, path)
    values: Mapping[str, str] = {} if chosen is None else chosen.values

    warnings: list[str] = []
    resolved_token: str | None = None
    source: str | None = None
    file_used: str | None = None
    if token is not None:
        resolved_token, source = token, "--token"
    elif token_file is not None:
        file_used, source = token_file, "--token-file"
    elif env_token is not None:
        resolved_token, source = env_token, f"${ENV_TOKEN}"
    elif env_token_file is not None:
        file_used, source = env_token_file, f"${ENV_TOKEN_FILE}"
    elif chosen is not None and "token_file" in values:
        source = f"profile {chosen.name!r}"
        resolved = Path(values["token_file"]).expanduser()
        file_used = str(resolved if resolved.is_absolute() else path.parent / resolved)
    if file_used is not None and source is not None:
        resolved_token, warning = read_token_file(file_used, source=source)
        if warning is not None:
            warnings.append(warning)

    if base_url is not None:
        resolved_url, url_source = base_url, "--base-url"
    elif env_base_url is not None:
        resolved_url, url_source = env_base_url, f"${ENV_BASE_URL}"
    elif chosen is not None and "base_url" in values:
        resolved_url, url_source = values["base_url"], f"profile {chosen.name!r}"
    else:
        resolved_url, url_source = DEFAULT_BASE_URL, "default"
    return Settings(
        base_url=resolved_url,
        token=resolved_token,
        token_source=source,
        token_file=file_used,
        base_url_source=url_source,
        profile=None if chosen is None else chosen.name,
        profile_source=chosen_by,
        config_path=path,
        timeout=timeout,
        max_retries=max_retries,
        warnings=tuple(warnings),
    )
