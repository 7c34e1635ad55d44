"""Proxies: ``proxy=``, ``HTTP_PROXY``/``NO_PROXY``, and never ``~/.netrc``.

A tiny forward proxy on loopback (aiohttp.web) receives absolute-form requests, records
them and forwards them with its own session; the loopback API records what reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import (
    BACKUP_499,
    BACKUP_501,
    TOKEN,
    LoopbackAPI,
    loopback_client,
    page,
)
from multidict import CIMultiDict

from asyncbackups import APIConnectionError, BackupsClient

_PROXY_ENVIRONMENT = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",  # the stdlib ignores HTTP_PROXY under CGI
    "NETRC",
)
# Not forwarded: they describe one hop, not the request.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "transfer-encoding",
        "te",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass
class Proxied:
    """One request as the forward proxy received it."""

    method: str
    target: str  # the absolute-form request target: http://host:port/path?query
    headers: CIMultiDict[str]


class ForwardProxy:
    """A plain-HTTP forward proxy on 127.0.0.1 that records what it forwards."""

    def __init__(self) -> None:
        self.seen: list[Proxied] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._server = TestServer(app, host="127.0.0.1")
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return str(self._server.make_url("/")).rstrip("/")

    def targets(self) -> list[str]:
        return [f"{seen.method} {seen.target}" for seen in self.seen]

    async def _forward(self, request: web.Request) -> web.Response:
        self.seen.append(Proxied(request.method, request.raw_path, CIMultiDict(request.headers)))
        assert request.raw_path.startswith("http://"), "not an absolute-form request"
        assert self._session is not None
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _HOP_BY_HOP and name.lower() != "accept-encoding"
        }
        async with self._session.request(
            request.method,
            request.raw_path,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-encoding"
            }
            return web.Response(status=answer.status, body=body, headers=kept)

    async def start(self) -> None:
        # Its own session never uses a proxy or the environment: it is the last hop.
        self._session = aiohttp.ClientSession(trust_env=False)
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()
        if self._session is not None:
            await self._session.close()


StartProxy = Callable[[], Awaitable[ForwardProxy]]


@pytest.fixture
async def forward_proxy() -> AsyncIterator[StartProxy]:
    proxies: list[ForwardProxy] = []

    async def start() -> ForwardProxy:
        proxy = ForwardProxy()
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.close()


@pytest.fixture(autouse=True)
def _no_ambient_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own proxy settings must not leak into these tests."""
    for name in _PROXY_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ASYNCBACKUPS_TOKEN", raising=False)
    monkeypatch.delenv("ASYNCBACKUPS_BASE_URL", raising=False)


def _assert_bearer(headers: Any) -> None:
    """Exactly one Authorization header, the Bearer token (never Basic credentials)."""
    assert headers.getall("Authorization") == [f"Bearer {TOKEN}"]


# -- an explicit proxy= ----------------------------------------------------------------


