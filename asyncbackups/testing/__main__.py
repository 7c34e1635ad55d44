"""``python -m asyncbackups.testing``: serve the fake API until SIGINT or SIGTERM."""

from __future__ import annotations

from ._serve import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m asyncbackups.testing"))
