"""The run graph's layout: every step placed once, no two boxes overlapping, an edge per
dependency from its producer's bottom to its consumer's top."""

from __future__ import annotations

from typing import Any

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


def test_the_timeline_starts_at_the_first_step_and_skips_cache_hits() -> None:
    from conveyor.domain.states import StepStatus
    from conveyor.metadata.records import StepRunRecord
    from conveyor.server.web.views import timeline

    def record(step: str, start: float | None, end: float | None, cached: bool = False) -> Any:
        return StepRunRecord(
            "r", step, "a", StepStatus.SUCCEEDED, cached=cached, started_at=start, ended_at=end
        )

    bars, span = timeline(
        [
            record("a.b", 104.0, 110.0),
            record("a.a", 100.0, 103.0),
            record("a.c", None, None),
            record("a.hit", 101.0, 101.5, cached=True),
        ]
    )
    assert [(b.step_id, b.start, b.length) for b in bars] == [("a.a", 0.0, 3.0), ("a.b", 4.0, 6.0)]
    assert span == 10.0 and bars[0].label == "a.a: 3s"
    assert timeline([]) == ([], 0.0)


def test_a_run_too_big_to_draw_by_step_is_drawn_by_job() -> None:
    from conveyor.server.web.views import RunPlan, graph, job_status

    steps = [f"j{j}.s{i}" for j in range(3) for i in range(MAX_NODES // 2)]
    needs = {f"j{j}.s0": {f"j{j - 1}.s9"} for j in range(1, 3)}
    needs["j2.s5"] = {"j2.s4"}  # inside a job: no edge between jobs
    drawn = graph(RunPlan(steps, needs, {}))
    assert drawn is not None and drawn.by_job
    assert sorted(n.id for n in drawn.drawing.nodes) == ["j0", "j1", "j2"]
    assert {(e.source, e.target) for e in drawn.drawing.edges} == {("j0", "j1"), ("j1", "j2")}
    assert drawn.sizes == {"j0": 100, "j1": 100, "j2": 100}
    small = graph(RunPlan(["a.x", "a.y"], {"a.y": {"a.x"}}, {}))
    assert small is not None and not small.by_job and small.sizes == {"a.x": 1, "a.y": 1}
    assert job_status(["succeeded", "failed", "running"]) == "failed"
    assert job_status(["succeeded", "pending"]) == "running"
    assert job_status(["succeeded", "skipped"]) == "succeeded"
    assert job_status(["pending", "pending"]) == "pending"
    assert job_status(["succeeded", "not-run"]) == "not-run"


def test_matrix_and_datum_fan_outs_are_drawn_as_one_node_with_their_count() -> None:
    from conveyor.server.web.views import RunPlan, fanout_of, graph, group_statuses

    assert fanout_of("train[lr=0.1,depth=3].fit") == "train.fit"
    assert fanout_of("prep.clean[a.csv]") == "prep.clean"
    assert fanout_of("m[x=[1, 2]].s[d]") == "m.s"  # a value with brackets of its own
    assert fanout_of("plain.step") == "plain.step"
    steps = [
        "prep.load",
        *(f"prep.clean[{n}.csv]" for n in "abc"),
        *(f"train[lr={lr}].fit" for lr in (0.1, 0.01)),
        "report.make",
    ]
    needs: dict[str, set[str]] = {f"prep.clean[{n}.csv]": {"prep.load"} for n in "abc"}
    needs.update(
        {f"train[lr={lr}].fit": {f"prep.clean[{n}.csv]" for n in "abc"} for lr in (0.1, 0.01)}
    )
    needs["report.make"] = {"train[lr=0.1].fit", "train[lr=0.01].fit"}
    drawn = graph(RunPlan(steps, needs, {}))
    assert drawn is not None and drawn.grouped and not drawn.by_job
    assert [n.id for n in drawn.drawing.nodes] == [
        "prep.load",
        "prep.clean",
        "train.fit",
        "report.make",
    ]
    assert drawn.sizes == {"prep.load": 1, "prep.clean": 3, "train.fit": 2, "report.make": 1}
    edges = {(e.source, e.target) for e in drawn.drawing.edges}
    assert edges == {
        ("prep.load", "prep.clean"),
        ("prep.clean", "train.fit"),
        ("train.fit", "report.make"),
    }
    statuses = {
        "prep.clean[a.csv]": "succeeded",
        "prep.clean[b.csv]": "failed",
        "prep.load": "succeeded",
    }
    assert group_statuses(statuses) == {"prep.clean": "failed"}  # only fan-outs are groups
    no_fanout = graph(RunPlan(["a.x", "a.y"], {"a.y": {"a.x"}}, {}))
    assert no_fanout is not None and not no_fanout.grouped
