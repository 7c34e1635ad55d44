"""A Telegram bot that lists and starts backups, editing one message as a backup runs.

Commands (in a private chat or a group)::

    /backups 12345                     the server's newest backups, a few lines
    /backup 12345 before the upgrade   start one (the rest is its description) and
                                       edit the reply with its progress until it ends
    /help                              the commands and the servers you may use

Why python-telegram-bot. The recipe picks the most widely used of the three async chat
libraries considered: in a 2026 ranking of PyPI's 15,000 most downloaded packages,
python-telegram-bot stands 587th, discord.py 1,617th and aiogram 2,499th. It runs on
httpx, not on aiohttp as the SDK, discord.py and aiogram do; that costs a second HTTP
library in the process, nothing more: the two never share a connection anyway (neither
discord.py nor aiogram hands out its aiohttp session, and this SDK reads no private
attributes). Everything that is not Telegram's lives in :class:`BackupBot`, which talks
to the chat through two small protocols (:class:`Conversation`, :class:`SentMessage`),
so a discord.py or aiogram bot reuses it with glue of its own, as short as the
Telegram part at the end of this file.

What it shows:

- **One client for the bot's life.** ``post_init`` opens one ``BackupsClient`` (its
  token and URL from ``$ASYNCBACKUPS_TOKEN`` and ``$ASYNCBACKUPS_BASE_URL``);
  ``post_stop`` and ``post_shutdown`` close it. Every command shares its connections,
  its rate governor and its poller.
- **Backups followed in the background.** python-telegram-bot handles one update at a
  time by default, so a command that awaited a backup would block the bot for minutes.
  ``/backup`` starts the backup, answers, and hands the wait to a task of its own that
  edits the answer as ``wait_until_completed(..., on_update=...)`` reports. Those tasks
  are the bot's, not ``Application.create_task``'s: the application's ``stop()`` awaits
  its own tasks to the end, which for a backup could be hours. ``post_stop`` cancels
  them instead (the backups go on at the provider; each message says so) and then
  closes the client: no pending task, no unawaited coroutine, no open session.
- **Edits are throttled.** Telegram asks bots to keep to about a message a second per
  chat and 20 a minute per group, and answers floods of edits with ``RetryAfter``. A
  message is edited at most once per ``edit_interval`` (15 s), never with the same text
  twice (Telegram refuses that edit), and the time shown moves in minutes after the
  first one, so a long backup costs one edit a minute.
- **One backup per server at a time.** A second ``/backup`` of a server is refused
  while the bot follows one, and so is one while the API shows the server with a backup
  in progress (started before a restart of the bot, or by another tool).
- **Who may touch what.** An access file maps each Telegram user ID to the servers that
  user may list and back up. Any other server gets one and the same polite refusal,
  before any request, so the answer never tells whether that server exists.
- **Friendly errors.** Every ``BackupsError`` becomes one short sentence (with the API's
  request ID when it gave one, for the operator); the full error goes to the log. The
  SDK's errors never hold its token, and the replies hold no error text beyond the
  API's own field messages, so neither token reaches a chat. Replies are sent as plain
  text: a backup's description, written by whoever made it, cannot format a message.

Run it::

    pip install 'asyncbackups[bot]'
    export TELEGRAM_BOT_TOKEN=...           # from @BotFather
    export ASYNCBACKUPS_TOKEN=...           # the Backups API's token
    python examples/chat_bot.py --access access.toml

with an access file like this one (user IDs are Telegram's numeric IDs; ``/help``
tells each user theirs)::

    [users]
    123456789 = [12345, 12346]
    987654321 = [12346]

Tokens come from the environment only: a command-line flag would show in ``ps``.
``tests/test_chat_bot.py`` drives :class:`BackupBot` with stand-in messages and the
Telegram handlers through a real ``Application`` whose Bot API requests are answered
in-process, both against the fake Backups API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import tomllib
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from telegram import Message, Update
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes, filters
from telegram.request import BaseRequest

from asyncbackups import (
    AmbiguousCreateError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    Backup,
    BackupFailedError,
    BackupsClient,
    BackupsError,
    BackupStatus,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    WaitTimeoutError,
)

__all__ = [
    "BOT_DATA_KEY",
    "BackupBot",
    "Conversation",
    "LiveMessage",
    "SentMessage",
    "build_application",
    "friendly",
    "load_access",
]

logger = logging.getLogger("chat_bot")

BOT_DATA_KEY = "backups"  # where the Telegram application keeps its BackupBot
MAX_DESCRIPTION = 255  # the API's limit
_ICONS = {BackupStatus.COMPLETED: "✅", BackupStatus.IN_PROGRESS: "⏳", BackupStatus.FAILED: "❌"}
_SPACES = re.compile(r"\s+")


# -- the chat's side, as the bot sees it ------------------------------------------------


class SentMessage(Protocol):
    """A message the bot sent, which it can edit in place."""

    async def edit(self, *, content: str) -> object:
        """Replace the message's text."""
        ...


