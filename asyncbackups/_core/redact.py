"""Keeping the API token out of everything that can reach an exception or a log record.

A hostile or careless server can echo the token back in an error body: whole, escaped
inside JSON, percent-encoded, or cut short (aiohttp's own 400 for an oversized header
quotes only its start). :class:`Redactor` finds each of these forms and replaces it
with ``***``. Pure: no I/O and no aiohttp, so it can run wherever an error is
built or a record is logged.
"""

from __future__ import annotations

import builtins
import string
from array import array
from collections.abc import Callable
from typing import Any

__all__ = ["MASK", "Redactor"]

MASK = "***"

# A prefix this long is already too much of a secret to show (and aiohttp's own 400 for
# an oversized header quotes the start of the value); shorter echoes are indistinguishable
# from ordinary text.
_PREFIX = 8

# RFC 3986 unreserved characters: no encoder ever escapes them.
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# What common encoders leave unescaped besides the unreserved characters: urlencode and
# quote_plus (nothing), quote (``/``), and yarl in a query value, a path and a whole
# query string.
_PERCENT_SAFE = ("", "/", "!$'()*,/:?@", "!$&'()*+,/:;=@", "!$&'()*+,/:;=?@")
# A bound on the readings of a mixed echo followed at once; only a token of ``%`` or
# ``\\`` matched against text of the same comes near it.
_MAX_READINGS = 16
# Matching work allowed per character of the text (a character matched costs 1, a step
# through a mixture of forms costs this much per reading). Only text built to make the
# search slow runs out; what is left of it is then hidden whole, which leaks nothing.
_STEP_COST = 8
_WORK_PER_CHAR = 16

# What JSON and Python's repr may write as a backslash and the character itself.
_BACKSLASHED = "/\"'\\"

_CONTAINERS = (dict, list, tuple)

# Writes one character given its percent-encoding; each encoder is one common way of
# putting text into JSON or a URL.
_Encoder = Callable[[str, str], str]