async def test_explicit_proxy_carries_every_request_to_the_api(
    scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    scripted_api.answer("POST", "servers/12345/restore/", status=202, payload={"status": "ok"})
    async with loopback_client(scripted_api, proxy=proxy.url) as client:
        backup = await client.backups.get(501)
        restored = await client.servers.restore(12345, 501)
    assert backup.id == 501
    assert restored.raw == {"status": "ok"}
    assert proxy.targets() == [
        "GET " + scripted_api.url("backups/501/"),
        "POST " + scripted_api.url("servers/12345/restore/"),
    ]
    assert scripted_api.routes() == ["GET backups/501/", "POST servers/12345/restore/"]
    for arrived in scripted_api.seen:
        _assert_bearer(arrived.headers)
    assert scripted_api.seen[1].json() == {"backup_id": 501}


async def test_explicit_proxy_carries_every_page_of_a_list(
    scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    second = scripted_api.url("backups/?page=2&server_id=12345")
    scripted_api.answer(
        "GET",
        "backups/?server_id=12345",
        payload={**page([BACKUP_501], next_url=second), "count": 2},
    )
    scripted_api.answer(
        "GET", "backups/?page=2&server_id=12345", payload={**page([BACKUP_499]), "count": 2}
    )
    async with loopback_client(scripted_api, proxy=proxy.url) as client:
        backups = await client.backups.list(server_id=12345)
    assert [backup.id for backup in backups] == [501, 499]
    assert proxy.targets() == [
        "GET " + scripted_api.url("backups/?server_id=12345"),
        "GET " + second,
    ]


# -- the environment -------------------------------------------------------------------


async def test_http_proxy_environment_routes_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        assert (await client.backups.get(501)).id == 501
    assert proxy.targets() == ["GET " + scripted_api.url("backups/501/")]
    _assert_bearer(scripted_api.seen[0].headers)


async def test_no_proxy_for_the_api_host_bypasses_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        assert (await client.backups.get(501)).id == 501
    assert proxy.seen == []
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_https_proxy_environment_does_not_apply_to_a_plain_http_api(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
    assert proxy.seen == []
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_explicit_proxy_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    chosen = await forward_proxy()
    ambient = await forward_proxy()
    monkeypatch.setenv("HTTP_PROXY", ambient.url)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api, proxy=chosen.url) as client:
        await client.backups.get(501)
    assert chosen.targets() == ["GET " + scripted_api.url("backups/501/")]
    assert ambient.seen == []


async def test_explicit_proxy_wins_over_no_proxy(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    monkeypatch.setenv("NO_PROXY", "*")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api, proxy=proxy.url) as client:
        await client.backups.get(501)
    assert proxy.targets() == ["GET " + scripted_api.url("backups/501/")]


@pytest.mark.parametrize("proxy", ["ftp://127.0.0.1:21", "127.0.0.1:3128", "http://"])
def test_a_proxy_that_is_not_an_http_url_raises_value_error(proxy: str) -> None:
    with pytest.raises(ValueError, match="proxy"):
        BackupsClient(TOKEN, base_url="http://127.0.0.1:9/api/v1/", proxy=proxy)


def test_a_proxy_that_is_not_a_string_raises_type_error() -> None:
    with pytest.raises(TypeError, match="proxy"):
        BackupsClient(TOKEN, base_url="http://127.0.0.1:9/api/v1/", proxy=3128)


# -- the token is the API's credential, never the proxy's --------------------------------


@pytest.mark.parametrize("borrowed", [False, True], ids=["own-session", "borrowed-session"])
async def test_the_token_is_not_sent_as_proxy_credentials_to_an_http_proxy(
    scripted_api: LoopbackAPI, forward_proxy: StartProxy, borrowed: bool
) -> None:
    proxy = await forward_proxy()
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession()) if borrowed else None
        client = await stack.enter_async_context(
            loopback_client(scripted_api, proxy=proxy.url, session=session)
        )
        await client.backups.get(501)
    (forwarded,) = proxy.seen
    # The proxy relays the request (and so sees its Authorization), but the token is no
    # credential of the proxy's: no Proxy-Authorization header carries it.
    assert "Proxy-Authorization" not in forwarded.headers
    _assert_bearer(scripted_api.seen[0].headers)


@pytest.mark.parametrize("how", ["proxy=", "HTTPS_PROXY"])
async def test_the_token_is_not_sent_to_an_https_proxy_in_its_connect_request(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    heads: list[bytes] = []

    async def refuse_tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse_tunnel, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    options: dict[str, Any] = {"proxy": proxy_url} if how == "proxy=" else {}
    if how == "HTTPS_PROXY":
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    # An https:// API reached through a tunnel: the proxy only ever sees CONNECT.
    client = BackupsClient(TOKEN, base_url="https://127.0.0.1:9/api/v1/", max_retries=0, **options)
    async with server, client:
        with pytest.raises(APIConnectionError) as caught:
            await client.backups.get(501)
    assert TOKEN not in str(caught.value)
    (head,) = heads
    assert head.startswith(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n")
    assert TOKEN.encode() not in head
    assert b"proxy-authorization" not in head.lower()


# -- netrc is never read ---------------------------------------------------------------


def _netrc(path: Path) -> Path:
    path.write_text("machine 127.0.0.1 login u password p\ndefault login u password p\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def netrc_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A netrc with credentials for 127.0.0.1, by $NETRC and in $HOME."""
    home = tmp_path / "home"
    home.mkdir()
    _netrc(home / ".netrc")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "netrc")))


@pytest.mark.usefixtures("netrc_everywhere")
async def test_a_netrc_for_the_api_host_is_ignored(scripted_api: LoopbackAPI) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        assert (await client.backups.get(501)).id == 501
    (arrived,) = scripted_api.seen
    _assert_bearer(arrived.headers)
    assert not arrived.headers["Authorization"].startswith("Basic")


@pytest.mark.usefixtures("netrc_everywhere")
async def test_a_netrc_for_the_proxy_host_is_ignored(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI, forward_proxy: StartProxy
) -> None:
    proxy = await forward_proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        await client.backups.get(501)
    (forwarded,) = proxy.seen
    assert not forwarded.headers.get("Proxy-Authorization", "").startswith("Basic")
    _assert_bearer(forwarded.headers)
    _assert_bearer(scripted_api.seen[0].headers)


# -- plain http goes through a proxy only on loopback --------------------------------------

LOOPBACK_HTTP = "http://127.0.0.1:9/api/v1/"
REMOTE_PROXIES = [
    "http://proxy.example.com:3128",
    "https://10.0.0.5:3128",
    "http://[2001:db8::1]:8080",
]


@pytest.mark.parametrize("proxy", REMOTE_PROXIES)
def test_a_plain_http_api_through_a_remote_proxy_is_refused(proxy: str) -> None:
    with pytest.raises(
        ValueError, match=r"refusing plain http:// to 127\.0\.0\.1 through the proxy"
    ):
        BackupsClient(TOKEN, base_url=LOOPBACK_HTTP, proxy=proxy)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_a_plain_http_api_through_a_remote_environment_proxy_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://proxy.example.com:3128")

    with pytest.raises(ValueError, match=r"through the proxy proxy\.example\.com \(\$HTTP_PROXY\)"):
        BackupsClient(TOKEN, base_url=LOOPBACK_HTTP)


def test_the_refusal_says_how_to_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")

    with pytest.raises(ValueError, match="refusing plain http://") as caught:
        BackupsClient(TOKEN, base_url=LOOPBACK_HTTP)

    message = str(caught.value)
    assert "the token would cross the network unencrypted" in message
    assert "use https://" in message
    assert "NO_PROXY" in message
    assert "allow_plain_http=True" in message
    assert TOKEN not in message


async def test_no_proxy_for_the_api_host_lets_a_plain_http_api_past_a_remote_proxy(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)

    async with loopback_client(scripted_api) as client:
        assert (await client.backups.get(501)).id == 501
    assert scripted_api.routes() == ["GET backups/501/"]


async def test_a_remote_environment_proxy_set_after_the_client_was_made_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, scripted_api: LoopbackAPI
) -> None:
    scripted_api.answer("GET", "backups/501/", payload=BACKUP_501)
    async with loopback_client(scripted_api) as client:
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
        with pytest.raises(ValueError, match=r"through the proxy proxy\.example\.com"):
            await client.backups.get(501)
    assert scripted_api.seen == []