class Conversation(Protocol):
    """Where a command came from: the bot answers there."""

    async def send(self, content: str) -> SentMessage:
        """Post ``content`` as plain text and return the message, to edit it later."""
        ...


# -- access, replies ---------------------------------------------------------------------


def load_access(path: str | Path) -> dict[int, frozenset[int]]:
    """Read the access file: Telegram user ID -> the server IDs that user may touch.

    The file is TOML with one table, ``[users]``, of ``USER_ID = [SERVER_ID, ...]``.
    Raises ``ValueError`` naming the first entry that is not a positive user ID with a
    list of positive server IDs, so a typo stops the bot at start, not at a command.
    """
    with open(path, "rb") as file:
        document = tomllib.load(file)
    users = document.get("users")
    if not isinstance(users, dict):
        raise ValueError(f"{path}: no [users] table of USER_ID = [SERVER_ID, ...]")
    access: dict[int, frozenset[int]] = {}
    for key, servers in users.items():
        user_id = _positive_id(key)
        if user_id is None:
            raise ValueError(f"{path}: {key!r} is not a Telegram user ID (a positive number)")
        if not isinstance(servers, list) or not all(_is_positive_int(s) for s in servers):
            raise ValueError(f"{path}: user {key}: expected a list of server IDs, got {servers!r}")
        access[user_id] = frozenset(servers)
    return access


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_id(text: str) -> int | None:
    # Only ASCII digits: int() would also take "+5", " 5" or Arabic-Indic digits.
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value > 0 else None


def friendly(error: BackupsError) -> str:
    """One short sentence for a chat, saying what went wrong and what to do.

    The error's own text is not used (the log has it); only the API's field messages
    for a refused request and its request ID are passed on.
    """
    if isinstance(error, AuthenticationError):
        text = "The backups API refused the bot's credentials; an operator must check them."
    elif isinstance(error, NotFoundError):
        text = "The backups API has no such server or backup."
    elif isinstance(error, RateLimitError):
        wait = "a minute" if error.retry_after is None else f"{max(1, round(error.retry_after))} s"
        text = f"The backups API is rate limiting the bot; try again in {wait}."
    elif isinstance(error, BadRequestError):
        problems = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in error.field_errors.items()
        )
        text = "The backups API refused the request" + (
            f": {_clip(problems, 200)}" if problems else "."
        )
    elif isinstance(error, ServerError):
        text = f"The backups API is having trouble (HTTP {error.status_code}); try again later."
    elif isinstance(error, APIStatusError):  # a status the API does not document
        text = f"The backups API answered HTTP {error.status_code}; see the log."
    elif isinstance(error, APITimeoutError):
        text = "The backups API did not answer in time; try again later."
    elif isinstance(error, APIConnectionError):
        text = "The bot cannot reach the backups API right now; try again later."
    elif isinstance(error, ResponseValidationError):
        text = "The backups API answered something the bot does not understand; see the log."
    elif isinstance(error, AmbiguousCreateError):
        ids = ", ".join(str(backup.id) for backup in error.candidates)
        text = f"That may have made more than one backup ({ids}); an operator should check."
    elif isinstance(error, BackupFailedError):
        text = "The backup failed."
    elif isinstance(error, WaitTimeoutError):
        text = "The backup did not finish in time."
    else:
        text = "Something went wrong with the backups API; see the log."
    if isinstance(error, APIStatusError) and error.request_id:
        text += f" (request {_clip(error.request_id, 64)})"
    return text


def _clip(text: str, limit: int) -> str:
    text = _SPACES.sub(" ", text).strip()  # one line: a field can't fake a line of its own
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(size_mb: int | None) -> str:
    if size_mb is None:
        return "size unknown"
    return f"{size_mb / 1024:.1f} GB" if size_mb >= 1024 else f"{size_mb} MB"


