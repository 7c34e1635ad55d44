"""griffe extension: the package's reST-flavoured docstrings, readable as Markdown.

The docstrings are written for ``help()`` and IDEs, in a light reST: ``:class:`Backup```
roles, ``double backticks`` and ``::`` before an indented example. The API reference
renders them as Markdown, so this extension rewrites, before they are parsed:

- a role naming a public name of ``asyncbackups`` or ``asyncbackups.testing`` into a
  cross-reference to its reference entry (``[`Backup`][asyncbackups.Backup]``), and any
  other role into plain code (a private helper has no page to link to);
- a paragraph's closing ``::`` and the indented block after it into ``:`` and a fenced
  block, ``python`` when the block parses as Python (top-level ``await`` allowed), so
  the example is highlighted like the guides' examples; ``toml`` when it parses as
  TOML; else ``text``. A ``::`` alone on its line is dropped the same way.

Double backticks are Markdown code already. Loaded by mkdocstrings (see mkdocs.yml).
"""

from __future__ import annotations

import ast
import re
import textwrap
import tomllib
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|obj|mod):`~?(?P<target>[^`]+)`")


def _public_names() -> dict[str, str]:
    import asyncbackups
    import asyncbackups.testing

    names: dict[str, str] = {}
    for package in (asyncbackups.testing, asyncbackups):  # the SDK's names win
        for name in package.__all__:
            names[name] = f"{package.__name__}.{name}"
    return names


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def language(code: str) -> str:
    """The fence's language for a literal block: python, toml or text."""
    try:
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        compile(code, "<docstring>", "exec", flags=flags)
    except SyntaxError:
        pass
    else:
        return "python"
    try:
        tomllib.loads(code)
    except tomllib.TOMLDecodeError:
        return "text"
    return "toml"


def fence_literal_blocks(text: str) -> str:
    """Turn each reST ``::`` literal block of ``text`` into a fenced Markdown block."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.rstrip().endswith("::"):
            out.append(line)
            index += 1
            continue
        indent = _indent(line)
        start = index + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (
            not lines[end].strip() or _indent(lines[end]) > indent
        ):
            end += 1
        if start == end:  # no indented block follows: not a literal block marker
            out.append(line)
            index += 1
            continue
        intro = line.rstrip()[:-2].rstrip()
        if intro.strip():
            out.append(intro + ":")
        code = textwrap.dedent("\n".join(lines[start:end])).strip("\n")
        pad = " " * indent
        out += ["", f"{pad}```{language(code)}"]
        out += [pad + code_line if code_line else "" for code_line in code.split("\n")]
        out += [f"{pad}```", ""]
        index = end
    return "\n".join(out)


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` literal blocks in every docstring."""

    def __init__(self) -> None:
        """Read the public names once."""
        super().__init__()
        self._names = _public_names()

    def _role(self, match: re.Match[str]) -> str:
        target = match["target"].removesuffix("()")
        last = target.rsplit(".", 1)[-1]
        head = target.split(".", 1)[0]
        if target in self._names:
            return f"[`{last}`][{self._names[target]}]"
        if head in self._names and "." in target:  # Class.member
            return f"[`{target}`][{self._names[head]}.{target.split('.', 1)[1]}]"
        return f"`{last}`"

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        """Rewrite this object's docstring, if it has one."""
        if obj.docstring is not None:
            text = ROLE.sub(self._role, obj.docstring.value)
            obj.docstring.value = fence_literal_blocks(text)
