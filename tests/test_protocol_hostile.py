"""The pure protocol against a hostile server: nothing raw escapes, messages stay small.

Every case is a plain :class:`Response` value. Success answers go through the client's
decoders (msgspec first, then the general path), error answers through the stdlib's JSON.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from conftest import BACKUP_499, BACKUP_501
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncbackups import (
    APIStatusError,
    AuthenticationError,
    BackupsError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    parse_backups,
)
from asyncbackups._core.protocol import (
    Response,
    decode_json,
    error_from_response,
    parse_retry_after,
    server_date,
)
from asyncbackups._decoding.responses import (
    decode_backup_response,
    decode_delete_response,
    decode_page,
    decode_page_parts,
    decode_restore_response,
)

URL_501 = "https://admin.vps.org/api/v1/backups/501/"
NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
MESSAGE_LIMIT = 1_000

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

Loader = Callable[[bytes], Any]


def answer(
    status: int,
    body: bytes | Any = b"",
    *,
    method: str = "GET",
    url: str = URL_501,
    headers: dict[str, str] | None = None,
) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(method=method, url=url, status=status, headers=headers or {}, body=raw)


def assert_one_short_line(error: BaseException) -> str:
    text = str(error)
    assert len(text) < MESSAGE_LIMIT
    assert text.isprintable()  # no newline, no control or bidi character, no lone surrogate
    return text


# -- 1. whatever the JSON loader does ----------------------------------------------------


def test_stdlib_json_hits_the_recursion_limit_on_deep_nesting() -> None:
    # The hazard the protocol guards against is real: this is what would escape.
    with pytest.raises(RecursionError):
        json.loads(DEEP_ARRAY)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_validation_error_with_no_context(body: bytes) -> None:
    with pytest.raises(ResponseValidationError, match="not valid JSON") as caught:
        decode_json(body)
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    assert_one_short_line(caught.value)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_error_body_keeps_its_status_class(body: bytes) -> None:
    error = error_from_response(answer(400, body))
    assert type(error) is BadRequestError
    assert error.field_errors == {}
    assert isinstance(error.body, str)
    assert error.body.startswith(body[:10].decode())
    assert_one_short_line(error)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_success_body_is_a_validation_error(body: bytes) -> None:
    for decode in (decode_backup_response, decode_page, decode_restore_response):
        with pytest.raises(ResponseValidationError) as caught:
            decode(answer(200, body))
        assert caught.value.__context__ is None


def test_invalid_json_error_does_not_carry_the_document_along() -> None:
    # json.JSONDecodeError keeps the whole body in .doc; it must not ride as context.
    body = b'{"detail": "x", "password": "hunter2"' + b" " * 10_000
    with pytest.raises(ResponseValidationError) as caught:
        decode_json(body, loader=json.loads)
    assert caught.value.__context__ is None
    assert caught.value.__suppress_context__ is False


def _raising(exc: Exception) -> Loader:
    def loader(body: bytes) -> Any:
        raise exc

    return loader


LOADER_FAILURES = [
    ValueError("no"),
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    RecursionError("maximum recursion depth exceeded"),
    TypeError("a bytes-like object is required"),
    OverflowError("too big"),
    KeyError("x" * 100_000),
]


@pytest.mark.parametrize("exc", LOADER_FAILURES, ids=lambda exc: type(exc).__name__)
def test_any_loader_failure_becomes_a_validation_error(exc: Exception) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_json(b'{"id": 1}', loader=_raising(exc))
    assert caught.value.__context__ is None
    assert type(exc).__name__ in str(caught.value)
    assert_one_short_line(caught.value)


@pytest.mark.parametrize("exc", LOADER_FAILURES, ids=lambda exc: type(exc).__name__)
def test_any_loader_failure_leaves_an_error_body_as_text(exc: Exception) -> None:
    error = error_from_response(answer(404, b'{"detail": "gone"}'), loader=_raising(exc))
    assert type(error) is NotFoundError
    assert error.body == '{"detail": "gone"}'


def test_a_loader_out_of_memory_is_not_disguised_as_bad_json() -> None:
    with pytest.raises(MemoryError):
        decode_json(b"[]", loader=_raising(MemoryError()))


def test_error_body_the_json_encoder_cannot_render_still_gives_field_errors() -> None:
    body = {"server_id": [object()], "description": object()}
    error = error_from_response(answer(400, b"{}"), loader=lambda _: body)
    assert isinstance(error, BadRequestError)
    assert error.field_errors == {"server_id": ["<object>"], "description": ["<object>"]}
    assert_one_short_line(error)


def test_a_circular_error_body_is_kept_as_text() -> None:
    circular: list[Any] = []
    circular.append(circular)
    error = error_from_response(answer(400, b"[[]]"), loader=lambda _: circular)
    assert isinstance(error, BadRequestError)
    assert error.body == "[[]]"


def nested(depth: int) -> bytes:
    return b'{"detail": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_an_error_body_too_deep_to_copy_is_kept_as_text() -> None:
    # The stdlib's JSON reads 900 levels; deepcopy and pickle fail long before that.
    error = error_from_response(answer(404, nested(900)))
    assert isinstance(error, NotFoundError)
    assert isinstance(error.body, str)
    assert error.body.startswith('{"detail": [[[')
    assert copy.deepcopy(error).body == error.body
    assert pickle.loads(pickle.dumps(error)).body == error.body


def test_an_error_body_64_levels_deep_is_kept_as_json() -> None:
    error = error_from_response(answer(404, nested(64)))
    assert isinstance(error.body, dict)
    assert copy.deepcopy(error).body == error.body


def test_a_restore_answer_too_deep_to_copy_is_a_validation_error() -> None:
    body = b'{"status": "restoring", "extra": ' + b"[" * 900 + b"]" * 900 + b"}"
    with pytest.raises(ResponseValidationError) as caught:
        decode_restore_response(answer(202, body, method="POST"))
    assert caught.value.path == "$"
    assert isinstance(caught.value.body, str)


# -- 2. Retry-After and Date -------------------------------------------------------------

# Dates email.utils reads, however odd (two-digit years are 19xx or 20xx).
ODD_DATES = [
    "Fri, 31 Dec 0 23:59:59 GMT",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "Mon, 01 Jan 0001 00:00:00 +2359",
    "Thu, 01 Jan 1970 00:00:00 -0001",
]
GARBAGE_HEADER_VALUES = [
    "Fri, 31 Dec 99999 23:59:59 GMT",
    "Fri, 31 Dec 99999999999999999999 23:59:59 GMT",
    "Fri, 31 Dec 2015 23:59:59 +9999",
    "Fri, 31 Dec 2015 23:59:59 -9999",
    "Fri, 31 Dec 9999 23:59:59 -2359",
    "Mon, 01 Jan 1000 00:00:00 GMT",
    "Fri, 99 Dec 2015 99:99:99 GMT",
    "Wed, 21 Oct ٢٠١٥ 07:28:00 GMT",
    "Wed, 21 Oct 2015 07:28:00 GMT" + " x" * 1_000,
    "1e400",
    "1e3",
    "-0",
    "-1",
    "+5",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1_000",
    "0x10",
    "١٢٠",
    "\uff11\uff12",  # fullwidth digits
    "5 5",
    "\x00",
    "\r\n",
    "é",
    "\udcff",
    "",
    " ",
]


@pytest.mark.parametrize("value", ODD_DATES + GARBAGE_HEADER_VALUES)
def test_hostile_retry_after_is_garbage_or_a_sane_wait(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@pytest.mark.parametrize("value", GARBAGE_HEADER_VALUES)
def test_retry_after_that_is_neither_delta_seconds_nor_a_date_is_none(value: str) -> None:
    assert parse_retry_after(value, now=NOW) is None


@pytest.mark.parametrize("value", GARBAGE_HEADER_VALUES)
def test_date_header_that_is_not_a_date_is_none(value: str) -> None:
    assert server_date({"Date": value}) is None


@pytest.mark.parametrize("value", ODD_DATES)
def test_odd_but_readable_date_header_is_an_aware_utc_datetime(value: str) -> None:
    when = server_date({"Date": value})
    assert when is not None
    assert when.utcoffset() == UTC.utcoffset(None)
    assert parse_retry_after(value, now=NOW) == 0.0


def test_two_digit_year_zero_is_read_as_2000_as_rfc_850_says() -> None:
    assert parse_retry_after("Fri, 31 Dec 0 23:59:59 GMT", now=NOW) == 0.0
    assert server_date({"Date": "Fri, 31 Dec 0 23:59:59 GMT"}) == datetime(
        2000, 12, 31, 23, 59, 59, tzinfo=UTC
    )


def test_absurdly_large_delta_seconds_is_returned_for_the_caller_to_cap() -> None:
    assert parse_retry_after("1" + "0" * 300) == 1e300
    assert parse_retry_after("9" * 10_000) == sys.float_info.max


def test_retry_after_a_date_far_in_the_future_is_a_finite_wait() -> None:
    seconds = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW)
    assert seconds is not None
    assert 2.5e11 < seconds < math.inf


def test_retry_after_with_a_naive_now_reads_it_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=naive) == 30.0


def test_server_date_is_given_in_utc() -> None:
    when = server_date({"Date": "Thu, 16 Jan 2025 17:45:01 +0200"})
    assert when == datetime(2025, 1, 16, 15, 45, 1, tzinfo=UTC)
    assert when is not None
    assert when.utcoffset() == UTC.utcoffset(None)


def test_server_date_before_the_epoch_is_a_broken_clock() -> None:
    assert server_date({"Date": "Wed, 31 Dec 1969 23:59:59 GMT"}) is None


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
http_date_like = st.builds(
    "{}, {} {} {} {}:{}:{} {}".format,
    st.sampled_from(["Mon", "Fri", "Sunday", "", "x"]),
    st.integers(-5, 100),
    st.sampled_from([*MONTHS, "Foo"]),
    st.integers(-(10**25), 10**25) | st.integers(0, 10_000),
    st.integers(-1, 99),
    st.integers(-1, 99),
    st.integers(-1, 99),
    st.sampled_from(["GMT", "UTC", "", "EST"])
    | st.integers(-99_999, 99_999).map(lambda n: f"{n:+05d}"),
)


@settings(max_examples=300, deadline=None)
@given(http_date_like | st.text(max_size=60) | st.from_regex(r"\s*[0-9.eE+-]{1,400}\s*"))
def test_retry_after_and_date_never_raise(value: str) -> None:
    seconds = parse_retry_after(value, now=NOW)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
    when = server_date({"Date": value})
    assert when is None or (when.utcoffset() is not None and when.year >= 1970)


# -- 3. bounded, one-line messages -----------------------------------------------------


def test_100_mb_detail_gives_a_short_message_and_keeps_the_whole_body() -> None:
    size = 100_000_000
    error = error_from_response(answer(400, b'{"detail": "' + b"x" * size + b'"}'))
    text = assert_one_short_line(error)
    assert "xxx..." in text
    assert len(error.body["detail"]) == size


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (403, APIStatusError),
    ],
)
def test_every_status_class_bounds_a_huge_detail(status: int, kind: type[APIStatusError]) -> None:
    error = error_from_response(answer(status, {"detail": "d" * 1_000_000}))
    assert type(error) is kind
    assert_one_short_line(error)


def test_100_000_field_names_give_a_short_message_and_every_field_error() -> None:
    body = {f"field_{index}": ["This field is required."] for index in range(100_000)}
    error = error_from_response(answer(400, body))
    assert isinstance(error, BadRequestError)
    assert error.field_errors == body
    text = assert_one_short_line(error)
    assert "field_0: This field is required." in text
    assert text.endswith("...")


@pytest.mark.parametrize(
    "body",
    [
        {"f" * 1_000_000: ["bad"]},
        {"f": ["m" * 1_000_000]},
        {"f": ["short"] * 100_000},
        {"f": ["m" * 1_000] * 1_000},
        ["e" * 1_000_000],
    ],
    ids=["long-name", "long-message", "many-messages", "many-long-messages", "long-list"],
)
def test_huge_field_errors_give_a_short_message_and_keep_their_content(body: Any) -> None:
    error = error_from_response(answer(400, body))
    assert isinstance(error, BadRequestError)
    assert sum(len(messages) for messages in error.field_errors.values()) >= 1
    assert error.body == body
    assert_one_short_line(error)


def test_a_1_mb_location_gives_a_short_redirect_message() -> None:
    location = "https://evil.example/" + "a" * 1_000_000
    error = error_from_response(answer(302, b"", headers={"Location": location}))
    text = assert_one_short_line(error)
    assert "https://evil.example/aaa" in text


def test_a_1_mb_request_path_gives_a_short_message() -> None:
    error = error_from_response(answer(404, b"", url=URL_501 + "p" * 1_000_000))
    assert_one_short_line(error)


@pytest.mark.parametrize("body", [b"x\n" * 100_000, b"\x00\x1b" * 100_000, b"<p>\r\n</p>" * 1_000])
def test_a_huge_non_json_body_of_control_characters_gives_one_short_line(body: bytes) -> None:
    error = error_from_response(answer(502, body))
    assert isinstance(error, ServerError)
    assert isinstance(error.body, str)
    assert len(error.body) < 300
    assert_one_short_line(error)


@pytest.mark.parametrize(
    "body",
    [
        {"detail": "line one\nline two\r\n\x1b[31mred\x1b[0m \u2028 \u202egnp.exe"},
        {"detail\nforged": ["log line\nINFO: all good"]},
        ["first\nsecond"],
        "a JSON string\n with a newline",
        {"other": "shape\n"},
    ],
)
def test_control_characters_from_the_server_do_not_break_the_line(body: Any) -> None:
    error = error_from_response(answer(400, body))
    assert "\n" not in str(error)
    assert_one_short_line(error)


def test_control_characters_are_shown_escaped_not_dropped() -> None:
    error = error_from_response(answer(404, {"detail": "one\ntwo"}))
    assert "one\\ntwo" in str(error)


def test_control_characters_in_a_location_do_not_break_the_line() -> None:
    location = "https://evil.example/\r\nSet-Cookie: x=1"
    error = error_from_response(answer(301, b"", headers={"Location": location}))
    assert "\\r\\nSet-Cookie" in assert_one_short_line(error)


def test_non_ascii_text_from_the_server_stays_readable() -> None:
    error = error_from_response(answer(404, {"detail": "बॅकअप सापडला नाही."}))
    assert "बॅकअप सापडला नाही." in str(error)


# -- field_errors of any shape -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field_errors"),
    [
        (["error"], {"non_field_errors": ["error"]}),
        (["a", "b"], {"non_field_errors": ["a", "b"]}),
        ([], {}),
        ([{"code": "x"}, 1, None], {"non_field_errors": ['{"code": "x"}', "1", "null"]}),
        ({"count": 5}, {"count": ["5"]}),
        ({"f": None}, {"f": ["null"]}),
        ({"f": True}, {"f": ["true"]}),
        ({"f": 1.5}, {"f": ["1.5"]}),
        ({"f": [1, None, {"a": 1}, ["x"]]}, {"f": ["1", "null", '{"a": 1}', '["x"]']}),
        ({"f": {"nested": {"deep": ["x"]}}}, {"f": ['{"nested": {"deep": ["x"]}}']}),
        ({"f": []}, {"f": []}),
        ({"detail": 5}, {}),
        ("plain text", {}),
        (42, {}),
        (None, {}),
    ],
)
def test_field_errors_of_any_shape_become_lists_of_text(body: Any, field_errors: Any) -> None:
    error = error_from_response(answer(400, body))
    assert isinstance(error, BadRequestError)
    assert error.field_errors == field_errors
    assert_one_short_line(error)


def test_a_top_level_list_of_errors_is_shown_without_a_field_name() -> None:
    error = error_from_response(answer(400, ["Backups are disabled for this server."]))
    assert isinstance(error, BadRequestError)
    assert str(error).endswith(": Backups are disabled for this server.")


def test_field_errors_with_keys_that_are_not_text_use_their_json() -> None:
    body = {1: ["one"], None: "none", (2, 3): ["pair"]}
    error = error_from_response(answer(400, b"{}"), loader=lambda _: body)
    assert isinstance(error, BadRequestError)
    assert error.field_errors == {"1": ["one"], "null": ["none"], "[2, 3]": ["pair"]}


def test_field_error_with_an_int_past_the_digit_limit_does_not_raise() -> None:
    error = error_from_response(answer(400, b"{}"), loader=lambda _: {"f": [10**5000]})
    assert isinstance(error, BadRequestError)
    assert error.field_errors == {"f": ["<int>"]}


# -- 4. other hostile shapes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "seen"),
    [
        (7, 7),
        (0, 0),
        (-1, None),
        (sys.maxsize + 1, None),
        (2**64, None),
        (1.5, None),
        ("3", None),
        (True, None),
        (None, None),
        ([3], None),
    ],
)
def test_page_count_is_kept_only_when_usable(count: Any, seen: int | None) -> None:
    raw, next_link, got = decode_page_parts(answer(200, {"count": count, "results": []}))
    assert (raw, next_link, got) == ([], None, seen)
    assert decode_page(answer(200, {"count": count, "results": []})) == ([], None)


def test_a_count_of_4000_digits_is_ignored() -> None:
    body = b'{"count": ' + b"9" * 4_000 + b', "results": []}'
    assert decode_page_parts(answer(200, body)) == ([], None, None)
    assert parse_backups(body) == []


@pytest.mark.parametrize("results", ["x", {"id": 501}, None, 5, True])
def test_page_results_that_are_not_a_list_name_the_field(results: Any) -> None:
    for decode in (decode_page, decode_page_parts):
        with pytest.raises(ResponseValidationError) as caught:
            decode(answer(200, {"results": results}))
        assert caught.value.path == "$.results"
        assert_one_short_line(caught.value)


def test_a_10_mb_next_link_is_handed_on_without_raising() -> None:
    next_link = "https://admin.vps.org/api/v1/backups/?page=" + "9" * 10_000_000
    backups, got = decode_page(answer(200, {"results": [BACKUP_501], "next": next_link}))
    assert [backup.id for backup in backups] == [501]
    assert got == next_link


def test_bare_list_page_names_the_bad_item_from_the_root() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_page(answer(200, [BACKUP_499, {**BACKUP_501, "id": None}]))
    assert caught.value.path == "$[1].id"


@pytest.mark.parametrize("body", [[], "x", 1, None, True, [{"status": "ok"}]])
def test_restore_answer_that_is_not_an_object_is_a_validation_error(body: Any) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_restore_response(answer(202, body, method="POST"))
    assert caught.value.path == "$"


NOT_UTF8 = [b"\xff\xfe\x00garbage", b'{"detail": "\xff\xfe"}', b"\xc3", b"\xed\xa0\x80"]


@pytest.mark.parametrize("body", NOT_UTF8)
def test_bodies_that_are_not_utf8_give_typed_errors(body: bytes) -> None:
    error = error_from_response(answer(404, body))
    assert isinstance(error, NotFoundError)
    assert_one_short_line(error)
    with pytest.raises(ResponseValidationError):
        decode_json(body)


@pytest.mark.parametrize("body", NOT_UTF8)
def test_success_bodies_that_are_not_utf8_are_validation_errors(body: bytes) -> None:
    for decode in (decode_backup_response, decode_page, decode_restore_response):
        with pytest.raises(ResponseValidationError):
            decode(answer(200, body))


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://exa mple.com:99999999/",
        "",
        "\x00",
        "http://" + "a" * 300 + ".com/",
        "http://\udcff/",
        "http://a:b@c:d@e/",
        "http://%zz/\n",
        "not a url at all",
    ],
)
def test_a_request_url_yarl_refuses_still_gives_the_right_error(url: str) -> None:
    error = error_from_response(answer(429, {"detail": "slow down"}, url=url))
    assert isinstance(error, RateLimitError)
    assert error.url == url
    assert_one_short_line(error)


def test_non_ascii_header_values_are_read_or_ignored() -> None:
    headers = {
        "Retry-After": "٣",
        "Date": "Thu, ١٦ Jan 2025 15:45:01 GMT",
        "Location": "https://例え.jp/\u202e",
    }
    error = error_from_response(answer(503, b"", headers=headers))
    assert isinstance(error, ServerError)
    assert error.retry_after is None
    assert server_date(headers) is None
    redirect = error_from_response(answer(307, b"", headers=headers))
    assert "https://例え.jp/\\u202e" in assert_one_short_line(redirect)


# -- anything at all -----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from([BACKUP_501, "detail", "results", "next", "count"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["detail", "results", "next", "count", "status", "id"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.sampled_from([DEEP_ARRAY, DEEP_OBJECT, b"[" * 1_000 + b"]" * 1_000])
)
header_names = st.sampled_from(["Retry-After", "Date", "Location", "Content-Type"])
responses = st.builds(
    Response,
    method=st.sampled_from(["GET", "POST", "DELETE"]) | st.text(max_size=10),
    url=st.just(URL_501) | st.text(max_size=40),
    status=st.integers(100, 599),
    headers=st.dictionaries(header_names | st.text(max_size=10), st.text(max_size=40)),
    body=bodies,
    after_ambiguous=st.booleans(),
)
DECODERS: list[Callable[[Response], Any]] = [
    decode_backup_response,
    decode_page,
    decode_page_parts,
    decode_delete_response,
    decode_restore_response,
    lambda response: parse_backups(response.body),
]


def failure_of(call: Callable[[], Any]) -> BackupsError | None:
    """What ``call`` raised, when it was one of the SDK's errors (anything else escapes)."""
    try:
        call()
    except BackupsError as error:
        return error
    return None


@settings(max_examples=300, deadline=None)
@given(responses)
def test_any_answer_gives_a_result_or_a_backups_error(response: Response) -> None:
    for decode in DECODERS:
        failure = failure_of(partial(decode, response))
        assert failure is None or len(str(failure)) < MESSAGE_LIMIT
    error = error_from_response(response)
    assert isinstance(error, APIStatusError)
    assert error.status_code == response.status
    assert len(str(error)) < 1_100
    assert str(error).isprintable()
    copy.deepcopy(error)  # a body nested too deep to copy would raise RecursionError
    failure = failure_of(partial(decode_json, response.body))
    assert failure is None or failure.__context__ is None
