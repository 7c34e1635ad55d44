"""CI's configuration holds together: one pin per tool, and CI runs every session it claims.

These read pyproject.toml, noxfile.py and .ci/run as text; nothing here runs nox.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("ruff", "mypy", "import-linter", "nox", "uv")


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()


def test_each_tool_is_pinned_exactly_once_in_the_extras() -> None:
    extras: dict[str, list[str]] = _pyproject()["project"]["optional-dependencies"]
    found = [req for reqs in extras.values() for req in reqs if _name(req) in TOOLS]
    assert sorted(_name(req) for req in found) == sorted(TOOLS), found
    assert all(re.fullmatch(r"[a-z-]+==[\w.]+", req) for req in found), found


def test_the_nox_sessions_install_no_tool_of_their_own() -> None:
    """A session installs the project's extras, never a tool named with a version of its own."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "install":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    assert _name(arg.value) not in TOOLS, arg.value


def test_ci_runs_the_suite_on_every_claimed_python_and_every_check() -> None:
    run = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in _pyproject()["project"]["classifiers"]
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert claimed
    for session in [*(f"tests-{v}" for v in claimed), "lint", "typecheck", "docs"]:
        assert re.search(rf"(?<![\w.-]){re.escape(session)}(?![\w.-])", run), session


def test_coverage_has_a_floor_near_what_the_suite_covers() -> None:
    # 90.1% when the floor was set; the floor may only rise from there.
    assert _pyproject()["tool"]["coverage"]["report"]["fail_under"] >= 89.5
