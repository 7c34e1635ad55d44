"""``fleet`` at scale, as a process: streamed outcomes, resuming a killed run, Ctrl-C.

The fake API runs in this process (a thread) on loopback; the command line runs as
``python -m asyncbackups``, so a kill is a real kill.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import Lines, environment, run_cli, start_cli, stop, wait_until

from asyncbackups.testing import FakeBackupsAPI

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="Windows cannot send SIGINT or SIGTERM to a child process"
)

RUN = "weekly X"
FLEET = 30


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at its end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    """A fleet of servers 1-30 on a server that ignores Idempotency-Key, as some do."""
    with FakeBackupsAPI(
        token="fleet-token", backup_seconds=60, fleet=FLEET, honor_idempotency_keys=False
    ) as fake:
        yield fake


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)


@pytest.fixture
def servers_file(tmp_path: Path) -> Path:
    path = tmp_path / "servers.txt"
    path.write_text("# the whole fleet\n" + "".join(f"{i}\n" for i in range(1, FLEET + 1)))
    return path


def manual_backups(api: FakeBackupsAPI, description: str) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for backup in api.backups(backup_type="manual"):
        if backup.description == description:
            found.setdefault(backup.server_id, []).append(backup.id)
    return found


def parse_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_killed_run_resumed_backs_up_each_server_exactly_once(
    api: FakeBackupsAPI,
    env: dict[str, str],
    servers_file: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    # Creates two at a time: the first four answered at once, the next ones eight seconds
    # after they arrive, so the kill lands with creates on the wire that reach the API
    # after the resumed run (a new process, started in well under that even on a busy
    # machine) read the list.
    api.faults.delay(0.1, method="POST", path="backups/", times=4)
    late = api.faults.delay(8.0, method="POST", path="backups/")
    argv = ["fleet", "--from-file", str(servers_file), "--description", RUN, "--json-lines"]
    first = start_cli(*argv, "--concurrency", "2", env=env)
    processes.append(first)
    lines = Lines(first)
    recorded = [json.loads(lines.next()) for _ in range(4)]  # flushed as each landed
    wait_until(lambda: late.fired == 2)  # the kill must find two creates on the wire

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=5)
    recorded += parse_lines(lines.rest(first))  # whole lines only: each was one write
    assert 4 <= len(recorded) < FLEET
    assert all(outcome["ok"] for outcome in recorded)
    api.faults.clear()
    mark = len(api.request_log)

    # The API ignores keys: only the settle (longer than the delay) keeps the creates
    # still on the wire from being made twice.
    resumed = run_cli(*argv, "--resume", "--settle-timeout", "9", env=env)

    assert resumed.code == 0, resumed.err
    assert "waiting 9 s for an earlier attempt's requests to land" in resumed.err
    log = api.request_log[mark:]
    first_read = next(i for i, r in enumerate(log) if r.method == "GET")
    assert any(r.method == "POST" and r.fault for r in log[first_read:])  # landed late
    outcomes = parse_lines(resumed.out)
    assert sorted(outcome["server_id"] for outcome in outcomes) == list(range(1, FLEET + 1))
    adopted = {o["server_id"]: o["backup"]["id"] for o in outcomes if o["adopted"]}
    for outcome in recorded:  # what the killed run finished, the resumed run adopts
        assert adopted[outcome["server_id"]] == outcome["backup"]["id"]
    made = manual_backups(api, RUN)
    assert sorted(made) == list(range(1, FLEET + 1))
    assert all(len(ids) == 1 for ids in made.values()), made


def test_a_resumed_run_waits_its_timeout_for_an_earlier_runs_creates_and_says_so(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    kept = api.state.add_backup(1, backup_type="manual", status="completed", description=RUN).id
    argv = ["fleet", "1", "2", "--description", RUN, "--resume", "--output", "plain"]

    resumed = run_cli(*argv, "--timeout", "0.2", env=env)  # the settle defaults to --timeout

    assert resumed.code == 0, resumed.err
    # On stderr: the output stays one line per server.
    assert resumed.err.splitlines() == ["waiting 0.2 s for an earlier attempt's requests to land"]
    assert sorted(resumed.out.splitlines())[0] == f"1\tok\t{kept}"
    made = manual_backups(api, RUN)
    assert sorted(made) == [1, 2]
    assert made[1] == [kept]
    assert len(made[2]) == 1


def test_a_first_run_with_resume_waits_for_nothing(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    argv = ["fleet", "1", "2", "--description", RUN, "--resume", "--output", "plain"]

    done = run_cli(*argv, "--settle-timeout", "60", env=env)  # would fail the test's deadline

    assert done.code == 0, done.err
    assert done.err == ""
    assert sorted(manual_backups(api, RUN)) == [1, 2]


def test_resume_needs_the_description_that_names_the_run(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "1", "2", "--resume", env=env)

    assert done.code == 2
    assert "--resume needs the --description" in done.err
    assert sum(api.requests.values()) == 0


def test_json_lines_come_as_each_outcome_lands(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    api.faults.delay(0.2, method="POST", path="backups/")
    process = start_cli("fleet", "1", "2", "3", "--concurrency", "1", "--json-lines", env=env)
    processes.append(process)
    lines = Lines(process)

    first = json.loads(lines.next())

    assert process.poll() is None  # still running: the line did not wait for the end
    assert first["ok"]
    assert first["backup"]["server"]["id"] == first["server_id"]
    rest = parse_lines(lines.rest(process))
    assert process.returncode == 0
    assert sorted(o["server_id"] for o in [first, *rest]) == [1, 2, 3]


def test_stdin_with_stream_is_read_as_it_comes(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    process = start_cli(
        "fleet", "--from-file", "-", "--stream", "--json-lines", env=env, stdin=True
    )
    processes.append(process)
    assert process.stdin is not None
    lines = Lines(process)

    process.stdin.write(b"7\n")
    process.stdin.flush()
    first = json.loads(lines.next())  # backed up while stdin is still open
    process.stdin.write(b"# more\n8\n")
    process.stdin.close()
    rest = parse_lines(lines.rest(process))

    assert process.returncode == 0
    assert first["server_id"] == 7
    assert [o["server_id"] for o in rest] == [8]


def test_a_bad_line_on_streamed_stdin_stops_the_launching_and_exits_2(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "--from-file", "-", "--stream", env=env, stdin="1\n2\nweb-03\n4\n")

    assert done.code == 2
    assert "stdin line 3: 'web-03' is not a server ID" in done.err
    assert sorted(manual_backups(api, None)) == [1, 2]  # type: ignore[arg-type]
    assert "server 1 started backup" in done.out


def test_ctrl_c_prints_the_outcomes_landed_and_exits_130(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    api.faults.delay(0.1, method="POST", path="backups/")
    process = start_cli("fleet", *map(str, range(1, 21)), "--concurrency", "1", "--json", env=env)
    processes.append(process)
    wait_until(lambda: len(manual_backups(api, None)) >= 3)  # type: ignore[arg-type]

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)

    assert process.returncode == 130
    assert json.loads(err) == {"error": {"message": "interrupted", "exit_code": 130}}
    report = json.loads(out)
    assert report["interrupted"] is True
    assert 2 <= report["finished"] < 20
    assert len(report["outcomes"]) == report["finished"]
    assert all(outcome["ok"] for outcome in report["outcomes"])


def test_ctrl_c_in_text_says_what_finished(
    api: FakeBackupsAPI, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> None:
    api.faults.delay(0.1, method="POST", path="backups/")
    process = start_cli("fleet", *map(str, range(1, 21)), "--concurrency", "1", env=env)
    processes.append(process)
    lines = Lines(process)
    assert lines.next().startswith("server 1 started backup ")

    process.send_signal(signal.SIGINT)
    rest = lines.rest(process, timeout=10)

    assert process.returncode == 130
    assert "interrupted: " in rest
    assert "servers finished" in rest


def test_dry_run_prints_each_create_and_sends_nothing(tmp_path: Path, servers_file: Path) -> None:
    done = run_cli(
        "fleet", "--from-file", str(servers_file), "--description", RUN, "--dry-run",
        "--base-url", "http://127.0.0.1:9/api/v1/",
        env=environment(tmp_path),
    )  # fmt: skip

    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0] == (
        'would send POST http://127.0.0.1:9/api/v1/backups/ {"server_id": 1, '
        '"description": "weekly X"}'
    )
    assert len([line for line in lines if line.startswith("would send")]) == FLEET
    assert lines[-1] == f"dry run: {FLEET} servers, nothing was sent"


def test_fleet_without_wait_lists_the_created_backup_ids(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    done = run_cli("fleet", "4", "5", env=env)

    assert done.code == 0
    made = manual_backups(api, None)  # type: ignore[arg-type]
    for server_id in (4, 5):
        assert f"server {server_id} started backup {made[server_id][0]}" in done.out


# -- a rate-limited API ---------------------------------------------------------------------


@pytest.fixture
def limited_api() -> Iterator[FakeBackupsAPI]:
    """Servers 1-30 behind a tight bucket that answers bare 429s with Retry-After."""
    with FakeBackupsAPI(
        token="limited-token",
        backup_seconds=60,
        fleet=FLEET,
        rate_limit=200,
        burst=4,
        rate_limit_headers=False,
    ) as fake:
        yield fake


def test_a_throttled_fleet_fails_no_server_and_its_summary_counts_the_throttles(
    limited_api: FakeBackupsAPI, tmp_path: Path
) -> None:
    env = environment(
        tmp_path, ASYNCBACKUPS_TOKEN=limited_api.token, ASYNCBACKUPS_BASE_URL=limited_api.base_url
    )
    done = run_cli("fleet", *map(str, range(1, 21)), "--description", "paced", env=env)
    assert done.code == 0, done.err
    throttled = limited_api.stats()["throttled"]
    assert throttled > 0
    assert f"throttled by the API {throttled} times" in done.out
    assert all(len(ids) == 1 for ids in manual_backups(limited_api, "paced").values())
    assert len(manual_backups(limited_api, "paced")) == 20


def test_a_throttled_fleet_reports_throttles_and_rate_in_json(
    limited_api: FakeBackupsAPI, tmp_path: Path
) -> None:
    env = environment(
        tmp_path, ASYNCBACKUPS_TOKEN=limited_api.token, ASYNCBACKUPS_BASE_URL=limited_api.base_url
    )
    done = run_cli("fleet", *map(str, range(1, 11)), "--json", env=env)
    assert done.code == 0, done.err
    document = json.loads(done.out)
    assert document["failed"] == 0
    assert document["throttled"] == limited_api.stats()["throttled"]
    assert document["rate_limit"] is None or document["rate_limit"] > 0


def test_fleet_rate_limit_option_paces_the_run_below_the_apis_limit(
    api: FakeBackupsAPI, env: dict[str, str]
) -> None:
    api.set_rate_limit(50, burst=50)
    done = run_cli("fleet", *map(str, range(1, 11)), "--rate-limit", "40", "--json", env=env)
    assert done.code == 0, done.err
    document = json.loads(done.out)
    assert document["throttled"] == 0
    assert 0 < document["rate_limit"] <= 40  # never above the rate asked for


def test_fleet_rate_limit_option_refuses_a_rate_of_zero(env: dict[str, str]) -> None:
    done = run_cli("fleet", "1", "--rate-limit", "0", env=env)
    assert done.code == 2
    assert "--rate-limit" in done.err
