"""The ``asyncbackups`` command line, built on the public API like any user's program.

``main`` is the console script's entry point (``asyncbackups._cli:main``). Inside:
``_parser`` (the commands and options, on click), ``_invocation`` (one run's output
and settings), ``_config`` (flags, environment, profiles), ``_commands`` (list, get,
create, wait, delete, restore), ``_fleet_run`` (fleet, on ``stream_many``), ``_fake``
(``serve`` and ``demo``, on ``asyncbackups.testing``), ``_output`` (tables, plain text,
JSON), ``_messages`` (errors an operator can act on) and ``_exit_codes``.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
