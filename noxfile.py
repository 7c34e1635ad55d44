"""Developer sessions: `nox -s tests typecheck lint`, and `nox -s bench` for the benchmarks."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "typecheck", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = [v for v in ("3.11", "3.12", "3.13") if shutil.which(f"python{v}")]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with line and branch coverage of the package."""
    session.install("-e", ".[test]")
    # coverage run, not pytest --cov: the package's pytest plugin imports it before a
    # pytest plugin could start measuring, which would miss every import-time line.
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "report")


@nox.session(python=PYTHONS[:1])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[test,cli]", "mypy>=1.10")
    session.run("mypy")


@nox.session(python=PYTHONS[:1])
def lint(session: nox.Session) -> None:
    """ruff lint and format check on everything we ship."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "asyncbackups", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "asyncbackups", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHONS[:1])
def bench(session: nox.Session) -> None:
    """Run every benchmark: each prints a table and writes JSON under benchmarks/results/."""
    session.install("-e", ".[fast,cli]", "httpx", "requests", "matplotlib")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
