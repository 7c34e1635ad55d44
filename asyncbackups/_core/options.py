"""The client's configuration: one frozen, validated ``ClientOptions``, and its sources.

Everything that decides how a call behaves (where it goes, its timeout, retries and
backoff, the caps, extra headers) is read from one ``ClientOptions``, checked once when
it is built. The environment variables that feed it are named here and nowhere else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from yarl import URL

from .checks import check_number
from .urls import normalize_base_url

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_RATE_LIMIT",
    "ENV_TOKEN",
    "OVERRIDABLE",
    "ClientOptions",
    "read_token",
]

DEFAULT_BASE_URL = "https://admin.vps.org/api/v1/"
"""The API's base URL when neither ``base_url=`` nor ``$ASYNCBACKUPS_BASE_URL`` says."""
ENV_TOKEN = "ASYNCBACKUPS_TOKEN"
"""The environment variable a client reads its token from when given none."""
ENV_BASE_URL = "ASYNCBACKUPS_BASE_URL"
"""The environment variable a client reads its base URL from when given none."""
ENV_RATE_LIMIT = "ASYNCBACKUPS_RATE_LIMIT"
"""The environment variable a client reads its ``rate_limit`` from when given none."""

# Headers the SDK owns: extra headers never replace them.
_RESERVED_HEADERS = frozenset({"authorization", "content-type", "idempotency-key", "host"})


def _check_headers(headers: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping of str to str, not {type(headers).__name__}")
    checked = []
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("headers must map str names to str values")
        if not name or not name.isascii() or not name.isprintable() or ":" in name:
            raise ValueError(f"not a valid header name: {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} must not contain a line break")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the SDK and cannot be overridden")
        checked.append((name, value))
    return tuple(checked)


@attrs.frozen(kw_only=True)
class ClientOptions:
    """How a client's calls behave; built by :meth:`build`, which checks every value.

    ``headers`` are extra request headers (never ``Authorization`` and the others the
    SDK sets). ``max_concurrency`` is fixed for a client's life: its slots are shared.
    ``on_retry`` is called (plain or async) with a ``RetryEvent`` before each retry.
    ``allow_plain_http`` lets the token travel over plain ``http://`` off loopback (to
    the base URL, or through a proxy); fixed for a client's life, like its base URL.
    """

    base_url: URL
    allow_plain_http: bool = False
    timeout: float = 30.0
    max_retries: int = 3
    retry_backoff: float = 0.5
    max_retry_backoff: float = 8.0
    max_retry_after: float = 120.0
    max_concurrency: int = 64
    max_response_bytes: int = 32 * 1024 * 1024
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: float | None = None
    on_retry: Callable[[Any], object] | None = attrs.field(default=None, eq=False, repr=False)
    # A with_options copy's own rate (a Pacer), waited for before the client's governor.
    pacer: Any = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def build(
        cls, *, base_url: str | None = None, allow_plain_http: bool = False, **values: Any
    ) -> ClientOptions:
        """Check every value and build the options.

        ``base_url`` defaults to ``$ASYNCBACKUPS_BASE_URL``, else the public API.
        Raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one
        out of range, before anything is sent.
        """
        if not isinstance(allow_plain_http, bool):
            raise TypeError(
                f"allow_plain_http must be True or False, not {type(allow_plain_http).__name__}"
            )
        if base_url is None:
            base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        if values.get("rate_limit") is None:
            values["rate_limit"] = _environment_rate_limit()
        return cls(
            base_url=normalize_base_url(base_url, allow_plain_http=allow_plain_http),
            allow_plain_http=allow_plain_http,
            **_checked(values),
        )

    def evolve(self, **overrides: Any) -> ClientOptions:
        """A copy with ``overrides`` checked and applied; ``TypeError`` for unknown names."""
        unknown = sorted(set(overrides) - OVERRIDABLE)
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(unknown)}; "
                f"options that can be overridden: {', '.join(sorted(OVERRIDABLE))}"
            )
        checked = _checked(overrides)
        if "headers" in checked:
            checked["headers"] = (*self.headers, *checked["headers"])
        return attrs.evolve(self, **checked)

    @property
    def extra_headers(self) -> dict[str, str]:
        """The extra headers as a dict (later ones win)."""
        return dict(self.headers)


_NUMBERS: dict[str, tuple[float, bool]] = {
    "timeout": (0.001, False),
    "max_retries": (0, True),
    "retry_backoff": (0, False),
    "max_retry_backoff": (0, False),
    "max_retry_after": (0, False),
    "max_concurrency": (1, True),
    "max_response_bytes": (1, True),
}
OVERRIDABLE = frozenset(
    {
        "timeout",
        "max_retries",
        "retry_backoff",
        "max_retry_backoff",
        "max_retry_after",
        "max_response_bytes",
        "headers",
        "rate_limit",
        "on_retry",
    }
)


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name == "headers":
            checked[name] = _check_headers(value)
            continue
        if name == "on_retry":
            if value is not None and not callable(value):
                raise TypeError(f"on_retry must be a callable or None, not {type(value).__name__}")
            checked[name] = value
            continue
        if name == "rate_limit":
            if value is not None:
                check_number(name, value, minimum=0.001)
                if not math.isfinite(value):
                    raise ValueError("rate_limit must be finite; None means learn it from the API")
                value = float(value)
            checked[name] = value
            continue
        bounds = _NUMBERS.get(name)
        if bounds is None:
            raise TypeError(f"unknown option {name!r}")
        minimum, integer = bounds
        check_number(name, value, minimum=minimum, integer=integer)
        checked[name] = value if integer else float(value)
    return checked


def _environment_rate_limit() -> float | None:
    """``$ASYNCBACKUPS_RATE_LIMIT`` as requests a second; unset or empty means learn it."""
    value = os.environ.get(ENV_RATE_LIMIT, "").strip()
    if not value:
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(
            f"${ENV_RATE_LIMIT} must be a number of requests a second above 0, not {value!r}"
        )
    return rate


def read_token(token: str | None) -> str:
    """The token given, else ``$ASYNCBACKUPS_TOKEN``; checked, never echoed in errors."""
    if token is None:
        token = os.environ.get(ENV_TOKEN) or None
    if token is None:
        raise ValueError(f"no API token: pass BackupsClient(token=...) or set ${ENV_TOKEN}")
    if not isinstance(token, str):
        raise TypeError(f"token must be a str, not {type(token).__name__}")
    token = token.strip()
    if not token or not token.isprintable() or any(c.isspace() for c in token):
        raise ValueError("token must be non-empty printable text without spaces")
    return token
