"""The Dask recipe with a worker SIGKILLed while its creates are on the wire.

The fake API runs in a process of its own, answering each create only after a delay
(``DELAY``), so the creates a killed worker had sent reach the API after the kill, as
they would on a busy service. A ``LocalCluster`` of two single-threaded worker processes
backs up the fleet, sharded by the recipe's default (about four shards a thread). This
test watches the fake's ``GET /_fake/stats`` (its ``delay`` faults count the creates that
have arrived, its ``POST backups/`` requests those answered) and, once a share of the
fleet's creates has arrived, SIGKILLs a worker that has creates in flight (each worker
logs, by process, the creates it sent and the answers it got). The nanny restarts it;
Dask runs its shard again elsewhere.

Then every server must have exactly one backup of the run, none missing, counted on the
API itself through ``GET /api/v1/backups/``: on an API that ignores ``Idempotency-Key``
because the retried shard waits for the dead one's creates to land, and on one that
honours it without any wait, because the retry sends the same keys.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (pip install 'asyncbackups[dask]')"
)
cloudpickle = pytest.importorskip("cloudpickle", reason="cloudpickle comes with distributed")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

_RECIPE = Path(__file__).resolve().parent.parent / "examples" / "dask_fleet.py"
_spec = importlib.util.spec_from_file_location("dask_fleet", _RECIPE)
assert _spec is not None
assert _spec.loader is not None
dask_fleet = importlib.util.module_from_spec(_spec)
sys.modules["dask_fleet"] = dask_fleet
_spec.loader.exec_module(dask_fleet)

FLEET = 120  # 8 shards of 15 on two threads: four waves of creates
DELAY = 1.0  # seconds each create spends in the fake before it is carried out
SETTLE = 1.5  # a retried shard's wait: longer than any create can take to land
TOKEN = "in-flight-token"
DEADLINE = 60.0  # only keeps a broken test from hanging

# The fake as a process of its own. Its command line has no per-request delay (yet), so
# it is set up here with the testing kit's public API, then served as the command does.
_FAKE = """
import sys
from asyncbackups.testing import FakeBackupsAPI, run
fleet, delay, honour, token = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
api = FakeBackupsAPI(token=token, backup_seconds=3600, fleet=fleet, sample_data=False,
                     honor_idempotency_keys=bool(honour))
api.faults.delay(delay, method="POST", path="backups/")
run(api)
"""


class _Fake:
    """The fake's process, reached over HTTP only."""

    def __init__(self, *, honour_keys: bool, delay: float = DELAY) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _FAKE,
                str(FLEET),
                str(delay),
                "honour" if honour_keys else "",
                TOKEN,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the announcement: export ASYNCBACKUPS_BASE_URL=...
            if line.startswith("export ASYNCBACKUPS_BASE_URL="):
                self.base_url = line.split("=", 1)[1].strip()
                break
        else:
            raise AssertionError("the fake did not start")
        self.stats_url = self.base_url.removesuffix("/api/v1/") + "/_fake/stats"

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.stats_url, timeout=5) as answer:
            result: dict[str, Any] = json.load(answer)
            return result

    def arrived(self) -> int:
        """Creates that have reached the fake (each is delayed on arrival)."""
        return int(self.stats()["faults"].get("delay", 0))

    def answered(self, route: str) -> int:
        """Requests of ``route`` (``"GET backups/"``) answered so far."""
        return int(self.stats()["requests"].get(route, 0))

    def backups_of(self, description: str) -> Counter[int]:
        """The manual backups with ``description``, counted by server, read page by page."""
        made: Counter[int] = Counter()
        url: str | None = self.base_url + "backups/?backup_type=manual"
        while url is not None:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                page = json.load(answer)
            made.update(
                b["server"]["id"] for b in page["results"] if b["description"] == description
            )
            url = page["next"]
        return made

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _shard_that_logs_its_creates(server_ids: list[int], *, log_dir: str, **kw: Any) -> Any:
    """``backup_shard``, with each create sent and answered logged under this process's ID.

    A byte a create in ``sent-PID`` when its request has left, and in ``answered-PID``
    when its answer came back: the test kills a process whose files differ.
    """
    import aiohttp

    pid = os.getpid()

    def note(name: str) -> None:
        with open(os.path.join(log_dir, f"{name}-{pid}"), "ab") as file:
            file.write(b".")

    async def sent(session: Any, context: Any, params: Any) -> None:
        if params.method == "POST":
            note("sent")

    async def answered(session: Any, context: Any, params: Any) -> None:
        if params.method == "POST":
            note("answered")

    tracing = aiohttp.TraceConfig()
    tracing.on_request_chunk_sent.append(sent)
    tracing.on_request_end.append(answered)
    return dask_fleet.backup_shard(server_ids, client_options={"trace_configs": [tracing]}, **kw)


