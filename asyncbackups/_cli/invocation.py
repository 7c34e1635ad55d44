"""One run of the command line: its output, its connection settings, and what the runner
needs to report a failure (the output format, the explainer, the secrets to hide)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asyncbackups import DEFAULT_BASE_URL, BackupsClient

from .config import Settings, resolve_settings
from .messages import Explainer, RetryWatch
from .output import Output, OutputFormat, json_text

__all__ = ["ConnectionFlags", "Invocation", "RunState", "run_with_client"]


@dataclass
class ConnectionFlags:
    """The connection options as given on the command line (``None``: not given)."""

    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    base_url: str | None = None
    profile: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    allow_plain_http: bool = False


@dataclass
class RunState:
    """Shared between the commands and the runner, which reports their failures."""

    out: Output = field(default_factory=Output)
    explainer: Explainer = field(default_factory=lambda: Explainer(DEFAULT_BASE_URL))
    secrets: list[str] = field(default_factory=list, repr=False)
    debug: bool = False
    debug_hook: Callable[[], None] | None = field(default=None, repr=False)
    retries: RetryWatch = field(default_factory=RetryWatch, repr=False)

    def set_debug(self, debug: bool) -> None:
        """Turn the SDK's logs on (``--debug``/``-v``); they are never turned off again."""
        if debug and not self.debug:
            self.debug = True
            if self.debug_hook is not None:
                self.debug_hook()


@dataclass
class Invocation:
    """What a command runs with: its output and, resolved on first use, its settings."""

    state: RunState
    flags: ConnectionFlags = field(default_factory=ConnectionFlags)
    _settings: Settings | None = None

    @property
    def out(self) -> Output:
        """Where the command writes."""
        return self.state.out

    @property
    def json_mode(self) -> bool:
        """Whether stdout carries JSON."""
        return self.state.out.format in (OutputFormat.JSON, OutputFormat.JSON_LINES)

    def settings(self) -> Settings:
        """The settings in force (flag > environment > profile > default)."""
        if self._settings is None:
            flags = self.flags
            self._settings = resolve_settings(
                token=flags.token,
                token_file=flags.token_file,
                base_url=flags.base_url,
                profile=flags.profile,
                timeout=flags.timeout,
                max_retries=flags.max_retries,
            )
            if self._settings.token:
                self.state.secrets.append(self._settings.token)
            for warning in self._settings.warnings:
                # Under JSON every line on stderr is JSON, warnings too.
                document = json_text({"warning": {"message": warning}}, compact=True)
                self.out.notice(document if self.json_mode else f"warning: {warning}")
            self.state.explainer = Explainer(self.base_url(), timeout=flags.timeout)
        return self._settings

    def base_url(self) -> str:
        """The base URL in force, with its final slash."""
        url = self.settings().base_url
        return url if url.endswith("/") else url + "/"

    def explain(self, error: BaseException, *, server_id: int | None = None) -> str:
        """An operator's line for ``error``."""
        return self.state.explainer.explain(error, server_id=server_id)

    def client(self, *, rate_limit: float | None = None) -> BackupsClient:
        """A client from the settings; nothing is sent yet. ``rate_limit``: requests a
        second, else ``$ASYNCBACKUPS_RATE_LIMIT``, else learned from the API.

        Raises :class:`UsageError` without a token, the SDK's ``ValueError``/``TypeError``
        for other bad settings.
        """
        settings = self.settings()
        options: dict[str, Any] = {"base_url": settings.base_url}
        if settings.timeout is not None:
            options["timeout"] = settings.timeout
        if settings.max_retries is not None:
            options["max_retries"] = settings.max_retries
        if rate_limit is not None:
            options["rate_limit"] = rate_limit
        if self.flags.allow_plain_http:
            options["allow_plain_http"] = True
        options["on_retry"] = self.state.retries.heard
        self.state.retries.watch(self.out, timeout=settings.timeout, debug=self.state.debug)
        return BackupsClient(settings.require_token(), **options)


def run_with_client(client: BackupsClient, work: Callable[[BackupsClient], Awaitable[int]]) -> int:
    """Run ``work(client)`` on a new event loop, closing the client however it ends."""

    async def session() -> int:
        async with client:
            return await work(client)

    return asyncio.run(session())
