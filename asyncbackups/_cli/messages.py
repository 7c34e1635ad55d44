"""Error messages that name the thing and suggest the fix.

The SDK's messages are precise but speak HTTP (``POST /api/v1/backups/ -> 404``). An
operator wants ``server 999999 not found``, a hint when the URL is wrong, and no
aiohttp internals; :func:`explain` says that, keeping the SDK's words in brackets where
they add something (the status code, the API's request ID).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    NotFoundError,
    WaitTimeoutError,
)

from .output.escaping import escape, one_line

__all__ = ["Explainer", "connection_reason"]

_BACKUP_PATH = re.compile(r"/backups/([0-9]+)/?$")
_RESTORE_PATH = re.compile(r"/servers/([0-9]+)/restore/?$")
_LIST_PATH = re.compile(r"/backups/?$")

# What aiohttp and the OS say, and how an operator would say it.
_REASONS = (
    ("connect call failed", "connection refused"),
    ("connection refused", "connection refused"),
    ("name or service not known", "unknown host"),
    ("nodename nor servname", "unknown host"),
    ("temporary failure in name resolution", "the host name could not be resolved"),
    ("no address associated", "unknown host"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("certificate verify failed", "its TLS certificate was not accepted"),
    ("ssl", "the TLS handshake failed"),
    ("server disconnected", "the server closed the connection"),
    ("connection reset", "the connection was reset"),
    ("proxy", "the proxy refused or failed"),
)


def connection_reason(message: str) -> str:
    """A few plain words for what aiohttp reported in ``message``."""
    lowered = message.lower()
    for needle, reason in _REASONS:
        if needle in lowered:
            return reason
    return "the connection failed"


@dataclass(frozen=True)
class Explainer:
    """Turns an SDK error into one line for an operator, given where the CLI points."""

    base_url: str
    timeout: float | None = None
    restore_backup_id: int | None = None

    def __call__(self, error: BaseException) -> str:
        return self.explain(error)

    def explain(self, error: BaseException, *, server_id: int | None = None) -> str:
        """The line for ``error`` (escaped: safe for a terminal).

        ``server_id``: the server a create was for (its 404 names no server in its URL).
        """
        sdk = one_line(str(error)) or type(error).__name__
        if isinstance(error, NotFoundError):
            return self._not_found(error, sdk, server_id)
        if isinstance(error, AuthenticationError):
            return (
                f"the API refused the token ({sdk}); check --token, --token-file, "
                "$ASYNCBACKUPS_TOKEN or the profile's token_file"
            )
        if isinstance(error, APITimeoutError):
            seconds = f"{self.timeout:g} s" if self.timeout is not None else "30 s"
            return (
                f"the API at {self._where()} did not answer in time ({seconds} per request); "
                "check the network, or allow more with --timeout"
            )
        if isinstance(error, APIConnectionError):
            reason = connection_reason(str(error))
            return (
                f"cannot reach the API at {self._where()}: {reason}; "
                "check --base-url, the network, or the proxy settings (HTTPS_PROXY)"
            )
        if isinstance(error, BackupFailedError | WaitTimeoutError):
            return sdk
        if isinstance(error, APIStatusError) and error.status_code >= 500:
            return f"the API failed ({sdk}); try again later"
        return sdk

    def _where(self) -> str:
        return escape(self.base_url)

    def _not_found(self, error: NotFoundError, sdk: str, server_id: int | None) -> str:
        path = urlsplit(error.url).path if error.url else ""
        method = (error.method or "").upper()
        found = _BACKUP_PATH.search(path)
        if found is not None:
            return f"backup {found.group(1)} not found ({sdk})"
        found = _RESTORE_PATH.search(path)
        if found is not None:
            backup = (
                f" or backup {self.restore_backup_id}" if self.restore_backup_id is not None else ""
            )
            return f"server {found.group(1)}{backup} not found ({sdk})"
        if _LIST_PATH.search(path) and method == "POST":
            server = f" {server_id}" if server_id is not None else ""
            return f"server{server} not found ({sdk}); check the server ID"
        if _LIST_PATH.search(path):
            return (
                f"the API has no backups list at {self._where()} ({sdk}); "
                "check --base-url (it should end in /api/v1/)"
            )
        return f"{sdk}; check --base-url"