class Redactor:
    """Finds every form of one token in text, bytes, decoded JSON and exceptions.

    Each hit becomes ``***``: the whole token, or any prefix of it at least
    ``min(len(token), 8)`` characters long, written plainly, escaped the way JSON or
    Python's ``repr`` write it (``\\/``, ``\\"``, ``\\'``, ``\\\\``, ``\\u00e9``-style
    escapes), or percent-encoded (either hex case, ``+`` for a space). A hit is found where the
    token's first characters appear plainly or in one common encoding (one JSON, repr
    or URL encoder's output), then followed through any mixture of the forms above;
    so JSON whose every character is ``\\u``-escaped is caught once decoded, which is
    what :meth:`data` is for. Every method returns its argument itself when nothing
    matched, and is cheap then: a few ``str.find`` calls per string. An empty token
    redacts nothing.
    """

    __slots__ = (
        "_anchors",
        "_byte_anchors",
        "_bytes_form",
        "_escapes",
        "_forms",
        "_need",
        "_token",
    )

    def __init__(self, token: str, *, _byte_chars: bool = False) -> None:
        self._token = token
        self._need = min(len(token), _PREFIX)
        # Per token character, the escapes that may stand for it: its percent-encoding
        # (upper-case hex; the text is upper-cased before comparing) and its \u00e9-style one.
        self._escapes = [_escapes_of(char, byte_chars=_byte_chars) for char in token]
        self._anchors: tuple[str, ...] = ()
        if token:
            head = self._escapes[: self._need]
            self._anchors = tuple(
                sorted({_encode(token[: self._need], head, encoder) for encoder in _ENCODERS})
            )
        self._forms: tuple[list[tuple[str, array[int]]], array[int]] | None = None
        if _byte_chars or token.isascii():
            # Bytes are searched as Latin-1 text: one character per byte, so an ASCII
            # token's forms are the same there.
            self._bytes_form: Redactor = self
        else:
            self._bytes_form = Redactor(token.encode().decode("latin-1"), _byte_chars=True)
        self._byte_anchors = tuple(anchor.encode("latin-1") for anchor in self._bytes_form._anchors)

    def __repr__(self) -> str:
        return "Redactor(***)"

    def text(self, s: str) -> str:
        """``s`` with every form of the token replaced by ``***``; ``s`` itself if none."""
        if not self._token or len(s) < self._need:
            return s
        spans: list[tuple[int, int]] = []
        budget = _WORK_PER_CHAR * (len(s) + len(self._token))
        for anchor in self._anchors:
            start = s.find(anchor)
            while start != -1:
                end, work = self._match_end(s, start, budget)
                budget -= work
                if end > start:
                    spans.append((start, end))
                if end == len(s):
                    break
                # From the next character, not the hit's end: an echo that overlaps
                # this one may run further.
                start = s.find(anchor, start + 1)
        if not spans:
            return s
        spans.sort()
        pieces: list[str] = []
        done = 0
        cover_start, cover_end = spans[0]
        for start, end in spans[1:]:
            if start <= cover_end:
                cover_end = max(cover_end, end)
                continue
            pieces += (s[done:cover_start], MASK)
            done = cover_end
            cover_start, cover_end = start, end
        pieces += (s[done:cover_start], MASK, s[cover_end:])
        return "".join(pieces)

    def bytes(self, b: builtins.bytes) -> builtins.bytes:
        """``b`` with every form of the token replaced by ``b"***"``; ``b`` itself if none.

        The token is looked for in its UTF-8 encoding.
        """
        if not any(anchor in b for anchor in self._byte_anchors):
            return b
        return self._bytes_form.text(b.decode("latin-1")).encode("latin-1")

    def data(self, value: Any) -> Any:
        """A redacted copy of a decoded-JSON value, or ``value`` itself if nothing matched.

        Strings and bytes are redacted wherever they sit: dict keys and values, list and
        tuple items, at any depth (walked without recursion, so 100,000 levels are fine).
        Changed containers come back as plain ``dict``, ``list`` or ``tuple``; unchanged
        ones, and values of any other type, are returned as they are.
        """
        if not self._token:
            return value
        if not isinstance(value, _CONTAINERS):
            return self._leaf(value)
        if not self._holds_token(value):
            return value
        finished: dict[int, Any] = {}  # a container met twice is redacted once
        open_ids = {id(value)}  # containers being walked: meeting one again is a cycle
        stack = [_Frame(value)]
        result: Any = value
        while stack:
            frame = stack[-1]
            if frame.next < len(frame.children):
                child = frame.children[frame.next]
                frame.next += 1
                if not isinstance(child, _CONTAINERS):
                    frame.add(child, self._leaf(child))
                elif id(child) in finished:
                    frame.add(child, finished[id(child)])
                elif id(child) in open_ids:
                    frame.add(child, child)  # a cycle holds no new text
                else:
                    open_ids.add(id(child))
                    stack.append(_Frame(child))
                continue
            stack.pop()
            open_ids.discard(id(frame.container))
            redacted = frame.build()
            finished[id(frame.container)] = redacted
            if stack:
                stack[-1].add(frame.container, redacted)
            else:
                result = redacted
        return result

    def error(self, exc: BaseException) -> None:
        """Redact ``exc`` in place: its args, every attribute and its notes.

        Follows the exceptions it holds (attributes such as ``last_error``, the members
        of an exception group, ``__cause__`` and ``__context__``) and redacts those too.
        Models such as a ``Backup`` are left as they are: they are data the API stored.
        An exception group's own message cannot be rewritten; the SDK never puts
        server text there.
        """
        if not self._token:
            return
        pending = [exc]
        seen: set[int] = set()
        while pending:
            error = pending.pop()
            if id(error) in seen:
                continue
            seen.add(id(error))
            args = self.data(error.args)
            if args is not error.args:
                error.args = args
            state = getattr(error, "__dict__", None)
            if state is not None:
                for name, value in list(state.items()):
                    if isinstance(value, BaseException):
                        pending.append(value)
                        continue
                    redacted = self.data(value)
                    if redacted is not value:
                        state[name] = redacted
            if isinstance(error, OSError):
                # str() of an OSError is built from these, not from its args.
                for name in ("strerror", "filename", "filename2"):
                    value = getattr(error, name)
                    redacted = self.data(value)
                    if redacted is not value:
                        setattr(error, name, redacted)
            if isinstance(error, BaseExceptionGroup):
                pending.extend(error.exceptions)
            for linked in (error.__cause__, error.__context__):
                if linked is not None:
                    pending.append(linked)

    def _holds_token(self, value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
        """Whether any string or bytes inside ``value`` holds a form of the token.

        Far cheaper than rebuilding, and the usual answer is no: a body or an error
        with nothing to hide is then walked once and never copied.
        """
        anchors, byte_anchors = self._anchors, self._byte_anchors
        seen: set[int] = set()  # shared or self-containing containers are read once
        pending: list[Any] = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                if len(item) >= self._need and any(anchor in item for anchor in anchors):
                    return True
            elif isinstance(item, _CONTAINERS):
                if id(item) not in seen:
                    seen.add(id(item))
                    pending.extend(item)  # a dict's keys
                    if isinstance(item, dict):
                        pending.extend(item.values())
            elif isinstance(item, builtins.bytes | bytearray) and any(
                anchor in item for anchor in byte_anchors
            ):
                return True
        return False

    def _leaf(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, builtins.bytes):
            return self.bytes(value)
        if isinstance(value, bytearray):
            redacted = self.bytes(builtins.bytes(value))
            return value if redacted == value else bytearray(redacted)
        return value

    def _match_end(self, s: str, start: int, budget: int) -> tuple[int, int]:
        """Where the longest form of a token prefix found at ``start`` ends, and the work.

        The end is ``start`` when fewer than the required characters match, and the end
        of ``s`` when the work outgrew ``budget`` (the rest is hidden then). Any other
        token character has at most one form that fits at a given spot, so stretches of
        them are matched in bulk; a ``%`` or ``\\`` may stand for itself or start an
        escape of itself, so at those every reading is followed.
        """
        forms, stops = self._uniform_forms()
        token_length = len(self._token)
        readings = [start]
        matched = work = 0
        while matched < token_length:
            if work > budget:
                return len(s), work
            if len(readings) == 1:
                chars, width = _longest_run(s, readings[0], matched, stops[matched], forms)
                work += chars + _STEP_COST
                if chars:
                    readings[0] += width
                    matched += chars
                    continue
            work += _STEP_COST * len(readings)
            following = sorted({after for at in readings for after in self._step(s, at, matched)})
            if not following:
                break
            readings = following[-_MAX_READINGS:]
            matched += 1
        return (max(readings) if matched >= self._need else start), work

    def _uniform_forms(self) -> tuple[list[tuple[str, array[int]]], array[int]]:
        """The token in each uniform form, and where each run of plain characters stops.

        Each form comes with where each token character starts in it; ``stops[i]`` is
        the first ``%`` or ``\\`` in the token at or after ``i``. Made at the first hit,
        since most redactors never see one.
        """
        if self._forms is None:
            forms: dict[str, array[int]] = {}
            for encoder in _ENCODERS:
                pieces = [
                    encoder(char, percent)
                    for char, (percent, _) in zip(self._token, self._escapes, strict=True)
                ]
                bounds = array("L", [0])
                for piece in pieces:
                    bounds.append(bounds[-1] + len(piece))
                forms.setdefault("".join(pieces), bounds)
            stops = array("L", [len(self._token)]) * (len(self._token) + 1)
            for index in range(len(self._token) - 1, -1, -1):
                stops[index] = index if self._token[index] in "%\\" else stops[index + 1]
            self._forms = (list(forms.items()), stops)
        return self._forms

    def _step(self, s: str, at: int, matched: int) -> list[int]:
        """Every position just after one form of ``token[matched]`` found at ``at``."""
        char = self._token[matched]
        after: list[int] = []
        if s.startswith(char, at):
            after.append(at + 1)
        lead = s[at : at + 1]
        percent, unicode = self._escapes[matched]
        if lead == "%":
            if s[at : at + len(percent)].upper() == percent:
                after.append(at + len(percent))
        elif lead == "\\":
            if char in _BACKSLASHED and s.startswith(char, at + 1):
                after.append(at + 2)
            if unicode and s[at : at + len(unicode)].lower() == unicode:
                after.append(at + len(unicode))
        elif lead == "+" and char == " ":
            after.append(at + 1)
        return after


class _Frame:
    """One container being walked by :meth:`Redactor.data`."""

    __slots__ = ("changed", "children", "container", "next", "out")

    def __init__(self, container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> None:
        self.container = container
        # A dict's keys and values alternate, so keys are redacted like everything else.
        self.children: list[Any] | tuple[Any, ...] = (
            [part for item in container.items() for part in item]
            if isinstance(container, dict)
            else container
        )
        self.next = 0
        self.out: list[Any] = []
        self.changed = False

    def add(self, child: Any, redacted: Any) -> None:
        self.out.append(redacted)
        if redacted is not child:
            self.changed = True

    def build(self) -> Any:
        if not self.changed:
            return self.container
        if isinstance(self.container, dict):
            return dict(zip(self.out[::2], self.out[1::2], strict=True))
        if isinstance(self.container, tuple):
            return tuple(self.out)
        return self.out


def _escapes_of(char: str, *, byte_chars: bool) -> tuple[str, str]:
    """The percent-encoding (upper-case hex) and ``\\u00e9``-style escape (lower-case) of
    ``char``.

    With ``byte_chars`` each character is one byte (bytes read as Latin-1), so it
    percent-encodes as itself; only its ASCII characters have a JSON escape then.
    """
    code = ord(char)
    if byte_chars:
        return f"%{code:02X}", (f"\\u{code:04x}" if code < 0x80 else "")
    raw = char.encode("utf-8", "surrogatepass")
    units = char.encode("utf-16-be", "surrogatepass")
    unicode = "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )
    return "".join(f"%{byte:02X}" for byte in raw), unicode


def _backslash_encoder(escaped: str) -> _Encoder:
    def encode(char: str, percent: str) -> str:
        return "\\" + char if char in escaped else char

    return encode


def _percent_encoder(safe: str, *, lower: bool, plus: bool) -> _Encoder:
    def encode(char: str, percent: str) -> str:
        if char in _UNRESERVED or char in safe:
            return char
        if plus and char == " ":
            return "+"
        return percent.lower() if lower else percent

    return encode


def _encode(text: str, escapes: list[tuple[str, str]], encoder: _Encoder) -> str:
    return "".join(encoder(char, percent) for char, (percent, _) in zip(text, escapes, strict=True))


def _longest_run(
    s: str, at: int, matched: int, stop: int, forms: list[tuple[str, array[int]]]
) -> tuple[int, int]:
    """How many token characters from ``matched`` up to ``stop`` one form spells at ``at``.

    Returns that count and the width of the text it covers. Forms are galloped, then
    bisected: ``startswith`` runs in C where a loop over a 10,000-character token would
    not, and no probe costs much more than what already matched.
    """
    limit = stop - matched
    best = width = 0
    for form, bounds in forms:
        if best == limit:
            break
        base = bounds[matched]
        # A form that cannot beat the best so far fails this one probe.
        if not s.startswith(form[base : bounds[matched + best + 1]], at):
            continue
        low, high = best + 1, min(limit, max(32, 4 * (best + 1)))
        while s.startswith(form[base : bounds[matched + high]], at):
            low = high
            if high == limit:
                break
            high = min(limit, high * 4)
        while high - low > 1:
            middle = (low + high) // 2
            if s.startswith(form[base : bounds[matched + middle]], at):
                low = middle
            else:
                high = middle
        best, width = low, bounds[matched + low] - base
    return best, width


def _plain(char: str, percent: str) -> str:
    return char


# The uniform forms a token's start is searched for in; once a start is found, the
# match extends through any mixture of forms.
_ENCODERS: tuple[_Encoder, ...] = (
    _plain,
    _backslash_encoder('"\\'),  # JSON
    _backslash_encoder('"\\/'),  # JSON as PHP and some others write it
    _backslash_encoder("'\\"),  # Python's repr of str or bytes
    *(
        _percent_encoder(safe, lower=lower, plus=plus)
        for safe in _PERCENT_SAFE
        for lower in (False, True)
        for plus in (False, True)
    ),
)