@pytest.mark.parametrize("trust_env", [True, False])
async def test_a_borrowed_session_is_held_to_it_when_it_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.com:3128")
    async with aiohttp.ClientSession(trust_env=trust_env) as session:
        if trust_env:
            with pytest.raises(ValueError, match=r"through the proxy proxy\.example\.com"):
                BackupsClient(TOKEN, base_url=LOOPBACK_HTTP, session=session)
        else:  # it never reads HTTP_PROXY: the API is reached directly
            BackupsClient(TOKEN, base_url=LOOPBACK_HTTP, session=session)


@pytest.mark.parametrize(
    "proxy", ["http://127.0.0.1:3128", "http://localhost:3128", "http://[::1]:3128"]
)
def test_a_plain_http_api_through_a_loopback_proxy_is_allowed(proxy: str) -> None:
    client = BackupsClient(TOKEN, base_url=LOOPBACK_HTTP, proxy=proxy)
    assert client.base_url == LOOPBACK_HTTP


def test_an_https_api_through_a_remote_proxy_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")  # a tunnel: TLS inside
    BackupsClient(TOKEN, base_url="https://api.example.com/api/v1/")
    BackupsClient(TOKEN, base_url="https://api.example.com/api/v1/", proxy=REMOTE_PROXIES[0])


@pytest.mark.parametrize("how", ["proxy=", "HTTP_PROXY"])
async def test_allow_plain_http_is_the_one_override_for_a_remote_proxy(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    options: dict[str, Any] = {"proxy": REMOTE_PROXIES[0]} if how == "proxy=" else {}
    if how == "HTTP_PROXY":
        monkeypatch.setenv("HTTP_PROXY", REMOTE_PROXIES[0])

    async with BackupsClient(
        TOKEN, base_url=LOOPBACK_HTTP, allow_plain_http=True, **options
    ) as client:
        assert client.base_url == LOOPBACK_HTTP


def test_allow_plain_http_is_the_one_override_for_a_remote_plain_http_api() -> None:
    with pytest.raises(ValueError, match="unless allow_plain_http=True"):
        BackupsClient(TOKEN, base_url="http://staging.internal/api/v1/")

    client = BackupsClient(TOKEN, base_url="http://staging.internal/api/v1/", allow_plain_http=True)

    assert client.base_url == "http://staging.internal/api/v1/"


def test_allow_plain_http_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="allow_plain_http must be True or False"):
        BackupsClient(TOKEN, base_url=LOOPBACK_HTTP, allow_plain_http="yes")  # type: ignore[arg-type]


def test_the_command_line_refuses_a_remote_proxy_and_names_its_flag(tmp_path: Path) -> None:
    from test_cli_support import environment, run_cli

    env = environment(
        tmp_path,
        ASYNCBACKUPS_TOKEN=TOKEN,
        ASYNCBACKUPS_BASE_URL=LOOPBACK_HTTP,
        HTTP_PROXY="http://proxy.example.com:3128",
    )

    refused = run_cli("list", env=env)
    allowed = run_cli("list", "--allow-plain-http", "--max-retries", "0", env=env)

    assert refused.code == 2
    assert "through the proxy proxy.example.com ($HTTP_PROXY)" in refused.err
    assert "or pass --allow-plain-http" in refused.err
    assert "refusing" not in allowed.err  # past the check; the proxy does not exist
