"""Error messages that name the thing and suggest the fix.

The SDK's messages are precise but speak HTTP (``POST /api/v1/backups/ -> 404``). An
operator wants ``server 999999 not found``, a hint when the URL is wrong, and no
aiohttp internals; :func:`explain` says that, keeping the SDK's words in brackets where
they add something (the status code, the API's request ID).

:class:`RetryWatch` hears the client's retries (its ``on_retry``): on a terminal it says
each one as it happens ("no answer in 30 s; retrying (2 of 4)…"), and a call that ran
out of attempts is reported with how many it made and how long they took.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    BackupsError,
    NotFoundError,
    ResponseValidationError,
    RetryEvent,
    WaitTimeoutError,
)

from .output import Output, is_terminal
from .output.escaping import escape, json_text, one_line

__all__ = ["Explainer", "RetryWatch", "connection_reason", "duration"]

# The SDK's default per-request timeout, for messages when --timeout was not given.
_DEFAULT_TIMEOUT = 30.0
# Retry lines beyond this many are counted, not shown: a fleet on a failing API
# would otherwise bury its progress under them (--debug logs every one).
_MAX_RETRY_LINES = 20

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

    def explain(
        self, error: BaseException, *, server_id: int | None = None, attempts: str = ""
    ) -> str:
        """The line for ``error`` (escaped: safe for a terminal).

        ``server_id``: the server a create was for (its 404 names no server in its URL).
        ``attempts``: how the call's retries went ("gave up after 4 attempts in 2 min"),
        said beside a time-out, a connection failure or a failing API.
        """
        sdk = one_line(str(error)) or type(error).__name__
        tried = f"; {attempts}" if attempts else ""
        if isinstance(error, NotFoundError):
            return self._not_found(error, sdk, server_id)
        if isinstance(error, AuthenticationError):
            return (
                f"the API refused the token ({sdk}); check --token, --token-file, "
                "$ASYNCBACKUPS_TOKEN or the profile's token_file"
            )
        if isinstance(error, APITimeoutError):
            seconds = duration(self.timeout if self.timeout is not None else _DEFAULT_TIMEOUT)
            return (
                f"the API at {self._where()} did not answer in time ({seconds} per request"
                f"{tried}); check the network, or allow more with --timeout"
            )
        if isinstance(error, APIConnectionError):
            reason = connection_reason(str(error))
            return (
                f"cannot reach the API at {self._where()}: {reason}{tried}; "
                "check --base-url, the network, or the proxy settings (HTTPS_PROXY)"
            )
        if isinstance(error, BackupFailedError | WaitTimeoutError):
            return sdk
        if isinstance(error, APIStatusError) and error.status_code >= 500:
            return f"the API failed ({sdk}{tried}); try again later"
        return f"{sdk}{tried}"

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


def duration(seconds: float) -> str:
    """``"0.2 s"``, ``"30 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``: a time for people."""
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = math.floor(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class RetryWatch:
    """Hears the client's retries (pass :meth:`heard` as ``on_retry``).

    When ``notice`` is set (a terminal, no ``--debug``), each retry is said as it
    happens, up to a few dozen. :meth:`gave_up` says how a call that ran out of
    attempts went, for its final error.
    """

    def __init__(self) -> None:
        self.notice: Callable[[str], None] | None = None
        self.timeout = _DEFAULT_TIMEOUT
        self.count = 0
        self._json = False
        self._last: RetryEvent | None = None
        self._last_at = 0.0

    def watch(self, out: Output, *, timeout: float | None, debug: bool) -> None:
        """Say retries through ``out`` when stderr is a terminal and ``--debug`` (which
        logs them itself) is off; ``timeout``: the seconds per request (None: default)."""
        self.timeout = _DEFAULT_TIMEOUT if timeout is None else timeout
        self.notice = out.notice if is_terminal(sys.stderr) and not debug else None
        self._json = out.json_mode  # every line on stderr is then JSON

    def heard(self, event: RetryEvent) -> None:
        """One retry is coming: remember it, and say so when there is someone to tell."""
        self._last, self._last_at = event, time.monotonic()
        self.count += 1
        if self.notice is None:
            return
        if self.count <= _MAX_RETRY_LINES:
            text = self.describe(event)
        elif self.count == _MAX_RETRY_LINES + 1:
            text = "more retries are not shown (--debug logs every one)"
        else:
            return
        if self._json:
            retry = {"message": text, "attempt": event.attempt, "of": event.max_attempts}
            text = json_text({"retry": retry}, compact=True)
        self.notice(text)

    def describe(self, event: RetryEvent) -> str:
        """``no answer in 30 s; retrying (2 of 4)…``: what failed, and what comes next."""
        error = event.error
        if isinstance(error, APITimeoutError):
            what = f"no answer in {duration(self.timeout)}"
        elif isinstance(error, APIConnectionError):
            what = connection_reason(str(error))
        elif isinstance(error, APIStatusError):
            what = f"the API answered {error.status_code}"
        elif isinstance(error, ResponseValidationError):
            what = "an unreadable answer"
        else:
            what = one_line(str(error))[:60] or type(error).__name__
        return f"{what}; retrying ({event.attempt} of {event.max_attempts})…"

    def gave_up(self, error: BackupsError) -> str:
        """``gave up after 4 attempts in 2 min 5 s`` when ``error`` ended a call that
        used all its attempts (the last retry heard was its last attempt), else ``""``."""
        last = self._last
        if last is None or last.attempt < last.max_attempts:
            return ""
        # Only what a retry could have cured: a 404 after a retried read is no give-up.
        if not isinstance(error, APIConnectionError | APIStatusError | ResponseValidationError):
            return ""
        if isinstance(error, APIStatusError) and error.status_code < 500:
            return ""
        spent = last.elapsed + (time.monotonic() - self._last_at)
        return f"gave up after {last.max_attempts} attempts in {duration(spent)}"
