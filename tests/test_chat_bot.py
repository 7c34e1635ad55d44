"""The chat bot recipe (examples/chat_bot.py) against the fake API, offline.

Two levels. :class:`BackupBot`, the chat-independent part, is driven with stand-in chats
that record what was sent and every edit. The Telegram glue is driven through a real
python-telegram-bot ``Application`` whose Bot API requests are answered in-process by
:class:`FakeTelegram` (python-telegram-bot's own ``BaseRequest`` extension point), with
real ``Update`` objects, so the commands, the hooks and the edits are Telegram's own.

Time: the fake's clock is frozen and moved by the tests (``api.advance``); the bot
measures a backup's age on that same clock. The waits poll every hundredth of a second
and a message is edited at most every few hundredths, so nothing waits long.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from asyncbackups import BackupsClient, BackupStatus
from asyncbackups.testing import Clock, FakeBackupsAPI

pytest.importorskip(
    "telegram", reason="python-telegram-bot is not installed (pip install 'asyncbackups[bot]')"
)

from conftest import BACKUP_499, until
from telegram import Update
from telegram.request import BaseRequest, RequestData

# The recipe is an example, not part of the package: load it from its file.
_RECIPE = Path(__file__).resolve().parent.parent / "examples" / "chat_bot.py"
_spec = importlib.util.spec_from_file_location("chat_bot", _RECIPE)
assert _spec is not None
assert _spec.loader is not None
chat_bot = importlib.util.module_from_spec(_spec)
sys.modules["chat_bot"] = chat_bot
_spec.loader.exec_module(chat_bot)
BackupBot = chat_bot.BackupBot

TOKEN = "sdk-secret-token-9d2f"
TELEGRAM_TOKEN = "123456:telegram-secret-token-77aa"
ALICE, BOB, EVE = 1001, 1002, 1003  # EVE is in no access list
ACCESS = {ALICE: {12345, 7, 424242}, BOB: {8}}  # 424242 does not exist at the API
BACKUP_SECONDS = 60
EDIT_INTERVAL = 0.03
START = datetime(2025, 1, 16, 15, 45, tzinfo=UTC)


# -- stand-ins for a chat -------------------------------------------------------------


@dataclass
class Sent:
    """A message the bot sent: its first text and every edit, with the loop's times."""

    content: str
    sent_at: float
    edits: list[str] = field(default_factory=list)
    edited_at: list[float] = field(default_factory=list)
    fail_edits: int = 0  # the next edits that raise, as a chat service throttling us

    @property
    def text(self) -> str:
        return self.edits[-1] if self.edits else self.content

    async def edit(self, *, content: str) -> None:
        if self.fail_edits:
            self.fail_edits -= 1
            raise ConnectionError("the chat service is down")
        self.edits.append(content)
        self.edited_at.append(asyncio.get_running_loop().time())


@dataclass
class Chat:
    """Where a command came from: records the bot's messages."""

    sent: list[Sent] = field(default_factory=list)
    fail_edits: int = 0

    async def send(self, content: str) -> Sent:
        message = Sent(content, asyncio.get_running_loop().time(), fail_edits=self.fail_edits)
        self.sent.append(message)
        return message

    @property
    def texts(self) -> list[str]:
        """Everything the chat was shown, first texts and edits, in order per message."""
        return [text for message in self.sent for text in (message.content, *message.edits)]

    @property
    def last(self) -> str:
        return self.sent[-1].text


@pytest.fixture
def chats() -> Iterator[Callable[[], Chat]]:
    """New stand-in chats; after the test, none of them was ever shown a token."""
    made: list[Chat] = []

    def chat() -> Chat:
        made.append(Chat())
        return made[-1]

    yield chat
    for each in made:
        for text in each.texts:
            assert TOKEN not in text
            assert TELEGRAM_TOKEN not in text


@pytest.fixture
async def api() -> AsyncIterator[FakeBackupsAPI]:
    """The fake API with its clock frozen: time moves only when a test advances it."""
    fake = FakeBackupsAPI(
        token=TOKEN, backup_seconds=BACKUP_SECONDS, clock=Clock(start=START, frozen=True)
    )
    fake.add_server(7, "db-07")
    fake.add_server(8, "cache-08")
    async with fake:
        yield fake


