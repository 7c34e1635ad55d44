"""mkdocs hook: the Architecture page's tables, read from the source at build time.

- ``<!-- import-contracts -->`` becomes a table of the import-linter contracts in
  ``pyproject.toml`` (``[tool.importlinter]``, what ``lint-imports`` checks in CI): each
  one's name, kind, and the modules on either side. The page lists exactly the walls
  the tool enforces; a contract added, renamed or dropped shows at the next build.
- ``<!-- module-map: asyncbackups/testing -->`` (a folder of the repository) becomes a
  table of that folder's modules, each with the first line of its docstring, so a module
  added or renamed shows too, described by its own author.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- import-contracts -->"
MODULE_MAP = re.compile(r"<!-- module-map: (?P<folder>[\w/.-]+) -->")


def _modules(names: list[str]) -> str:
    short = [name.removeprefix("asyncbackups.") for name in names]
    return ", ".join(f"`{name}`" for name in short)


def contracts_table() -> str:
    """The contracts as a Markdown table."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    rows = ["| contract | kind | modules | may not import |", "|---|---|---|---|"]
    for contract in contracts:
        kind = contract["type"]
        if kind == "independence":
            modules, forbidden = _modules(contract["modules"]), "each other"
        else:
            modules = _modules(contract.get("source_modules", []))
            forbidden = _modules(contract.get("forbidden_modules", []))
            if contract.get("allow_indirect_imports"):
                forbidden += " (directly)"
        rows.append(f"| {contract['name']} | {kind} | {modules} | {forbidden} |")
    return "\n".join(rows)


def module_map(folder: str) -> str:
    """The folder's modules, each with its docstring's first line, as a table."""
    rows = ["| module | what it holds |", "|---|---|"]
    for path in sorted((ROOT / folder).glob("*.py")):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary = " ".join(docstring.split("\n\n")[0].split()).replace("|", "\\|")
        rows.append(f"| `{path.name}` | {summary} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the markers with the contracts table and the module maps."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, contracts_table())
    return MODULE_MAP.sub(lambda match: module_map(match["folder"]), markdown)
