"""The pure protocol: caller checks, URLs, and answers into models or typed errors."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import BACKUP_495, BACKUP_499, BACKUP_501, CREATED_502, SEED_LIST, page
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from asyncbackups import (
    APIStatusError,
    AuthenticationError,
    BackupStatus,
    BackupType,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from asyncbackups._core.checks import (
    check_id,
    check_idempotency_key,
)
from asyncbackups._core.protocol import (
    Response,
    backup_path,
    decode_json,
    dump_json,
    error_from_response,
    list_params,
    parse_retry_after,
    restore_path,
    server_date,
)
from asyncbackups._core.urls import (
    is_same_origin,
    normalize_base_url,
)
from asyncbackups._decoding.responses import (
    decode_backup_response,
    decode_delete_response,
    decode_page,
    decode_restore_response,
)

URL_501 = "https://admin.vps.org/api/v1/backups/501/"


def answer(
    status: int,
    body: bytes | Any = b"",
    *,
    method: str = "GET",
    url: str = URL_501,
    headers: dict[str, str] | None = None,
    after_ambiguous: bool = False,
) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(
        method=method,
        url=url,
        status=status,
        headers=headers or {},
        body=raw,
        after_ambiguous=after_ambiguous,
    )


# -- caller input -------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, "12", 12.0, None, [12]])
def test_check_id_refuses_non_ints_with_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="backup_id"):
        check_id(value, "backup_id")


@pytest.mark.parametrize("value", [0, -1, -12345])
def test_check_id_refuses_non_positive_ints_with_value_error(value: int) -> None:
    with pytest.raises(ValueError, match="backup_id"):
        check_id(value, "backup_id")


def test_check_id_returns_a_positive_int() -> None:
    assert check_id(12345) == 12345


def test_idempotency_key_is_fresh_when_the_caller_gives_none() -> None:
    first, second = check_idempotency_key(None), check_idempotency_key(None)
    assert first != second
    assert len(first) >= 16


def test_idempotency_key_from_the_caller_is_used_verbatim() -> None:
    assert check_idempotency_key("deploy-2025-01-16/web-01") == "deploy-2025-01-16/web-01"


@pytest.mark.parametrize("key", ["", "x" * 256, "käse", "line\nbreak"])
def test_idempotency_key_that_cannot_be_a_header_raises_value_error(key: str) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        check_idempotency_key(key)


def test_idempotency_key_that_is_not_text_raises_type_error() -> None:
    with pytest.raises(TypeError):
        check_idempotency_key(123)  # type: ignore[arg-type]


def test_list_params_for_both_filters() -> None:
    assert list_params(12345, BackupType.MANUAL) == {
        "server_id": "12345",
        "backup_type": "manual",
    }
    assert list_params(None, "automatic") == {"backup_type": "automatic"}
    assert list_params(None, None) == {}


@pytest.mark.parametrize("backup_type", ["weekly", "MANUAL", "", BackupType("snapshot")])
def test_list_params_refuses_an_unknown_backup_type(backup_type: str) -> None:
    with pytest.raises(ValueError, match="backup_type"):
        list_params(None, backup_type)


def test_list_params_refuses_a_backup_type_that_is_not_text() -> None:
    with pytest.raises(TypeError, match="backup_type"):
        list_params(None, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("server_id", "error"), [("12345", TypeError), (0, ValueError)])
def test_list_params_checks_the_server_id(server_id: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="server_id"):
        list_params(server_id, None)


def test_routes_end_with_a_slash_as_drf_expects() -> None:
    assert backup_path(501) == "backups/501/"
    assert restore_path(12345) == "servers/12345/restore/"


def test_json_body_is_compact_and_stable() -> None:
    body = dump_json({"server_id": 12345, "description": "Pre-deployment backup"})
    assert body == b'{"server_id":12345,"description":"Pre-deployment backup"}'


# -- base URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://admin.vps.org/api/v1/", "https://admin.vps.org/api/v1/"),
        ("https://admin.vps.org/api/v1", "https://admin.vps.org/api/v1/"),
        ("  https://admin.vps.org/api/v1/ ", "https://admin.vps.org/api/v1/"),
        ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/api/v1/"),
        ("http://127.5.5.5/", "http://127.5.5.5/"),
        ("http://localhost:8000/api/v1/", "http://localhost:8000/api/v1/"),
        ("http://api.localhost/", "http://api.localhost/"),
        ("http://[::1]:8000/api/v1/", "http://[::1]:8000/api/v1/"),
    ],
)
def test_base_url_accepts_https_and_loopback_http(raw: str, normalized: str) -> None:
    assert str(normalize_base_url(raw)) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "http://admin.vps.org/api/v1/",
        "http://10.0.0.5/api/v1/",
        "http://[2001:db8::1]/api/v1/",
        "http://localhost.evil.example/",
        "ftp://admin.vps.org/",
        "admin.vps.org/api/v1/",
        "/api/v1/",
        "",
        "https://user:secret@admin.vps.org/api/v1/",
        "https://admin.vps.org/api/v1/?token=x",
        "https://admin.vps.org/api/v1/#frag",
        "https://[::1/api/v1/",
    ],
)
def test_base_url_refuses_anything_that_could_leak_or_misroute(raw: str) -> None:
    with pytest.raises(ValueError, match=r"base_url|http"):
        normalize_base_url(raw)


def test_same_origin_needs_scheme_host_and_port() -> None:
    base = URL("https://admin.vps.org/api/v1/")
    assert is_same_origin(URL("https://ADMIN.vps.org/api/v1/backups/?page=2"), base)
    assert is_same_origin(URL("https://admin.vps.org:443/other/"), base)
    assert not is_same_origin(URL("http://admin.vps.org/api/v1/"), base)
    assert not is_same_origin(URL("https://admin.vps.org:8443/api/v1/"), base)
    assert not is_same_origin(URL("https://evil.example/api/v1/"), base)
    assert not is_same_origin(URL("https://admin.vps.org.evil.example/api/v1/"), base)


# -- decoding successes -------------------------------------------------------------


def test_seed_list_page_decodes_in_order_with_no_next_link() -> None:
    backups, next_link = decode_page(answer(200, SEED_LIST))
    assert [backup.id for backup in backups] == [501, 499, 495]
    assert next_link is None


def test_drf_page_gives_its_next_link() -> None:
    next_url = "https://admin.vps.org/api/v1/backups/?page=2"
    backups, next_link = decode_page(answer(200, page([BACKUP_501], next_url=next_url)))
    assert [backup.id for backup in backups] == [501]
    assert next_link == next_url


def test_unpaginated_bare_list_is_accepted() -> None:
    backups, next_link = decode_page(answer(200, [BACKUP_499, BACKUP_495]))
    assert [backup.id for backup in backups] == [499, 495]
    assert next_link is None


def test_empty_next_link_means_last_page() -> None:
    assert decode_page(answer(200, {**page([]), "next": ""}))[1] is None


def test_create_answer_decodes_with_its_message() -> None:
    backup = decode_backup_response(answer(201, CREATED_502, method="POST"))
    assert backup.id == 502
    assert backup.status is BackupStatus.IN_PROGRESS
    assert backup.message == CREATED_502["message"]


@pytest.mark.parametrize("status", [200, 202, 204])
def test_delete_succeeds_on_any_2xx(status: int) -> None:
    assert decode_delete_response(answer(status, method="DELETE")) is None


def test_delete_404_is_not_found_on_a_first_attempt() -> None:
    with pytest.raises(NotFoundError):
        decode_delete_response(answer(404, {"detail": "Not found."}, method="DELETE"))


def test_delete_404_after_an_ambiguous_attempt_is_success() -> None:
    response = answer(404, {"detail": "Not found."}, method="DELETE", after_ambiguous=True)
    assert decode_delete_response(response) is None


def test_delete_other_errors_after_an_ambiguous_attempt_still_raise() -> None:
    with pytest.raises(AuthenticationError):
        decode_delete_response(answer(401, method="DELETE", after_ambiguous=True))


def test_restore_answer_keeps_raw_and_types_known_fields() -> None:
    raw = {
        "status": "restoring",
        "message": "Restore started",
        "server_id": 12345,
        "backup_id": 501,
        "eta_seconds": 300,
    }
    result = decode_restore_response(answer(202, raw, method="POST"))
    assert result.raw == raw
    assert result.status_code == 202
    assert result.status == "restoring"
    assert result.message == "Restore started"
    assert result.server_id == 12345
    assert result.backup_id == 501


def test_restore_answer_without_a_body_is_an_empty_result() -> None:
    result = decode_restore_response(answer(204, b"", method="POST"))
    assert result.raw == {}
    assert result.status_code == 204
    assert result.status is None


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ([1, 2], "$"),
        ("restoring", "$"),
        ({"server_id": "12345"}, "$.server_id"),
        ({"backup_id": True}, "$.backup_id"),
        ({"message": ["a"]}, "$.message"),
    ],
)
def test_restore_answer_of_the_wrong_shape_names_the_field(body: Any, path: str) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_restore_response(answer(202, body, method="POST"))
    assert caught.value.path == path


# -- decoding failures --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"count": 0}, "$.results"),
        ("backups", "$"),
        (42, "$"),
        ({"results": {"id": 501}}, "$.results"),
        ({"results": [BACKUP_501], "next": 2}, "$.next"),
        ({"results": [BACKUP_501, {**BACKUP_499, "id": "499"}]}, "$.results[1].id"),
    ],
)
def test_wrong_page_shape_raises_naming_the_field(body: Any, path: str) -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_page(answer(200, body))
    assert caught.value.path == path


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", b"{", b"\xff\xfe", b"null?"])
def test_success_that_is_not_json_raises_response_validation_error(body: bytes) -> None:
    with pytest.raises(ResponseValidationError, match="not valid JSON"):
        decode_backup_response(answer(200, body))


def test_decode_json_error_carries_a_snippet_of_the_body() -> None:
    with pytest.raises(ResponseValidationError) as caught:
        decode_json(b"<html>" + b"x" * 500)
    assert isinstance(caught.value.body, str)
    assert caught.value.body.startswith("<html>")
    assert len(caught.value.body) < 300


# -- status -> error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (507, ServerError),
        (403, APIStatusError),
        (409, APIStatusError),
    ],
)
def test_each_status_maps_to_its_error_class(status: int, kind: type[APIStatusError]) -> None:
    error = error_from_response(answer(status, {"detail": "nope"}))
    assert type(error) is kind
    assert error.status_code == status
    assert error.body == {"detail": "nope"}
    assert "nope" in str(error)
    assert str(status) in str(error)


@pytest.mark.parametrize("status", [200, 201])
def test_backup_answer_decodes_on_200_and_201(status: int) -> None:
    assert decode_backup_response(answer(status, BACKUP_501)).id == 501


@pytest.mark.parametrize("status", [202, 204, 301])
def test_backup_answer_with_another_status_is_an_api_status_error(status: int) -> None:
    with pytest.raises(APIStatusError) as caught:
        decode_backup_response(answer(status, BACKUP_501))
    assert caught.value.status_code == status


def test_401_is_authentication_error_with_the_body() -> None:
    body = {"detail": "Invalid token."}
    error = error_from_response(answer(401, body))
    assert isinstance(error, AuthenticationError)
    assert error.body == body
    assert error.method == "GET"
    assert error.url == URL_501


def test_400_carries_drf_field_errors() -> None:
    body = {"description": ["Ensure this field has no more than 255 characters."]}
    error = error_from_response(answer(400, body, method="POST"))
    assert isinstance(error, BadRequestError)
    assert error.field_errors == body
    assert error.body == body
    assert "Ensure this field has no more than 255 characters." in str(error)


def test_400_field_error_as_a_bare_string_becomes_a_list() -> None:
    error = error_from_response(answer(400, {"server_id": "A valid integer is required."}))
    assert isinstance(error, BadRequestError)
    assert error.field_errors == {"server_id": ["A valid integer is required."]}


def test_400_with_only_a_detail_has_no_field_errors() -> None:
    error = error_from_response(answer(400, {"detail": "Malformed request."}))
    assert isinstance(error, BadRequestError)
    assert error.field_errors == {}
    assert "Malformed request." in str(error)


def test_400_with_nested_field_errors_keeps_them_readable() -> None:
    error = error_from_response(answer(400, {"server": {"id": ["Required."]}}))
    assert isinstance(error, BadRequestError)
    assert list(error.field_errors) == ["server"]
    assert "Required." in error.field_errors["server"][0]


def test_html_error_page_still_gives_the_right_class_with_a_snippet() -> None:
    html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    error = error_from_response(answer(502, html))
    assert isinstance(error, ServerError)
    assert error.status_code == 502
    assert isinstance(error.body, str)
    assert error.body.startswith("<html>")
    assert "502 Bad Gateway" in str(error)


def test_huge_html_error_page_is_cut_to_a_snippet() -> None:
    error = error_from_response(answer(404, b"<html>" + b"a" * 100_000 + b"</html>"))
    assert isinstance(error, NotFoundError)
    assert isinstance(error.body, str)
    assert len(error.body) < 300
    assert len(str(error)) < 500


def test_empty_error_body_is_none() -> None:
    error = error_from_response(answer(404, b""))
    assert isinstance(error, NotFoundError)
    assert error.body is None


def test_429_carries_retry_after_in_seconds() -> None:
    error = error_from_response(answer(429, {}, headers={"Retry-After": "7"}))
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0


def test_429_without_retry_after_has_none() -> None:
    error = error_from_response(answer(429, {}))
    assert isinstance(error, RateLimitError)
    assert error.retry_after is None


def test_503_carries_its_retry_after() -> None:
    error = error_from_response(answer(503, b"", headers={"Retry-After": "0.5"}))
    assert isinstance(error, ServerError)
    assert error.retry_after == 0.5


def test_redirect_answer_names_where_it_pointed() -> None:
    error = error_from_response(answer(302, b"", headers={"Location": "https://evil.example/"}))
    assert error.status_code == 302
    assert "evil.example" in str(error)


@settings(max_examples=200)
@given(st.integers(min_value=300, max_value=599), st.binary(max_size=300))
def test_any_error_answer_maps_to_an_api_status_error(status: int, body: bytes) -> None:
    error = error_from_response(answer(status, body))
    assert isinstance(error, APIStatusError)
    assert error.status_code == status


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_any_page_body_decodes_or_raises_response_validation_error(body: bytes) -> None:
    with contextlib.suppress(ResponseValidationError):
        backups, next_link = decode_page(answer(200, body))
        assert next_link is None or isinstance(next_link, str)
        assert isinstance(backups, list)


# -- Retry-After and Date ------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("0.05", 0.05),
        (" 3 ", 3.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 08:28:00 GMT", 3600.0),
        ("Wed, 21 Oct 2015 09:28:00 +0200", 0.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 -0000", 10.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "soon", "-1", "nan", "Wed, 99 Foo 2015"])
def test_parse_retry_after_gives_none_for_garbage(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_parse_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or seconds >= 0


@pytest.mark.parametrize(
    "value", ["Thu, 16 Jan 2025 15:45:01 GMT", "Thu, 16 Jan 2025 15:45:01 -0000"]
)
def test_server_date_is_read_as_an_aware_datetime(value: str) -> None:
    when = server_date({"Date": value})
    assert when == datetime(2025, 1, 16, 15, 45, 1, tzinfo=UTC)
    assert when is not None
    assert when.tzinfo is not None


@pytest.mark.parametrize("headers", [{}, {"Date": ""}, {"Date": "yesterday"}])
def test_server_date_is_none_when_missing_or_unreadable(headers: dict[str, str]) -> None:
    assert server_date(headers) is None


page_like = st.fixed_dictionaries(
    {},
    optional={
        "count": st.integers() | st.none() | st.text(max_size=5),
        "next": st.none() | st.text(max_size=20) | st.integers() | st.booleans(),
        "previous": st.none() | st.text(max_size=20),
        "results": st.lists(
            st.sampled_from([BACKUP_501, BACKUP_499, CREATED_502, {**BACKUP_501, "id": "x"}])
            | st.integers()
            | st.none(),
            max_size=4,
        )
        | st.none()
        | st.text(max_size=5),
    },
)


@settings(max_examples=200)
@given(page_like)
def test_any_page_shaped_body_decodes_or_raises_naming_a_field(body: dict[str, Any]) -> None:
    outcome: Any
    try:
        outcome = decode_page(answer(200, body))
    except ResponseValidationError as error:
        outcome = error
    if isinstance(outcome, ResponseValidationError):
        assert outcome.path is not None
        assert outcome.path.startswith("$")
    else:
        backups, next_link = outcome
        assert len(backups) == len(body["results"])
        assert next_link is None or isinstance(next_link, str)
