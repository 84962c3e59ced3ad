"""The run graph's layout: every step placed once, no two boxes overlapping, an edge per
dependency from its producer's bottom to its consumer's top."""

from __future__ import annotations

from conveyor.server.web.dag import MAX_EDGES, MAX_NODES, NODE_H, NODE_W, layout


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < NODE_W and abs(a[1] - b[1]) < NODE_H


def test_a_diamond_and_a_lone_step() -> None:
    needs = {"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}
    drawing = layout(["a", "b", "c", "d", "e"], needs)
    assert drawing is not None
    at = {n.id: (n.x, n.y) for n in drawing.nodes}
    assert sorted(at) == ["a", "b", "c", "d", "e"]
    assert at["a"][1] < at["b"][1] < at["d"][1] and at["b"][1] == at["c"][1]
    boxes = list(at.values())
    assert not any(_overlap(p, q) for i, p in enumerate(boxes) for q in boxes[i + 1 :])
    assert {(e.source, e.target) for e in drawing.edges} == {
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "d"),
    }
    for edge in drawing.edges:
        assert edge.points[0][1] == at[edge.source][1] + NODE_H
        assert edge.points[-1][1] == at[edge.target][1]
    for x, y in at.values():
        assert 0 <= x <= drawing.width - NODE_W and 0 <= y <= drawing.height - NODE_H


def test_unknown_and_self_dependencies_draw_no_edge() -> None:
    drawing = layout(["a"], {"a": {"a", "gone"}})
    assert drawing is not None and drawing.edges == ()


def test_too_many_steps_are_not_drawn() -> None:
    steps = [f"s{i}" for i in range(MAX_NODES + 1)]
    assert layout(steps, {}) is None
    assert layout([], {}) is None
    chain = [f"s{i}" for i in range(MAX_NODES)]
    dense = {s: set(chain[:i][-3:]) for i, s in enumerate(chain)}
    assert sum(map(len, dense.values())) > MAX_EDGES
    assert layout(chain, dense) is None
