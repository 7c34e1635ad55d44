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
    # The fake API (testing/) is a server of its own, and the command line a user
    # program; every other module is the client's.
    client_modules = [
        path
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] not in ("testing", "_cli")
    ]
    importers = sorted(
        path.relative_to(PACKAGE).as_posix()
        for path in client_modules
        if any(name.split(".")[0] == "aiohttp" for name in imported_modules(path))
    )
    assert importers == ["_transport/http.py"]


def test_the_package_is_grouped_by_layer_with_no_flat_private_modules() -> None:
    # ls asyncbackups/ is the map: the layers as packages, and only the entry points
    # beside them. A new module goes into the package of what it holds.
    flat = sorted(path.name for path in PACKAGE.glob("_*.py"))
    assert flat == ["__init__.py", "__main__.py", "_client.py", "_version.py"]
    layers = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    assert layers == [
        "_calls",
        "_cli",
        "_core",
        "_decoding",
        "_resources",
        "_transport",
        "_waiting",
        "testing",
    ]


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