def _in_flight(log_dir: Path, pid: int) -> int:
    def size(name: str) -> int:
        path = log_dir / f"{name}-{pid}"
        return path.stat().st_size if path.exists() else 0

    return size("sent") - size("answered")


def _kill_a_worker_with_creates_in_flight(
    fake: _Fake, pids: list[int], log_dir: Path, *, after: int
) -> int:
    """Once ``after`` creates have reached the fake, SIGKILL the worker with the most
    creates in flight; return how many it had."""
    deadline = time.monotonic() + DEADLINE
    while True:
        assert time.monotonic() < deadline, "the run never got that far"
        if fake.arrived() >= after:
            busiest = max(pids, key=lambda pid: _in_flight(log_dir, pid))
            in_flight = _in_flight(log_dir, busiest)
            if in_flight > 0:
                os.kill(busiest, signal.SIGKILL)
                return in_flight
        time.sleep(0.01)


@pytest.fixture
def cluster_client() -> Iterator[Any]:
    """Two worker processes of one thread each, on loopback, fresh for each test.

    Not shared: a test that kills a worker would leave the next one waiting for Dask's
    nanny to bring it back, which once took past a test's whole time limit in CI. A
    cluster starts in about 2 s.
    """
    for module in (dask_fleet, sys.modules[__name__]):
        cloudpickle.register_pickle_by_value(module)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # What the recipe submits itself (run_started) goes by name: make it importable.
        client.upload_file(str(_RECIPE))
        yield client
    for module in (dask_fleet, sys.modules[__name__]):
        cloudpickle.unregister_pickle_by_value(module)


def _run_and_kill(
    client: Any, fake: _Fake, tmp_path: Path, *, description: str, kill_after: int, **kw: Any
) -> tuple[Any, int]:
    """The recipe over the whole fleet, with one worker killed mid-create; its report and
    how many creates the killed worker had in flight."""
    client.wait_for_workers(2)
    pids = list(client.run(os.getpid).values())
    log_dir = tmp_path / "creates"
    log_dir.mkdir()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            dask_fleet.backup_fleet,
            client,
            range(1, FLEET + 1),
            description=description,
            task=_shard_that_logs_its_creates,
            log_dir=str(log_dir),
            base_url=fake.base_url,
            token=TOKEN,
            **kw,
        )
        in_flight = _kill_a_worker_with_creates_in_flight(fake, pids, log_dir, after=kill_after)
        report = running.result(timeout=DEADLINE)
    return report, in_flight


@pytest.fixture
def fake_ignoring_keys() -> Iterator[_Fake]:
    fake = _Fake(honour_keys=False)
    yield fake
    fake.stop()


@pytest.fixture
def fake_honouring_keys() -> Iterator[_Fake]:
    fake = _Fake(honour_keys=True)
    yield fake
    fake.stop()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("share", [0.1, 0.4, 0.7], ids=["10%", "40%", "70%"])
