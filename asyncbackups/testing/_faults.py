"""Fault injection: rules that decide, request by request, how the fake misbehaves.

A rule says *when* (method, path, the first ``times`` matches, a seeded ``rate``) and
*what* (one ``Fault``, or a menu to draw from). The kinds, by where they strike::

    request ──► delay ──► status_before / drop_before ──► the API does the work
                                                              │
    client ◄── status_after / drop_after / malformed ◄────────┘

The ``*_before`` kinds leave the state untouched; the ``*_after`` kinds and ``malformed``
strike once the work is done, the ambiguous cases a client must reconcile. A request
meets at most one fault: the first rule (in the order added) that fires.

Rates are drawn from a ``random.Random`` per rule, seeded from the registry's seed and
the rule's number, so the same requests in the same order meet the same faults on every
run, and adding a rule does not disturb the draws of the rules before it.
"""

from __future__ import annotations

import enum
import http
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypedDict, Unpack

from ._views import API_PREFIX, JSON_CONTENT_TYPE

__all__ = ["Fault", "FaultKind", "FaultRule", "Faults", "MalformedStyle", "PathPattern", "When"]

MalformedStyle = Literal["truncated", "html"]
PathPattern = str | re.Pattern[str] | None


class FaultKind(enum.StrEnum):
    """The ways a request can go wrong; the values are the counter keys."""

    STATUS_BEFORE = "status_before"
    STATUS_AFTER = "status_after"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    DELAY = "delay"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class Fault:
    """One misbehaviour: its kind and what it needs (status, body, seconds, style)."""

    kind: FaultKind
    status: int | None = None
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str = JSON_CONTENT_TYPE
    seconds: float = 0.0
    style: MalformedStyle = "truncated"


_DETAILS: Final = {
    500: "A server error occurred.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable, try again later.",
    504: "Gateway timeout.",
}


def _format_retry_after(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value < 0:
        raise ValueError(f"retry_after must be >= 0, got {value}")
    if float(value).is_integer():
        return str(int(value))
    # Fractional seconds are not standard HTTP, but they keep retry tests fast.
    return f"{value:.6f}".rstrip("0")


def _default_detail(status: int, retry_after: str | None) -> str:
    if status == 429:
        try:
            wait = max(1, round(float(retry_after))) if retry_after is not None else None
        except ValueError:
            wait = None
        if wait is None:
            return "Request was throttled."
        unit = "second" if wait == 1 else "seconds"
        return f"Request was throttled. Expected available in {wait} {unit}."
    if status in _DETAILS:
        return _DETAILS[status]
    try:
        return f"{http.HTTPStatus(status).phrase}."
    except ValueError:
        return "Error."


def _render_body(body: bytes | str | dict[str, object] | None, detail: str) -> bytes:
    if body is None:
        body = {"detail": detail}
    if isinstance(body, dict):
        return json.dumps(body, separators=(",", ":")).encode()
    return body.encode() if isinstance(body, str) else body


def _check_status(status: int) -> int:
    if not 100 <= status <= 599:
        raise ValueError(f"status must be an HTTP status code, got {status}")
    return status


def _normalize_path(path: PathPattern) -> PathPattern:
    if isinstance(path, str):
        # Accept "/api/v1/backups/", "/backups/" and "backups/" alike.
        if path.startswith(API_PREFIX):
            return path[len(API_PREFIX) :]
        return path.lstrip("/")
    return path


class When(TypedDict, total=False):
    """Which requests a rule's faults strike: the keywords every rule-adding method takes.

    ``method`` ``None`` (the default, or ``"*"``) matches any method. ``path`` ``None``
    (the default) matches any path; a string matches a path relative to ``/api/v1/``
    exactly (``"backups/501/"``) or a route template (``"backups/{id}/"``,
    ``"servers/{server_id}/restore/"``); a compiled pattern must match the relative path
    in full. Of the matching requests the first ``skip`` (default 0) pass untouched;
    after that each fires with probability ``rate`` (default ``None``: always) until
    ``times`` have fired (default ``None``: no limit).
    """

    method: str | None
    path: PathPattern
    times: int | None
    rate: float | None
    skip: int


class FaultRule:
    """When faults strike (see ``When``), and the faults to draw from.

    Counts the requests it ``matched`` and the faults it ``fired``.
    """

    def __init__(
        self,
        menu: Sequence[Sequence[Fault]],
        *,
        rng: random.Random,
        method: str | None = None,
        path: PathPattern = None,
        times: int | None = None,
        rate: float | None = None,
        skip: int = 0,
    ) -> None:
        """Build a rule; use ``Faults`` methods instead, which also register it."""
        if not menu or not all(menu):
            raise ValueError("a fault rule needs at least one fault")
        if times is not None and times < 0:
            raise ValueError(f"times must be >= 0, got {times}")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self.menu = tuple(tuple(group) for group in menu)
        self.method = None if method is None or method == "*" else method.upper()
        self.path = _normalize_path(path)
        self.times = times
        self.rate = rate
        self.skip = skip
        self.matched = 0
        self.fired = 0
        self._rng = rng

    def __repr__(self) -> str:
        kinds = sorted({fault.kind.value for group in self.menu for fault in group})
        return (
            f"<FaultRule {'/'.join(kinds)} method={self.method or '*'} "
            f"path={self.path!r} times={self.times} rate={self.rate} "
            f"matched={self.matched} fired={self.fired}>"
        )

    @property
    def exhausted(self) -> bool:
        """Whether the rule has fired its ``times`` and will not fire again."""
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str, template: str | None) -> bool:
        """Whether a request with this method and relative path is the rule's concern."""
        if self.method is not None and self.method != method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, str):
            return self.path in (path, template)
        return self.path.fullmatch(path) is not None

    def draw(self) -> Fault | None:
        """Count one matching request and return the fault it meets, if any."""
        self.matched += 1
        if self.matched <= self.skip or self.exhausted:
            return None
        if self.rate is not None and self._rng.random() >= self.rate:
            return None
        self.fired += 1
        group = self.menu[0] if len(self.menu) == 1 else self._rng.choice(self.menu)
        return group[0] if len(group) == 1 else self._rng.choice(group)