def _bot_options(api: FakeBackupsAPI, **options: Any) -> dict[str, Any]:
    return {
        "edit_interval": EDIT_INTERVAL,
        "poll_interval": 0.01,
        "max_poll_interval": 0.02,
        "clock": lambda: api.clock.now().timestamp(),  # a backup's age on the fake's clock
        **options,
    }


def _client(api: FakeBackupsAPI, **options: Any) -> BackupsClient:
    options.setdefault("retry_backoff", 0)
    options.setdefault("max_retry_backoff", 0)
    return BackupsClient(options.pop("token", api.token), base_url=api.base_url, **options)


@pytest.fixture
async def make_bot(api: FakeBackupsAPI) -> AsyncIterator[Callable[..., Any]]:
    """Bots of the fake API (``client_options`` for the client, the rest for the bot);
    each is closed after the test."""
    bots: list[Any] = []

    def make(*, client_options: dict[str, Any] | None = None, **options: Any) -> Any:
        bots.append(
            BackupBot(
                _client(api, **(client_options or {})), ACCESS, **_bot_options(api, **options)
            )
        )
        return bots[-1]

    yield make
    for made in bots:
        await made.aclose()


@pytest.fixture
def bot(make_bot: Callable[..., Any]) -> Any:
    return make_bot()


def _posts(api: FakeBackupsAPI) -> list[Any]:
    return [r for r in api.request_log if r.method == "POST"]


# -- listing --------------------------------------------------------------------------


async def test_list_answers_the_newest_backups_first(bot: Any, chats: Callable[[], Chat]) -> None:
    chat = chats()
    await bot.list_backups(ALICE, ["12345"], chat)
    assert chat.texts == [
        "Backups of web-server-01 (12345), newest first (UTC):\n"
        "✅ 501 · 2025-01-16 03:00 · 4.4 GB · automatic: Automatic daily backup\n"
        "✅ 495 · 2025-01-15 03:00 · 4.3 GB · automatic: Automatic daily backup\n"
        "✅ 499 · 2025-01-14 10:30 · 4.4 GB · manual: Pre-update backup"
    ]


async def test_a_long_list_is_capped_and_says_how_many_more(
    api: FakeBackupsAPI, make_bot: Callable[..., Any], chats: Callable[[], Chat]
) -> None:
    for day in range(12):
        api.state.add_backup(
            7,
            status="completed",
            created_at=START - timedelta(days=day),
            description=f"nightly\n{day}  " + "x" * 80,  # a newline cannot fake a line
            size_mb=800,
        )
    bot = make_bot(list_limit=3)
    chat = chats()
    await bot.list_backups(ALICE, ["7"], chat)
    lines = chat.last.splitlines()
    assert len(lines) == 1 + 3 + 1
    assert lines[0] == "Backups of db-07 (7), newest first (UTC):"
    assert lines[1].startswith("✅ ")
    assert " · 2025-01-16 15:45 · 800 MB · manual: nightly 0 xxx" in lines[1]
    assert lines[1].endswith("…")
    assert lines[-1] == "… and 9 more (12 in all)."


async def test_a_server_without_backups_says_so(bot: Any, chats: Callable[[], Chat]) -> None:
    chat = chats()
    await bot.list_backups(BOB, ["8"], chat)
    assert chat.texts == ["Server 8 has no backups."]


@pytest.mark.parametrize(
    "args",
    [[], ["abc"], ["-7"], ["+7"], ["0"], ["7.0"], ["١٢"], [" 7"], ["7", "8"]],
    ids=["none", "word", "negative", "plus", "zero", "float", "arabic-digits", "space", "two"],
)
async def test_a_bad_server_id_gets_the_usage_and_sends_nothing(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat], args: list[str]
) -> None:
    chat = chats()
    await bot.list_backups(ALICE, args, chat)
    assert chat.texts == ["Usage: /backups SERVER_ID. Your servers: 7, 12345, 424242."]
    assert api.request_log == []


