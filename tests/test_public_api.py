"""The import surface users write against: ``from asyncbackups import ...``."""

from __future__ import annotations

import types

import pytest

import asyncbackups
from asyncbackups import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BackupFailedError,
    BackupsError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServerError,
    WaitTimeoutError,
)

# The names API.md promises (its first list; later rounds add the fleet names and more).
PROMISED = {
    "BackupsClient",
    "Backup",
    "ServerRef",
    "BackupStatus",
    "BackupType",
    "RestoreResult",
    "BackupsError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "APIConnectionError",
    "APITimeoutError",
    "ResponseValidationError",
    "WaitTimeoutError",
    "BackupFailedError",
}


def test_all_is_sorted() -> None:
    assert asyncbackups.__all__ == sorted(asyncbackups.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(asyncbackups.__all__) == len(set(asyncbackups.__all__))


def test_every_name_in_all_is_importable() -> None:
    for name in asyncbackups.__all__:
        assert getattr(asyncbackups, name) is not None, name


def test_all_holds_every_promised_name() -> None:
    assert set(asyncbackups.__all__) >= PROMISED


def test_every_public_attribute_is_listed_in_all() -> None:
    public = {
        name
        for name, value in vars(asyncbackups).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # the module's own `from __future__ import annotations`
    }
    assert public <= set(asyncbackups.__all__)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from asyncbackups import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(asyncbackups.__all__)


def test_version_is_a_version_string() -> None:
    parts = asyncbackups.__version__.split(".")
    assert len(parts) >= 2
    assert all(part.isdigit() for part in parts[:2])


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (APIStatusError, BackupsError),
        (BadRequestError, APIStatusError),
        (AuthenticationError, APIStatusError),
        (NotFoundError, APIStatusError),
        (RateLimitError, APIStatusError),
        (ServerError, APIStatusError),
        (APIConnectionError, BackupsError),
        (APITimeoutError, APIConnectionError),
        (ResponseValidationError, BackupsError),
        (ResponseTooLargeError, ResponseValidationError),
        (WaitTimeoutError, BackupsError),
        (BackupFailedError, BackupsError),
        (AmbiguousCreateError, BackupsError),
    ],
)
def test_exception_tree_matches_the_documented_one(
    error: type[Exception], parent: type[Exception]
) -> None:
    assert issubclass(error, parent)


def test_the_root_error_is_an_exception_and_not_a_caller_mistake() -> None:
    assert issubclass(BackupsError, Exception)
    assert not issubclass(BackupsError, (ValueError, TypeError, RuntimeError))


def test_status_errors_carry_status_code_and_body() -> None:
    error = NotFoundError("gone", status_code=404, body={"detail": "Not found."})
    assert error.status_code == 404
    assert error.body == {"detail": "Not found."}
    assert BadRequestError("bad").field_errors == {}
    assert RateLimitError("slow").retry_after is None


def test_wait_errors_carry_the_last_backup_seen() -> None:
    backup = object()
    assert WaitTimeoutError("deadline", backup=backup).backup is backup  # type: ignore[arg-type]
    assert BackupFailedError("failed", backup=backup).backup is backup  # type: ignore[arg-type]


def test_the_types_users_annotate_are_exported() -> None:
    client = asyncbackups.BackupsClient("annotate-check")
    assert isinstance(client.backups, asyncbackups.BackupsAPI)
    assert isinstance(client.servers, asyncbackups.ServersAPI)
    copy = client.with_options(timeout=1.0)
    assert isinstance(copy.backups, asyncbackups.BackupsAPI)
    assert isinstance(asyncbackups.NOT_GIVEN, asyncbackups.NotGiven)
    assert asyncbackups.NotGiven() is asyncbackups.NOT_GIVEN


def test_the_module_docstring_says_why_each_non_obvious_name_is_public() -> None:
    # The client, models and errors explain themselves; every other export is named in
    # the package docstring with its reason, so an odd one stands out in review.
    obvious = PROMISED | {
        "BackupOutcome",
        "FleetResult",
        "PrunePlan",
        "PruneResult",
        "CoverageReport",
        "__version__",
    }
    doc = asyncbackups.__doc__ or ""
    unexplained = [name for name in asyncbackups.__all__ if name not in obvious and name not in doc]
    assert unexplained == []
