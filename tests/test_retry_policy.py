"""The retry policy table, row by row: what is retried, and what leaves a write in doubt."""

from __future__ import annotations

import pytest

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupsError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from asyncbackups._calls.retry_policy import (
    RETRYABLE_STATUSES,
    Safety,
    is_ambiguous,
    is_retryable,
)

READ, DELETE, CREATE, RESTORE = Safety.READ, Safety.DELETE, Safety.CREATE, Safety.RESTORE
ALL = (READ, DELETE, CREATE, RESTORE)

UNSENT = APIConnectionError("refused", request_may_have_reached_server=False)
DROPPED = APIConnectionError("server disconnected", request_may_have_reached_server=True)
TIMED_OUT = APITimeoutError("timed out", request_may_have_reached_server=True)
CONNECT_TIMED_OUT = APITimeoutError("connect timed out", request_may_have_reached_server=False)


def server_error(status: int, retry_after: float | None = None) -> ServerError:
    return ServerError(f"{status}", status_code=status, retry_after=retry_after)


# (error, {safeties that retry it})
TABLE: list[tuple[str, BackupsError, set[Safety]]] = [
    ("could not connect", UNSENT, set(ALL)),
    ("connect timed out", CONNECT_TIMED_OUT, set(ALL)),
    ("dropped", DROPPED, {READ, DELETE, CREATE}),
    ("timed out", TIMED_OUT, {READ, DELETE, CREATE}),
    ("429", RateLimitError("429", retry_after=1.0), set(ALL)),
    ("429 without Retry-After", RateLimitError("429"), set(ALL)),
    ("503", server_error(503), set(ALL)),
    ("500", server_error(500), {READ, DELETE, CREATE}),
    ("502", server_error(502), {READ, DELETE, CREATE}),
    ("504", server_error(504), {READ, DELETE, CREATE}),
    ("501", server_error(501), set()),
    ("507", server_error(507), set()),
    ("malformed body", ResponseValidationError("bad", path="$.id"), {READ, CREATE}),
    ("400", BadRequestError("bad"), set()),
    ("401", AuthenticationError("who", status_code=401), set()),
    ("404", NotFoundError("gone", status_code=404), set()),
    ("403", APIStatusError("no", status_code=403), set()),
]


@pytest.mark.parametrize(
    ("error", "retried_for"),
    [(error, safe) for _, error, safe in TABLE],
    ids=[n for n, *_ in TABLE],
)
@pytest.mark.parametrize("safety", ALL, ids=[s.value for s in ALL])
def test_retry_policy_table(error: BackupsError, retried_for: set[Safety], safety: Safety) -> None:
    assert is_retryable(error, safety, max_retry_after=120.0) is (safety in retried_for)


def test_retryable_statuses_are_exactly_the_documented_ones() -> None:
    assert frozenset({429, 500, 502, 503, 504}) == RETRYABLE_STATUSES


@pytest.mark.parametrize("safety", ALL, ids=[s.value for s in ALL])
def test_retry_after_beyond_the_limit_is_never_waited_out(safety: Safety) -> None:
    assert not is_retryable(RateLimitError("429", retry_after=121.0), safety, max_retry_after=120)
    assert not is_retryable(server_error(503, retry_after=600), safety, max_retry_after=120)


def test_retry_after_at_the_limit_is_waited_out() -> None:
    assert is_retryable(RateLimitError("429", retry_after=120.0), READ, max_retry_after=120.0)


@pytest.mark.parametrize("error", [ValueError("x"), KeyError("x"), TimeoutError()])
def test_errors_that_are_not_the_sdks_are_never_retried(error: Exception) -> None:
    assert not is_retryable(error, READ, max_retry_after=120.0)


@pytest.mark.parametrize(
    ("error", "ambiguous"),
    [
        (UNSENT, False),
        (CONNECT_TIMED_OUT, False),
        (DROPPED, True),
        (TIMED_OUT, True),
        (server_error(500), True),
        (server_error(502), True),
        (server_error(504), True),
        (server_error(503), False),
        (RateLimitError("429"), False),
        (BadRequestError("bad"), False),
        (NotFoundError("gone", status_code=404), False),
        (ResponseValidationError("bad"), False),
    ],
)
def test_ambiguous_means_the_server_may_have_acted(error: BaseException, ambiguous: bool) -> None:
    assert is_ambiguous(error) is ambiguous
