"""Where the token may go: the base URL's policy and the links the API hands out.

The token travels to the base URL's origin only. Plain ``http://`` is for loopback
hosts, reached directly or through a proxy on loopback: a proxy elsewhere would carry
the token across the network in clear text (and its "127.0.0.1" would be the proxy's
own host). ``allow_plain_http=True`` is the one override of both rules, for a trusted
network (an internal staging host). A link or redirect is followed only when it stays
on the base URL's origin, over http(s), without credentials of its own.
"""

from __future__ import annotations

import ipaddress

from yarl import URL

__all__ = ["check_proxy_route", "is_same_origin", "normalize_base_url", "resolve_link"]

# Links longer than this are not URLs any API of ours would hand out.
MAX_LINK_LENGTH = 8192


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalize_base_url(raw: str, *, allow_plain_http: bool = False) -> URL:
    """Validate the API's base URL and give it a trailing slash.

    Raises ``ValueError`` for anything but an absolute ``https://`` URL, or ``http://``
    to a loopback host (127.0.0.0/8, ::1, localhost) unless ``allow_plain_http``, and
    for URLs carrying credentials, a query or a fragment.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("base_url must be a non-empty URL string")
    try:
        url = URL(raw.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"base_url is not a valid URL: {raw!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an absolute http(s) URL, got {raw!r}")
    if url.user is not None or url.password is not None:
        raise ValueError("base_url must not carry credentials; pass the token instead")
    if url.query_string or url.fragment:
        raise ValueError("base_url must not have a query or a fragment")
    if url.scheme == "http" and not _is_loopback(url.host) and not allow_plain_http:
        raise ValueError(
            f"refusing plain http:// to {url.host}: the token would travel unencrypted; "
            "use https:// (plain http is allowed only for loopback hosts, unless "
            "allow_plain_http=True)"
        )
    if not url.path.endswith("/"):
        url = url.with_path(url.path + "/")
    return url


def check_proxy_route(
    base_url: URL, proxy: URL | None, *, allow_plain_http: bool, source: str
) -> None:
    """Refuse a plain ``http://`` base URL reached through a proxy not on loopback.

    ``source`` names where the proxy came from (``"proxy="``, ``"$HTTP_PROXY"``), for
    the message. Raises ``ValueError`` unless ``allow_plain_http``.
    """
    if proxy is None or base_url.scheme != "http" or allow_plain_http:
        return
    if _is_loopback(proxy.host or ""):
        return
    raise ValueError(
        f"refusing plain http:// to {base_url.host} through the proxy {proxy.host} "
        f"({source}): the token would cross the network unencrypted; use https://, "
        "exempt the API's host with NO_PROXY, or pass allow_plain_http=True"
    )


def is_same_origin(url: URL, base: URL) -> bool:
    """Whether ``url`` has the scheme, host and port of ``base`` (where the token may go)."""
    return (
        url.scheme == base.scheme
        and (url.host or "").lower() == (base.host or "").lower()
        and url.port == base.port
    )


def resolve_link(current: str, link: str, base: URL) -> tuple[URL | None, str]:
    """The absolute URL ``link`` (relative to ``current``) stands for, if the token may go.

    Returns ``(url, "")`` when it may, or ``(None, why)``: too long, not a URL, another
    scheme or origin than ``base``'s, or credentials of its own. The fragment, which
    never reaches a server, is dropped.
    """
    if len(link) > MAX_LINK_LENGTH:
        return None, "is too long to be a URL"
    try:
        target = URL(current).join(URL(link)).with_fragment(None)
        str(target)  # some malformed hosts fail only when the URL is built
    except Exception:  # yarl raises more than ValueError on hostile input
        return None, "is not a usable URL"
    if target.scheme not in ("http", "https") or not is_same_origin(target, base):
        return None, "points to another origin"
    if target.user is not None or target.password is not None:
        return None, "carries credentials"
    return target, ""