def _elapsed(seconds: float) -> str:
    """Seconds under a minute, then whole minutes: the text changes once a minute."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _server(backup: Backup) -> str:
    name = backup.server.name
    return f"{_clip(name, 40)} ({backup.server_id})" if name else f"server {backup.server_id}"


def _row(backup: Backup) -> str:
    icon = _ICONS.get(backup.status, "❔")
    # A status this SDK does not know yet keeps its text: show it.
    status = "" if backup.status in _ICONS else f" [{_clip(backup.status.value, 20)}]"
    when = backup.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    about = f": {_clip(backup.description, 40)}" if backup.description else ""
    kind = _clip(backup.backup_type.value, 20)
    return f"{icon} {backup.id} · {when} · {_size(backup.size_mb)} · {kind}{status}{about}"


def format_backups(server_id: int, backups: Sequence[Backup], *, limit: int) -> str:
    """A server's backups, newest first, in at most ``limit`` lines and a count of the rest."""
    if not backups:
        return f"Server {server_id} has no backups."
    newest = sorted(backups, key=lambda backup: backup.created_at, reverse=True)
    lines = [f"Backups of {_server(newest[0])}, newest first (UTC):"]
    lines += [_row(backup) for backup in newest[:limit]]
    if len(newest) > limit:
        lines.append(f"… and {len(newest) - limit} more ({len(newest)} in all).")
    return "\n".join(lines)


# -- one message, edited in place --------------------------------------------------------


class LiveMessage:
    """A message edited as things change: at most once per ``interval`` seconds (of the
    event loop's clock), never twice with the same text.

    A failed edit (the chat service down, or throttling the bot) is logged and counts
    as an edit: the next one, an interval later, carries the news; the last text is
    tried three times.
    """

    def __init__(self, message: SentMessage, text: str, *, interval: float) -> None:
        """``message`` was just sent with ``text``."""
        self.message = message
        self.text = text
        self.interval = interval
        self._edited_at = asyncio.get_running_loop().time()

    def next_edit_in(self) -> float:
        """Seconds until an edit is allowed (0 or less: now)."""
        return self._edited_at + self.interval - asyncio.get_running_loop().time()

    async def update(self, text: str) -> None:
        """Show ``text`` now if the interval since the last edit has passed, else drop it."""
        if text != self.text and self.next_edit_in() <= 0:
            await self._edit(text)

    async def finish(self, text: str, *, wait: bool = True) -> None:
        """Show the last ``text``: after the rest of the interval, or at once (``wait=False``)."""
        for _ in range(3 if wait else 1):
            if text == self.text:
                return
            if wait and (delay := self.next_edit_in()) > 0:
                await asyncio.sleep(delay)
            await self._edit(text)

    async def _edit(self, text: str) -> None:
        try:
            await self.message.edit(content=text)
        except Exception as error:  # whatever the chat library raises; the text has no token
            logger.warning("could not edit a progress message: %r", error)
        else:
            self.text = text
        finally:
            self._edited_at = asyncio.get_running_loop().time()


# -- the bot, without any chat library ---------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Job:
    """One backup the bot started and follows."""

    server_id: int
    user_id: int
    started: float  # the bot's clock
    backup: Backup | None = None
    live: LiveMessage | None = None
    task: asyncio.Task[None] | None = None

    def saw(self, backup: Backup) -> None:
        """``on_update``: keep the newest reading; the next edit shows it."""
        self.backup = backup


