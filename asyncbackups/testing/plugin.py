"""pytest plugin: the ``fake_backups_api`` fixture and the marker that configures it.

Registered through the ``pytest11`` entry point, so it loads in every pytest run where
asyncbackups is installed. It therefore imports nothing heavy until a test asks for the
fixture, and it never fails a run that does not use it (``-p no:asyncbackups`` turns it
off entirely).

Use::

    def test_backup_finishes(fake_backups_api):
        fake_backups_api.advance(10)

    @pytest.mark.fake_backups_api(backup_seconds=1, fleet=10)
    async def test_fleet(fake_backups_api): ...

    @pytest.mark.fake_backups_api(rate_limit=5, burst=5)   # 429 beyond 5 requests/s
    def test_throttled(fake_backups_api): ...

The fake runs in a background thread with its own event loop, so the fixture is a
plain synchronous one: it needs no pytest-asyncio and suits any async framework.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._fake_api import FakeBackupsAPI

__all__ = ["fake_backups_api", "pytest_configure"]

MARKER = "fake_backups_api"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so ``--strict-markers`` runs accept it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): configure the {MARKER} fixture; the options are "
        "FakeBackupsAPI's (token, backup_seconds, page_size, honor_idempotency_keys, "
        "seed, sample_data, fleet, failing_servers, rate_limit, burst, "
        "rate_limit_headers).",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # Markers on the module, the class and the test merge; the closest one wins.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keyword options only, got {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def fake_backups_api(request: pytest.FixtureRequest) -> Iterator[FakeBackupsAPI]:
    """A running fake Backups API for one test, configured by ``@pytest.mark.fake_backups_api``.

    Point a client at ``fake_backups_api.base_url`` with ``fake_backups_api.token``;
    drive time with ``fake_backups_api.advance(seconds)`` and inject faults through
    ``fake_backups_api.faults``. It stops when the test ends.
    """
    from ._fake_api import FakeBackupsAPI

    try:
        api = FakeBackupsAPI(**_options(request))
    except TypeError as exc:
        problem = str(exc)
    else:
        with api:
            yield api
        return
    # Outside the except block, so the report shows the mistake and not a traceback chain.
    pytest.fail(f"@pytest.mark.{MARKER}: {problem}", pytrace=False)