class Faults:
    """The fault rules of one fake API, and counters of the faults injected.

    Every rule-adding method takes the same ``When`` keywords (``method``, ``path``,
    ``times``, ``rate`` and ``skip``) and returns the rule, whose ``matched``/``fired``
    counters a test may read. Rules stay until ``remove`` or ``clear``. Safe to use
    from any thread while the server runs.
    """

    def __init__(self, *, seed: int = 0) -> None:
        """An empty registry whose rates draw from ``seed``."""
        self.seed = seed
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._added = 0
        # Keyed by FaultKind, a str enum, so plain strings look counts up as well.
        self._injected: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<Faults seed={self.seed} rules={len(self._rules)}>"

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """The active rules, in the order they are tried."""
        with self._lock:
            return tuple(self._rules)

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far by kind: ``injected[FaultKind.DELAY]`` or ``["delay"]``."""
        with self._lock:
            return Counter(self._injected)

    def add(self, *faults: Fault, seed: int | None = None, **when: Unpack[When]) -> FaultRule:
        """Add a rule that injects one of ``faults`` (drawn at random if several).

        ``seed`` overrides the rule's own seed (by default derived from the registry's).
        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        return self._add([[fault] for fault in faults], seed=seed, **when)

    def status_before(
        self,
        status: int = 503,
        *,
        retry_after: float | str | None = None,
        body: bytes | str | dict[str, object] | None = None,
        content_type: str = JSON_CONTENT_TYPE,
        **when: Unpack[When],
    ) -> FaultRule:
        """Answer ``status`` without doing the work (e.g. 429 or 503).

        ``retry_after`` (seconds, fractions allowed, or any text) becomes the
        ``Retry-After`` header; ``body`` defaults to a DRF ``{"detail": ...}``.
        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        fault = self._status_fault(FaultKind.STATUS_BEFORE, status, retry_after, body, content_type)
        return self._add([[fault]], seed=None, **when)

    def status_after(
        self,
        status: int = 500,
        *,
        retry_after: float | str | None = None,
        body: bytes | str | dict[str, object] | None = None,
        content_type: str = JSON_CONTENT_TYPE,
        **when: Unpack[When],
    ) -> FaultRule:
        """Do the work (create the backup, say), then answer ``status`` anyway (500/502/504).

        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        fault = self._status_fault(FaultKind.STATUS_AFTER, status, retry_after, body, content_type)
        return self._add([[fault]], seed=None, **when)

    def drop_before(self, **when: Unpack[When]) -> FaultRule:
        """Close the connection without an answer, before doing the work.

        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        return self._add([[Fault(FaultKind.DROP_BEFORE)]], seed=None, **when)

    def drop_after(self, **when: Unpack[When]) -> FaultRule:
        """Do the work, then close the connection without an answer.

        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        return self._add([[Fault(FaultKind.DROP_AFTER)]], seed=None, **when)

    def delay(self, seconds: float, **when: Unpack[When]) -> FaultRule:
        """Wait ``seconds`` of real time before doing the work, to trip client timeouts.

        The work is still done when the client gave up meanwhile, as on a real server.
        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        return self._add([[Fault(FaultKind.DELAY, seconds=seconds)]], seed=None, **when)

    def malformed(self, style: MalformedStyle = "truncated", **when: Unpack[When]) -> FaultRule:
        """Do the work, then answer its status with a broken body.

        ``"truncated"`` cuts the JSON in half (still labelled JSON); ``"html"`` sends a
        proxy's HTML error page. A 204 becomes a 200, since a 204 cannot carry a body.
        Takes the ``When`` keywords: ``method``, ``path``, ``times``, ``rate``, ``skip``.
        """
        if style not in ("truncated", "html"):
            raise ValueError(f"style must be 'truncated' or 'html', got {style!r}")
        return self._add([[Fault(FaultKind.MALFORMED, style=style)]], seed=None, **when)

    def chaos(
        self,
        rate: float = 0.1,
        *,
        seed: int | None = None,
        method: str | None = None,
        path: PathPattern = None,
        retry_after: float = 0.01,
        delay: float = 0.05,
        kinds: Iterable[FaultKind | str] | None = None,
    ) -> FaultRule:
        """Make about ``rate`` of all matching requests misbehave, in a seeded mix.

        Each injected fault is first a kind, each kind equally likely: drops before and
        after, 503/429 before (with ``Retry-After: retry_after``), 500/502/504 after,
        ``delay`` seconds of delay, truncated or HTML bodies. ``kinds`` narrows the mix.
        """
        wanted = set(FaultKind) if kinds is None else {FaultKind(kind) for kind in kinds}
        pause = _format_retry_after(retry_after)
        menu: dict[FaultKind, list[Fault]] = {
            FaultKind.DROP_BEFORE: [Fault(FaultKind.DROP_BEFORE)],
            FaultKind.DROP_AFTER: [Fault(FaultKind.DROP_AFTER)],
            FaultKind.STATUS_BEFORE: [
                self._status_fault(FaultKind.STATUS_BEFORE, 503, pause, None, JSON_CONTENT_TYPE),
                self._status_fault(FaultKind.STATUS_BEFORE, 429, pause, None, JSON_CONTENT_TYPE),
            ],
            FaultKind.STATUS_AFTER: [
                self._status_fault(FaultKind.STATUS_AFTER, status, None, None, JSON_CONTENT_TYPE)
                for status in (500, 502, 504)
            ],
            FaultKind.DELAY: [Fault(FaultKind.DELAY, seconds=delay)],
            FaultKind.MALFORMED: [
                Fault(FaultKind.MALFORMED, style="truncated"),
                Fault(FaultKind.MALFORMED, style="html"),
            ],
        }
        groups = [faults for kind, faults in menu.items() if kind in wanted]
        return self._add(groups, seed=seed, method=method, path=path, rate=rate)

    def remove(self, rule: FaultRule) -> None:
        """Stop applying ``rule``; removing one that is gone is not an error."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every rule (the counters stay; see ``reset_counters``)."""
        with self._lock:
            self._rules.clear()

    def reset_counters(self) -> Counter[str]:
        """Zero the injected-fault counters; return them as they stood, in one step."""
        with self._lock:
            counts, self._injected = self._injected, Counter()
            return counts

    def pick(self, method: str, path: str, template: str | None) -> Fault | None:
        """The fault this request meets, if any, counting it; called once per request.

        ``path`` is relative to ``/api/v1/``; ``template`` is its route (``None`` if no
        route matched).
        """
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, template):
                    fault = rule.draw()
                    if fault is not None:
                        self._injected[fault.kind] += 1
                        return fault
            return None

    def _add(
        self, menu: Sequence[Sequence[Fault]], *, seed: int | None, **when: Unpack[When]
    ) -> FaultRule:
        with self._lock:
            number = self._added
            rng = random.Random(f"{self.seed}:{number}" if seed is None else seed)
            rule = FaultRule(menu, rng=rng, **when)
            self._added += 1
            self._rules.append(rule)
            return rule

    @staticmethod
    def _status_fault(
        kind: FaultKind,
        status: int,
        retry_after: float | str | None,
        body: bytes | str | dict[str, object] | None,
        content_type: str,
    ) -> Fault:
        pause = _format_retry_after(retry_after)
        detail = _default_detail(_check_status(status), pause)
        return Fault(
            kind,
            status=status,
            retry_after=pause,
            body=_render_body(body, detail),
            content_type=content_type,
        )
