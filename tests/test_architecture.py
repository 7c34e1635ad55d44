"""The architecture's walls that import-linter cannot state, checked on the source."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import asyncbackups

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "asyncbackups"


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, absolute, relative ones resolved against its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_exactly_one_client_module_imports_aiohttp() -> None:
    importers = sorted(
        path.name
        for path in PACKAGE.glob("*.py")
        if any(name.split(".")[0] == "aiohttp" for name in imported_modules(path))
    )
    assert importers == ["_http.py"]


def test_benchmarks_use_only_public_names() -> None:
    private = {
        f"{path.name}: {name}"
        for path in (ROOT / "benchmarks").glob("*.py")
        for name in imported_modules(path)
        if name.startswith("asyncbackups.")
        and any(part.startswith("_") for part in name.split(".")[1:])
        and name.split(".")[1] not in asyncbackups.__all__
    }
    assert private == set()
