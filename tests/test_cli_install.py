"""The command line is the ``cli`` extra: the SDK never loads it, and without it the
``asyncbackups`` command says which extra to install.

Each check runs in a fresh interpreter, so what this process already imported cannot
hide an import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from asyncbackups._cli import MISSING_EXTRA

DEADLINE_SECONDS = 60.0

# Run first in the child: click cannot be imported, as when the extra is not installed.
WITHOUT_CLICK = "import sys; sys.modules['click'] = None\n"


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )


def test_the_sdk_imports_neither_click_nor_rich() -> None:
    done = python(
        "import sys\n"
        "import asyncbackups\n"
        "assert 'click' not in sys.modules and 'rich' not in sys.modules, sorted(\n"
        "    name for name in sys.modules if name.split('.')[0] in ('click', 'rich'))\n"
        # The console script's module must load without click too, to say what is missing.
        "import asyncbackups._cli\n"
        "assert 'click' not in sys.modules and 'rich' not in sys.modules\n"
    )

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "entry",
    [
        "from asyncbackups._cli import main\nsys.exit(main(['list']))",
        # python -m asyncbackups, and the console script, which calls main() the same way
        "import runpy\nrunpy.run_module('asyncbackups', run_name='__main__')",
    ],
    ids=["main", "python-m"],
)
def test_without_click_the_command_says_which_extra_to_install(entry: str) -> None:
    done = python(WITHOUT_CLICK + entry)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == MISSING_EXTRA + "\n"
    assert MISSING_EXTRA == (
        "asyncbackups: the command line needs its extra: pip install 'asyncbackups[cli]' "
        "(from a checkout: pip install '.[cli]')"
    )


def test_an_import_error_of_its_own_is_not_taken_for_a_missing_extra() -> None:
    # Only a missing click is the extra's message; any other ImportError is a bug to see.
    done = python(
        "import sys; sys.modules['asyncbackups._cli.runner'] = None\n"
        "from asyncbackups._cli import main\n"
        "main(['--help'])"
    )

    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "asyncbackups._cli.runner" in done.stderr
