"""An artifact's lineage as a graph: the step runs that produced it and their inputs,
upstream, and the step runs that read it and what they wrote, downstream; across runs
and commits, each artifact traced by the CLI's own ``sdk.inspect.trace`` and the graph
laid out by the run page's layout (``dag.layout``).

Bounded: a few levels each way, a few producers and readers per artifact, and at most
``MAX_NODES`` nodes (the page says when it cut); only runs the caller may see."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import NotFoundError
from conveyor.metadata.repository import DatasetRepository, MetadataRepository
from conveyor.sdk.datasets.lineage import MAX_SCANNED, input_commits
from conveyor.sdk.inspect import trace
from conveyor.server.web.dag import Drawing, layout
from conveyor.store.cas import ContentStore

MAX_NODES = 60
DEPTH = 3  # levels of step runs upstream and downstream of the artifact
PER_ARTIFACT = 6  # producers, and readers, drawn per artifact


@dataclass(frozen=True)
class LineageNode:
    id: str
    kind: str
    """``artifact``, ``step`` (a step run) or ``commit`` (a dataset commit: ``path`` is
    its dataset, ``digest`` its id)."""
    path: str = ""
    digest: str = ""
    run: str = ""
    step: str = ""


@dataclass
class LineageGraph:
    focus: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    needs: dict[str, set[str]] = field(default_factory=dict)
    cut: bool = False
    """Some of the lineage was left out (bounds)."""
    produced_by: list[dict[str, Any]] = field(default_factory=list)
    consumed_by: list[dict[str, Any]] = field(default_factory=list)
    drawing: Drawing | None = None

    def add(self, node: LineageNode) -> bool:
        """Whether ``node`` is in the graph (False: the graph is full)."""
        if node.id in self.nodes:
            return True
        if len(self.nodes) >= MAX_NODES:
            self.cut = True
            return False
        self.nodes[node.id] = node
        return True

    def edge(self, source: str, target: str) -> None:
        self.needs.setdefault(target, set()).add(source)


def artifact_id(path: str, digest: str) -> str:
    return f"a:{path}@{digest[:16]}"


def step_id(run: str, step: str) -> str:
    return f"s:{run}/{step}"


def lineage_graph(
    records: MetadataRepository,
    store: ContentStore,
    digest: str,
    path: str,
    visible: Callable[[str], bool],
) -> LineageGraph:
    """The graph around the artifact ``path`` with content ``digest``; NotFoundError when
    no run the caller sees produced or read it."""
    try:
        focus = trace(records, store, digest, path)
    except NotFoundError:
        focus = {"produced_by": [], "consumed_by": []}
    graph = LineageGraph(artifact_id(path, digest))
    graph.produced_by = [p for p in focus["produced_by"] if visible(p["run"])]
    readers = [
        {"run": r, "step": s, "path": i.path} for r, s, i in records.consumers(digest) if visible(r)
    ]
    graph.consumed_by = readers
    if not graph.produced_by and not graph.consumed_by:
        raise NotFoundError(f"no run of this project produced or read {path} ({digest[:12]})")
    graph.add(LineageNode(graph.focus, "artifact", path, digest))
    _upstream(records, store, graph, path, digest, visible, graph.produced_by)
    _downstream(records, graph, path, digest, visible, readers)
    order = list(graph.nodes)
    graph.drawing = layout(order, {k: v & set(order) for k, v in graph.needs.items()})
    return graph


def _upstream(
    records: MetadataRepository,
    store: ContentStore,
    graph: LineageGraph,
    path: str,
    digest: str,
    visible: Callable[[str], bool],
    first: list[dict[str, Any]],
) -> None:
    todo: deque[tuple[str, str, int, list[dict[str, Any]] | None]] = deque(
        [(path, digest, 0, first)]
    )
    while todo:
        path, digest, depth, producers = todo.popleft()
        if producers is None:
            try:
                found = trace(records, store, digest, path)["produced_by"]
            except NotFoundError:
                found = []  # a source file: committed, not produced
            producers = [p for p in found if visible(p["run"])]
        if len(producers) > PER_ARTIFACT:
            graph.cut = True
        target = artifact_id(path, digest)
        for producer in producers[:PER_ARTIFACT]:
            node = step_id(producer["run"], producer["step"])
            if not graph.add(LineageNode(node, "step", run=producer["run"], step=producer["step"])):
                return
            graph.edge(node, target)
            for read in producer.get("datasets", []):
                source = commit_id(read["dataset"], read["commit"])
                if not graph.add(
                    LineageNode(source, "commit", path=read["dataset"], digest=read["commit"])
                ):
                    return
                graph.edge(source, node)
            if depth + 1 >= DEPTH:
                graph.cut = graph.cut or bool(producer["inputs"])
                continue
            for item in producer["inputs"]:
                source = artifact_id(item["path"], item["digest"])
                if source in graph.nodes:
                    graph.edge(source, node)
                    continue
                if not graph.add(LineageNode(source, "artifact", item["path"], item["digest"])):
                    return
                graph.edge(source, node)
                todo.append((item["path"], item["digest"], depth + 1, None))


def _downstream(
    records: MetadataRepository,
    graph: LineageGraph,
    path: str,
    digest: str,
    visible: Callable[[str], bool],
    first: list[dict[str, Any]],
) -> None:
    todo: deque[tuple[str, str, int, list[dict[str, Any]] | None]] = deque(
        [(path, digest, 0, first)]
    )
    while todo:
        path, digest, depth, readers = todo.popleft()
        if readers is None:
            readers = [
                {"run": r, "step": s, "path": i.path}
                for r, s, i in records.consumers(digest)
                if visible(r)
            ]
        if len(readers) > PER_ARTIFACT:
            graph.cut = True
        source = artifact_id(path, digest)
        for reader in readers[:PER_ARTIFACT]:
            node = step_id(reader["run"], reader["step"])
            known = node in graph.nodes
            if not graph.add(LineageNode(node, "step", run=reader["run"], step=reader["step"])):
                return
            graph.edge(source, node)
            if known:
                continue
            if depth + 1 >= DEPTH:
                graph.cut = True
                continue
            record = next(
                (s for s in records.step_runs(reader["run"]) if s.step_id == reader["step"]), None
            )
            for output in record.outputs if record else []:
                out = artifact_id(output.path, output.digest)
                if not graph.add(LineageNode(out, "artifact", output.path, output.digest)):
                    return
                graph.edge(node, out)
                todo.append((output.path, output.digest, depth + 1, None))


def commit_id(dataset: str, commit: str) -> str:
    return f"d:{dataset}@{commit}"


def commit_graph(records: DatasetRepository, dataset: str, commit: str) -> LineageGraph:
    """A dataset commit's provenance: the input commits a pipeline's job made it from
    (their own inputs, upstream, ``DEPTH`` levels), and the commits jobs made from it
    (downstream, one level; the newest ``MAX_SCANNED`` commits of the datasets are
    searched)."""
    graph = LineageGraph(commit_id(dataset, commit))
    graph.add(LineageNode(graph.focus, "commit", path=dataset, digest=commit))
    todo: deque[tuple[str, str, int]] = deque([(dataset, commit, 0)])
    while todo:
        name, at, depth = todo.popleft()
        found = records.dataset_commit(name, at)
        for source in input_commits(found.provenance if found else None):
            node = commit_id(*source)
            if node not in graph.nodes:
                if depth + 1 > DEPTH:
                    graph.cut = True
                    continue
                if not graph.add(LineageNode(node, "commit", path=source[0], digest=source[1])):
                    break
                todo.append((source[0], source[1], depth + 1))
            graph.edge(node, commit_id(name, at))
    scanned = 0
    for other in records.list_datasets():
        for made in records.dataset_commits(other.name):
            scanned += 1
            if scanned > MAX_SCANNED:
                graph.cut = True
                break
            if (dataset, commit) in input_commits(made.provenance):
                node = commit_id(other.name, made.id)
                if graph.add(LineageNode(node, "commit", path=other.name, digest=made.id)):
                    graph.edge(graph.focus, node)
    order = list(graph.nodes)
    graph.drawing = layout(order, {k: v & set(order) for k, v in graph.needs.items()})
    return graph
