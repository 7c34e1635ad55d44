"""The command line for scripts and shells: formats, pipes, completion, help, messages.

In-process through ``main([...])`` where that shows it; as a process where the shell's
plumbing matters (a closed pipe, a full disk, completion scripts).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import environment, run_cli

from asyncbackups._cli import main
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "scripts-token-3e9"
FAILING = 3


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ASYNCBACKUPS_TOKEN", "ASYNCBACKUPS_BASE_URL", "ASYNCBACKUPS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ASYNCBACKUPS_TOKEN_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackupsAPI]:
    fake = FakeBackupsAPI(token=TOKEN, backup_seconds=5, fleet=5, failing_servers=[FAILING])
    with fake:
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", fake.token)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)
        yield fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def one_error_line(run: Run) -> str:
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    assert lines[0].startswith("error: ")
    return lines[0]


def dead_url() -> str:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens on it
    return f"http://127.0.0.1:{port}/api/v1/"


# -- get, list filters --------------------------------------------------------------------


def test_get_shows_one_backup(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("get", "499")

    assert run.code == 0
    fields = dict(line.split(None, 1) for line in run.out.splitlines() if " " in line.strip())
    assert fields["id"].strip() == "499"
    assert "Pre-update backup" in run.out


def test_get_json_is_the_api_shape(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("get", "501", "--json")

    assert run.code == 0
    assert run.out.startswith("{")
    assert json.loads(run.out)["size_mb"] == 4523


def test_get_of_a_missing_backup_names_it(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("get", "9999")

    assert run.code == 1
    assert one_error_line(run).startswith("error: backup 9999 not found")


@pytest.mark.parametrize(
    ("argv", "ids"),
    [
        (["--server-id", "12345", "--status", "completed"], [501, 499, 495]),
        (["--server-id", "12345", "--limit", "2"], [501, 499]),
        (["--server-id", "12345", "--type", "automatic", "--limit", "1"], [501]),
        (["--status", "in_progress"], []),
    ],
    ids=["status", "limit", "type-and-limit", "none"],
)
def test_list_filters(api: FakeBackupsAPI, cli: Any, argv: list[str], ids: list[int]) -> None:
    run = cli("list", *argv, "--json")

    assert run.code == 0
    assert [backup["id"] for backup in json.loads(run.out)] == ids


def test_list_limit_reads_no_more_pages_than_needed(
    monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    with FakeBackupsAPI(token=TOKEN, page_size=10, fleet=100) as fake:
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", fake.token)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", fake.base_url)

        run = cli("list", "--limit", "5", "--json")

        assert run.code == 0
        assert len(json.loads(run.out)) == 5
        assert fake.requests[("GET", "backups/")] == 1


# -- output formats -----------------------------------------------------------------------


def test_output_plain_is_tab_separated_without_a_header(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--server-id", "12345", "--output", "plain")

    assert run.code == 0
    rows = [line.split("\t") for line in run.out.splitlines()]
    assert [row[0] for row in rows] == ["501", "499", "495"]
    assert rows[1][:4] == ["499", "12345", "manual", "completed"]


def test_output_json_lines_is_one_object_a_line(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("--output", "json-lines", "list", "--server-id", "12345")

    assert run.code == 0
    assert [json.loads(line)["id"] for line in run.out.splitlines()] == [501, 499, 495]


def test_json_is_a_shorthand_for_output_json(api: FakeBackupsAPI, cli: Any) -> None:
    shorthand = cli("list", "--server-id", "12345", "--json")
    spelled = cli("list", "--server-id", "12345", "-o", "json")

    assert shorthand.out == spelled.out


def test_two_output_formats_at_once_is_a_usage_error(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("list", "--json", "--output", "plain")

    assert run.code == 2
    assert "choose one output format" in one_error_line(run)


def test_create_wait_json_prints_the_failed_backup_on_stdout(api: FakeBackupsAPI, cli: Any) -> None:
    api.backup_seconds = 0.05

    run = cli("create", str(FAILING), "--wait", "--poll-interval", "0.01", "--json")

    assert run.code == 3
    backup = json.loads(run.out)
    assert (backup["server"]["id"], backup["status"]) == (FAILING, "failed")
    assert json.loads(run.err)["error"]["type"] == "BackupFailedError"


def test_wait_json_prints_the_backup_when_the_wait_times_out(api: FakeBackupsAPI, cli: Any) -> None:
    backup_id = api.state.create_backup(1).id

    run = cli("wait", str(backup_id), "--wait-timeout", "0.05", "--poll-interval", "0.01", "--json")

    assert run.code == 3
    assert json.loads(run.out)["status"] == "in_progress"
    assert json.loads(run.err)["error"]["type"] == "WaitTimeoutError"


def test_fleet_plain_is_one_tab_separated_line_a_server(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("fleet", "1", "999", "--output", "plain")

    assert run.code == 4
    rows = sorted(line.split("\t") for line in run.out.splitlines())
    [made] = [backup.id for backup in api.backups(server_id=1, backup_type="manual")]
    assert rows[0] == ["1", "ok", str(made)]
    assert rows[1][:3] == ["999", "failed", "-"]
    assert rows[1][3].startswith("server 999 not found")


def test_delete_takes_several_ids_and_reports_each(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("delete", "499", "9999", "495", "--yes", "--json")

    assert run.code == 1
    documents = json.loads(run.out)
    assert [(d["id"], d["deleted"]) for d in documents] == [
        (499, True),
        (9999, False),
        (495, True),
    ]
    assert "backup 9999 not found" in json.loads(run.err)["error"]["message"]
    assert {backup.id for backup in api.backups(server_id=12345)} == {501}


def test_delete_refuses_a_repeated_id(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("delete", "499", "499", "--yes")

    assert run.code == 2
    assert "repeats [499]" in one_error_line(run)
    assert sum(api.requests.values()) == 0


def test_restore_dry_run_prints_the_request_and_sends_nothing(
    api: FakeBackupsAPI, cli: Any
) -> None:
    run = cli("restore", "12345", "501", "--dry-run")

    assert run.code == 0
    assert run.out.splitlines() == [
        f'would send POST {api.base_url}servers/12345/restore/ {{"backup_id": 501}}',
        "dry run: nothing was sent",
    ]
    assert sum(api.requests.values()) == 0


def test_restore_dry_run_json(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("restore", "12345", "501", "--dry-run", "--json")

    assert json.loads(run.out) == {
        "dry_run": True,
        "requests": [
            {
                "method": "POST",
                "url": f"{api.base_url}servers/12345/restore/",
                "json": {"backup_id": 501},
            }
        ],
    }


# -- messages that name the thing ---------------------------------------------------------


def test_create_on_an_unknown_server_names_it(api: FakeBackupsAPI, cli: Any) -> None:
    run = cli("create", "999999")

    assert run.code == 1
    assert one_error_line(run).startswith("error: server 999999 not found")


def test_a_404_on_the_list_route_points_at_the_base_url(api: FakeBackupsAPI, cli: Any) -> None:
    wrong = api.base_url.replace("/api/v1/", "/api/")

    run = cli("list", "--base-url", wrong)

    assert run.code == 1
    assert "check --base-url" in one_error_line(run)


def test_a_refused_connection_says_so_without_aiohttps_words(cli: Any) -> None:
    run = cli("--token", TOKEN, "--base-url", dead_url(), "--max-retries", "0", "list")

    assert run.code == 1
    line = one_error_line(run)
    assert "cannot reach the API at http://127.0.0.1:" in line
    assert "connection refused" in line
    for internal in ("ClientConnectorError", "ssl:default", "Connect call failed"):
        assert internal not in line


def test_wait_against_an_unreachable_api_exits_1_promptly(cli: Any) -> None:
    started = time.monotonic()

    run = cli("--token", TOKEN, "--base-url", dead_url(), "--max-retries", "0", "wait", "5")

    assert run.code == 1
    assert "cannot reach the API" in one_error_line(run)
    assert time.monotonic() - started < 5


def test_a_mistyped_command_gets_a_suggestion(cli: Any) -> None:
    run = cli("lsit")

    assert run.code == 2
    assert "did you mean 'list'?" in one_error_line(run).lower()


def test_a_mistyped_option_gets_a_suggestion(cli: Any) -> None:
    run = cli("list", "--stauts", "failed")

    assert run.code == 2
    line = one_error_line(run).lower()
    assert "did you mean" in line
    assert "--status?" in line.replace("'", "")


# -- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["help"]], ids=["bare", "help"])
def test_bare_command_and_help_print_the_help(cli: Any, argv: list[str]) -> None:
    run = cli(*argv)

    assert run.code == 0
    assert run.out.startswith("usage: asyncbackups")
    assert "commands:" in run.out
    assert "exit status:" in run.out


def test_help_command_shows_a_commands_help(cli: Any) -> None:
    by_help = cli("help", "fleet")
    by_flag = cli("fleet", "--help")

    assert by_help.code == 0
    assert by_help.out == by_flag.out
    assert "--resume" in by_help.out


def test_help_for_a_mistyped_command_suggests_one(cli: Any) -> None:
    run = cli("help", "flet")

    assert run.code == 2
    assert "did you mean 'fleet'?" in one_error_line(run).lower()


# -- the shell's plumbing (processes) -----------------------------------------------------


@pytest.fixture
def env(api: FakeBackupsAPI, tmp_path: Path) -> dict[str, str]:
    return environment(tmp_path, ASYNCBACKUPS_TOKEN=api.token, ASYNCBACKUPS_BASE_URL=api.base_url)


def test_a_reader_that_leaves_early_ends_the_command_quietly_with_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with FakeBackupsAPI(token=TOKEN, fleet=1500) as fake:
        env = environment(
            tmp_path, ASYNCBACKUPS_TOKEN=fake.token, ASYNCBACKUPS_BASE_URL=fake.base_url
        )
        done = subprocess.run(
            ["bash", "-c", f'"{sys.executable}" -m asyncbackups list --json-lines | head -1; '
             'echo "status ${PIPESTATUS[0]}" >&2'],
            capture_output=True, text=True, env=env, timeout=30, check=False,
        )  # fmt: skip

    assert json.loads(done.stdout)["id"]
    assert done.stderr == "status 0\n"


@pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="the platform has no /dev/full to make writes fail"
)
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_full_disk_is_one_error_line_and_status_1(env: dict[str, str], fmt: str) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "asyncbackups", "list", "--output", fmt],
            stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=20, check=False,
        )  # fmt: skip

    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert "No space left on device" in line
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script_for_the_shell(tmp_path: Path, shell: str) -> None:
    done = run_cli("completion", shell, env=environment(tmp_path))

    assert done.code == 0
    assert "_ASYNCBACKUPS_COMPLETE" in done.out
    assert f"{shell}_complete" in done.out


@pytest.mark.skipif(
    shutil.which("bash") is None, reason="bash is not installed to source the completion script"
)
def test_bash_sources_the_completion_script(tmp_path: Path) -> None:
    script = run_cli("completion", "bash", env=environment(tmp_path)).out
    (tmp_path / "complete.bash").write_text(script)

    done = subprocess.run(
        ["bash", "-c", f"source {tmp_path / 'complete.bash'} && complete -p asyncbackups"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "asyncbackups" in done.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("asyncbackups fle", {"fleet"}),
        ("asyncbackups list --ty", {"--type"}),
        ("asyncbackups list --type ", {"manual", "automatic"}),
        ("asyncbackups --output j", {"json", "json-lines"}),
        ("asyncbackups completion ", {"bash", "zsh", "fish"}),
        ("asyncbackups serve --p", {"--port", "--page-size"}),  # the fake's own options
        ("asyncbackups serve --js", {"--json", "--json-lines"}),
        ("asyncbackups help se", {"serve"}),
    ],
)
def test_completion_completes_commands_options_and_choices(
    tmp_path: Path, words: str, expected: set[str]
) -> None:
    env = environment(
        tmp_path,
        _ASYNCBACKUPS_COMPLETE="bash_complete",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    )

    done = run_cli(env=env)

    assert done.code == 0, done.err
    offered = {line.split(",", 1)[1] for line in done.out.splitlines() if "," in line}
    assert offered == expected
