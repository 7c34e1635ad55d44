"""Every example of README.md and docs/ runs, against the fake API.

Python blocks are found and run with pytest-examples (pydantic's); shell blocks are run
by bash. A block's fence says how it is treated (the guide for writers is
docs/contributing/docs.md):

```` ```python ````
    Run. A block with ``await``, ``async for`` or ``async with`` at its top level runs
    as the body of an ``async def``; any other block runs as a script (``__name__`` is
    ``"__main__"``, so ``asyncio.run(main())`` and ``sys.exit(...)`` work; exit status 0
    passes). Either way these names are already defined (and nothing else: a block
    imports what it uses):

    - ``client``: a ``BackupsClient`` connected to the fake, closed after the block;
    - ``server_ids``: ``[1, 2, 3]``, servers without backups yet (also in ``servers.txt``);
    - ``api``: the ``FakeBackupsAPI`` itself;
    - ``ctx``: a chat command's context (``await ctx.send(text)`` returns a message with
      ``await message.edit(content=...)``), for the chat-bot recipe.

    The examples' event loops keep time ``CLOCK_SPEED`` times fast (``asyncio.run`` makes
    them so), so a wait's default 2-second poll interval passes in a tenth of a second.
    The fake holds the API documentation's sample data (server 12345 with backups 501,
    499 and 495; a create makes 502) and accepts the token ``YOUR_API_TOKEN``, which is
    also ``$ASYNCBACKUPS_TOKEN`` (``$ASYNCBACKUPS_BASE_URL`` points at the fake). A new
    backup is ``in_progress`` in the create's answer and completed by the next read, so
    waits return at once. The working directory is a fresh one holding ``servers.txt``,
    and ``examples/`` is importable (``from dask_fleet import backup_fleet``).

    A block with ``#>`` lines has its printed output checked against them: each
    ``print(...)`` is followed by ``#>`` lines showing what it prints.
```` ```python {test="pytest"} ````
    A test module: it is written to a fresh directory (a user's project: no
    configuration, so pytest-asyncio is in strict mode) and run by pytest there.
```` ```python {test="skip"} ````
    Illustration only, not run (say why in the text: it needs a real cluster, say).
```` ```console {test="run"} ```` (or ``bash``, ``sh``, ``shell``)
    Run by ``bash -euo pipefail`` in the same setting (the ``asyncbackups`` and
    ``python`` of this interpreter first on ``PATH``, no terminal on stdin, the
    environment pointing at the fake); it passes on exit status 0.
```` ```console {test="skip"} ````
    Not run: it installs packages, starts a server that runs until Ctrl-C, or needs an
    account on the real API.

A shell block must say which (an unmarked one fails): running ``pip install`` or a
server by default would be wrong, and skipping silently would leave it untested.

README.md blocks that fail as written today are expected to fail (``KNOWN_BROKEN``,
strict): each names the fix proposed for the README; when the README is fixed, remove
the entry (a block that starts passing fails the run until then).
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import re
import selectors
import subprocess
import sys
import textwrap
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_examples.run_code
from pytest_examples import CodeExample, EvalExample, find_examples

from asyncbackups import BackupsClient
from asyncbackups.testing import FakeBackupsAPI

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOC_TOKEN = "YOUR_API_TOKEN"
SERVER_IDS = [1, 2, 3]
LINE_LENGTH = 100  # the project's (pyproject.toml, [tool.ruff])
CLOCK_SPEED = 20.0
SHELL_LANGUAGES = ("console", "bash", "sh", "shell")
SETTING = re.compile(r"""\btest=(["'])(?P<mode>[a-z]+)\1""")
SHELL_BLOCK = re.compile(
    r"^(?P<indent> *)```(?P<language>[a-z]+)(?P<info>[^\n]*)\n(?P<source>.*?)^(?P=indent)```",
    re.MULTILINE | re.DOTALL,
)
MODES = {"run", "pytest", "skip"}
SHELL_MODES = {"run", "skip"}

# README.md blocks that fail as written today: a piece of the block -> the fix proposed
# (the README's owners have the exact text). Remove an entry once the README is fixed.
KNOWN_BROKEN: dict[str, str] = {}
# Known-broken blocks too slow to run (a Dask client waits 30 s for its scheduler).
NOT_RUN = ('Client("tcp://scheduler:8786")',)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _mode(info: str, *, shell: bool = False) -> str:
    match = SETTING.search(info)
    modes = SHELL_MODES if shell else MODES
    if match is None and shell:
        raise ValueError('a shell block says {test="run"} or {test="skip"} after its language')
    mode = match["mode"] if match else "run"
    if mode not in modes:
        raise ValueError(f"unknown test={mode!r} (use one of {sorted(modes)})")
    return mode


def _known_broken(path: Path, source: str) -> list[pytest.MarkDecorator]:
    if path.name != "README.md":
        return []
    reasons = [reason for piece, reason in KNOWN_BROKEN.items() if piece in source]
    run = not any(piece in source for piece in NOT_RUN)
    return [pytest.mark.xfail(reason=reasons[0], strict=True, run=run)] if reasons else []


def _python_examples() -> Iterator[Any]:
    for example in find_examples(*DOC_FILES):
        yield pytest.param(
            example,
            id=f"{_relative(example.path)}:{example.start_line}",
            marks=_known_broken(example.path, example.source),
        )


@dataclass
class ShellExample:
    """A ```console (or bash, sh, shell) block."""

    path: Path
    start_line: int
    info: str
    source: str


def _shell_examples() -> Iterator[Any]:
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        for match in SHELL_BLOCK.finditer(text):
            if match["language"] not in SHELL_LANGUAGES:
                continue
            line = text.count("\n", 0, match.start()) + 1
            source = textwrap.dedent(match["source"])
            example = ShellExample(path, line, match["info"], source)
            yield pytest.param(
                example,
                id=f"{_relative(path)}:{line}",
                marks=_known_broken(path, source),
            )


PYTHON_EXAMPLES = list(_python_examples())
SHELL_EXAMPLES = list(_shell_examples())


@dataclass
class Message:
    """A chat message a bot sent: its text, edited in place."""

    content: str
    edits: list[str] = field(default_factory=list)

    async def edit(self, *, content: str) -> None:
        """Replace the text, as a chat service's message edit does."""
        self.edits.append(content)
        self.content = content


@dataclass
class ChatContext:
    """The context a chat framework hands a command: where to answer."""

    sent: list[Message] = field(default_factory=list)

    async def send(self, content: str) -> Message:
        """Post a message and return it, so it can be edited later."""
        message = Message(content)
        self.sent.append(message)
        return message


class _FastSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """Waits ``CLOCK_SPEED`` times shorter than asked: the loop's clock runs that fast."""

    def select(self, timeout: float | None = None) -> Any:
        return super().select(None if timeout is None else timeout / CLOCK_SPEED)


class _FastClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs ``CLOCK_SPEED`` times fast, sleeps and timeouts too."""

    def __init__(self) -> None:
        super().__init__(selector=_FastSelector())

    def time(self) -> float:
        return super().time() * CLOCK_SPEED


def _fast_run(main: Coroutine[Any, Any, Any], *, debug: bool | None = None) -> Any:
    """``asyncio.run`` on a fast-clock loop."""
    with asyncio.Runner(debug=debug, loop_factory=_FastClockLoop) as runner:
        return runner.run(main)


@dataclass
class DocsSetting:
    """What every example runs against: the fake API and a fresh working directory."""

    api: FakeBackupsAPI
    directory: Path
    env: dict[str, str]


@pytest.fixture
def docs_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocsSetting]:
    """The fake API in a background thread, the environment and cwd pointing at it."""
    api = FakeBackupsAPI(token=DOC_TOKEN, backup_seconds=1e-6)
    for server_id in SERVER_IDS:
        api.add_server(server_id)
    directory = tmp_path / "work"
    directory.mkdir()
    (directory / "servers.txt").write_text("".join(f"{i}\n" for i in SERVER_IDS))
    for name in list(os.environ):
        if name.startswith("ASYNCBACKUPS_") or name.upper() in {"HTTP_PROXY", "HTTPS_PROXY"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(directory)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    logger = logging.getLogger("asyncbackups")
    root_logger = logging.getLogger()
    saved_logging = (root_logger.level, root_logger.handlers[:], logger.level, logger.handlers[:])
    saved_main = sys.modules.get("__main__")
    with api:
        monkeypatch.setattr(asyncio, "run", _fast_run)  # after the fake's own loop started
        monkeypatch.setenv("ASYNCBACKUPS_TOKEN", DOC_TOKEN)
        monkeypatch.setenv("ASYNCBACKUPS_BASE_URL", api.base_url)
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "COLUMNS": "100",
            "NO_COLOR": "1",
        }
        try:
            yield DocsSetting(api, directory, env)
        finally:
            root_logger.setLevel(saved_logging[0])
            root_logger.handlers[:] = saved_logging[1]
            logger.setLevel(saved_logging[2])
            logger.handlers[:] = saved_logging[3]
            if saved_main is not None:
                sys.modules["__main__"] = saved_main


def _awaits_at_top_level(source: str) -> bool:
    """Whether the block awaits outside any function of its own (so needs a running loop)."""
    pending = list(ast.iter_child_nodes(ast.parse(source)))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Await | ast.AsyncFor | ast.AsyncWith):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
    return False


def _as_coroutine(example: CodeExample) -> CodeExample:
    """The block as the body of ``async def main()``, the client closed after it."""
    body = textwrap.indent(example.source, " " * 8, lambda line: bool(line.strip()))
    source = f"async def main():\n    try:\n{body}    finally:\n        await __close__()\n"
    return CodeExample.create(
        source, path=example.path, start_line=example.start_line - 2, prefix=example.prefix
    )


def _run(
    eval_example: EvalExample, example: CodeExample, names: dict[str, Any], call: str | None
) -> None:
    __tracebackhide__ = True
    where = f"in the example at {_relative(example.path)}:{example.start_line}"
    try:
        if "#>" in example.source:
            eval_example.run_print_check(example, module_globals=names, call=call)
        else:
            eval_example.run(example, module_globals=names, call=call)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            pytest.fail(f"{where}: exited with status {exit_.code}")
    except Exception as exc:
        exc.add_note(where)
        raise


@pytest.fixture(autouse=True)
def _plain_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a failing example's own traceback.

    pytest-examples rebuilds it to point into the Markdown file, with frames whose line
    tables are wrong on Python 3.11 (pytest then dies formatting the report); the
    example's location is added as a note instead.
    """
    monkeypatch.setattr(pytest_examples.run_code, "create_example_traceback", _no_traceback)


def _no_traceback(*args: object) -> None:
    return None


@pytest.mark.parametrize("example", PYTHON_EXAMPLES)
def test_python_example(
    example: CodeExample, eval_example: EvalExample, docs_setting: DocsSetting
) -> None:
    mode = _mode(example.prefix)
    if mode == "skip":
        pytest.skip('illustration only: {test="skip"}')
    if mode == "pytest":
        _run_as_pytest_module(example, docs_setting)
        return
    client = BackupsClient(DOC_TOKEN, base_url=docs_setting.api.base_url)
    names: dict[str, Any] = {
        "client": client,
        "server_ids": list(SERVER_IDS),
        "api": docs_setting.api,
        "ctx": ChatContext(),
        "__close__": client.aclose,
    }
    # Printed output wider than this is shown as a block (pytest-examples' rule); the body
    # of the wrapping function is 8 columns further right, so it gets 8 more.
    wrapped = _awaits_at_top_level(example.source)
    eval_example.set_config(line_length=LINE_LENGTH + (8 if wrapped else 0))
    if wrapped:
        _run(eval_example, _as_coroutine(example), names, "main")
    else:
        names.pop("__close__")
        _run(eval_example, example, names, None)
        asyncio.run(client.aclose())


def _run_as_pytest_module(example: CodeExample, setting: DocsSetting) -> None:
    project = setting.directory / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_example.py").write_text(example.source)
    env = {k: v for k, v in setting.env.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b[1-9]\d* passed\b", done.stdout), done.stdout


@pytest.mark.parametrize("example", SHELL_EXAMPLES)
def test_shell_example(example: ShellExample, docs_setting: DocsSetting) -> None:
    if _mode(example.info, shell=True) == "skip":
        pytest.skip('not run: {test="skip"}')
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example.source],
        cwd=docs_setting.directory,
        env=docs_setting.env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"exit status {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


def test_every_block_is_found() -> None:
    """The finders see the blocks the files hold: a fence they miss is an untested example."""
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        fences = [
            m
            for m in SHELL_BLOCK.finditer(text)
            if m["language"] in (*SHELL_LANGUAGES, "python", "py")
        ]
        found = [p for p in PYTHON_EXAMPLES + SHELL_EXAMPLES if p.values[0].path == path]
        assert len(found) == len(fences), _relative(path)