class BackupBot:
    """The chat-independent part of the bot: commands, permissions, replies, follow-ups.

    It owns ``client`` from now on: :meth:`aclose` stops following every backup, tells
    each chat so, and closes the client. ``access`` maps a user ID to the server IDs
    that user may touch. ``list_limit`` caps a list's lines; ``edit_interval`` is the
    least time between two edits of a message; ``poll_interval``,
    ``max_poll_interval`` and ``wait_timeout`` go to ``wait_until_completed``.
    ``clock`` (seconds, ``time.monotonic`` by default) measures how long a backup has
    run; ``prefix`` is how the chat spells a command (``"/"`` on Telegram, ``"!"`` in
    many Discord bots).
    """

    def __init__(
        self,
        client: BackupsClient,
        access: Mapping[int, Collection[int]],
        *,
        list_limit: int = 8,
        edit_interval: float = 15.0,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        wait_timeout: float | None = 4 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
        prefix: str = "/",
    ) -> None:
        """Take ``client`` over; nothing is sent until a command comes."""
        if list_limit < 1:
            raise ValueError(f"list_limit must be at least 1, not {list_limit}")
        self.client = client
        self.access = {user: frozenset(servers) for user, servers in access.items()}
        self.list_limit = list_limit
        self.edit_interval = edit_interval
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.wait_timeout = wait_timeout
        self.clock = clock
        self.prefix = prefix
        self._jobs: dict[int, _Job] = {}  # by server: one backup of a server at a time
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references
        self._closing = False

    @property
    def following(self) -> dict[int, Backup | None]:
        """The backups being followed now, by server (``None`` while one is being made)."""
        return {server_id: job.backup for server_id, job in self._jobs.items()}

    # -- commands -------------------------------------------------------------------------

    async def help(self, user_id: int, chat: Conversation) -> None:
        """Answer with the commands, and the servers this user may touch."""
        p = self.prefix
        await chat.send(
            f"{p}backups SERVER_ID lists a server's backups; {p}backup SERVER_ID "
            f"[description] starts one and shows how it goes.\n{self._yours(user_id)}"
        )

    async def list_backups(self, user_id: int, args: Sequence[str], chat: Conversation) -> None:
        """``backups SERVER_ID``: answer with the server's newest backups."""
        server_id = await self._server_id(user_id, args[:1], chat, len(args) == 1, "backups")
        if server_id is None:
            return
        try:
            backups = await self.client.backups.list(server_id=server_id)
        except BackupsError as error:
            await chat.send(self._failure(error, server_id))
            return
        await chat.send(format_backups(server_id, backups, limit=self.list_limit))

    async def start_backup(
        self, user_id: int, args: Sequence[str], chat: Conversation
    ) -> asyncio.Task[None] | None:
        """``backup SERVER_ID [description]``: start a backup and follow it in a task.

        Returns that task (``None`` when nothing was started), which ends when the
        backup does, or when :meth:`aclose` cancels it.
        """
        server_id = await self._server_id(user_id, args[:1], chat, len(args) >= 1, "backup")
        if server_id is None:
            return None
        description = " ".join(args[1:]).strip() or f"from chat, by user {user_id}"
        if len(description) > MAX_DESCRIPTION:
            await chat.send(f"That description is too long: at most {MAX_DESCRIPTION} characters.")
            return None
        if self._closing:
            await chat.send("The bot is stopping; try again when it is back.")
            return None
        if (job := self._jobs.get(server_id)) is not None:
            await chat.send(self._busy(job))
            return None
        # Reserved before the first await: two commands at once cannot both pass.
        job = self._jobs[server_id] = _Job(server_id, user_id, started=self.clock())
        following = False
        try:
            running = await self._in_progress(server_id)
            if running is not None:
                since = running.created_at.astimezone(UTC).strftime("%H:%M UTC")
                await chat.send(
                    f"{_server(running)} already has backup {running.id} in progress "
                    f"(since {since}); one at a time."
                )
                return None
            job.backup = await self.client.backups.create(server_id, description=description)
            job.started = self.clock()
            if self._closing:  # aclose ran while the create was on the wire
                await chat.send(self._stopped(job))
                return None
            text = self._running(job)
            job.live = LiveMessage(await chat.send(text), text, interval=self.edit_interval)
            if self._closing:  # ... or while that answer was
                await job.live.finish(self._stopped(job), wait=False)
                return None
            task = job.task = asyncio.create_task(self._follow(job), name=f"follow {server_id}")
            following = True
        except BackupsError as error:
            await chat.send(self._failure(error, server_id))
            return None
        finally:
            if not following:
                self._release(job)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def aclose(self) -> None:
        """Stop following every backup (they go on at the provider), say so in each
        message, and close the client. Safe to call more than once."""
        if self._closing:
            return
        self._closing = True
        try:
            tasks = {job: job.task for job in self._jobs.values() if job.task is not None}
            for task in tasks.values():
                task.cancel()
            if tasks:
                await asyncio.wait(tasks.values())
            goodbyes = [
                job.live.finish(self._stopped(job), wait=False)
                for job, task in tasks.items()
                if job.live is not None and task.cancelled()
            ]
            if goodbyes:
                try:
                    # Shutdown must not hang on a chat service that stopped answering.
                    async with asyncio.timeout(10):
                        await asyncio.gather(*goodbyes)
                except TimeoutError:
                    logger.warning("the chat did not take every goodbye in time")
        finally:
            await self.client.aclose()

    # -- following a backup -------------------------------------------------------------

    # --8<-- [start:follow]
    async def _follow(self, job: _Job) -> None:
        assert job.backup is not None
        assert job.live is not None
        # The wait runs as a task of its own so that this one can edit the message on a
        # timer too: the API may report nothing new for an hour.
        waiting = asyncio.ensure_future(
            self.client.backups.wait_until_completed(
                job.backup,
                timeout=self.wait_timeout,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                on_update=job.saw,
            )
        )
        try:
            while not waiting.done():
                # Wake when the next edit is allowed (a timer may fire a hair early, so
                # wait again for the rest), or a whole interval after a tick with no news.
                due = job.live.next_edit_in()
                await asyncio.wait([waiting], timeout=due if due > 0 else self.edit_interval)
                if not waiting.done():
                    await job.live.update(self._running(job))
            await job.live.finish(self._ended(job, waiting))
        finally:
            if not waiting.done():
                waiting.cancel()  # cancels only the wait; the backup goes on
            await asyncio.wait([waiting])  # out of the client's poller before it closes
            if not waiting.cancelled():
                waiting.exception()  # read already, or not wanted: never "never retrieved"
            self._release(job)

    # --8<-- [end:follow]

    def _ended(self, job: _Job, waiting: asyncio.Future[Backup]) -> str:
        assert job.backup is not None
        took = _elapsed(self.clock() - job.started)
        try:
            backup = waiting.result()
        except BackupFailedError:
            return f"❌ Backup {job.backup.id} of {_server(job.backup)} failed after {took}."
        except WaitTimeoutError:
            return (
                f"⌛ Backup {job.backup.id} of {_server(job.backup)} is still in progress after "
                f"{took}; I stopped watching.\n{self._look(job)}"
            )
        except NotFoundError:
            return f"❔ Backup {job.backup.id} of {_server(job.backup)} is gone (deleted?)."
        except BackupsError as error:
            logger.warning("following backup %d: %s", job.backup.id, error)
            why = friendly(error)
        except Exception:
            logger.exception("following backup %d", job.backup.id)
            why = "a bug in the bot; see the log."
        else:
            size = _size(backup.size_mb)
            return f"✅ Backup {backup.id} of {_server(backup)} completed in {took} ({size})."
        return f"⚠️ Lost track of backup {job.backup.id} of {_server(job.backup)}: {why}\n" + (
            self._look(job)
        )

    # -- helpers ------------------------------------------------------------------------

    async def _server_id(
        self, user_id: int, args: Sequence[str], chat: Conversation, shaped: bool, command: str
    ) -> int | None:
        """The server a command names, if the user may touch it; else answer and ``None``."""
        server_id = _positive_id(args[0]) if shaped and args else None
        if server_id is None:
            usage = f"{self.prefix}{command} SERVER_ID"
            if command == "backup":
                usage += " [description]"
            await chat.send(f"Usage: {usage}. {self._yours(user_id)}")
            return None
        if server_id not in self.access.get(user_id, ()):
            # The same words whether the server exists or not, and no request is made.
            await chat.send(f"Sorry, server {server_id} is not one you may use here.")
            return None
        return server_id

    def _yours(self, user_id: int) -> str:
        servers = sorted(self.access.get(user_id, ()))
        if not servers:
            return (
                "You have no servers here; an operator can add your user ID, "
                f"{user_id}, to the bot's access file."
            )
        return "Your servers: " + ", ".join(map(str, servers)) + "."

    async def _in_progress(self, server_id: int) -> Backup | None:
        """A backup of the server that the API shows in progress, if any."""
        backups = await self.client.backups.list(server_id=server_id)
        return next((b for b in backups if b.status is BackupStatus.IN_PROGRESS), None)

    def _failure(self, error: BackupsError, server_id: int) -> str:
        logger.warning("server %d: %s", server_id, error)  # the SDK's text holds no token
        return f"Server {server_id}: {friendly(error)}"

    def _busy(self, job: _Job) -> str:
        if job.backup is None:
            return f"A backup of server {job.server_id} is being started right now."
        return (
            f"Backup {job.backup.id} of {_server(job.backup)} is still in progress "
            f"({_elapsed(self.clock() - job.started)} so far); one at a time."
        )

    def _running(self, job: _Job) -> str:
        assert job.backup is not None
        return (
            f"⏳ Backup {job.backup.id} of {_server(job.backup)} is in progress "
            f"({_elapsed(self.clock() - job.started)} so far)."
        )

    def _stopped(self, job: _Job) -> str:
        assert job.backup is not None
        return (
            f"⏹ The bot is stopping and no longer follows backup {job.backup.id} of "
            f"{_server(job.backup)}.\nThe backup goes on: {self._look(job)}"
        )

    def _look(self, job: _Job) -> str:
        return f"{self.prefix}backups {job.server_id} shows how it ends."

    def _release(self, job: _Job) -> None:
        if self._jobs.get(job.server_id) is job:
            del self._jobs[job.server_id]

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("following a backup failed", exc_info=error)


