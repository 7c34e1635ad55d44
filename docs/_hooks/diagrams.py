"""mkdocs hook: the pages' Mermaid diagrams, drawn as SVG when the site is built.

The pages keep their diagrams as ```` ```mermaid ```` blocks, which GitHub shows as
they are. The theme would draw them in the browser with Mermaid's JavaScript fetched
from a CDN, so offline a reader would see the source. This hook draws them instead, at
build time, with matplotlib (already needed for the benchmark charts): each block
becomes an image, ``<page>-diagram-<n>.svg`` beside its page, and the theme never loads
Mermaid.

It reads the part of Mermaid the pages use, and fails the build (``PluginError``,
naming the page and line) on anything else, so a new diagram either draws or says what
to add here:

- ``flowchart TB`` (or ``TD``; ``graph`` too): nodes ``id["text"]`` (box),
  ``id("text")`` (rounded), ``id(["text"])`` (stadium), ``id[("text")]`` (database);
  edges ``-->``, ``---``, ``-.->``, ``-.-``, ``-.-x``, ``--x``, each with an optional
  ``|"label"|``; several edges on one line (``a --> b --> c``). Solid edges rank the
  nodes top to bottom; dotted ones are drawn as curves and do not.
- ``sequenceDiagram``: ``participant X as text`` (or ``actor``), ``autonumber``,
  messages ``A->>B: text`` (call), ``A-->>B: text`` (answer), ``A->B`` and ``A-->B``
  (no arrowhead), ``Note over A: text``, ``Note over A,C: text``,
  ``Note left of A: text`` and ``Note right of A: text``.
- Both: ``<br>`` in a text breaks the line; ``accTitle: text`` is the image's
  alternative text (Mermaid's own accessibility title); ``%%`` starts a comment.
"""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```mermaid[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)

FONT_SIZE = 9.5  # points; the SVG is drawn at 1 pt per CSS pixel x 4/3
LINE_HEIGHT = FONT_SIZE * 1.35
TEXT = "#1f2328"
NODE_FILL, NODE_EDGE = "#eef0fb", "#3f51b5"
NOTE_FILL, NOTE_EDGE = "#fff7cc", "#c9a227"
MUTED = "#6b7280"

_images: dict[str, list[tuple[str, str]]] = {}  # page src_uri -> [(image name, alt)]


class DiagramError(ValueError):
    """Mermaid this hook does not draw; ``line`` counts from the fence's first line."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# -- text ---------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [part.strip() for part in BREAK.split(text.strip())]


def text_size(text: str, size: float = FONT_SIZE) -> tuple[float, float]:
    """Width and height, in points, of ``text`` (``<br>`` breaks lines) in the font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font = FontProperties(family="DejaVu Sans", size=size)
    lines = _lines(text)
    width = max(
        (TextPath((0, 0), line, prop=font).get_extents().width for line in lines),
        default=0.0,
    )
    return width, size * 1.35 * len(lines)


# -- flowcharts ---------------------------------------------------------------------

SHAPES = {
    ("[", "]"): "box",
    ("(", ")"): "rounded",
    ("([", "])"): "stadium",
    ("[(", ")]"): "database",
}
NODE = re.compile(
    r'(?P<id>[A-Za-z_]\w*)(?:(?P<open>\(\[|\[\(|\[|\()"(?P<label>[^"]*)"'
    r"(?P<close>\]\)|\)\]|\]|\)))?"
)
ARROW = re.compile(
    r'\s*(?P<arrow>-\.-x|-\.->|-\.-|--x|-->|---)\s*(?:\|"(?P<label>[^"]*)"\|)?\s*'
)
RANK_GAP = 30.0  # points between the bottom of one rank and the top of the next
NODE_GAP = 18.0  # points between neighbours in a rank
Point = tuple[float, float]


@dataclass
class Node:
    """A flowchart node (or a bend of a long edge): its text, shape and place."""

    id: str
    label: str
    shape: str = "box"
    rank: int = 0
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0
    dummy: bool = False


@dataclass
class Edge:
    """A flowchart edge; ``end`` is its head: an arrow, a cross (``x``) or none."""

    source: str
    target: str
    dotted: bool
    end: str
    label: str = ""
    bends: list[str] = field(default_factory=list)  # dummy nodes, top to bottom


@dataclass
class Flowchart:
    """A parsed ``flowchart TB``."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    title: str = ""


def _node(chart: Flowchart, match: re.Match[str], line: int) -> str:
    node_id = match["id"]
    node = chart.nodes.setdefault(node_id, Node(node_id, node_id))
    if match["open"] is not None:
        shape = SHAPES.get((match["open"], match["close"]))
        if shape is None:
            raise DiagramError(
                f"unknown shape {match['open']}...{match['close']}", line
            )
        node.label, node.shape = match["label"], shape
    return node_id


def parse_flowchart(lines: list[str]) -> Flowchart:
    """Parse a flowchart's lines after its header."""
    chart = Flowchart()
    for number, raw in enumerate(lines, 2):
        line = raw.split("%%", 1)[0].strip()
        if not line:
            continue
        if line.startswith("accTitle:"):
            chart.title = line.partition(":")[2].strip()
            continue
        match = NODE.match(line)
        if match is None:
            raise DiagramError(f"expected a node, got {line!r}", number)
        source = _node(chart, match, number)
        position = match.end()
        while position < len(line):
            arrow = ARROW.match(line, position)
            if arrow is None:
                raise DiagramError(f"expected an edge at {line[position:]!r}", number)
            target_match = NODE.match(line, arrow.end())
            if target_match is None:
                raise DiagramError(f"expected a node after {arrow['arrow']!r}", number)
            target = _node(chart, target_match, number)
            kind = arrow["arrow"]
            end = (
                "cross"
                if kind.endswith("x")
                else "arrow"
                if kind.endswith(">")
                else "none"
            )
            label = arrow["label"] or ""
            chart.edges.append(Edge(source, target, "." in kind, end, label))
            source, position = target, target_match.end()
    if not chart.nodes:
        raise DiagramError("the flowchart has no nodes", 1)
    return chart


def _rank(chart: Flowchart) -> None:
    """Each node one rank below the lowest node with an edge into it (longest path)."""
    for _ in range(len(chart.nodes) + 1):
        changed = False
        for edge in chart.edges:
            source, target = chart.nodes[edge.source], chart.nodes[edge.target]
            if target.rank < source.rank + 1:
                target.rank, changed = source.rank + 1, True
        if not changed:
            return
    raise DiagramError("the edges make a cycle; a flowchart here must point one way", 1)


def _isotonic(wanted: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence nearest ``wanted`` (weighted least squares; PAVA)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(wanted, weights, strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean2, weight2, count2 = blocks.pop()
            mean1, weight1, count1 = blocks.pop()
            total = weight1 + weight2
            blocks.append(
                [(mean1 * weight1 + mean2 * weight2) / total, total, count1 + count2]
            )
    result: list[float] = []
    for mean, _, count in blocks:
        result += [mean] * int(count)
    return result


def _place_rank(row: list[Node], wanted: list[float]) -> None:
    """Put ``row``'s nodes, in their order, as near ``wanted`` as their widths allow."""
    offsets = [0.0]
    for left, right in itertools.pairwise(row):
        offsets.append(offsets[-1] + (left.width + right.width) / 2 + NODE_GAP)
    # x[i] = y[i] + offsets[i] keeps neighbours apart exactly when y never decreases.
    weights = [4.0 if node.dummy else 1.0 for node in row]
    shifted = _isotonic([w - o for w, o in zip(wanted, offsets, strict=True)], weights)
    for node, y, offset in zip(row, shifted, offsets, strict=True):
        node.x = y + offset


def layout_flowchart(chart: Flowchart) -> list[list[Node]]:
    """Rank, order and place every node (in points); the ranks, top first.

    A layered drawing in the manner of Sugiyama's: an edge across several ranks gets
    a bend point in each rank between (a zero-width node that keeps the way clear, as
    wide as the label at the middle one), ranks are ordered by the mean position of
    their neighbours, and nodes are pulled towards their neighbours' positions.
    """
    _rank(chart)
    for node in chart.nodes.values():
        width, height = text_size(node.label)
        pad = 14.0 if node.shape in ("stadium", "database") else 10.0
        node.width, node.height = width + 2 * pad, height + 12.0
    for number, edge in enumerate(chart.edges):
        low, high = chart.nodes[edge.source].rank, chart.nodes[edge.target].rank
        middle = (low + high) // 2 if high - low > 1 else None
        for rank in range(low + 1, high):
            bend = Node(f"\0{number}.{rank}", "", rank=rank, dummy=True, width=4.0)
            if rank == middle and edge.label:
                bend.width, bend.height = text_size(edge.label, FONT_SIZE - 1)
                bend.width += 6
            chart.nodes[bend.id] = bend
            edge.bends.append(bend.id)
    ranks: list[list[Node]] = [
        [] for _ in range(max(n.rank for n in chart.nodes.values()) + 1)
    ]
    for node in chart.nodes.values():  # in order of appearance, bends last
        ranks[node.rank].append(node)
    above: dict[str, list[str]] = {node: [] for node in chart.nodes}
    below: dict[str, list[str]] = {node: [] for node in chart.nodes}
    for edge in chart.edges:
        path = [edge.source, *edge.bends, edge.target]
        for upper, lower in itertools.pairwise(path):
            below[upper].append(lower)
            above[lower].append(upper)

    def mean(names: list[str], fallback: float) -> float:
        return sum(chart.nodes[n].x for n in names) / len(names) if names else fallback

    for row in ranks:  # a first placement: each rank packed from 0
        _place_rank(row, [0.0] * len(row))
    for sweep in range(24):
        down = sweep % 2 == 0
        order = ranks[1:] if down else ranks[-2::-1]
        for row in order:
            if sweep < 8:  # order each rank by its neighbours' mean position
                row.sort(key=lambda n: mean(above[n.id] if down else below[n.id], n.x))
            wanted = [
                mean(above[n.id] if down else below[n.id], n.x)
                if sweep < 20
                else mean(above[n.id] + below[n.id], n.x)
                for n in row
            ]
            _place_rank(row, wanted)
    y = 0.0
    for row in ranks:
        tallest = (
            max(node.height for node in row if not node.dummy)
            if any(not node.dummy for node in row)
            else LINE_HEIGHT
        )
        for node in row:
            node.y = y - tallest / 2
        y -= tallest + RANK_GAP
    return ranks


def _ports(chart: Flowchart) -> dict[tuple[int, str], Point]:
    """Where each edge leaves its source and enters its target, by (edge, node).

    Edges always run downwards, so they leave a node by the bottom and enter by the top;
    several at one side are spread along it in the order of where they come from, so
    that their heads do not pile up.
    """
    sides: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for number, edge in enumerate(chart.edges):
        path = [edge.source, *edge.bends, edge.target]
        after, before = chart.nodes[path[1]], chart.nodes[path[-2]]
        sides.setdefault((edge.source, "bottom"), []).append((after.x, number))
        sides.setdefault((edge.target, "top"), []).append((before.x, number))
    ports: dict[tuple[int, str], Point] = {}
    for (name, side), edges in sides.items():
        node = chart.nodes[name]
        step = min(16.0, node.width / (len(edges) + 1))
        y = node.y + (node.height / 2 + 1.5) * (1 if side == "top" else -1)
        for index, (_, number) in enumerate(sorted(edges)):
            ports[(number, name)] = (node.x + (index - (len(edges) - 1) / 2) * step, y)
    return ports


def _route(
    chart: Flowchart, number: int, ports: dict[tuple[int, str], Point]
) -> list[Point]:
    """The edge's points: out of its source, through its bends, into its target."""
    edge = chart.edges[number]
    bends = [(chart.nodes[b].x, chart.nodes[b].y) for b in edge.bends]
    return [ports[(number, edge.source)], *bends, ports[(number, edge.target)]]


def draw_flowchart(chart: Flowchart) -> bytes:
    """The flowchart as SVG."""
    from matplotlib.patches import FancyBboxPatch

    layout_flowchart(chart)
    nodes = list(chart.nodes.values())
    left = min(node.x - node.width / 2 for node in nodes)
    right = max(node.x + node.width / 2 for node in nodes)
    top = max(node.y + node.height / 2 for node in nodes if not node.dummy)
    bottom = min(node.y - node.height / 2 for node in nodes if not node.dummy)
    figure, axes = _canvas(left - 8, right + 8, bottom - 8, top + 8)
    ports = _ports(chart)
    for number, edge in enumerate(chart.edges):
        points = _route(chart, number, ports)
        color = MUTED if edge.dotted else TEXT
        _curve(axes, points, (0, (3, 2.5)) if edge.dotted else "solid", color, edge.end)
        if edge.label:
            if edge.bends:
                middle = chart.nodes[edge.bends[(len(edge.bends) - 1) // 2]]
                where = (middle.x, middle.y)
            else:
                where = (
                    (points[0][0] + points[-1][0]) / 2,
                    (points[0][1] + points[-1][1]) / 2,
                )
            axes.text(
                *where,
                _multiline(edge.label),
                ha="center",
                va="center",
                fontsize=FONT_SIZE - 1,
                color=MUTED,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"},
            )
    for node in nodes:
        if node.dummy:
            continue
        x, y = node.x - node.width / 2, node.y - node.height / 2
        style = {
            "box": "square,pad=0",
            "rounded": "round,pad=0,rounding_size=6",
            "stadium": f"round,pad=0,rounding_size={node.height / 2}",
            "database": "round,pad=0,rounding_size=4",
        }[node.shape]
        axes.add_patch(
            FancyBboxPatch(
                (x, y),
                node.width,
                node.height,
                boxstyle=style,
                fc=NODE_FILL,
                ec=NODE_EDGE,
                lw=1.0,
                zorder=2,
            )
        )
        if node.shape == "database":  # the cylinder's rim
            axes.plot(
                [x + 3, x + node.width - 3],
                [y + node.height - 5] * 2,
                color=NODE_EDGE,
                lw=0.8,
                zorder=3,
            )
        axes.text(
            node.x,
            node.y,
            _multiline(node.label),
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color=TEXT,
            zorder=3,
            linespacing=1.35,
        )
    return _svg(figure)


# -- sequence diagrams --------------------------------------------------------------

MESSAGE = re.compile(
    r"^(?P<source>[\w-]+?)\s*(?P<arrow>-->>|->>|-->|->)\s*(?P<target>[\w-]+)"
    r"\s*:\s*(?P<text>.*)$"
)
NOTE = re.compile(
    r"^Note\s+(?P<where>over|left of|right of)\s+(?P<who>[\w-]+(?:\s*,\s*[\w-]+)?)"
    r"\s*:\s*(?P<text>.*)$",
    re.IGNORECASE,
)
PARTICIPANT = re.compile(
    r"^(?:participant|actor)\s+(?P<id>[\w-]+)(?:\s+as\s+(?P<label>.+))?$"
)


@dataclass
class Step:
    """One row of a sequence diagram: a message or a note."""

    kind: str  # "message" or "note"
    text: str
    source: str
    target: str
    dashed: bool = False
    head: bool = True
    where: str = "over"
    number: int | None = None


@dataclass
class Sequence:
    """A parsed ``sequenceDiagram``."""

    participants: dict[str, str] = field(default_factory=dict)  # id -> label
    steps: list[Step] = field(default_factory=list)
    title: str = ""


def parse_sequence(lines: list[str]) -> Sequence:
    """Parse a sequence diagram's lines after its header."""
    diagram = Sequence()
    numbering = False
    count = 0

    def known(name: str) -> str:
        diagram.participants.setdefault(name, name)
        return name

    for number, raw in enumerate(lines, 2):
        line = raw.split("%%", 1)[0].strip()
        if not line:
            continue
        if line.startswith("accTitle:"):
            diagram.title = line.partition(":")[2].strip()
        elif line == "autonumber":
            numbering = True
        elif (match := PARTICIPANT.match(line)) is not None:
            diagram.participants[match["id"]] = (match["label"] or match["id"]).strip()
        elif (match := MESSAGE.match(line)) is not None:
            count += 1
            arrow = match["arrow"]
            diagram.steps.append(
                Step(
                    "message",
                    match["text"],
                    known(match["source"]),
                    known(match["target"]),
                    dashed=arrow.startswith("--"),
                    head=arrow.endswith(">>"),
                    number=count if numbering else None,
                )
            )
        elif (match := NOTE.match(line)) is not None:
            who = [known(name.strip()) for name in match["who"].split(",")]
            diagram.steps.append(
                Step(
                    "note", match["text"], who[0], who[-1], where=match["where"].lower()
                )
            )
        else:
            raise DiagramError(f"not a participant, message or note: {line!r}", number)
    if not diagram.participants:
        raise DiagramError("the sequence diagram has no participants", 1)
    return diagram


def draw_sequence(diagram: Sequence) -> bytes:
    """The sequence diagram as SVG."""
    from matplotlib.patches import Circle, FancyBboxPatch

    names = list(diagram.participants)
    index = {name: i for i, name in enumerate(names)}
    boxes = [text_size(diagram.participants[name]) for name in names]
    box_width = [width + 18 for width, _ in boxes]
    box_height = max(height for _, height in boxes) + 12
    # The least distance between neighbours: their boxes, and each message's text.
    gaps = [(box_width[i] + box_width[i + 1]) / 2 + 16 for i in range(len(names) - 1)]
    for step in diagram.steps:
        if step.kind != "message":
            continue
        low, high = sorted((index[step.source], index[step.target]))
        need = text_size(step.text)[0] + 12 + (16 if step.number is not None else 0)
        have = sum(gaps[low:high])
        if high > low and have < need:
            for i in range(low, high):
                gaps[i] += (need - have) / (high - low)
    xs = [0.0]
    for gap in gaps:
        xs.append(xs[-1] + gap)
    x_of = {name: xs[index[name]] for name in names}

    rows: list[tuple[Step, float, float]] = []  # step, y of its top, height
    y = -box_height - 14
    for step in diagram.steps:
        height = text_size(step.text)[1] + (14 if step.kind == "message" else 12)
        rows.append((step, y, height))
        y -= height + (6 if step.kind == "message" else 10)
    bottom = y - 4

    extents = [xs[0] - box_width[0] / 2, xs[-1] + box_width[-1] / 2]
    for step, _, _ in rows:
        if step.kind == "note":
            left, right = _note_span(step, x_of)
            extents += [left, right]
    figure, axes = _canvas(min(extents) - 8, max(extents) + 8, bottom - 8, 8)
    for name, width in zip(names, box_width, strict=True):
        x = x_of[name]
        axes.plot(
            [x, x],
            [-box_height, bottom],
            color=MUTED,
            lw=0.8,
            linestyle=(0, (3, 2.5)),
            zorder=1,
        )
        axes.add_patch(
            FancyBboxPatch(
                (x - width / 2, -box_height),
                width,
                box_height,
                boxstyle="round,pad=0,rounding_size=3",
                fc=NODE_FILL,
                ec=NODE_EDGE,
                lw=1.0,
                zorder=2,
            )
        )
        axes.text(
            x,
            -box_height / 2,
            _multiline(diagram.participants[name]),
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color=TEXT,
            zorder=3,
        )
    for step, top, height in rows:
        if step.kind == "note":
            left, right = _note_span(step, x_of)
            axes.add_patch(
                FancyBboxPatch(
                    (left, top - height),
                    right - left,
                    height,
                    boxstyle="square,pad=0",
                    fc=NOTE_FILL,
                    ec=NOTE_EDGE,
                    lw=0.8,
                    zorder=2,
                )
            )
            axes.text(
                (left + right) / 2,
                top - height / 2,
                _multiline(step.text),
                ha="center",
                va="center",
                fontsize=FONT_SIZE,
                color=TEXT,
                zorder=3,
                linespacing=1.35,
            )
            continue
        start, end = x_of[step.source], x_of[step.target]
        line_y = top - height + 4
        direction = 1 if end >= start else -1
        _curve(
            axes,
            [(start, line_y), (end, line_y)],
            (0, (4, 3)) if step.dashed else "solid",
            TEXT,
            "arrow" if step.head else "none",
            trim_end=1.0,
        )
        axes.text(
            (start + end) / 2,
            line_y + 3,
            _multiline(step.text),
            ha="center",
            va="bottom",
            fontsize=FONT_SIZE,
            color=TEXT,
            zorder=3,
            linespacing=1.35,
        )
        if step.number is not None:
            axes.add_patch(
                Circle((start + direction * 8, line_y), 7, fc=TEXT, ec="none", zorder=4)
            )
            axes.text(
                start + direction * 8,
                line_y,
                str(step.number),
                ha="center",
                va="center",
                fontsize=FONT_SIZE - 3,
                color="white",
                zorder=5,
            )
    return _svg(figure)


def _note_span(step: Step, x_of: dict[str, float]) -> tuple[float, float]:
    width = text_size(step.text)[0] + 16
    low, high = sorted((x_of[step.source], x_of[step.target]))
    if step.where == "left of":
        return low - 10 - width, low - 10
    if step.where == "right of":
        return high + 10, high + 10 + width
    middle = (low + high) / 2
    half = max(width / 2, (high - low) / 2 + 14)
    return middle - half, middle + half


# -- drawing ------------------------------------------------------------------------


def _multiline(text: str) -> str:
    return "\n".join(_lines(text))


def _canvas(left: float, right: float, bottom: float, top: float) -> tuple[Any, Any]:
    """A figure whose data units are points, one for one, white, without axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = right - left, top - bottom
    figure = plt.figure(figsize=(width / 72, height / 72), dpi=72)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(left, right)
    axes.set_ylim(bottom, top)
    axes.set_axis_off()
    figure.patch.set_facecolor("white")
    return figure, axes


def _curve(
    axes: Any,
    points: list[Point],
    style: Any,
    color: str,
    end: str,
    trim_end: float = 0.0,
) -> None:
    """A line through ``points``, rounded at its bends, ending in ``end``'s head."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path

    vertices, codes = [points[0]], [Path.MOVETO]
    for index in range(1, len(points) - 1):
        before, bend, after = points[index - 1], points[index], points[index + 1]
        vertices.append(((before[0] + bend[0]) / 2, (before[1] + bend[1]) / 2))
        codes.append(Path.LINETO)
        vertices += [bend, ((bend[0] + after[0]) / 2, (bend[1] + after[1]) / 2)]
        codes += [Path.CURVE3, Path.CURVE3]
    vertices.append(points[-1])
    codes.append(Path.LINETO)
    arrowstyle = "-|>" if end == "arrow" else "-"
    patch = FancyArrowPatch(
        path=Path(vertices, codes),
        arrowstyle=arrowstyle,
        mutation_scale=9,
        color=color,
        lw=1.0,
        linestyle=style,
        shrinkA=0,
        shrinkB=trim_end,
        zorder=1,
    )
    axes.add_patch(patch)
    if end == "cross":
        axes.plot(*points[-1], marker="x", markersize=6, mew=1.4, color=color, zorder=4)


def _svg(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    with plt.rc_context({"svg.hashsalt": "asyncbackups-docs", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    return buffer.getvalue()


def render(source: str) -> tuple[bytes, str]:
    """One Mermaid block's source as SVG, and its ``accTitle`` (empty when none)."""
    lines = source.strip("\n").split("\n")
    header = lines[0].split("%%", 1)[0].split()
    if header[:1] in (["flowchart"], ["graph"]):
        if header[1:2] not in (["TB"], ["TD"]):
            raise DiagramError("only top-to-bottom flowcharts (TB, TD) are drawn", 1)
        chart = parse_flowchart(lines[1:])
        return draw_flowchart(chart), chart.title
    if header == ["sequenceDiagram"]:
        diagram = parse_sequence(lines[1:])
        return draw_sequence(diagram), diagram.title
    raise DiagramError(f"not a diagram this hook draws: {lines[0]!r}", 1)


# -- the hook -----------------------------------------------------------------------


def _image_name(src_uri: str, number: int) -> str:
    path = PurePosixPath(src_uri)
    return f"{path.stem}-diagram-{number}.svg"


def on_files(files: Files, config: Any) -> Files:
    """Draw every page's diagrams and add them to the site beside their pages."""
    _images.clear()
    for page_file in list(files.documentation_pages()):
        source = page_file.content_string
        for number, match in enumerate(FENCE.finditer(source), 1):
            first_line = source.count("\n", 0, match.start()) + 1
            try:
                svg, title = render(match["body"])
            except DiagramError as error:
                where = f"{page_file.src_uri}:{first_line + error.line - 1}"
                raise PluginError(f"{where}: Mermaid diagram: {error}") from None
            name = _image_name(page_file.src_uri, number)
            folder = PurePosixPath(page_file.src_uri).parent
            files.append(File.generated(config, str(folder / name), content=svg))
            alt = (
                title or f"Diagram {number} of {PurePosixPath(page_file.src_uri).stem}"
            )
            _images.setdefault(page_file.src_uri, []).append((name, alt))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Replace each Mermaid block with its drawn image."""
    images = iter(_images.get(page.file.src_uri, []))

    def image(match: re.Match[str]) -> str:
        name, alt = next(images)
        return f"{match['indent']}![{alt}]({name}){{ .diagram }}"

    return FENCE.sub(image, markdown)
