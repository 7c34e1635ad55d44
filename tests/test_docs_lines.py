"""Every line of the documentation's sources fits 88 columns, so no code block scrolls.

The site's code blocks show 88 characters beside the copy button at the narrowest
column the theme gives them (``docs/stylesheets/extra.css``); a longer line is cut off
and scrolls. Prose is held to the same width so that the sources read alike in an
editor and in a diff. Two kinds of line are exempt, because Markdown cannot break them:

- a table row (``| a | b |``): a row is one line, however long its cells;
- a line that is over the limit only because of one URL, which cannot be broken
  (without the URL it would fit).

Checked: ``docs/**`` (pages, hooks, stylesheets) and ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 88
URL = re.compile(r"https?://\S+")
CHECKED = sorted(
    path
    for path in [*(ROOT / "docs").rglob("*"), ROOT / "mkdocs.yml"]
    if path.is_file() and path.suffix in {".md", ".py", ".css", ".yml", ".yaml", ".txt"}
)


def exempt(line: str) -> bool:
    """Whether an over-long line may stay: a table row, or one made long by a URL."""
    if line.lstrip().startswith("|"):
        return True
    return any(len(line) - len(url) + 1 <= LIMIT for url in URL.findall(line))


def too_long(text: str) -> list[tuple[int, int]]:
    """(line number, length) of each line over the limit that is not exempt."""
    return [
        (number, len(line))
        for number, line in enumerate(text.splitlines(), 1)
        if len(line) > LIMIT and not exempt(line)
    ]


def test_the_check_reads_the_docs_sources() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in CHECKED}
    assert {"mkdocs.yml", "docs/index.md", "docs/_hooks/griffe_roles.py"} <= names


@pytest.mark.parametrize("path", CHECKED, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_no_line_is_wider_than_88_columns(path: Path) -> None:
    found = too_long(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: lines over {LIMIT} columns: " + ", ".join(
        f"line {number} ({length})" for number, length in found
    )


def test_a_table_row_and_a_long_url_are_exempt_and_prose_is_not() -> None:
    row = "| " + "cell | " * 20
    url_line = "see https://example.com/" + "a" * 100
    prose = "word " * 20
    assert too_long("\n".join([row, url_line])) == []
    assert too_long(prose) == [(1, len(prose))]
    # A URL does not excuse the rest of a line that is long without it.
    assert too_long(prose + url_line) == [(1, len(prose + url_line))]