async def test_help_names_the_commands_and_the_users_servers(
    bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    await bot.help(BOB, chat)
    assert chat.texts == [
        "/backups SERVER_ID lists a server's backups; /backup SERVER_ID [description] "
        "starts one and shows how it goes.\nYour servers: 8."
    ]


# -- permissions ----------------------------------------------------------------------


async def test_a_server_not_theirs_is_refused_alike_whether_it_exists_or_not(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    exists, missing = chats(), chats()
    await bot.list_backups(BOB, ["12345"], exists)
    await bot.list_backups(BOB, ["999999"], missing)
    assert exists.texts == ["Sorry, server 12345 is not one you may use here."]
    assert missing.texts == ["Sorry, server 999999 is not one you may use here."]
    started = chats()
    assert await bot.start_backup(BOB, ["12345", "mine now"], started) is None
    assert started.texts == ["Sorry, server 12345 is not one you may use here."]
    assert api.request_log == []  # nothing asked: not even the timing tells
    assert len(api.backups(server_id=12345)) == 3


async def test_a_user_in_no_list_is_told_their_id_for_the_operator(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    await bot.start_backup(EVE, ["12345"], chat)
    assert chat.texts == ["Sorry, server 12345 is not one you may use here."]
    await bot.list_backups(EVE, [], chat)
    assert chat.last == (
        "Usage: /backups SERVER_ID. You have no servers here; an operator can add your "
        "user ID, 1003, to the bot's access file."
    )
    assert api.request_log == []


def test_the_access_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "access.toml"
    good.write_text("[users]\n123456789 = [12345, 12346]\n987654321 = []\n")
    assert chat_bot.load_access(good) == {
        123456789: frozenset({12345, 12346}),
        987654321: frozenset(),
    }
    for text, complaint in [
        ("users = 1\n", "no [users] table"),
        ("[users]\nalice = [1]\n", "'alice' is not a Telegram user ID"),
        ("[users]\n0 = [1]\n", "'0' is not a Telegram user ID"),
        ("[users]\n5 = 12345\n", "user 5: expected a list of server IDs"),
        ("[users]\n5 = [1, true]\n", "user 5: expected a list of server IDs"),
        ("[users]\n5 = [-1]\n", "user 5: expected a list of server IDs"),
        ('[users]\n5 = ["12345"]\n', "user 5: expected a list of server IDs"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=re.escape(complaint)):
            chat_bot.load_access(bad)


# -- a backup, followed ---------------------------------------------------------------


async def test_a_backup_is_started_and_its_message_edited_until_it_completes(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    task = await bot.start_backup(ALICE, ["12345", "before", "the", "upgrade"], chat)
    assert task is not None
    (message,) = chat.sent
    assert message.content == "⏳ Backup 502 of web-server-01 (12345) is in progress (0 s so far)."
    assert api.backup(502).description == "before the upgrade"
    assert [(server, backup.id) for server, backup in bot.following.items()] == [(12345, 502)]

    api.advance(30)
    await until(lambda: message.edits)
    assert message.edits == ["⏳ Backup 502 of web-server-01 (12345) is in progress (30 s so far)."]
    api.advance(BACKUP_SECONDS - 30)
    await task

    assert message.text == "✅ Backup 502 of web-server-01 (12345) completed in 1 min (1.1 GB)."
    assert api.backup(502).status == BackupStatus.COMPLETED
    assert len(_posts(api)) == 1
    assert bot.following == {}


async def test_edits_are_throttled_and_never_repeat_a_text(
    api: FakeBackupsAPI, make_bot: Callable[..., Any], chats: Callable[[], Chat]
) -> None:
    interval = 0.05
    bot = make_bot(edit_interval=interval)
    chat = chats()
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    for _ in range(BACKUP_SECONDS // 2):  # a new text every step, far faster than edits
        api.advance(2)
        await asyncio.sleep(0.005)
    await task
    (message,) = chat.sent
    assert message.text.startswith("✅ Backup 502 of db-07 (7) completed in 1 min")
    shown = [message.content, *message.edits]
    assert all(a != b for a, b in itertools.pairwise(shown))
    times = [message.sent_at, *message.edited_at]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Lower bounds only: a slow machine edits less often, never more.
    assert all(gap >= interval * 0.9 for gap in gaps), gaps


async def test_a_failing_edit_is_skipped_and_the_next_one_carries_the_news(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat], caplog: pytest.LogCaptureFixture
) -> None:
    chat = chats()
    chat.fail_edits = 1
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    api.advance(10)
    await until(lambda: chat.sent[0].fail_edits == 0)  # the first edit failed
    api.advance(BACKUP_SECONDS)
    await task
    assert chat.last.startswith("✅ Backup 502 of db-07 (7) completed")
    assert "could not edit a progress message" in caplog.text


async def test_a_failing_last_edit_is_tried_again(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    chat.fail_edits = 2
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    api.advance(BACKUP_SECONDS)  # before any tick: the first edit is the last one
    await task
    (message,) = chat.sent
    assert message.edits == ["✅ Backup 502 of db-07 (7) completed in 1 min (7.9 GB)."]
    assert message.fail_edits == 0


async def test_a_wait_that_breaks_off_says_why_and_where_to_look(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    api.faults.status_before(401, method="GET")  # the token revoked mid-wait
    await task
    assert chat.last == (
        "⚠️ Lost track of backup 502 of db-07 (7): The backups API refused the bot's "
        "credentials; an operator must check them.\n/backups 7 shows how it ends."
    )


async def test_a_failed_backup_ends_with_a_cross(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    api.set_failing(7)
    chat = chats()
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    api.advance(BACKUP_SECONDS)
    await task
    assert chat.last == "❌ Backup 502 of db-07 (7) failed after 1 min."


async def test_a_wait_that_times_out_says_where_to_look(
    api: FakeBackupsAPI, make_bot: Callable[..., Any], chats: Callable[[], Chat]
) -> None:
    bot = make_bot(wait_timeout=0.05)
    chat = chats()
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    await task  # the fake's clock stands still: the backup never ends
    assert chat.last == (
        "⌛ Backup 502 of db-07 (7) is still in progress after 0 s; I stopped watching.\n"
        "/backups 7 shows how it ends."
    )
    assert bot.following == {}


async def test_a_backup_deleted_while_followed_is_reported_gone(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    task = await bot.start_backup(ALICE, ["7"], chat)
    assert task is not None
    api.state.delete_backup(502)
    await task
    assert chat.last == "❔ Backup 502 of db-07 (7) is gone (deleted?)."


# -- one at a time --------------------------------------------------------------------


async def test_a_second_backup_of_a_server_is_refused_while_one_runs(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    first, second = chats(), chats()
    task = await bot.start_backup(ALICE, ["7"], first)
    assert task is not None
    api.advance(90 - BACKUP_SECONDS)  # 30 s in
    assert await bot.start_backup(ALICE, ["7", "again"], second) is None
    assert second.texts == [
        "Backup 502 of db-07 (7) is still in progress (30 s so far); one at a time."
    ]
    assert len(_posts(api)) == 1
    api.advance(BACKUP_SECONDS)
    await task
    third = chats()
    later = await bot.start_backup(ALICE, ["7"], third)  # done: the next one may start
    assert later is not None
    assert third.texts[0].startswith("⏳ Backup 503 of db-07 (7)")
    api.advance(BACKUP_SECONDS)
    await later


async def test_two_commands_at_once_start_one_backup(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    first, second = chats(), chats()
    tasks = await asyncio.gather(
        bot.start_backup(ALICE, ["7"], first), bot.start_backup(ALICE, ["7"], second)
    )
    assert tasks[1] is None
    assert second.texts == ["A backup of server 7 is being started right now."]
    assert len(_posts(api)) == 1
    api.advance(BACKUP_SECONDS)
    await tasks[0]


async def test_a_backup_already_in_progress_at_the_api_is_not_doubled(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    api.state.add_backup(7, created_at=START - timedelta(seconds=10))  # e.g. before a restart
    chat = chats()
    assert await bot.start_backup(ALICE, ["7"], chat) is None
    assert chat.texts == [
        "db-07 (7) already has backup 502 in progress (since 15:44 UTC); one at a time."
    ]
    assert _posts(api) == []
    assert bot.following == {}


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "command", "args", "reply"),
    [
        (
            {"status": 503, "method": "GET"},
            "list_backups",
            ["12345"],
            "Server 12345: The backups API is having trouble (HTTP 503); try again later.",
        ),
        (
            {"status": 500, "method": "GET"},
            "start_backup",
            ["12345"],
            "Server 12345: The backups API is having trouble (HTTP 500); try again later.",
        ),
        (
            {"status": 429, "retry_after": 30, "method": "GET"},
            "list_backups",
            ["7"],
            "Server 7: The backups API is rate limiting the bot; try again in 30 s.",
        ),
        (
            {
                "status": 400,
                "method": "POST",
                "body": {"description": ["Ensure this field has\nno more than 255 characters."]},
            },
            "start_backup",
            ["7", "x"],
            "Server 7: The backups API refused the request: description: Ensure this field "
            "has no more than 255 characters.",
        ),
    ],
    ids=["503-list", "500-create", "429", "400-fields"],
)
async def test_an_api_error_becomes_one_friendly_sentence(
    api: FakeBackupsAPI,
    make_bot: Callable[..., Any],
    chats: Callable[[], Chat],
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    command: str,
    args: list[str],
    reply: str,
) -> None:
    status = fault.pop("status")
    api.faults.status_before(status, **fault)
    bot = make_bot(client_options={"max_retries": 0})
    chat = chats()
    with caplog.at_level(logging.WARNING, logger="chat_bot"):
        assert await getattr(bot, command)(ALICE, args, chat) is None
    assert chat.texts == [reply]
    assert bot.following == {}  # a failed start frees the server
    assert TOKEN not in caplog.text


async def test_a_server_unknown_to_the_api_is_not_found(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    assert await bot.start_backup(ALICE, ["424242"], chat) is None  # allowed, but not there
    assert chat.texts == ["Server 424242: The backups API has no such server or backup."]


async def test_a_refused_token_is_reported_without_the_token(
    api: FakeBackupsAPI,
    make_bot: Callable[..., Any],
    chats: Callable[[], Chat],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "sdk-wrong-token-0c3e"
    bot = make_bot(client_options={"token": wrong})
    chat = chats()
    with caplog.at_level(logging.DEBUG):
        await bot.list_backups(ALICE, ["12345"], chat)
        await bot.start_backup(ALICE, ["12345"], chat)
    expected = (
        "Server 12345: The backups API refused the bot's credentials; an operator must check them."
    )
    assert chat.texts == [expected, expected]
    assert wrong not in caplog.text
    assert "401" in caplog.text  # the operator's log has the error itself


async def test_the_api_unreachable_is_a_friendly_reply(
    api: FakeBackupsAPI, make_bot: Callable[..., Any], chats: Callable[[], Chat]
) -> None:
    api.faults.drop_before()
    bot = make_bot(client_options={"max_retries": 0})
    chat = chats()
    await bot.list_backups(ALICE, ["12345"], chat)
    assert chat.texts == [
        "Server 12345: The bot cannot reach the backups API right now; try again later."
    ]


async def test_a_too_long_description_is_refused_before_any_request(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    assert await bot.start_backup(ALICE, ["7", "x" * 256], chat) is None
    assert chat.texts == ["That description is too long: at most 255 characters."]
    assert api.request_log == []


def test_every_error_has_its_sentence() -> None:
    """No BackupsError falls through to a generic or empty reply, and none echoes its text."""
    import asyncbackups

    errors = [
        getattr(asyncbackups, name)
        for name in asyncbackups.__all__
        if isinstance(getattr(asyncbackups, name), type)
        and issubclass(getattr(asyncbackups, name), asyncbackups.BackupsError)
    ]
    sentences = {}
    for error_type in errors:
        error = _instance(error_type)
        sentences[error_type.__name__] = chat_bot.friendly(error)
        assert TOKEN not in sentences[error_type.__name__]
        assert "secret detail" not in sentences[error_type.__name__]
    generic = "Something went wrong with the backups API; see the log."
    assert sentences.pop("BackupsError") == generic
    assert generic not in sentences.values()  # every kind the SDK has is named
    assert sentences["APIStatusError"] == (
        "The backups API answered HTTP 599; see the log. (request req-1)"
    )
    assert sentences["NotFoundError"].endswith(" (request req-1)")  # for the operator


def _instance(error_type: type[Exception]) -> Any:
    from asyncbackups import (
        AmbiguousCreateError,
        APIStatusError,
        BackupFailedError,
        RateLimitError,
        WaitTimeoutError,
        parse_backups,
    )

    text = f"secret detail {TOKEN}"
    if issubclass(error_type, RateLimitError):
        return error_type(text, status_code=429, body=None, retry_after=None)
    if issubclass(error_type, APIStatusError):
        return error_type(text, status_code=599, body=None, request_id="req-1")
    (backup,) = parse_backups(json.dumps([BACKUP_499]))
    if issubclass(error_type, BackupFailedError | WaitTimeoutError):
        return error_type(text, backup=backup)
    if issubclass(error_type, AmbiguousCreateError):
        return error_type(text, server_id=7, candidates=[backup], idempotency_key="k")
    return error_type(text)


# -- shutdown -------------------------------------------------------------------------


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop reported (a task destroyed while pending, say)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    loop.set_exception_handler(previous)


async def test_shutdown_mid_backup_stops_following_and_closes_the_client(
    api: FakeBackupsAPI,
    bot: Any,
    chats: Callable[[], Chat],
    loop_errors: list[dict[str, Any]],
) -> None:
    chat = chats()
    task = await bot.start_backup(ALICE, ["12345"], chat)
    assert task is not None
    api.advance(20)
    await until(lambda: chat.sent[0].edits)

    await bot.aclose()

    assert task.cancelled()
    assert chat.last == (
        "⏹ The bot is stopping and no longer follows backup 502 of web-server-01 (12345)."
        "\nThe backup goes on: /backups 12345 shows how it ends."
    )
    assert bot.client.closed
    assert bot.following == {}
    assert api.backup(502).status == BackupStatus.IN_PROGRESS  # the API's work goes on
    ours = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in ours if "wait_until_completed" in repr(t) or "_follow" in repr(t)]
    gc.collect()
    assert loop_errors == []

    late = chats()
    assert await bot.start_backup(ALICE, ["7"], late) is None
    assert late.texts == ["The bot is stopping; try again when it is back."]
    await bot.aclose()  # twice is harmless


async def test_a_backup_started_as_the_bot_stops_is_not_followed(
    api: FakeBackupsAPI, bot: Any, chats: Callable[[], Chat]
) -> None:
    chat = chats()
    answered = asyncio.Event()
    send = chat.send

    async def slow_send(content: str) -> Sent:
        await answered.wait()  # the chat service is slow to take the first answer
        return await send(content)

    chat.send = slow_send  # type: ignore[method-assign]
    starting = asyncio.create_task(bot.start_backup(ALICE, ["7"], chat))
    await until(lambda: bot.following.get(7) is not None)  # made, and being announced
    await bot.aclose()
    answered.set()
    assert await starting is None
    (message,) = chat.sent
    assert message.edits == [
        "⏹ The bot is stopping and no longer follows backup 502 of db-07 (7)."
        "\nThe backup goes on: /backups 7 shows how it ends."
    ]
    assert bot.following == {}


async def test_shutdown_with_nothing_running_just_closes_the_client(bot: Any) -> None:
    await bot.aclose()
    assert bot.client.closed


# -- the Telegram glue, through a real Application ------------------------------------


class FakeTelegram(BaseRequest):
    """The Bot API, answered in-process: records each call and answers as Telegram would.

    ``sendMessage`` and ``editMessageText`` answer the message; ``getMe`` the bot.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._next_id = 100

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        parameters = dict(request_data.parameters) if request_data is not None else {}
        self.calls.append((name, parameters))
        if name == "getMe":
            result: Any = {"id": 1, "is_bot": True, "first_name": "Backups", "username": "bk_bot"}
        elif name in {"sendMessage", "editMessageText"}:
            if name == "sendMessage":
                self._next_id += 1
            message_id = parameters.get("message_id", self._next_id)
            result = {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": parameters["chat_id"], "type": "private"},
                "text": parameters["text"],
            }
        else:
            result = True
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def texts(self, method: str) -> list[str]:
        return [parameters["text"] for name, parameters in self.calls if name == method]


def _command(bot: Any, user_id: int, text: str, update_id: int, *, kind: str = "message") -> Update:
    """A command as Telegram delivers it: ``kind`` is ``"edited_message"`` for an edit."""
    command = text.split()[0]
    data = {
        "update_id": update_id,
        kind: {
            "message_id": update_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "User"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
        },
    }
    return Update.de_json(data, bot)


@pytest.fixture
async def telegram_app(api: FakeBackupsAPI) -> AsyncIterator[tuple[Any, FakeTelegram]]:
    """The recipe's application, started as ``run_polling`` starts it (without polling)."""
    telegram = FakeTelegram()
    application = chat_bot.build_application(
        TELEGRAM_TOKEN,
        ACCESS,
        client_options={"token": TOKEN, "base_url": api.base_url},
        request=telegram,
        **_bot_options(api),
    )
    await application.initialize()
    await application.post_init(application)
    await application.start()
    yield application, telegram
    if application.running:
        await _stop(application)


async def _stop(application: Any) -> None:
    """What ``run_polling`` does on Ctrl-C, in its order."""
    await application.stop()
    await application.post_stop(application)
    await application.shutdown()
    await application.post_shutdown(application)


async def test_telegram_commands_list_start_and_refuse(
    api: FakeBackupsAPI, telegram_app: tuple[Any, FakeTelegram]
) -> None:
    application, telegram = telegram_app
    await application.process_update(_command(application.bot, ALICE, "/backups 12345", 1))
    (listing,) = telegram.texts("sendMessage")
    assert listing.startswith("Backups of web-server-01 (12345), newest first (UTC):\n✅ 501")

    await application.process_update(
        _command(application.bot, ALICE, "/backup 12345 before deploy", 2)
    )
    assert telegram.texts("sendMessage")[-1] == (
        "⏳ Backup 502 of web-server-01 (12345) is in progress (0 s so far)."
    )
    assert api.backup(502).description == "before deploy"
    api.advance(BACKUP_SECONDS)
    await until(lambda: any(t.startswith("✅") for t in telegram.texts("editMessageText")))
    assert telegram.texts("editMessageText")[-1] == (
        "✅ Backup 502 of web-server-01 (12345) completed in 1 min (1.1 GB)."
    )

    bot = application.bot_data[chat_bot.BOT_DATA_KEY]
    await until(lambda: not bot.following)  # done with it: a new backup would be allowed
    # Someone edits the old command: no second backup (and no answer at all).
    sent = len(telegram.calls)
    edited = _command(application.bot, ALICE, "/backup 12345 again", 2, kind="edited_message")
    await application.process_update(edited)
    assert len(telegram.calls) == sent
    assert len(_posts(api)) == 1

    await application.process_update(_command(application.bot, BOB, "/backup 12345", 3))
    await application.process_update(_command(application.bot, EVE, "/help", 4))
    assert telegram.texts("sendMessage")[-2:] == [
        "Sorry, server 12345 is not one you may use here.",
        "/backups SERVER_ID lists a server's backups; /backup SERVER_ID [description] starts "
        "one and shows how it goes.\nYou have no servers here; an operator can add your user "
        "ID, 1003, to the bot's access file.",
    ]
    for _, parameters in telegram.calls:
        assert TOKEN not in json.dumps(parameters)


async def test_telegram_shutdown_mid_backup_edits_then_closes(
    api: FakeBackupsAPI,
    telegram_app: tuple[Any, FakeTelegram],
    loop_errors: list[dict[str, Any]],
) -> None:
    application, telegram = telegram_app
    await application.process_update(_command(application.bot, ALICE, "/backup 7", 1))
    bot = application.bot_data[chat_bot.BOT_DATA_KEY]
    assert list(bot.following) == [7]

    await _stop(application)  # returns although the backup runs on: its wait is cancelled

    assert telegram.texts("editMessageText")[-1] == (
        "⏹ The bot is stopping and no longer follows backup 502 of db-07 (7)."
        "\nThe backup goes on: /backups 7 shows how it ends."
    )
    assert bot.client.closed
    assert bot.following == {}
    gc.collect()
    assert loop_errors == []
