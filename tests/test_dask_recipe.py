"""The Dask recipe (examples/dask_fleet.py) on a real cluster, with a worker killed mid-shard.

The fake API runs here, in a background thread on loopback, and ignores
``Idempotency-Key`` (as a careless server would). A ``LocalCluster`` of two worker
processes backs up the fleet in four shards; the first shard to start backs up half its
servers and then SIGKILLs its own worker process. The scheduler sees the worker die and
runs the shard again on another worker (the nanny restarts the dead one). Because every
shard resumes, the retried shard adopts the half already done: every server ends with
exactly one backup, and no create is sent twice. (Kills with creates still on the wire
are tests/test_dask_in_flight.py's.)
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncbackups.testing import FakeBackupsAPI

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (pip install 'asyncbackups[dask]')"
)
cloudpickle = pytest.importorskip("cloudpickle", reason="cloudpickle comes with distributed")

# The recipe is an example, not part of the package: load it from its file.
_RECIPE = Path(__file__).resolve().parent.parent / "examples" / "dask_fleet.py"
_spec = importlib.util.spec_from_file_location("dask_fleet", _RECIPE)
assert _spec is not None
assert _spec.loader is not None
dask_fleet = importlib.util.module_from_spec(_spec)
sys.modules["dask_fleet"] = dask_fleet
_spec.loader.exec_module(dask_fleet)


FLEET = 200
SHARD_SIZE = 50
DESCRIPTION = "weekly 2026-W48"


def _shard_that_kills_its_worker_once(server_ids: list[int], *, marker: str, **kw: Any) -> Any:
    """``backup_shard``, except that the first attempt of all dies halfway, by SIGKILL.

    Creating the marker is atomic (``O_EXCL``), so exactly one attempt, in whichever
    worker runs first, backs up the first half of its shard and kills its own process;
    every other attempt, the retry included, is the recipe's plain ``backup_shard``.
    """
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return dask_fleet.backup_shard(server_ids, **kw)
    with os.fdopen(fd, "w") as file:
        json.dump(server_ids, file)
    done = dask_fleet.backup_shard(server_ids[: len(server_ids) // 2], **kw)
    assert not done["retried"]
    assert done["settle_seconds"] == 0  # a first attempt never waits
    assert all(row["ok"] and not row["adopted"] for row in done["rows"]), done
    os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would: no cleanup at all
    raise AssertionError("unreachable: the worker process is gone")


@pytest.fixture
def _shipped_by_value() -> Iterator[None]:
    """Neither the recipe nor this module is importable by name in a worker process, so
    both travel to the workers by value (as the recipe's functions do run as a script)."""
    modules = [dask_fleet, sys.modules[__name__]]
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        cloudpickle.unregister_pickle_by_value(module)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("_shipped_by_value")
def test_a_shard_retried_after_its_worker_died_makes_no_duplicate(tmp_path: Path) -> None:
    marker = tmp_path / "killed-shard.json"
    server_ids = list(range(1, FLEET + 1))
    with (
        FakeBackupsAPI(honor_idempotency_keys=False, sample_data=False, fleet=FLEET) as api,
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            # The scheduler always serves HTTP (health, metrics): on loopback, any free
            # port (None would mean :8787 on every interface), with no dashboard.
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # What the recipe submits itself (run_started) goes by name: make it importable
        # there, as its docstring tells users to.
        client.upload_file(str(_RECIPE))
        report = dask_fleet.backup_fleet(
            client,
            server_ids,
            description=DESCRIPTION,
            shard_size=SHARD_SIZE,
            retries=1,
            task=_shard_that_kills_its_worker_once,
            marker=str(marker),
            base_url=api.base_url,
            token=api.token,
            # The retry knows it is one and waits for creates on the wire: here there are
            # none (the first half had finished), so a short wait will do.
            settle_timeout=0.1,
        )
        rows = report.rows

        # Every server has exactly one backup of this run, and none was created twice.
        made = {
            server_id: [
                backup
                for backup in api.backups(server_id=server_id, backup_type="manual")
                if backup.description == DESCRIPTION
            ]
            for server_id in server_ids
        }
        assert {server_id: len(backups) for server_id, backups in made.items()} == dict.fromkeys(
            server_ids, 1
        )
        assert len(api.backups(backup_type="manual")) == FLEET
        assert api.requests[("POST", "backups/")] == FLEET

    # A worker really died mid-shard, and its shard was run again to the end.
    killed = json.loads(marker.read_text())
    assert len(killed) == SHARD_SIZE
    first_half = killed[: SHARD_SIZE // 2]

    # One plain dict per server, in input order, each naming the backup the fake holds.
    assert [row["server_id"] for row in rows] == server_ids
    assert all(
        set(row) == {"server_id", "backup_id", "status", "ok", "adopted", "error"} for row in rows
    )
    assert [row for row in rows if not row["ok"] or row["error"] is not None] == []
    assert {row["server_id"]: row["backup_id"] for row in rows} == {
        server_id: backups[0].id for server_id, backups in made.items()
    }
    assert {row["status"] for row in rows} == {"in_progress"}  # wait=False; the clock stood still

    # The retried shard adopted what the killed attempt had made, and only that.
    assert sorted(row["server_id"] for row in rows if row["adopted"]) == sorted(first_half)
    assert (report.shards, report.shards_retried, report.shards_settled) == (4, 1, 1)
    assert report.adopted == len(first_half)
    assert report.settle_seconds == pytest.approx(0.1)
