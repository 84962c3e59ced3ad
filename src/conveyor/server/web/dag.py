"""A run's DAG as server-side SVG: the plan's steps and their dependencies (declared
``needs`` and those inferred from paths), laid out by grandalf's Sugiyama layout.

Every name is escaped by Jinja2's autoescape in ``dag.svg``; this module only
computes coordinates."""

from __future__ import annotations

import functools
from dataclasses import dataclass

NODE_W, NODE_H = 180, 34
GAP_X, GAP_Y = 24, 44
# above these the layout costs more than a second on a small machine (grandalf is pure
# Python); the steps table still lists every step
MAX_NODES = 200
MAX_EDGES = 400
MARGIN = 12


@dataclass(frozen=True)
class Node:
    id: str
    x: float
    y: float


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Drawing:
    width: float
    height: float
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    node_w: int = NODE_W
    node_h: int = NODE_H


class _View:
    def __init__(self) -> None:
        self.w, self.h = NODE_W, NODE_H
        self.xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = points


def layout(steps: list[str], needs: dict[str, set[str]]) -> Drawing | None:
    """Coordinates of every step and dependency edge; None when there are too many.

    Weakly connected parts are laid out one by one and placed side by side. The same
    graph is laid out once per process (a run page is opened again and again)."""
    pairs = frozenset((s, t) for t in steps for s in needs.get(t, ()))
    return _layout(tuple(steps), pairs)


@functools.lru_cache(maxsize=64)
def _layout(steps: tuple[str, ...], pairs: frozenset[tuple[str, str]]) -> Drawing | None:
    if not steps or len(steps) > MAX_NODES or len(pairs) > MAX_EDGES:
        return None
    from grandalf.graphs import Edge as GEdge
    from grandalf.graphs import Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    vertices = {s: Vertex(s) for s in steps}
    for vertex in vertices.values():
        vertex.view = _View()
    edges = []
    for source, target in sorted(pairs):
        if source in vertices and source != target:
            edge = GEdge(vertices[source], vertices[target])
            edge.view = _EdgeView()
            edges.append(edge)
    graph = Graph(list(vertices.values()), edges)
    nodes: list[Node] = []
    lines: list[Edge] = []
    left, height = 0.0, 0.0
    for part in graph.C:
        sugiyama = SugiyamaLayout(part)
        sugiyama.xspace, sugiyama.yspace = GAP_X, GAP_Y
        sugiyama.init_all()
        sugiyama.draw()
        xs = [v.view.xy[0] for v in part.sV]
        ys = [v.view.xy[1] for v in part.sV]
        dx = left - min(xs) + NODE_W / 2 + MARGIN
        dy = -min(ys) + NODE_H / 2 + MARGIN
        for vertex in part.sV:
            x, y = vertex.view.xy
            nodes.append(Node(vertex.data, x + dx - NODE_W / 2, y + dy - NODE_H / 2))
        for edge in part.sE:
            a, b = edge.v[0].view.xy, edge.v[1].view.xy
            points = edge.view.points or [a, b]
            moved = tuple((px + dx, py + dy) for px, py in points)
            # from the bottom of the source to the top of the target
            start = (a[0] + dx, a[1] + dy + NODE_H / 2)
            end = (b[0] + dx, b[1] + dy - NODE_H / 2)
            lines.append(Edge(edge.v[0].data, edge.v[1].data, (start, *moved[1:-1], end)))
        left += max(xs) - min(xs) + NODE_W + GAP_X
        height = max(height, max(ys) - min(ys) + NODE_H + 2 * MARGIN)
    width = left + 2 * MARGIN - GAP_X
    return Drawing(width, height, tuple(nodes), tuple(lines))
