"""griffe extension: the package's reST-flavoured docstrings, readable as Markdown.

The docstrings are written for ``help()`` and IDEs, in a light reST: ``:class:`Backup```
roles, ``double backticks`` and ``::`` before an indented example. The API reference
renders them as Markdown, so this extension rewrites, before they are parsed:

- a role naming a public name of ``asyncbackups`` or ``asyncbackups.testing`` into a
  cross-reference to its reference entry (``[`Backup`][asyncbackups.Backup]``), and any
  other role into plain code (a private helper has no page to link to);
- a paragraph's closing ``::`` into ``:``, and drop a ``::`` alone on its line (the
  indented block after it stays code).

Double backticks are Markdown code already. Loaded by mkdocstrings (see mkdocs.yml).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|exc|obj|mod):`~?(?P<target>[^`]+)`")
LITERAL_INTRO = re.compile(r"(?<=\S)::$", re.MULTILINE)
LITERAL_ALONE = re.compile(r"^[ \t]*::[ \t]*\n", re.MULTILINE)


def _public_names() -> dict[str, str]:
    import asyncbackups
    import asyncbackups.testing

    names: dict[str, str] = {}
    for package in (asyncbackups.testing, asyncbackups):  # the SDK's names win
        for name in package.__all__:
            names[name] = f"{package.__name__}.{name}"
    return names


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` literal markers in every docstring."""

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
            text = LITERAL_ALONE.sub("", text)
            obj.docstring.value = LITERAL_INTRO.sub(":", text)
