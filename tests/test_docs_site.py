"""The built documentation site: what a reader sees, offline.

The site is built once for this module (``mkdocs build --strict`` into a temporary
folder, as ``nox -s docs`` does; a few seconds), then read as HTML:

- the Models reference has an entry for every attrs field of ``Backup``, ``ServerRef``
  and ``RestoreResult``, with its type and its meaning (the field's attribute
  docstring), and every member of ``BackupStatus`` and ``BackupType``, without naming
  their private base;
- nothing a page loads comes from the network (no CDN script, no web font), and the
  Mermaid diagrams are drawn images, not source waiting for Mermaid's JavaScript;
- ``BackupsAPI.create`` links to the guide's section on reconcile limits, the
  docstrings' examples are highlighted, and every benchmark figure in the text is the
  results files' (no marker left unreplaced).

It needs the ``docs`` extra (mkdocs, mkdocstrings, matplotlib) and the ``cli`` extra
(the command line's help is read into the pages). Without them it is skipped, so it
runs where the docs are built: ``nox -s docs``.

The source-level half (every field and member has an attribute docstring) needs no
build and always runs.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import asyncbackups

ROOT = Path(__file__).resolve().parent.parent
MODELS_SOURCE = ROOT / "asyncbackups" / "_core" / "models.py"
RECORDS = (asyncbackups.Backup, asyncbackups.ServerRef, asyncbackups.RestoreResult)
ENUMS = (asyncbackups.BackupStatus, asyncbackups.BackupType)


def attribute_docstrings(path: Path) -> dict[str, dict[str, str]]:
    """Per class of the module: each attribute's docstring, the string right after it."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs = found.setdefault(node.name, {})
        for statement, following in itertools.pairwise(node.body):
            target = None
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                target = statement.target.id
            elif isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name):
                target = statement.targets[0].id
            if (
                target is not None
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[target] = following.value.value
    return found


DOCSTRINGS = attribute_docstrings(MODELS_SOURCE)


def _fields() -> list[tuple[str, str]]:
    return [(cls.__name__, field.name) for cls in RECORDS for field in attrs.fields(cls)]


def _members() -> list[tuple[str, str]]:
    return [(cls.__name__, member.name) for cls in ENUMS for member in cls]


@pytest.mark.parametrize(("cls", "name"), [*_fields(), *_members()])
def test_every_model_field_and_enum_member_has_an_attribute_docstring(cls: str, name: str) -> None:
    assert DOCSTRINGS.get(cls, {}).get(name, "").strip(), (
        f"{cls}.{name} in asyncbackups/_core/models.py needs a docstring: a string "
        "literal on the line after it, saying what it holds"
    )


# -- the built site -----------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly into a temporary folder."""
    for module in ("mkdocs", "mkdocstrings", "matplotlib", "click"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the docs build needs {module} (pip install -e '.[docs,cli]')")
    folder = tmp_path_factory.mktemp("site")
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-4000:]}"
    return folder


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


def text(fragment: str) -> str:
    """The words of an HTML fragment, tags dropped, whitespace folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def squeeze(words: str) -> str:
    """``words`` without any whitespace: HTML spaces words apart where it likes."""
    return re.sub(r"\s+", "", html.unescape(words))


def entry(document: str, anchor: str) -> str:
    """The text of the reference entry whose heading has ``id=anchor``."""
    found = re.search(rf'<h\d id="{re.escape(anchor)}"', document)
    assert found is not None, f"no entry {anchor} in the page"
    following = re.compile(r'<h\d id="[^"]*" class="doc doc-heading"').search(document, found.end())
    end = following.start() if following else document.index("</article>", found.end())
    return text(document[found.start() : end])


def every_page(site: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(site.rglob("*.html")):
        yield path, path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("cls", "name"), _fields())
def test_the_models_reference_shows_every_field_with_its_type_and_meaning(
    site: Path, cls: str, name: str
) -> None:
    shown = squeeze(entry(page(site, "reference/models"), f"asyncbackups.{cls}.{name}"))
    annotation = getattr(asyncbackups, cls).__annotations__[name]
    assert squeeze(f"{name}: {annotation}") in shown
    meaning = DOCSTRINGS[cls][name].split("\n\n")[0].replace("``", "")
    assert squeeze(meaning) in shown


@pytest.mark.parametrize(("cls", "name"), _members())
def test_the_models_reference_shows_every_enum_member(site: Path, cls: str, name: str) -> None:
    member = getattr(getattr(asyncbackups, cls), name)
    shown = squeeze(entry(page(site, "reference/models"), f"asyncbackups.{cls}.{name}"))
    assert squeeze(f"{name} = '{member.value}'") in shown
    assert squeeze(DOCSTRINGS[cls][name].replace("``", "")) in shown  # and what it means


def test_the_models_reference_does_not_name_the_private_enum_base(site: Path) -> None:
    assert "_OpenStrEnum" not in page(site, "reference/models")


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    remote = re.compile(r"<(?:script|link|img)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I)
    for path, document in every_page(site):
        found = remote.search(document)
        assert found is None, f"{path.relative_to(site)} loads {found.group(0)}..."


def test_the_diagrams_are_drawn_images_not_mermaid_source(site: Path) -> None:
    for name in ("contributing/architecture", "guides/waiting"):
        document = page(site, name)
        assert 'class="mermaid"' not in document
        assert "sequenceDiagram" not in document
        assert "flowchart TB" not in document
        images = re.findall(r'<img[^>]*src="([^"]+-diagram-\d+\.svg)"', document)
        assert images, f"{name}: no diagram image"
        for image in images:
            drawn = (site / name / image).resolve()
            assert drawn.read_bytes().lstrip().startswith(b"<?xml"), drawn
    assert "flowchart" not in (site / "assets").as_posix()


def test_the_architecture_diagram_keeps_every_layer(site: Path) -> None:
    svg = next((site / "contributing").glob("architecture-diagram-*.svg"))
    # Text is drawn as paths; the alternative text carries the title, the page the rest.
    document = page(site, "contributing/architecture")
    assert 'alt="The layers of asyncbackups' in document
    assert svg.stat().st_size > 10_000


def test_create_links_to_the_guide_on_reconcile_limits(site: Path) -> None:
    create = entry(page(site, "reference/client"), "asyncbackups.BackupsAPI.create")
    assert "What a create's reconcile can know" in create
    assert 'href="../../guides/errors/#reconcile-limits"' in page(site, "reference/client")


def test_docstring_examples_in_the_reference_are_highlighted(site: Path) -> None:
    document = page(site, "reference/client")
    start = document.find('<h2 id="asyncbackups.BackupsClient"')
    following = document.find('<h3 id="asyncbackups.BackupsClient.', start)
    client = document[start:following]
    assert '<span class="k">async</span>' in client, "the client's example is not highlighted"


def test_every_benchmark_figure_in_the_text_was_filled_in(site: Path) -> None:
    for path, document in every_page(site):
        for match in re.finditer(r"\{\{\s*bench\.", document):
            before = document[max(0, match.start() - 200) : match.start()]
            # Shown on purpose only inside code, on the page that explains the markers.
            assert before.rfind("<code") > before.rfind("</code>"), (
                f"{path.relative_to(site)}: a figure marker was left in the text"
            )


def test_the_waiting_guide_quotes_the_fleet_benchmark_as_measured(site: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("_report", ROOT / "benchmarks/report.py")
        assert spec is not None
        assert spec.loader is not None
        report = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(report)
        figures = report.figures(report.load(report.RESULTS))
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    waiting = text(page(site, "guides/waiting"))
    assert f"{figures['fleet.requests_per_server']} requests per server" in waiting
