"""The fake's command-line options, one definition for every command that serves it.

``python -m asyncbackups.testing`` and ``asyncbackups serve`` both add them with
``add_serve_arguments``, so the two cannot drift apart. Only argparse here: a command
line that merely builds its parser does not load aiohttp.web.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["add_serve_arguments", "build_parser"]


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    # Checked here because the socket layer would raise OverflowError, not OSError.
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    # float() takes "nan" and "inf", which no backup could be timed by.
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative number of seconds, got {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of requests per second, got {text!r}"
        )
    return value


def _burst(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of requests, got {text!r}") from None
    # A bucket that never holds one whole token would refuse every request.
    if not (value >= 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a burst of at least 1 request, got {text!r}")
    return value


def _server_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IDs like 3,7,12, got {text!r}") from None
    if any(server_id <= 0 for server_id in ids):
        raise argparse.ArgumentTypeError(f"server IDs must be positive, got {text!r}")
    return ids


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the fake's options (``--host``, ``--port``, ``--token``, ...) to ``parser``.

    ``fake_from_arguments`` turns what they parse into a ``FakeBackupsAPI``.
    """
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8000,
        metavar="N",
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--token",
        default="test-token",
        metavar="T",
        help="the bearer token the fake accepts (default: %(default)s)",
    )
    parser.add_argument(
        "--backup-seconds",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="how long a new backup stays in_progress (default: %(default)s)",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=0,
        metavar="N",
        help=(
            "add N servers numbered from 1 (fleet-0001...), each with one automatic backup; "
            "the fleet steps around the sample server 12345, taking N+1 instead"
        ),
    )
    parser.add_argument(
        "--failing-servers",
        type=_server_ids,
        default=[],
        metavar="IDS",
        help="comma-separated servers whose backups fail, e.g. 7,42",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=100,
        metavar="N",
        help="backups per list page (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed for fault rates (default: %(default)s)",
    )
    parser.add_argument(
        "--chaos",
        type=float,
        default=0.0,
        metavar="RATE",
        help="make about RATE (0..1) of the requests misbehave",
    )
    parser.add_argument(
        "--ignore-idempotency-keys",
        action="store_true",
        help="behave like a server that ignores Idempotency-Key",
    )
    parser.add_argument(
        "--null-descriptions",
        action="store_true",
        help='answer "description": null for a backup made without one (default: "")',
    )
    parser.add_argument(
        "--no-sample-data",
        action="store_true",
        help="start without server 12345 and its three example backups",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        metavar="R",
        help=(
            "serve at most R requests per second, all clients together (a token bucket), "
            "answering 429 with Retry-After beyond it and RateLimit-* headers on every "
            "answer (default: no limit)"
        ),
    )
    parser.add_argument(
        "--burst",
        type=_burst,
        default=None,
        metavar="B",
        help=(
            "with --rate-limit: let up to B requests through at once "
            "(default: one second's worth, max(1, R))"
        ),
    )
    parser.add_argument(
        "--no-rate-limit-headers",
        action="store_true",
        help="with --rate-limit: send no RateLimit-* headers, only Retry-After on a 429",
    )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line of the standalone fake; ``add_serve_arguments`` embeds it elsewhere."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a stateful fake of the VPS Backups API on loopback.",
    )
    add_serve_arguments(parser)
    return parser
