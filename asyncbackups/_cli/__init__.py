"""The ``asyncbackups`` command line, built on the public API like any user's program.

``main`` is the console script's entry point (``asyncbackups._cli:main``). Inside:
``_parser`` (the commands and options), ``_commands`` (those that call the API),
``_fake`` (``serve`` and ``demo``, on ``asyncbackups.testing``), ``_output`` (JSON,
rich or plain text) and ``_exit_codes`` (exit statuses).
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