def test_killed_with_creates_in_flight_one_backup_per_server_keys_ignored(
    cluster_client: Any, fake_ignoring_keys: _Fake, tmp_path: Path, share: float
) -> None:
    description = f"weekly 2026-W48, killed at {share:.0%}"

    report, in_flight = _run_and_kill(
        cluster_client,
        fake_ignoring_keys,
        tmp_path,
        description=description,
        kill_after=int(FLEET * share),
        settle_timeout=SETTLE,
    )

    assert in_flight >= 1  # the kill caught creates on the wire
    made = fake_ignoring_keys.backups_of(description)
    assert made == Counter(dict.fromkeys(range(1, FLEET + 1), 1))  # one each, none missing
    assert [row["server_id"] for row in report.rows] == list(range(1, FLEET + 1))
    assert all(row["ok"] for row in report.rows)
    assert report.shards == 8
    assert report.shards_retried >= 1
    # Only a retried shard may wait: one whose dead attempt's creates had all landed by
    # then (or that had finished, its result lost with the worker) adopts them at once.
    assert report.shards_settled <= report.shards_retried
    assert report.adopted >= in_flight  # at least what was on the wire came back adopted


@pytest.mark.timeout(90)
def test_killed_with_creates_in_flight_one_backup_per_server_keys_honoured_no_wait(
    cluster_client: Any, fake_honouring_keys: _Fake, tmp_path: Path
) -> None:
    description = "weekly 2026-W48, keys honoured"

    report, in_flight = _run_and_kill(
        cluster_client,
        fake_honouring_keys,
        tmp_path,
        description=description,
        kill_after=int(FLEET * 0.4),
        settle_timeout=0,  # the documented choice for an API that honours keys
    )

    assert in_flight >= 1
    made = fake_honouring_keys.backups_of(description)
    assert made == Counter(dict.fromkeys(range(1, FLEET + 1), 1))
    assert all(row["ok"] for row in report.rows)
    assert report.shards_retried >= 1
    assert (report.shards_settled, report.settle_seconds) == (0, 0)  # no wait happened


@pytest.fixture
def slow_fake_ignoring_keys() -> Iterator[_Fake]:
    fake = _Fake(honour_keys=False, delay=2 * DELAY)
    yield fake
    fake.stop()


@pytest.mark.timeout(60)
def test_a_retry_that_reads_before_any_of_the_dead_attempts_creates_landed_still_waits(
    cluster_client: Any, slow_fake_ignoring_keys: _Fake, tmp_path: Path
) -> None:
    fake = slow_fake_ignoring_keys
    description = "weekly 2026-W48, retried at once"
    servers = list(range(1, 21))
    cluster_client.wait_for_workers(2)
    pids = list(cluster_client.run(os.getpid).values())
    log_dir = tmp_path / "creates"
    log_dir.mkdir()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            dask_fleet.backup_fleet,
            cluster_client,
            servers,
            description=description,
            shard_size=len(servers),  # one shard: the other worker is free to retry it at once
            task=_shard_that_logs_its_creates,
            log_dir=str(log_dir),
            base_url=fake.base_url,
            token=TOKEN,
            settle_timeout=2 * SETTLE,
        )
        in_flight = _kill_a_worker_with_creates_in_flight(fake, pids, log_dir, after=1)
        reads = fake.answered("GET backups/")
        # The retry's first read, answered while every create of the dead attempt is
        # still in the fake: it can see none of them.
        deadline = time.monotonic() + DEADLINE
        while fake.answered("GET backups/") == reads:
            assert time.monotonic() < deadline, "the shard was never retried"
            time.sleep(0.01)
        landed_at_the_retrys_read = fake.answered("POST backups/")
        report = running.result(timeout=DEADLINE)

    assert in_flight >= 1
    assert landed_at_the_retrys_read == 0
    assert (report.shards, report.shards_retried, report.shards_settled) == (1, 1, 1)
    assert report.adopted >= in_flight  # made by the dead attempt, not made again
    assert fake.backups_of(description) == Counter(dict.fromkeys(servers, 1))
    assert fake.answered("POST backups/") == len(servers)
