"""Developer sessions: `nox -s tests typecheck lint`, and `nox -s bench` for the benchmarks."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import nox

nox.options.sessions = ["tests", "typecheck", "lint"]
nox.options.reuse_existing_virtualenvs = True


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


PYTHONS = [version for version in ("3.11", "3.12", "3.13") if _find_python(version)]


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
    session.install("-e", ".[test,cli,fast]", "mypy>=1.10")
    session.run("mypy")


@nox.session(python=PYTHONS[:1])
def lint(session: nox.Session) -> None:
    """ruff lint and format check on everything we ship."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", "asyncbackups", "tests", "benchmarks", "examples", "noxfile.py")
    session.run(
        "ruff", "format", "--check", "asyncbackups", "tests", "benchmarks", "examples", "noxfile.py"
    )


@nox.session(python=PYTHONS[:1])
def docs(session: nox.Session) -> None:
    """Build the documentation site, strictly: `nox -s docs` (`-- serve` for a live preview).

    `mkdocs build --strict` fails on any warning: a broken link or cross-reference, a
    missing image, snippet or help text. The site lands in build/site/.
    """
    session.install("-e", ".[docs]")
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
