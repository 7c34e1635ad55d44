"""Helpers for the command line's process-level tests, and a test of the helpers.

``run_cli`` runs ``python -m asyncbackups`` with pipes; ``run_in_terminal`` runs it in a
pseudo-terminal of a given width (the ``pty`` module), typing answers to its questions.
Both start from an environment without any ``ASYNCBACKUPS_*`` variable and with an empty
config directory, so nothing on the machine running the tests leaks in.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Generous bounds for a slow machine; these runs normally take a fraction of them.
DEADLINE_SECONDS = 20.0
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Z0-9]|[=>78])")


def environment(config_home: Path | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without ``ASYNCBACKUPS_*``, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ASYNCBACKUPS_")}
    for key in ("COLUMNS", "LINES", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONWARNINGS"] = "default"  # a leak would be seen on stderr
    if config_home is not None:
        env["XDG_CONFIG_HOME"] = str(config_home)
    env.update(extra)
    return env


@dataclass
class Done:
    """How a process ended and what it wrote."""

    code: int
    out: str
    err: str = ""
    raw: bytes = b""  # a terminal's bytes as written, escapes and all


def run_cli(
    *argv: str,
    env: Mapping[str, str],
    stdin: str | None = None,
    timeout: float = DEADLINE_SECONDS,
) -> Done:
    """Run ``python -m asyncbackups ARGV`` with pipes (stdin empty unless given)."""
    done = subprocess.run(
        [sys.executable, "-m", "asyncbackups", *argv],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
        check=False,
    )
    return Done(done.returncode, done.stdout, done.stderr)


def run_in_terminal(
    *argv: str,
    env: Mapping[str, str],
    columns: int = 80,
    rows: int = 40,
    answers: Sequence[tuple[str, str]] = (),
    when: Sequence[tuple[bytes, Callable[[bytes], None]]] = (),
    timeout: float = DEADLINE_SECONDS,
) -> Done:
    """Run ``python -m asyncbackups ARGV`` in a pseudo-terminal ``columns`` wide.

    stdin, stdout and stderr are all the terminal. ``answers`` are ``(prompt, typed)``
    pairs: once ``prompt`` shows, ``typed`` is typed. ``when`` are ``(needle, action)``
    pairs: once ``needle`` shows, ``action`` is called with the screen so far, and each
    must show before the command ends. Returns the exit status and the
    screen's text with colours and cursor moves taken out (``\\r\\n`` made ``\\n``).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environment = dict(env)
    environment.update(COLUMNS=str(columns), LINES=str(rows), TERM="xterm-256color")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "asyncbackups", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment,
            start_new_session=True,
        )
    finally:
        os.close(slave)
    screen = b""
    pending = list(answers)
    watched = list(when)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"the command did not end in time; screen so far: {screen!r}"
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(master, 65_536)
                except OSError:  # EIO: every holder of the terminal's other end is gone
                    chunk = b""
                if not chunk:
                    break
                screen += chunk
                if pending and pending[0][0].encode() in screen:
                    os.write(master, pending.pop(0)[1].encode())
                while watched and watched[0][0] in screen:
                    watched.pop(0)[1](screen)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert not watched, f"never shown: {[needle for needle, _ in watched]}"
    text = screen.decode("utf-8", "replace").replace("\r\n", "\n")
    return Done(code, ANSI.sub("", text), raw=screen)


def test_the_terminal_helper_gives_a_terminal_of_the_width_asked(tmp_path: Path) -> None:
    done = run_in_terminal("--help", env=environment(tmp_path), columns=60)

    assert done.code == 0
    assert done.out.startswith("usage: asyncbackups")
    options = done.out.split("examples:")[0]  # click wraps these to the terminal's width
    assert max(len(line) for line in options.splitlines()) <= 60 < len(done.out.splitlines()[-1])


def start_cli(*argv: str, env: Mapping[str, str], stdin: bool = False) -> subprocess.Popen[bytes]:
    """Start ``python -m asyncbackups ARGV`` with pipes; stdin a pipe only if asked."""
    return subprocess.Popen(
        [sys.executable, "-m", "asyncbackups", *argv],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )


class Lines:
    """Reads a process's stdout a line at a time, never blocking past a deadline."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self._fd = process.stdout.fileno()
        self._buffer = b""

    def next(self, timeout: float = DEADLINE_SECONDS) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._fd], [], [], max(0, deadline - time.monotonic()))
            assert ready, "the process printed no line in time"
            chunk = os.read(self._fd, 65_536)
            assert chunk, "the process closed its output"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def rest(self, process: subprocess.Popen[bytes], timeout: float = DEADLINE_SECONDS) -> str:
        """Everything else it prints on stdout until it ends (it is then waited for)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "the process did not end in time"
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._fd, 65_536)
            if not chunk:
                break
            self._buffer += chunk
        process.wait(timeout=max(deadline - time.monotonic(), 1))
        text = self._buffer.decode()
        self._buffer = b""
        return text


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` if it still runs, reap it, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE_SECONDS) -> None:
    """Poll ``condition`` every few milliseconds until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)
