"""Developer sessions, the same ones CI (`.ci/run`) runs.

- ``nox -s tests``: the whole suite on every Python found of 3.11, 3.12 and 3.13, each in
  its own virtualenv, installing ``.[test]``. The first (3.11 in CI) runs under
  coverage, which then reports and fails under the ``fail_under`` floor of
  ``[tool.coverage.report]`` in pyproject.toml. The others run plain pytest: same
  tests, no coverage. ``nox -s tests-3.12`` runs one Python;
  ``nox -s tests -- -k wait`` passes arguments to pytest.
- ``nox -s typecheck``: mypy --strict on the package.
- ``nox -s lint``: ruff check, ruff format --check, and lint-imports (the import contracts).
- ``nox -s docs``: the documentation site, ``mkdocs build --strict``.
- ``nox -s bench``: the benchmarks (never in CI).

CI runs every session but bench, in three lanes: lint, typecheck, docs and then
tests-3.11 in one; tests-3.12 and tests-3.13 in the others (see .ci/run).

Tool versions live once, in pyproject.toml's extras: ruff and import-linter in ``lint``,
mypy in ``typecheck``, nox and uv in ``dev`` (`.ci/run` reads them from there). Sessions
install those extras, never a version of their own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "typecheck", "lint"]
nox.options.reuse_existing_virtualenvs = True
# uv builds each virtualenv in seconds where pip takes most of a minute; nox falls back to
# virtualenv and pip where uv is not installed.
nox.options.default_venv_backend = "uv|virtualenv"

# The suite starts hundreds of Python processes (the command line, the fake API, Dask
# workers); where the environment forbids writing bytecode, each would compile aiohttp,
# click, rich and Dask afresh. Cached once, they start in about half the CPU time.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

ALL_PYTHONS = ("3.11", "3.12", "3.13")
LINTED = ("asyncbackups", "tests", "benchmarks", "examples", "noxfile.py")


def _find_python(version: str) -> bool:
    """Whether ``python<version>`` runs; pyenv installs not activated are put on PATH."""
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
        return True
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    installed = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    if not installed:
        return False
    os.environ["PATH"] = os.path.dirname(installed[-1]) + os.pathsep + os.environ["PATH"]
    return True


PYTHONS = [version for version in ALL_PYTHONS if _find_python(version)]
MISSING = [version for version in ALL_PYTHONS if version not in PYTHONS]
if MISSING and os.environ.get("CI"):
    # A developer may lack a version; CI must not pass by testing fewer than it claims.
    raise SystemExit(f"noxfile: CI needs Python {', '.join(MISSING)}, not found")
# The Python whose run installs the optional extras and is measured for coverage.
COVERAGE_PYTHON = PYTHONS[0] if PYTHONS else ALL_PYTHONS[0]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite; on the first Python, under coverage."""
    session.install("-e", ".[test]")
    if session.python == COVERAGE_PYTHON:
        # coverage run, not pytest --cov: the package's pytest plugin imports it before a
        # pytest plugin could start measuring, which would miss every import-time line.
        session.run("coverage", "run", "-m", "pytest", *session.posargs)
        # The floor, [tool.coverage.report] fail_under, holds for the whole suite only.
        floor = ["--fail-under=0"] if session.posargs else []
        session.run("coverage", "report", *floor)
    else:
        # The README's test command, in this session's fresh virtualenv.
        session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS[:1])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, with every optional dependency installed."""
    session.install("-e", ".[test,cli,fast,typecheck]")
    session.run("mypy")


@nox.session(python=PYTHONS[:1])
def lint(session: nox.Session) -> None:
    """ruff lint and format check on everything we ship, and the import contracts."""
    # The package itself too: lint-imports reads the import graph of the installed package.
    session.install("-e", ".[lint]")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)
    session.run("lint-imports")


@nox.session(python=PYTHONS[:1])
def docs(session: nox.Session) -> None:
    """Build the documentation site, strictly: `nox -s docs` (`-- serve` for a live preview).

    `mkdocs build --strict` fails on any warning: a broken link or cross-reference, a
    missing image, snippet or help text. The site lands in build/site/. The build needs
    no network: the theme's assets are in its package.
    """
    # cli: the pages' help texts come from `python -m asyncbackups` (docs/_hooks/cli_help.py).
    session.install("-e", ".[docs,cli]")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # Material's banner about MkDocs 2, not ours
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session(python=PYTHONS[:1])
def bench(session: nox.Session) -> None:
    """Run every benchmark: each prints a table and writes JSON under benchmarks/results/."""
    session.install("-e", ".[fast,cli]", "httpx", "requests", "matplotlib")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
