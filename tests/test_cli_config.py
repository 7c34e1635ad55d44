"""Where the command line finds its token and URL: flags, environment, profiles.

Precedence for every setting: flag > environment > profile > default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncbackups._cli import main
from asyncbackups.testing import FakeBackupsAPI

TOKEN = "config-test-token-77"
DEAD_URL = "http://127.0.0.1:9/api/v1/"  # nothing listens on the discard port


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "ASYNCBACKUPS_TOKEN",
        "ASYNCBACKUPS_BASE_URL",
        "ASYNCBACKUPS_TOKEN_FILE",
        "ASYNCBACKUPS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    config_home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home


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


def token_file(tmp_path: Path, token: str = TOKEN, name: str = "token") -> Path:
    path = tmp_path / name
    path.write_text(f"{token}\n", encoding="utf-8")
    path.chmod(0o600)  # private, as a token file should be (else a warning on stderr)
    return path


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "asyncbackups" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def listed(out: str) -> list[int]:
    return [backup["id"] for backup in json.loads(out)]


def test_token_file_flag(api: FakeBackupsAPI, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(
        "list", "--json", "--token-file", str(token_file(tmp_path)), "--base-url", api.base_url
    )

    assert (code, err) == (0, "")
    assert listed(out) == [501, 499, 495]


def test_token_file_from_the_environment(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN_FILE", str(token_file(tmp_path)))
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)

    code, out, _ = cli("list", "--json")

    assert code == 0
    assert listed(out) == [501, 499, 495]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "No such file"), ("\n  \n", "is empty"), ("two words\n", "more than one word")],
    ids=["missing", "empty", "two-words"],
)
def test_an_unusable_token_file_is_a_usage_error_naming_it(
    cli: Any, tmp_path: Path, content: str | None, fragment: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    code, out, err = cli("list", "--token-file", str(path), "--base-url", DEAD_URL)

    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert str(path) in err
    assert fragment in err
    assert len(err.splitlines()) == 1


def test_token_and_token_file_together_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("list", "--token", "tok-123", "--token-file", str(token_file(tmp_path)))

    assert code == 2
    assert "not both" in err


def test_a_profile_gives_the_url_and_the_token_file(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        f'[profiles.staging]\nbase_url = "{api.base_url}"\ntoken_file = "staging.token"\n'
        f'[profiles.production]\nbase_url = "{DEAD_URL}"\n',
    )
    token_file(config.parent, name="staging.token")  # relative: beside the config file
    write_config(
        tmp_path,
        f'[profiles.staging]\nbase_url = "{api.base_url}"\ntoken_file = "staging.token"\n'
        f'[profiles.production]\nbase_url = "{DEAD_URL}"\n',
    )

    code, out, err = cli("--profile", "staging", "list", "--json")

    assert (code, err) == (0, "")
    assert listed(out) == [501, 499, 495]


def test_the_profile_can_come_from_the_environment(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path,
        f'[staging]\nbase_url = "{api.base_url}"\ntoken_file = "{token_file(tmp_path)}"\n',
    )
    monkeypatch.setenv("ASYNCBACKUPS_PROFILE", "staging")

    code, out, _ = cli("list", "--json")

    assert code == 0
    assert listed(out) == [501, 499, 495]


def test_the_default_profile_applies_when_none_is_named(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path
) -> None:
    write_config(
        tmp_path,
        f'[profiles.default]\nbase_url = "{api.base_url}"\ntoken_file = "{token_file(tmp_path)}"\n',
    )

    code, out, _ = cli("list", "--json")

    assert code == 0
    assert listed(out) == [501, 499, 495]


def test_flag_beats_environment_beats_profile(
    api: FakeBackupsAPI, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path,
        f'[profiles.default]\nbase_url = "{DEAD_URL}"\n'
        f'token_file = "{token_file(tmp_path, "profile-token")}"\n',
    )
    monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)  # beats the profile's URL
    monkeypatch.setenv("ASYNCBACKUPS_TOKEN", "environment-token")  # beats its token file

    by_environment = cli("list", "--json")
    by_flag = cli("list", "--json", "--token", TOKEN)  # beats the environment's token

    assert by_environment[0] == 1
    assert "401" in by_environment[2]
    assert by_flag[0] == 0
    assert listed(by_flag[1]) == [501, 499, 495]


def test_an_unknown_profile_suggests_the_nearest(cli: Any, tmp_path: Path) -> None:
    write_config(tmp_path, '[profiles.staging]\nbase_url = "https://x.example/api/v1/"\n')

    code, _, err = cli("--profile", "stagin", "list")

    assert code == 2
    assert "no profile 'stagin'" in err
    assert "did you mean 'staging'?" in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[profiles.a]\nbase_ur = "https://x.example/"\n', "did you mean 'base_url'?"),
        ("[profiles.a\n", "not valid TOML"),
    ],
    ids=["unknown-key", "bad-toml"],
)
def test_a_bad_config_file_is_a_usage_error(
    cli: Any, tmp_path: Path, text: str, fragment: str
) -> None:
    write_config(tmp_path, text)

    code, _, err = cli("--profile", "a", "list")

    assert code == 2
    assert fragment in err
    assert len(err.splitlines()) == 1


def test_a_profile_named_without_a_config_file_is_a_usage_error(cli: Any) -> None:
    code, _, err = cli("--profile", "staging", "list")

    assert code == 2
    assert "no config file" in err


def test_debug_logs_requests_on_stderr_without_the_token(api: FakeBackupsAPI, cli: Any) -> None:
    code, out, err = cli("-v", "list", "--token", TOKEN, "--base-url", api.base_url, "--json")

    assert code == 0
    assert json.loads(out)
    assert "debug: asyncbackups" in err
    assert "GET " in err
    assert "/api/v1/backups/ attempt 1 -> 200" in err
    assert TOKEN not in err
