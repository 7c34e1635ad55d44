"""The docstrings are the API reference: every public object has one, with a summary line.

The reference pages (``docs/reference/``) are generated from these docstrings by
mkdocstrings, so a public object without one is a hole in the documentation. What counts
as public: every name in ``asyncbackups.__all__`` and ``asyncbackups.testing.__all__``;
for a class, every public method, property, classmethod and staticmethod it (or a base
class of this package) defines; and the classes a client hands out as attributes
(``client.backups``, ``client.servers`` and their ``with_raw_response``). A constant
counts too: it needs an attribute docstring, a string literal right after its assignment.

A docstring passes when its first line is a one-line summary: not empty, at most
:data:`SUMMARY_MAX` characters, and followed by a blank line or nothing (PEP 257).

``KNOWN_MISSING`` lists what lacks one today, for the SDK's owners to write: the test
fails for an object missing from it, and for one that has gained its docstring (remove it
from the list then), so the list only ever shrinks.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncbackups
import asyncbackups.testing

SUMMARY_MAX = 120
PACKAGE = "asyncbackups"

# Public objects without a usable docstring today, by dotted name (see the module docstring).
KNOWN_MISSING: frozenset[str] = frozenset()


def _defined_here(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == PACKAGE


def _unwrap(member: Any) -> Any:
    if isinstance(member, (classmethod, staticmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member


def _class_members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public callables and properties the class or its in-package bases define."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not _defined_here(klass):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            target = _unwrap(member)
            if isinstance(cls, enum.EnumMeta) and isinstance(member, cls):
                continue  # an enum member is a value, documented by its class
            if inspect.isfunction(target) or isinstance(member, property):
                yield name, target


def _constant_documented(module: ModuleType, name: str) -> bool:
    """Whether ``name = ...`` in the module's source is followed by a string literal."""
    tree = ast.parse(inspect.getsource(module))
    body = tree.body
    for index, node in enumerate(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            following = body[index + 1] if index + 1 < len(body) else None
            return (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                and bool(following.value.value.strip())
            )
    return False


def _source_module(package: ModuleType, name: str) -> ModuleType | None:
    """The module a package's ``__init__`` imports ``name`` from (for constants)."""
    tree = ast.parse(inspect.getsource(package))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            return importlib.import_module("." * node.level + (node.module or ""), package.__name__)
    return None


def _public_objects() -> Iterator[tuple[str, Any, ModuleType]]:
    for package in (asyncbackups, asyncbackups.testing):
        for name in package.__all__:
            yield f"{package.__name__}.{name}", getattr(package, name), package
    client = asyncbackups.BackupsClient("docstring-check")
    for attribute in (
        client.backups,
        client.servers,
        client.backups.with_raw_response,
        client.servers.with_raw_response,
    ):
        cls = type(attribute)
        yield f"{cls.__module__}.{cls.__qualname__}", cls, asyncbackups


def _problem(obj: Any) -> str | None:
    """Why ``obj``'s docstring does not pass, or None when it does."""
    doc = inspect.getdoc(obj) if obj is not None else None
    if isinstance(obj, type) and doc is not None and _inherited_doc(obj):
        doc = None
    if not doc or not doc.strip():
        return "no docstring"
    lines = doc.strip().splitlines()
    if len(lines[0]) > SUMMARY_MAX:
        return f"summary line longer than {SUMMARY_MAX} characters"
    if len(lines) > 1 and lines[1].strip():
        return "the summary is not one line followed by a blank line"
    return None


def _inherited_doc(cls: type) -> bool:
    """Whether the class only inherits its docstring (``inspect.getdoc`` looks up the MRO)."""
    return "__doc__" not in vars(cls) or vars(cls)["__doc__"] is None


def _survey() -> dict[str, str]:
    """Every public object that fails, by dotted name, with why."""
    problems: dict[str, str] = {}
    for dotted, obj, package in _public_objects():
        if inspect.isclass(obj):
            problem = _problem(obj)
            if problem:
                problems[dotted] = problem
            for member_name, member in _class_members(obj):
                problem = _problem(member)
                if problem:
                    problems[f"{dotted}.{member_name}"] = problem
        elif inspect.isfunction(obj) or inspect.ismethod(obj):
            problem = _problem(obj)
            if problem:
                problems[dotted] = problem
        elif isinstance(obj, ModuleType):
            continue
        else:  # a constant: documented by an attribute docstring beside its assignment
            name = dotted.rsplit(".", 1)[1]
            module = _source_module(package, name)
            if module is None or not _constant_documented(module, name):
                problems[dotted] = "no attribute docstring after its assignment"
    return problems


SURVEY = _survey()


def test_the_survey_found_the_public_api() -> None:
    names = {dotted for dotted, _, _ in _public_objects()}
    assert "asyncbackups.BackupsClient" in names
    assert "asyncbackups.testing.FakeBackupsAPI" in names
    assert len(names) >= len(asyncbackups.__all__) + len(asyncbackups.testing.__all__)


def test_every_public_object_has_a_docstring_with_a_summary_line() -> None:
    new = {name: why for name, why in SURVEY.items() if name not in KNOWN_MISSING}
    assert not new, "public objects without a usable docstring:\n" + "\n".join(
        f"  {name}: {why}" for name, why in sorted(new.items())
    )


def test_known_missing_lists_only_what_is_still_missing() -> None:
    fixed = sorted(KNOWN_MISSING - SURVEY.keys())
    assert not fixed, f"these have docstrings now; remove them from KNOWN_MISSING: {fixed}"


def test_the_reference_pages_cover_every_public_name() -> None:
    root = Path(__file__).resolve().parent.parent
    reference = "\n".join(p.read_text() for p in sorted((root / "docs").rglob("*.md")))
    missing = [
        f"{package.__name__}.{name}"
        for package in (asyncbackups, asyncbackups.testing)
        for name in package.__all__
        if f"::: {package.__name__}.{name}" not in reference and not name.startswith("__")
    ]
    assert not missing, f"no `::: name` block in docs/ for: {missing}"