# -- the Telegram glue -------------------------------------------------------------------


class _TelegramMessage:
    def __init__(self, message: Message) -> None:
        self._message = message

    async def edit(self, *, content: str) -> object:
        return await self._message.edit_text(content)


class _TelegramChat:
    """A Telegram message's chat, as :class:`Conversation`: replies go to that message."""

    def __init__(self, message: Message) -> None:
        self._message = message

    async def send(self, content: str) -> SentMessage:
        return _TelegramMessage(await self._message.reply_text(content))


def _command(
    run: Callable[[BackupBot, int, Sequence[str], Conversation], Any],
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Any]:
    """A Telegram handler that hands the command to the application's :class:`BackupBot`."""

    async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user, message = update.effective_user, update.effective_message
        if user is None or message is None:  # a channel post has no user: ignore it
            return
        bot: BackupBot = context.bot_data[BOT_DATA_KEY]
        await run(bot, user.id, list(context.args or ()), _TelegramChat(message))

    return handle


async def _help(bot: BackupBot, user_id: int, args: Sequence[str], chat: Conversation) -> None:
    await bot.help(user_id, chat)


async def _report(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Errors no command caught (a bug, Telegram down): to the log, never to the chat."""
    logger.error("handling an update failed", exc_info=context.error)


def build_application(
    telegram_token: str,
    access: Mapping[int, Collection[int]],
    *,
    client_options: Mapping[str, Any] | None = None,
    request: BaseRequest | None = None,
    **bot_options: Any,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The Telegram application: its commands, and the hooks that open and close the client.

    ``client_options`` go to ``BackupsClient`` (token and URL default to the
    environment), ``bot_options`` to :class:`BackupBot`; ``request`` replaces the
    HTTP layer Telegram is reached through (tests answer it in-process).
    """

    # --8<-- [start:hooks]
    async def open_backups(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # Made here, in the running loop, once; every command uses this one client.
        client = BackupsClient(**(client_options or {}))
        application.bot_data[BOT_DATA_KEY] = BackupBot(client, access, **bot_options)

    async def close_backups(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # post_stop runs while the bot can still edit messages; post_shutdown only
        # repeats it (it does nothing twice) for a start that failed before running.
        bot: BackupBot | None = application.bot_data.get(BOT_DATA_KEY)
        if bot is not None:
            await bot.aclose()

    builder = ApplicationBuilder().token(telegram_token)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    application = (
        builder.post_init(open_backups)
        .post_stop(close_backups)
        .post_shutdown(close_backups)
        .build()
    )
    # --8<-- [end:hooks]
    # New messages only: editing an old "/backup 7" must not start another backup.
    new = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(["start", "help"], _command(_help), filters=new))
    application.add_handler(
        CommandHandler("backups", _command(BackupBot.list_backups), filters=new)
    )
    application.add_handler(CommandHandler("backup", _command(BackupBot.start_backup), filters=new))
    application.add_error_handler(_report)
    return application


def _main() -> int:
    import argparse
    import os

    parser = argparse.ArgumentParser(description="A Telegram bot for the Backups API.")
    parser.add_argument("--access", required=True, help="the TOML file of who may use what")
    args = parser.parse_args()
    telegram_token = os.environ.get("TELEGRAM_BOT_TOKEN")
    if not telegram_token:
        parser.error("set TELEGRAM_BOT_TOKEN to the token @BotFather gave the bot")
    try:
        access = load_access(args.access)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines show the bot token
    build_application(telegram_token, access).run_polling()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
