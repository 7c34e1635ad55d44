"""The token stays out of errors and logs in every form a hostile server can echo it."""

from __future__ import annotations

import json
import random
import string
import time
import traceback
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from yarl import URL

from asyncbackups import (
    APIConnectionError,
    APIStatusError,
    Backup,
    BackupStatus,
    BackupType,
    BadRequestError,
    ResponseValidationError,
    ServerRef,
    WaitTimeoutError,
)
from asyncbackups._core.redact import Redactor

PRINTABLE = string.ascii_letters + string.digits + string.punctuation
# Every printable non-space ASCII character, so each escape rule is exercised.
TOKEN = "tok/en+%2F\\q\"u'o:t@e?s&=;#[]{}<>|^`~!$()*,-._" + string.ascii_letters
LONG_TOKEN = "".join(random.Random(20250116).choices(PRINTABLE, k=10_000))
DEPTH = 100_000


@pytest.fixture
def redactor() -> Redactor:
    return Redactor(TOKEN)


def leaks(text: str, token: str = TOKEN) -> bool:
    """Whether ``text`` shows the token's start in any form these tests produce."""
    head = token[:8]
    forms = {
        head,
        json.dumps(head)[1:-1],
        json.dumps(head)[1:-1].replace("/", "\\/"),
        quote(head, safe=""),
        quote(head, safe="").lower(),
        quote(head),
        quote_plus(head),
        repr(head)[1:-1],
    }
    return any(form in text for form in forms)


def exception_text(error: BaseException) -> str:
    return "".join([str(error), repr(error), *traceback.format_exception(error)])


# -- text: each form of the token --------------------------------------------------


def test_the_exact_token_is_masked_and_the_text_around_it_kept(redactor: Redactor) -> None:
    assert redactor.text(f"Invalid token {TOKEN}.") == "Invalid token ***."


def test_every_occurrence_is_masked(redactor: Redactor) -> None:
    assert redactor.text(f"{TOKEN} and {TOKEN}{TOKEN}") == "*** and ***"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: json.dumps(t)[1:-1], id="json"),
        pytest.param(lambda t: json.dumps(t)[1:-1].replace("/", "\\/"), id="json-escaped-slash"),
        pytest.param(lambda t: repr(t)[1:-1], id="python-repr"),
        pytest.param(lambda t: repr(t.encode())[2:-1], id="python-bytes-repr"),
    ],
)
def test_the_token_in_raw_undecoded_escaped_text_is_masked(redactor: Redactor, encode: Any) -> None:
    form = encode(TOKEN)
    assert form != TOKEN
    assert redactor.text(f'{{"detail": "bad {form}"}}') == '{"detail": "bad ***"}'


def test_a_slash_escaped_token_as_php_writes_it_is_masked() -> None:
    assert Redactor("a/b/c/d/e").text('{"t": "a\\/b\\/c\\/d\\/e"}') == '{"t": "***"}'


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: quote(t, safe=""), id="quote-upper"),
        pytest.param(lambda t: quote(t, safe="").lower(), id="quote-lower"),
        pytest.param(quote, id="quote-keeping-slashes"),
        pytest.param(quote_plus, id="quote-plus"),
        pytest.param(lambda t: str(URL("https://evil.test/").with_query(t=t)), id="yarl-query"),
        pytest.param(lambda t: str(URL("https://evil.test/") / t), id="yarl-path"),
    ],
)
def test_a_url_encoded_token_is_masked(redactor: Redactor, encode: Any) -> None:
    echoed = f"redirected to {encode(TOKEN)} - no"
    redacted = redactor.text(echoed)
    assert "***" in redacted
    assert not leaks(redacted)


def test_a_token_with_spaces_percent_encoded_with_plus_is_masked() -> None:
    token = "two words and more"
    assert Redactor(token).text("q=" + quote_plus(token)) == "q=***"


def test_percent_encoding_whose_hex_case_changes_after_the_start_is_masked() -> None:
    token = "a/b/c/d/e/f"
    assert Redactor(token).text("a%2fb%2fc%2fd%2fe%2Ff") == "***"


def test_a_token_that_changes_form_after_its_start_is_masked_whole() -> None:
    token = "start/of/the/token/and/its/end"
    echoed = token[:12] + quote(token[12:], safe="")
    assert Redactor(token).text(f"<{echoed}>") == "<***>"


