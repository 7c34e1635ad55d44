"""Live views of a run: a fleet's progress bars, a wait's spinner, or lines without rich.

They draw on a rich console when :class:`~asyncbackups._cli.output.Output` hands them
one (a terminal, rich installed), and otherwise write a line per event, or nothing.
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from asyncbackups import Backup, BackupOutcome

from .documents import describe_backup, outcome_line
from .escaping import escape

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import Progress, TaskID
    from rich.text import Text

__all__ = ["FleetProgress", "WaitStatus"]


def _duration(seconds: float) -> str:
    """``"40 s"``, ``"3 min"``, ``"2 h 5 min"``: rounded up, for a time left."""
    seconds = math.ceil(seconds)
    if seconds < 90:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


class FleetProgress:
    """Follows a fleet run in its two phases: backups created, then finished.

    A rich bar per phase (only one, "created", when the run does not wait), or a line
    per server. Pass :meth:`created` as ``stream_many``'s ``on_created`` and call
    :meth:`landed` with each outcome. ``succeeded`` and ``failed`` count the outcomes
    landed so far. ``list_each`` prints every outcome's line even above a bar (a run
    that does not wait lists the backups it created).
    """

    def __init__(
        self,
        total: int | None,
        *,
        wait: bool,
        console: Console | None,
        lines: bool,
        list_each: bool,
        explain: Callable[[BaseException], str],
        write: Callable[[str], None],
    ) -> None:
        self.total = total
        self.succeeded = 0
        self.failed = 0
        self.made = 0
        self._failed_before_made = 0
        self._wait = wait
        self._console = console
        self._lines = lines
        self._list_each = list_each
        self._explain = explain
        self._write = write
        self._progress: Progress | None = None
        self._created_task: TaskID | None = None
        self._finished_task: TaskID | None = None
        self._throttle_note = ""
        self._throttle_noted = -math.inf

    def __enter__(self) -> FleetProgress:
        if self._console is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            # The terminal echoes Ctrl-C as "^C" after the last line drawn: two columns
            # kept free for it, or a full line wraps and rich, redrawing from one line
            # too low, leaves a copy of the first bar on the screen.
            self._console.width = max(self._console.width - 2, 20)
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                console=self._console,
            )
            self._progress.start()
            self._created_task = self._progress.add_task("created ", total=self.total, counts="")
            if self._wait:
                self._finished_task = self._progress.add_task(
                    "finished", total=self.total, counts=self._counts()
                )
        return self

    def _counts(self) -> str:
        # Without a wait, a server's backup is only started when it lands.
        done = "ok" if self._wait else "started"
        return f"[green]{self.succeeded} {done}[/] [red]{self.failed} failed[/]"

    def created(self, outcome: BackupOutcome) -> None:
        """A server's backup was made (or adopted): the first phase."""
        self.made += 1
        if self._progress is not None and self._created_task is not None:
            self._progress.update(self._created_task, advance=1)

    def landed(self, outcome: BackupOutcome) -> None:
        """A server's outcome: the second phase (with no wait, the only one)."""
        if outcome.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        if outcome.backup is None:
            self._failed_before_made += 1
        # No backup: its create failed, so it never passed the first phase either.
        first_phase_too = outcome.backup is None
        if self._progress is not None:
            if first_phase_too and self._created_task is not None:
                self._progress.update(self._created_task, advance=1)
            if self._finished_task is not None:
                self._progress.update(self._finished_task, advance=1, counts=self._counts())
            elif self._created_task is not None:
                self._progress.update(self._created_task, counts=self._counts())
            if self._list_each:
                from rich.text import Text

                self._progress.console.print(Text(outcome_line(outcome, self._explain)))
        elif self._lines:
            self._write(outcome_line(outcome, self._explain))

    def throttled(self, rate: float, left: float | None) -> None:
        """The API throttles the run: show the rate it runs at, and the time left.

        On a terminal it is the first bar's note; off one, a line each time the
        wording changes (at most one a minute: the rate moves a little all the time).
        """
        text = f"throttled by the API: {rate:.1f} req/s"
        if left is not None:
            text += f", about {_duration(left)} left"
        if self._progress is not None and self._created_task is not None:
            if not self._wait:
                text = f"{text}  {self._counts()}"
            self._progress.update(self._created_task, counts=f"[yellow]{text}[/]")
        elif self._lines:
            now = time.monotonic()
            if text != self._throttle_note and now - self._throttle_noted >= 60.0:
                self._throttle_note, self._throttle_noted = text, now
                self._write(text)

    def unfinished(self) -> int:
        """How many servers' backups were made but have not landed (still running)."""
        landed_after_made = self.succeeded + self.failed
        return max(self.made - landed_after_made + self._failed_before_made, 0)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()


class _Waited:
    """A spinner, its text and the time waited so far (``0:01:05``), drawn afresh at
    each frame as one line no wider than its text: rich's status would pad it to the
    terminal's width, and the "^C" a terminal echoes after it would then wrap."""

    def __init__(self, text: str) -> None:
        from rich.spinner import Spinner

        self.text = text
        self._spinner = Spinner("dots", style="green")
        self._started = time.monotonic()

    def __rich__(self) -> Text:
        from rich.text import Text

        now = time.monotonic()
        waited = datetime.timedelta(seconds=int(now - self._started))
        frame = self._spinner.render(now)  # a Text, for a spinner without text of its own
        return Text.assemble(frame if isinstance(frame, Text) else "", f" {self.text}  {waited}")


class WaitStatus:
    """Follows one wait: a rich spinner with the time waited, or a line each time the
    status changes.

    Use as a context manager and pass :meth:`update` as ``on_update``. The final
    state is not shown here: the command reports it (or the error does). ``shown``
    is a status already reported, so it is not repeated.
    """

    def __init__(
        self,
        text: str,
        *,
        console: Console | None,
        write: Callable[[str], None] | None,
        shown: str | None = None,
    ) -> None:
        self._text = text
        self._console = console
        self._write = write
        self._shown = shown
        self._status: Live | None = None
        self._label: _Waited | None = None

    def __enter__(self) -> WaitStatus:
        if self._console is not None:
            from rich.live import Live

            self._label = _Waited(self._text)
            self._status = Live(
                self._label, console=self._console, transient=True, refresh_per_second=12.5
            )
            self._status.start()
        return self

    def update(self, backup: Backup) -> None:
        """Show the latest state of the backup being waited for."""
        if self._status is not None and self._label is not None:
            self._label.text = f"{self._text} ({escape(backup.status.value)})"
            self._status.refresh()
            return
        if self._write is not None and not backup.is_final and backup.status.value != self._shown:
            self._shown = backup.status.value
            self._write(describe_backup(backup))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
