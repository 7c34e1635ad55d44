"""The fake as a process: ``python -m asyncbackups.testing`` and ``asyncbackups serve``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence

from ._runner import FakeBackupsAPI

__all__ = ["announce", "build_parser", "main", "run", "serve"]


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
    """Print where the fake listens, as shell lines that point the SDK at it."""
    print(f"Fake Backups API listening on {api.base_url} (stop with Ctrl+C)", flush=True)
    print(f"export ASYNCBACKUPS_BASE_URL={api.base_url}", flush=True)
    print(f"export ASYNCBACKUPS_TOKEN={api.token}", flush=True)


def run(
    api: FakeBackupsAPI, *, on_ready: Callable[[FakeBackupsAPI], object] | None = announce
) -> None:
    """Serve ``api`` on a new event loop until SIGINT or SIGTERM (blocking).

    Raises ``OSError`` if the port cannot be bound.
    """
    # Where signal handlers could not be installed, Ctrl+C arrives as KeyboardInterrupt.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(api, on_ready=on_ready))


def _server_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected IDs like 3,7,12, got {text!r}") from None
    if any(server_id <= 0 for server_id in ids):
        raise argparse.ArgumentTypeError(f"server IDs must be positive, got {text!r}")
    return ids


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line of the standalone fake, for embedding in another command."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a stateful fake of the VPS Backups API on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--token", default="test-token", help="the bearer token to accept")
    parser.add_argument(
        "--backup-seconds",
        type=float,
        default=5.0,
        help="how long a new backup stays in_progress",
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=0,
        metavar="N",
        help="add servers 1..N (fleet-0001...), each with one automatic backup",
    )
    parser.add_argument(
        "--failing-servers",
        type=_server_ids,
        default=[],
        metavar="ID,ID",
        help="servers whose backups fail",
    )
    parser.add_argument("--page-size", type=int, default=100, help="backups per list page")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault rates")
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
        "--no-sample-data",
        action="store_true",
        help="start without server 12345 and its three example backups",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the standalone fake from command-line arguments; return the exit status.

    0 after a clean stop by signal; 1 if it could not listen; 2 for bad options.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
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
        )
        if args.chaos:
            api.faults.chaos(args.chaos)
    except (ValueError, LookupError) as exc:
        parser.error(str(exc))
    try:
        run(api)
    except OSError as exc:
        print(f"{parser.prog}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