@pytest.mark.parametrize("length", [8, 9, len(TOKEN) // 2, len(TOKEN) - 1])
def test_a_token_cut_short_to_eight_characters_or_more_is_masked(
    redactor: Redactor, length: int
) -> None:
    assert redactor.text(f"Bearer {TOKEN[:length]}...") == "Bearer ***..."


def test_a_cut_short_token_in_aiohttps_oversized_header_message_is_masked(
    redactor: Redactor,
) -> None:
    line = f"Authorization: Bearer {TOKEN}".encode()
    message = f"400, message='Got more than 8190 bytes when reading: {line[:30]!r}...'"
    redacted = redactor.text(message)
    assert redacted.startswith("400, message='Got more than 8190 bytes")
    assert "***" in redacted
    assert not leaks(redacted)


def test_seven_characters_of_a_long_token_are_left_alone(redactor: Redactor) -> None:
    assert redactor.text(f"x {TOKEN[:7]} y") == f"x {TOKEN[:7]} y"


def test_a_token_shorter_than_eight_characters_is_masked_only_whole() -> None:
    redactor = Redactor("s3cr3t")
    assert redactor.text("s3cr3t, s3cr3") == "***, s3cr3"


def test_an_echo_overlapping_a_false_start_is_masked_whole() -> None:
    # The first eight characters match at the start, but the token begins two later.
    assert Redactor("aaaaaaaaab").text("aaaaaaaaaaab!") == "***!"


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: t, id="plain"),
        pytest.param(lambda t: quote(t, safe=""), id="percent-encoded"),
        pytest.param(lambda t: json.dumps(t)[1:-1].replace("/", "\\/"), id="json"),
        pytest.param(lambda t: t[:5000], id="cut-short"),
    ],
)
def test_a_10000_character_token_is_masked_in_every_form(encode: Any) -> None:
    redactor = Redactor(LONG_TOKEN)
    assert redactor.text(f"[{encode(LONG_TOKEN)}]") == "[***]"


def test_text_without_the_token_is_returned_as_the_same_object(redactor: Redactor) -> None:
    text = "nothing secret here, " * 1000
    assert redactor.text(text) is text


def test_a_large_text_without_the_token_is_checked_quickly() -> None:
    redactor = Redactor(LONG_TOKEN)
    text = "x" * 10_000_000
    started = time.perf_counter()
    assert redactor.text(text) is text
    assert time.perf_counter() - started < 1.0


def test_text_built_to_make_matching_slow_is_finished_quickly_and_leaks_nothing() -> None:
    token = "a" * 10_000
    started = time.perf_counter()
    redacted = Redactor(token).text("a" * 200_000)
    assert time.perf_counter() - started < 2.0
    assert "a" * 8 not in redacted


def test_an_empty_token_redacts_nothing() -> None:
    redactor = Redactor("")
    text = "anything at all"
    assert redactor.text(text) is text
    assert redactor.data({"a": [text]}) == {"a": [text]}


def test_the_redactors_repr_hides_the_token(redactor: Redactor) -> None:
    assert not leaks(repr(redactor))


# -- bytes ----------------------------------------------------------------------------


def test_the_token_in_bytes_is_masked(redactor: Redactor) -> None:
    body = b'{"detail": "' + TOKEN.encode() + b'"} \xff\xfe'
    assert redactor.bytes(body) == b'{"detail": "***"} \xff\xfe'


def test_a_percent_encoded_or_cut_short_token_in_bytes_is_masked(redactor: Redactor) -> None:
    body = quote(TOKEN, safe="").encode() + b" " + TOKEN[:10].encode()
    assert redactor.bytes(body) == b"*** ***"


def test_a_non_ascii_token_is_masked_in_its_utf8_bytes() -> None:
    token = "pässwörd-ünicode"
    redactor = Redactor(token)
    assert redactor.bytes(f"<{token}>".encode()) == b"<***>"
    assert redactor.bytes(quote(token).encode()) == b"***"
    assert redactor.text(quote(token)) == "***"


def test_bytes_without_the_token_are_returned_as_the_same_object(redactor: Redactor) -> None:
    body = b"\x00\x01 nothing secret" * 1000
    assert redactor.bytes(body) is body


# -- decoded JSON ---------------------------------------------------------------------


def test_the_token_in_decoded_json_is_masked_after_its_escapes_were_decoded(
    redactor: Redactor,
) -> None:
    # \u escapes for every character: only the decoded value still spells the token.
    raw = '{"detail": "' + "".join(f"\\u{ord(char):04x}" for char in TOKEN) + '"}'
    assert redactor.data(json.loads(raw)) == {"detail": "***"}


def test_the_token_in_dict_keys_list_items_tuples_and_bytes_is_masked(
    redactor: Redactor,
) -> None:
    body = {
        TOKEN: ["fine", f"a {TOKEN}", ("nested", {"deeper": TOKEN.encode()})],
        "count": 3,
        "none": None,
    }
    assert redactor.data(body) == {
        "***": ["fine", "a ***", ("nested", {"deeper": b"***"})],
        "count": 3,
        "none": None,
    }


def test_redacting_data_leaves_the_original_untouched(redactor: Redactor) -> None:
    body = {"detail": [TOKEN]}
    redactor.data(body)
    assert body == {"detail": [TOKEN]}


def test_data_without_the_token_is_returned_as_the_same_object(redactor: Redactor) -> None:
    body: dict[str, Any] = {"results": [{"id": n, "description": "daily"} for n in range(1000)]}
    assert redactor.data(body) is body


def test_only_the_branch_holding_the_token_is_copied(redactor: Redactor) -> None:
    clean = {"id": 1}
    body = {"clean": clean, "dirty": [TOKEN]}
    redacted = redactor.data(body)
    assert redacted["clean"] is clean
    assert redacted["dirty"] == ["***"]


