"""``ASYNCBACKUPS_LOG``: turn on the SDK's logs from the environment.

By the standard library's convention a library adds no handler: its records go where
the application's logging sends them (``logging.getLogger("asyncbackups")``). Only when
``ASYNCBACKUPS_LOG`` is set does the SDK add one handler, to stderr, once.

- ``warning``: outages a wait rides out, creates cancelled after sending;
- ``info``: retries, 429 pauses and reconciles;
- ``debug``: every attempt with its method, path, status, attempt number, time and the
  API's request ID.

No record carries the token, or more than a few hundred characters of an answer.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ENV_LOG", "configure_from_environment"]

ENV_LOG = "ASYNCBACKUPS_LOG"
"""The environment variable (``debug``, ``info`` or ``warning``) that turns on logging."""
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_MARK = "_asyncbackups_env_handler"


def configure_from_environment() -> None:
    """Add the stderr handler ``$ASYNCBACKUPS_LOG`` asks for; do nothing when it is unset."""
    value = os.environ.get(ENV_LOG, "").strip().lower()
    if not value:
        return
    logger = logging.getLogger("asyncbackups")
    if any(getattr(handler, _MARK, False) for handler in logger.handlers):
        return  # imported again (a reload, a second interpreter state): still one handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    level = _LEVELS.get(value)
    if level is None:
        level = logging.WARNING
        logger.warning(
            "%s=%r is not one of debug, info, warning; logging warnings only",
            ENV_LOG,
            value[:20],
        )
    logger.setLevel(level)
