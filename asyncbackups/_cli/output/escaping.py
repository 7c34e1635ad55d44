"""Text from the API made safe for a terminal, and JSON that keeps its exact text.

Descriptions, server names and messages come from the API: in table and plain output
their control characters (``\\x1b``, ``\\n``, bidi overrides) are shown escaped, so an
API answer can never drive the terminal. JSON keeps the exact text, escaped as JSON.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

__all__ = ["cell_width", "escape", "json_text", "one_line"]

# Control characters (C0, DEL, C1), bidi embeddings, overrides and isolates, and the
# Unicode line and paragraph separators: none may reach a terminal raw.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw of those (it escapes C0 itself).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` safe for a terminal: control and bidi characters shown as escapes.

    ``"\\x1b[2J"`` becomes the visible ``\\x1b[2J``; printable text is unchanged.
    """
    return _UNSAFE.sub(_escape_char, text)


def one_line(text: str) -> str:
    """``text`` on one safe line: runs of whitespace made one space, controls escaped."""
    return escape(" ".join(text.split()))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(data: Any, *, compact: bool = False) -> str:
    """``data`` as JSON that keeps every character's exact text yet is terminal-safe.

    Non-ASCII text stays readable; control and bidi characters become ``\\u200e``-style
    escapes (which any JSON reader turns back into the exact text). ``compact``: one
    line, as ``json.dumps`` writes it without ``indent``.
    """
    text = json.dumps(data, indent=None if compact else 2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_json_escape, text)


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` takes: wide (CJK) characters two, combining none."""
    if text.isascii():
        return len(text)  # escaped text is mostly ASCII: one cell a character
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in "WF" else 1
    return width
