"""The fake as a process: ``python -m asyncbackups.testing`` and ``asyncbackups serve``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence

from ._arguments import build_parser
from ._fake_api import FakeBackupsAPI

__all__ = ["announce", "fake_from_arguments", "main", "run", "serve"]


async def serve(
    api: FakeBackupsAPI,
    *,
    on_ready: Callable[[FakeBackupsAPI], object] | None = None,
    handle_signals: bool = True,
) -> None:
    """Serve ``api`` in the running loop until SIGINT or SIGTERM, or until cancelled.

    ``on_ready`` is called once the fake listens (``announce`` prints where). Signal
    handlers are installed only where asyncio allows them (the main thread, not on
    Windows); elsewhere stop it by cancelling the task, or with Ctrl+C as usual.
    Raises ``OSError`` if the port cannot be bound.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    async with api:
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, stop.set)
                # Windows event loops have no signal handlers, and only the main thread
                # may install them: there, Ctrl-C arrives as KeyboardInterrupt instead.
                except (NotImplementedError, RuntimeError, ValueError):
                    continue
                installed.append(signum)
        try:
            if on_ready is not None:
                on_ready(api)
            await stop.wait()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)


def announce(api: FakeBackupsAPI) -> None:
    """Print where the fake listens, as shell lines that point the SDK at it.

    Four lines: a banner, ``export ASYNCBACKUPS_BASE_URL=...``, ``export
    ASYNCBACKUPS_TOKEN=...``, and a shell comment naming the stats URL.
    """
    print(f"Fake Backups API listening on {api.base_url} (stop with Ctrl+C)", flush=True)
    print(f"export ASYNCBACKUPS_BASE_URL={api.base_url}", flush=True)
    print(f"export ASYNCBACKUPS_TOKEN={api.token}", flush=True)
    print(f"# stats (no token needed): curl {api.stats_url}", flush=True)


def run(
    api: FakeBackupsAPI, *, on_ready: Callable[[FakeBackupsAPI], object] | None = announce
) -> None:
    """Serve ``api`` on a new event loop until SIGINT or SIGTERM (blocking).

    Raises ``OSError`` if the port cannot be bound.
    """
    # Where signal handlers could not be installed, Ctrl+C arrives as KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(api, on_ready=on_ready))


def fake_from_arguments(args: argparse.Namespace) -> FakeBackupsAPI:
    """A ``FakeBackupsAPI`` set up as parsed by ``add_serve_arguments``; not started yet.

    Raises ``ValueError`` for a value the fake refuses (a page size of 0, a chaos rate
    above 1, ``--burst`` without ``--rate-limit``) and ``LookupError`` for a failing
    server that does not exist.
    """
    if args.burst is not None and args.rate_limit is None:
        raise ValueError("--burst needs --rate-limit")
    api = FakeBackupsAPI(
        token=args.token,
        backup_seconds=args.backup_seconds,
        page_size=args.page_size,
        honor_idempotency_keys=not args.ignore_idempotency_keys,
        seed=args.seed,
        sample_data=not args.no_sample_data,
        fleet=args.servers,
        failing_servers=args.failing_servers,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        burst=args.burst,
        rate_limit_headers=not args.no_rate_limit_headers,
        null_descriptions=args.null_descriptions,
    )
    if args.chaos:
        api.faults.chaos(args.chaos)
    return api


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the standalone fake from command-line arguments; return the exit status.

    0 after a clean stop by signal; 1 if it could not listen; 2 for bad options.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        api = fake_from_arguments(args)
    except (ValueError, LookupError) as exc:
        parser.error(str(exc))
    try:
        run(api)
    except OSError as exc:
        print(f"{parser.prog}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
