"""Every exception, model and result crosses process boundaries with all it carries."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

import asyncbackups
from asyncbackups import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    Backup,
    BackupFailedError,
    BackupOutcome,
    BackupsError,
    BackupStatus,
    BackupType,
    BadRequestError,
    FleetResult,
    NotFoundError,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    RestoreResult,
    ServerError,
    ServerRef,
    WaitTimeoutError,
)

SERVER = ServerRef(12345, "web-server-01")
IN_PROGRESS = Backup(
    id=502,
    server=SERVER,
    backup_type=BackupType.MANUAL,
    status=BackupStatus.IN_PROGRESS,
    size_mb=None,
    created_at=datetime(2025, 1, 16, 14, 0, tzinfo=UTC),
    description="Pre-deployment backup",
    message="Backup creation started",
)
COMPLETED = Backup(
    id=501,
    server=SERVER,
    backup_type=BackupType.AUTOMATIC,
    status=BackupStatus.COMPLETED,
    size_mb=4523,
    created_at=datetime(2025, 1, 16, 3, 0, tzinfo=UTC),
    expires_at=datetime(2025, 2, 16, 3, 0, tzinfo=UTC),
    description="Automatic daily backup",
)
FAILED = Backup(
    id=503,
    server=ServerRef(777),
    backup_type=BackupType.MANUAL,
    status=BackupStatus.FAILED,
    size_mb=None,
    created_at=datetime(2025, 1, 16, 14, 5, tzinfo=UTC),
)
# Values the SDK does not know yet: they must come back equal, and still unknown.
RESTORING = Backup(
    id=504,
    server=SERVER,
    backup_type=BackupType("snapshot"),
    status=BackupStatus("restoring"),
    size_mb=12,
    created_at=datetime(2025, 1, 17, 9, 30, tzinfo=UTC),
)
URL = "https://admin.vps.org/api/v1/backups/"


def with_note(error: BaseException) -> BaseException:
    error.add_note("while backing up server 12345")
    return error


# One instance of each exception class, every attribute set away from its default.
ERRORS: dict[type[BaseException], Callable[[], BaseException]] = {
    BackupsError: lambda: BackupsError("something went wrong"),
    APIStatusError: lambda: APIStatusError(
        "418: I'm a teapot",
        status_code=418,
        body={"detail": "short and stout"},
        method="GET",
        url=URL,
        retry_after=1.5,
    ),
    BadRequestError: lambda: BadRequestError(
        "400: description too long",
        body={"description": ["Ensure this field has no more than 255 characters."]},
        method="POST",
        url=URL,
        field_errors={"description": ["Ensure this field has no more than 255 characters."]},
    ),
    AuthenticationError: lambda: AuthenticationError(
        "401: invalid token", body={"detail": "Invalid token."}, method="GET", url=URL
    ),
    NotFoundError: lambda: NotFoundError(
        "404: no such backup", body={"detail": "Not found."}, method="DELETE", url=URL + "9/"
    ),
    RateLimitError: lambda: RateLimitError(
        "429: slow down", body="Too Many Requests", method="GET", url=URL, retry_after=30.0
    ),
    ServerError: lambda: ServerError(
        "503: unavailable", status_code=503, body=None, method="GET", url=URL, retry_after=2.0
    ),
    APIConnectionError: lambda: APIConnectionError(
        "connection refused", request_may_have_reached_server=False
    ),
    APITimeoutError: lambda: APITimeoutError("no answer within 30.0s"),
    ResponseValidationError: lambda: ResponseValidationError(
        "created_at is not a timestamp",
        path="results[2].created_at",
        body={"count": 3, "results": [{"created_at": "yesterday"}]},
    ),
    ResponseTooLargeError: lambda: ResponseTooLargeError(
        "GET /api/v1/backups/: the answer goes on, past max_response_bytes", path="$"
    ),
    WaitTimeoutError: lambda: WaitTimeoutError(
        "backup 504 did not finish within 60s",
        backup=RESTORING,
        last_error=ServerError("503: unavailable", status_code=503, retry_after=5.0),
    ),
    BackupFailedError: lambda: BackupFailedError("backup 503 failed", backup=FAILED),
    AmbiguousCreateError: lambda: AmbiguousCreateError(
        server_id=12345, candidates=[COMPLETED, IN_PROGRESS], idempotency_key="key-5f1c"
    ),
}

EXPORTED_ERRORS = sorted(
    (
        value
        for value in vars(asyncbackups).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ),
    key=lambda error: error.__name__,
)


def pickled(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


def assert_same_error(copied: BaseException, original: BaseException) -> None:
    """Same type, args, text, attributes (notes included), exceptions compared alike."""
    assert copied is not original
    assert type(copied) is type(original)
    if isinstance(original, BaseExceptionGroup):
        # A group's args hold its members, which are compared one by one below.
        assert isinstance(copied, BaseExceptionGroup)
        assert copied.message == original.message
        assert len(copied.exceptions) == len(original.exceptions)
        for inner_copy, inner in zip(copied.exceptions, original.exceptions, strict=True):
            assert_same_error(inner_copy, inner)
    else:
        assert copied.args == original.args
    assert str(copied) == str(original)
    assert repr(copied) == repr(original)
    assert set(vars(copied)) == set(vars(original))
    for name, value in vars(original).items():
        if isinstance(value, BaseException):
            assert_same_error(getattr(copied, name), value)
        else:
            assert getattr(copied, name) == value, name


def assert_same_outcome(copied: BackupOutcome, original: BackupOutcome) -> None:
    # ``error`` takes no part in equality, so it is compared on its own.
    assert copied == original
    assert copied.ok == original.ok
    if original.error is None:
        assert copied.error is None
    else:
        assert copied.error is not None
        assert_same_error(copied.error, original.error)


# -- exceptions -----------------------------------------------------------------------


def test_every_exported_exception_class_has_a_sample_here() -> None:
    assert set(EXPORTED_ERRORS) == set(ERRORS)


@pytest.mark.parametrize("error_class", EXPORTED_ERRORS, ids=lambda error: error.__name__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_each_exception_pickles_with_every_attribute_and_note(
    error_class: type[BaseException], protocol: int
) -> None:
    error = with_note(ERRORS[error_class]())
    assert_same_error(pickle.loads(pickle.dumps(error, protocol)), error)


@pytest.mark.parametrize("error_class", EXPORTED_ERRORS, ids=lambda error: error.__name__)
def test_each_exception_deep_copies_with_every_attribute_and_note(
    error_class: type[BaseException],
) -> None:
    error = with_note(ERRORS[error_class]())
    copied = copy.deepcopy(error)
    assert_same_error(copied, error)
    assert copied.__notes__ is not error.__notes__


@pytest.mark.parametrize("error_class", EXPORTED_ERRORS, ids=lambda error: error.__name__)
def test_each_exception_copies_shallowly_with_every_attribute(
    error_class: type[BaseException],
) -> None:
    error = with_note(ERRORS[error_class]())
    copied = copy.copy(error)
    assert type(copied) is type(error)
    assert copied.args == error.args
    assert vars(copied) == vars(error)


def test_exceptions_left_at_their_defaults_pickle_with_those_defaults() -> None:
    for error in [
        NotFoundError("404"),
        BadRequestError("400"),
        APIConnectionError("reset"),
        ResponseValidationError("bad"),
        WaitTimeoutError("deadline", backup=None),
    ]:
        assert_same_error(pickled(error), error)


def test_a_wait_timeout_without_a_failed_poll_has_no_last_error_after_pickling() -> None:
    assert pickled(WaitTimeoutError("deadline", backup=IN_PROGRESS)).last_error is None


def test_an_unpickled_ambiguous_create_still_names_its_server_and_candidates() -> None:
    copied = pickled(ERRORS[AmbiguousCreateError]())
    assert isinstance(copied, AmbiguousCreateError)
    assert copied.server_id == 12345
    assert copied.candidates == [COMPLETED, IN_PROGRESS]  # oldest first
    assert copied.idempotency_key == "key-5f1c"
    assert "server 12345" in str(copied)
    assert "501, 502" in str(copied)
    assert "inspect" in str(copied)


def test_an_unpickled_error_still_catches_as_its_documented_parents() -> None:
    copied = pickled(ERRORS[APITimeoutError]())
    assert isinstance(copied, APIConnectionError)
    assert isinstance(copied, BackupsError)
    assert copied.request_may_have_reached_server is True


def test_an_unpickled_wait_timeout_keeps_its_backups_unknown_status() -> None:
    copied = pickled(ERRORS[WaitTimeoutError]())
    assert copied.backup == RESTORING
    assert copied.backup.status == "restoring"
    assert not copied.backup.status.is_known
    assert not copied.backup.is_final


# -- models and results ---------------------------------------------------------------


def raised_group() -> ExceptionGroup[Exception]:
    result = FleetResult(
        [
            BackupOutcome(12345, COMPLETED),
            BackupOutcome(777, FAILED, ERRORS[BackupFailedError]()),
            BackupOutcome(12345, RESTORING, ERRORS[WaitTimeoutError]()),
            BackupOutcome(888, None, ERRORS[APIConnectionError]()),
            BackupOutcome(999),
        ]
    )
    with pytest.raises(ExceptionGroup) as caught:
        result.raise_for_failures()
    return caught.value


MODELS = {
    "server-ref": SERVER,
    "server-ref-without-name": ServerRef(777),
    "backup-in-progress": IN_PROGRESS,
    "backup-completed": COMPLETED,
    "backup-failed": FAILED,
    "backup-unknown-status-and-type": RESTORING,
    "restore-result": RestoreResult(
        raw={"status": "restoring", "server_id": 12345, "backup_id": 501, "eta": [1, 2]},
        status_code=202,
        status="restoring",
        message="Restore started",
        server_id=12345,
        backup_id=501,
    ),
    "restore-result-raw-only": RestoreResult(raw={}),
}


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS.keys())
@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy, copy.copy])
def test_each_model_round_trips_equal_and_of_the_same_type(
    model: Any, duplicate: Callable[[Any], Any]
) -> None:
    copied = duplicate(model)
    assert type(copied) is type(model)
    assert copied == model
    for field in type(model).__attrs_attrs__:
        assert type(getattr(copied, field.name)) is type(getattr(model, field.name))


def test_an_unknown_status_and_type_stay_unknown_after_pickling() -> None:
    copied = pickled(RESTORING)
    assert copied.status == "restoring"
    assert copied.backup_type == "snapshot"
    assert isinstance(copied.status, BackupStatus)
    assert not copied.status.is_known
    assert not copied.backup_type.is_known


OUTCOMES = {
    "succeeded": BackupOutcome(12345, COMPLETED),
    "failed-with-backup-and-error": BackupOutcome(777, FAILED, ERRORS[BackupFailedError]()),
    "timed-out-with-last-error": BackupOutcome(12345, RESTORING, ERRORS[WaitTimeoutError]()),
    "failed-without-backup": BackupOutcome(888, None, ERRORS[RateLimitError]()),
    "ambiguous": BackupOutcome(12345, None, ERRORS[AmbiguousCreateError]()),
}


@pytest.mark.parametrize("outcome", OUTCOMES.values(), ids=OUTCOMES.keys())
@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy])
def test_each_backup_outcome_round_trips_with_its_backup_and_error(
    outcome: BackupOutcome, duplicate: Callable[[Any], Any]
) -> None:
    assert_same_outcome(duplicate(outcome), outcome)


@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy])
def test_a_fleet_result_round_trips_with_every_outcome_in_order(
    duplicate: Callable[[Any], Any],
) -> None:
    result = FleetResult(list(OUTCOMES.values()))
    copied = duplicate(result)
    assert type(copied) is FleetResult
    assert copied == result
    for copied_outcome, outcome in zip(copied.outcomes, result.outcomes, strict=True):
        assert_same_outcome(copied_outcome, outcome)
    assert copied.succeeded == result.succeeded
    assert copied.failed == result.failed
    assert copied.ok is result.ok is False
    assert copied.backups == result.backups


@pytest.mark.parametrize("duplicate", [pickled, copy.deepcopy])
def test_the_exception_group_of_a_fleets_failures_round_trips_with_its_notes(
    duplicate: Callable[[Any], Any],
) -> None:
    group = raised_group()
    copied = duplicate(group)
    assert_same_error(copied, group)
    assert [error.__notes__[-1] for error in copied.exceptions] == [
        "server 777",
        "server 12345",
        "server 888",
        "server 999",
    ]


# -- across processes -----------------------------------------------------------------


def time_out_in_a_worker(backup: Backup) -> None:
    """Runs in a worker process: fail the way a fleet script's wait does."""
    raise WaitTimeoutError(
        f"backup {backup.id} did not finish within 60s",
        backup=backup,
        last_error=ServerError("503: unavailable", status_code=503),
    )


def test_a_wait_timeout_raised_in_a_worker_process_reaches_the_parent_with_its_backup() -> None:
    # spawn: available everywhere, and never forks a process that may hold threads.
    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(time_out_in_a_worker, RESTORING)
        with pytest.raises(WaitTimeoutError) as caught:
            # A result the parent cannot unpickle would hang the pool: give up instead.
            future.result(timeout=30)
    assert caught.value.backup == RESTORING
    assert isinstance(caught.value.last_error, ServerError)
    assert caught.value.last_error.status_code == 503
    assert time.monotonic() - started < 10
