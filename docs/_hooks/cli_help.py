"""mkdocs hook: the command line's own ``--help`` text, put into the pages when built.

A page says ``<!-- cli-help -->`` for ``asyncbackups --help`` or
``<!-- cli-help: fleet -->`` for ``asyncbackups fleet --help``, alone on a line
(indented inside an admonition); the build replaces the marker with that output in a
``text`` block. So the Command line page follows the CLI as it changes, and a command
that disappears, or whose help fails, fails the build (a ``PluginError``).

The help is asked of ``python -m asyncbackups`` in the build's own interpreter (the one
``nox -s docs`` installed the package into), 88 columns wide, without colour.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mkdocs.exceptions import PluginError

MARKER = re.compile(
    r"^(?P<indent>[ \t]*)<!-- cli-help(?::\s*(?P<command>[a-z-]+))?\s*-->$",
    re.MULTILINE,
)
_cache: dict[str, str] = {}


def _help(command: str) -> str:
    argv = [
        sys.executable,
        "-m",
        "asyncbackups",
        *([command] if command else []),
        "--help",
    ]
    env = {**os.environ, "COLUMNS": "88", "NO_COLOR": "1", "TERM": "dumb"}
    for name in ("ASYNCBACKUPS_TOKEN", "ASYNCBACKUPS_BASE_URL", "ASYNCBACKUPS_PROFILE"):
        env.pop(name, None)
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        shown = " ".join(argv[1:])
        raise PluginError(
            f"`{shown}` exited {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done.stdout.rstrip()


def on_files(files: Any, config: Any) -> Any:
    """Forget the help an earlier build read (``mkdocs serve`` rebuilds in process)."""
    _cache.clear()
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each cli-help marker with the command's help text."""
    wanted = sorted(
        {match["command"] or "" for match in MARKER.finditer(markdown)} - _cache.keys()
    )
    if wanted:
        with ThreadPoolExecutor(max_workers=4) as pool:
            _cache.update(zip(wanted, pool.map(_help, wanted), strict=True))

    def block(match: re.Match[str]) -> str:
        text = f"```text\n{_cache[match['command'] or '']}\n```"
        return "\n".join(
            match["indent"] + line if line else line for line in text.split("\n")
        )

    return MARKER.sub(block, markdown)