def test_a_token_100000_lists_deep_is_masked_without_recursion(redactor: Redactor) -> None:
    body: Any = f"at the bottom: {TOKEN}"
    for _ in range(DEPTH):
        body = [body]
    redacted = redactor.data(body)
    for _ in range(DEPTH):
        assert isinstance(redacted, list)
        redacted = redacted[0]
    assert redacted == "at the bottom: ***"


def test_a_token_in_a_key_100000_dicts_deep_is_masked_without_recursion(
    redactor: Redactor,
) -> None:
    body: Any = {TOKEN: "bottom"}
    for _ in range(DEPTH):
        body = {"next": (body,), "also": "clean"}
    redacted = redactor.data(body)
    for _ in range(DEPTH):
        assert redacted["also"] == "clean"
        redacted = redacted["next"][0]
    assert redacted == {"***": "bottom"}


def test_a_deep_structure_without_the_token_is_returned_as_the_same_object(
    redactor: Redactor,
) -> None:
    body: Any = "clean"
    for _ in range(DEPTH):
        body = {"next": [body]}
    assert redactor.data(body) is body


def test_a_structure_that_contains_itself_is_redacted_without_looping(
    redactor: Redactor,
) -> None:
    body: list[Any] = [TOKEN]
    body.append(body)
    redacted = redactor.data(body)
    assert redacted[0] == "***"


def test_values_of_other_types_are_returned_as_they_are(redactor: Redactor) -> None:
    backup = backup_described(TOKEN)
    assert redactor.data(backup) is backup
    assert redactor.data(42) == 42


# -- exceptions -----------------------------------------------------------------------


def backup_described(description: str) -> Backup:
    return Backup(
        id=601,
        server=ServerRef(12345, "web-server-01"),
        backup_type=BackupType.MANUAL,
        status=BackupStatus.IN_PROGRESS,
        size_mb=None,
        created_at=datetime(2025, 1, 16, 3, 0, tzinfo=UTC),
        description=description,
    )


def hostile_errors() -> list[BaseException]:
    echoed = f"token {TOKEN} is invalid"
    escaped = json.dumps(TOKEN)[1:-1].replace("/", "\\/")
    return [
        APIStatusError(
            f"418: {echoed}",
            status_code=418,
            body={"detail": echoed, TOKEN: [TOKEN]},
            method="GET",
            url=f"https://admin.vps.org/api/v1/backups/?t={quote(TOKEN, safe='')}",
        ),
        BadRequestError(
            f"400: {echoed}",
            body=f'{{"description": ["{escaped}"]}}',
            field_errors={"description": [echoed], TOKEN: [TOKEN[:9]]},
        ),
        ResponseValidationError(
            f"bad answer: {echoed}",
            path=f"results[{TOKEN}]",
            body=[{"detail": [echoed.encode()]}],
        ),
        APIConnectionError(f"connection reset while sending {TOKEN[:20]}"),
    ]


@pytest.mark.parametrize("error", hostile_errors(), ids=lambda error: type(error).__name__)
def test_a_redacted_error_shows_the_token_nowhere(redactor: Redactor, error: Exception) -> None:
    error.add_note(f"note: {TOKEN}")
    redactor.error(error)
    assert not leaks(exception_text(error))
    assert not leaks(repr(error.args))
    assert not leaks(repr(vars(error)))


def test_a_redacted_error_keeps_its_type_status_and_the_rest_of_its_text(
    redactor: Redactor,
) -> None:
    error = BadRequestError(
        f"400: {TOKEN} refused", body={"description": ["too long"]}, field_errors={"x": ["y"]}
    )
    redactor.error(error)
    assert str(error) == "400: *** refused"
    assert error.message == "400: *** refused"
    assert error.status_code == 400
    assert error.body == {"description": ["too long"]}
    assert error.field_errors == {"x": ["y"]}


def test_redacting_follows_last_error_causes_and_exception_groups(redactor: Redactor) -> None:
    poll = APIStatusError(f"503: {TOKEN}", status_code=503)
    timeout = WaitTimeoutError("deadline", backup=None, last_error=poll)
    cause = ValueError(f"cause {TOKEN}")
    timeout.__cause__ = cause
    group = ExceptionGroup("1 of 1 server backups failed", [timeout])
    redactor.error(group)
    assert not leaks(exception_text(group))
    assert str(poll) == "503: ***"
    assert str(cause) == "cause ***"


def test_redacting_an_os_error_reaches_the_text_its_str_is_made_of(redactor: Redactor) -> None:
    error = ConnectionResetError(104, f"reset by {TOKEN}")
    redactor.error(error)
    assert not leaks(str(error))


def test_redacting_an_error_leaves_the_backup_it_carries_as_it_was(redactor: Redactor) -> None:
    backup = backup_described("Pre-deployment backup")
    error = WaitTimeoutError("deadline", backup=backup)
    redactor.error(error)
    assert error.backup is backup


def test_redacting_an_error_without_the_token_changes_nothing(redactor: Redactor) -> None:
    body = {"detail": "Not found."}
    error = APIStatusError("404: Not found.", status_code=404, body=body)
    args = error.args
    redactor.error(error)
    assert error.args is args
    assert error.body is body
