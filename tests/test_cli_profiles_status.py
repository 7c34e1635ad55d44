"""Profiles that fail alone, ``asyncbackups status``, and token files others can read.

A mistake in one profile (an unknown key, a value that is no string) breaks that profile
only: using it names the file, the line and the key; every other profile works, and
stays quiet about it (``status`` lists every profile's problems). ``status`` shows what
the commands would connect with, where each value came from, and the token masked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli_support import environment, run_in_terminal

from asyncbackups._cli import main
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "profiles-token-abcdefghijklmnop-WXYZ"  # 36 characters: its last 4 may show
DEAD_URL = "http://127.0.0.1:9/api/v1/"  # nothing listens on the discard port


@pytest.fixture(autouse=True)
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "ASYNCBACKUPS_TOKEN",
        "ASYNCBACKUPS_BASE_URL",
        "ASYNCBACKUPS_TOKEN_FILE",
        "ASYNCBACKUPS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "80")
    return home


@pytest.fixture
def api() -> Iterator[FakeBackupsAPI]:
    with FakeBackupsAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def write_config(config_home: Path, text: str) -> Path:
    path = config_home / "asyncbackups" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_token(config_home: Path, name: str = "staging.token", mode: int = 0o600) -> Path:
    path = config_home / "asyncbackups" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{TOKEN}\n", encoding="utf-8")
    path.chmod(mode)
    return path


def two_profiles(config_home: Path, api: FakeBackupsAPI) -> Path:
    """``staging`` works; ``production`` (lines 5-7) has a misspelt key on line 7."""
    write_token(config_home)
    return write_config(
        config_home,
        "[profiles.staging]\n"
        f'base_url = "{api.base_url}"\n'
        'token_file = "staging.token"\n'
        "\n"
        "[profiles.production]\n"
        f'base_url = "{DEAD_URL}"\n'
        'tokn_file = "production.token"\n',
    )


# -- one broken profile ---------------------------------------------------------------------


def test_an_unknown_key_in_one_profile_leaves_the_others_usable(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    two_profiles(config_home, api)

    code, out, err = cli("--profile", "staging", "list", "--json")

    assert (code, err) == (0, "")  # no word about the profile not in use
    assert [backup["id"] for backup in json.loads(out)] == [501, 499, 495]


def test_using_the_broken_profile_names_the_file_the_line_and_the_key(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    path = two_profiles(config_home, api)

    code, out, err = cli("--profile", "production", "list")

    assert code == 2
    assert out == ""
    assert err == (
        f"error: {path}:7: profile 'production' has an unknown key 'tokn_file'; did you "
        "mean 'token_file'? (known: base_url, token_file)\n"
    )
    assert sum(api.requests.values()) == 0


def test_a_broken_default_profile_fails_only_the_commands_that_use_it(
    api: FakeBackupsAPI, cli: Any, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(config_home, '[profiles.default]\nbase_url = "x"\nretries = 3\n')

    code, _, err = cli("list")  # the default profile is in use: it must work
    assert code == 2
    assert f"{path}:3: profile 'default' has an unknown key 'retries'" in err

    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", TOKEN)
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)
    code, _, err = cli("list")  # flags and environment say everything: no profile read
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[profiles.prod]\nbase_url = "u"\n\ntokn = "t"\n', 4),
        ('# top-level tables are profiles too\n[prod]\ntokn = "t"\n', 3),
        ('[profiles]\nprod.base_url = "u"\nprod.tokn = "t"\n', 3),
        ('[profiles]\nok = {base_url = "u"}\nprod = {base_url = "u", tokn = "t"}\n', 3),
        ('[profiles."prod"]\nbase_url = """\ntokn = not a key\n"""\n"tokn" = "t"\n', 5),
    ],
    ids=["table", "top-level", "dotted", "inline", "quoted"],
)
def test_the_line_is_found_however_the_profile_is_written(
    cli: Any, config_home: Path, text: str, line: int
) -> None:
    path = write_config(config_home, text)

    code, _, err = cli("--profile", "prod", "list")

    assert code == 2
    assert f"error: {path}:{line}: profile 'prod' has an unknown key " in err


def test_a_value_that_is_no_string_breaks_only_its_profile(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    write_token(config_home)
    path = write_config(
        config_home,
        f'[profiles.staging]\nbase_url = "{api.base_url}"\ntoken_file = "staging.token"\n'
        "[profiles.other]\nbase_url = 8080\n",
    )

    assert cli("--profile", "staging", "list", "--json")[0] == 0
    code, _, err = cli("--profile", "other", "list")
    assert code == 2
    assert f"{path}:5: profile 'other': base_url must be a non-empty string" in err


def test_a_file_that_is_not_toml_still_breaks_every_profile(cli: Any, config_home: Path) -> None:
    path = write_config(config_home, "[profiles.staging\n")

    code, _, err = cli("--profile", "staging", "list")

    assert code == 2
    assert f"{path} is not valid TOML" in err


# -- status ---------------------------------------------------------------------------------


def test_status_shows_profile_url_and_masked_token_with_their_sources(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    path = two_profiles(config_home, api)
    token = config_home / "asyncbackups" / "staging.token"

    code, out, err = cli("--profile", "staging", "status")

    assert (code, err) == (0, "")
    assert TOKEN not in out
    rows = {line.split(None, 1)[0]: line for line in out.splitlines() if line.strip()}
    assert rows["profile"].split(None, 1)[1] == "staging (from --profile)"
    assert f"{api.base_url} (from profile 'staging')" in rows["base"]
    assert f"********WXYZ (from profile 'staging', file {token})" in out
    assert f"config file  {path}" in out
    assert "profiles     staging, production" in out
    assert "problem      " in out  # the other profile's mistake
    assert "'tokn_file'" in out
    assert sum(api.requests.values()) == 0  # nothing sent without --check


def test_status_json_has_every_value_and_its_source(
    api: FakeBackupsAPI, cli: Any, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = two_profiles(config_home, api)
    monkeypatch.setenv("ASYNCBACKUPS_PROFILE", "staging")
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", DEAD_URL)

    code, out, _ = cli("status", "--json")

    assert code == 0
    document = json.loads(out)
    assert TOKEN not in out
    assert document["profile"] == "staging"
    assert document["profile_source"] == "$ASYNCBACKUPS_PROFILE"
    assert (document["base_url"], document["base_url_source"]) == (
        DEAD_URL,
        "$ASYNCBACKUPS_BASE_URL",
    )
    assert document["token"] == {
        "set": True,
        "masked": "********WXYZ",
        "source": "profile 'staging'",
        "file": str(config_home / "asyncbackups" / "staging.token"),
    }
    assert (document["config_file"], document["config_file_exists"]) == (str(path), True)
    assert [(p["name"], p["usable"]) for p in document["profiles"]] == [
        ("staging", True),
        ("production", False),
    ]
    assert document["warnings"] == []
    assert document["problem"] is None


@pytest.mark.parametrize(
    ("flags", "source"),
    [(["--token", TOKEN], "--token"), ([], "$ASYNCBACKUPS_TOKEN")],
    ids=["flag", "environment"],
)
def test_status_names_where_the_token_came_from(
    cli: Any, monkeypatch: pytest.MonkeyPatch, flags: list[str], source: str
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "another-token-of-some-length-1234")

    code, out, _ = cli(*flags, "status", "--json")

    document = json.loads(out)
    assert code == 0
    assert document["token"]["source"] == source
    assert document["profile"] is None
    assert document["base_url_source"] == "default"
    assert document["config_file_exists"] is False


def test_a_short_token_shows_no_character(cli: Any) -> None:
    code, out, _ = cli("--token", "short-token", "status", "--json")

    assert code == 0
    assert json.loads(out)["token"]["masked"] == "********"


def test_status_without_a_token_shows_what_it_found_and_exits_2(cli: Any) -> None:
    code, out, err = cli("status")

    assert code == 2
    assert "token        none" in out
    assert err.startswith("error: no API token: pass --token or --token-file")


def test_status_with_the_broken_profile_in_use_shows_the_problem_and_exits_2(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    path = two_profiles(config_home, api)

    code, out, err = cli("--profile", "production", "status", "--json")

    assert code == 2
    document = json.loads(out)
    assert document["problem"].startswith(f"{path}:7: profile 'production' has an unknown key")
    assert err.startswith('{"error": {"message": ')


def test_status_check_asks_the_api_once(api: FakeBackupsAPI, cli: Any) -> None:
    code, out, _ = cli("--token", TOKEN, "--base-url", api.base_url, "status", "--check")

    assert code == 0
    assert "API          the API took the token" in out
    assert dict(api.requests) == {("GET", "backups/"): 1}


def test_status_check_with_a_wrong_token_exits_1(api: FakeBackupsAPI, cli: Any) -> None:
    wrong = "wrong-token-but-long-enough-0000"

    code, out, err = cli("--token", wrong, "--base-url", api.base_url, "status", "--check")

    assert code == 1
    assert "the API refused the token" in out
    assert err.startswith("error: the API refused the token")
    assert wrong not in out + err


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no pseudo-terminals (pty)")
def test_status_fits_80_columns_on_a_terminal(
    api: FakeBackupsAPI, config_home: Path, tmp_path: Path
) -> None:
    two_profiles(config_home, api)
    env = environment(config_home, ASYNCBACKUPS_PROFILE="staging")

    done = run_in_terminal("status", env=env, columns=80)

    assert done.code == 0, done.out
    assert max(len(line) for line in done.out.splitlines()) <= 80
    assert "********WXYZ" in done.out
    assert TOKEN not in done.out


def test_status_is_listed_in_the_help(cli: Any) -> None:
    _, out, _ = cli("--help")

    listed = [line.split(None, 1) for line in out.splitlines() if line.startswith("  status ")]
    assert listed == [["status", "Show the profile, base URL and token in use (token masked)."]]


# -- token files others can read ----------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_token_file_others_can_read_draws_a_warning_as_ssh_gives(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    token = write_token(config_home, mode=0o644)

    code, out, err = cli("--token-file", str(token), "--base-url", api.base_url, "list")

    assert code == 0
    assert "501" in out
    assert err == (
        f"warning: the token file {str(token)!r} (--token-file) is open to group or others "
        f"(mode 0644); make it private: chmod 600 {token}\n"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_private_token_file_draws_no_warning(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    token = write_token(config_home, mode=0o600)

    code, _, err = cli("--token-file", str(token), "--base-url", api.base_url, "list")

    assert (code, err) == (0, "")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_warning_is_json_under_json_and_status_lists_it(
    api: FakeBackupsAPI, cli: Any, config_home: Path
) -> None:
    two_profiles(config_home, api)
    (config_home / "asyncbackups" / "staging.token").chmod(0o640)

    code, out, err = cli("--profile", "staging", "list", "--json")
    assert code == 0
    assert json.loads(out)[0]["id"] == 501
    [warning] = [json.loads(line)["warning"] for line in err.splitlines()]
    assert "(profile 'staging') is open to group or others (mode 0640)" in warning["message"]

    code, out, err = cli("--profile", "staging", "status", "--json")
    assert code == 0
    [listed] = json.loads(out)["warnings"]
    assert "mode 0640" in listed
    assert err == ""  # said once, in the report itself


def test_status_reports_a_config_file_no_command_reads_and_exits_0(
    api: FakeBackupsAPI, cli: Any, config_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(config_home, "[profiles.staging\n")
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", TOKEN)
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)

    code, out, _ = cli("status", "--json")

    document = json.loads(out)
    assert code == 0  # flags and environment say everything: the commands work
    assert document["problem"] is None
    assert document["config_error"].startswith(f"{path} is not valid TOML")


def test_status_help_fits_80_columns_with_an_example(cli: Any) -> None:
    code, out, _ = cli("status", "--help")

    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "examples:\n  asyncbackups status\n" in out
    assert "--check" in out
