"""DAG helpers over step ids: order, cycles, selection, path overlap."""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence

from conveyor.spec.patterns import covers, is_glob, may_hold


class CycleError(ValueError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def topological_order(order: Sequence[str], needs: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm; among ready nodes the declaration order wins (stable plans)."""
    import heapq

    rank = {node: i for i, node in enumerate(order)}
    remaining = {node: len(set(needs.get(node, ()))) for node in order}
    dependents: dict[str, list[str]] = {node: [] for node in order}
    for node in order:
        for dep in set(needs.get(node, ())):
            dependents[dep].append(node)
    ready = [rank[n] for n in order if remaining[n] == 0]
    heapq.heapify(ready)
    result: list[str] = []
    while ready:
        node = order[heapq.heappop(ready)]
        result.append(node)
        for child in dependents[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                heapq.heappush(ready, rank[child])
    if len(result) != len(order):
        raise CycleError(find_cycle([n for n in order if remaining[n] > 0], needs))
    return result


def find_cycle(nodes: Sequence[str], needs: Mapping[str, Iterable[str]]) -> list[str]:
    """One cycle among ``nodes``, closed (first node repeated at the end)."""
    members = set(nodes)
    for start in nodes:
        path: list[str] = [start]
        seen = {start: 0}
        node = start
        while True:
            nxt = next((d for d in needs.get(node, ()) if d in members), None)
            if nxt is None:
                break
            if nxt in seen:
                cycle = [*path[seen[nxt] :], nxt]
                # read as "a needs b needs ... needs a": reverse into run order
                return cycle[::-1]
            seen[nxt] = len(path)
            path.append(nxt)
            node = nxt
    return list(nodes)


def upstream_closure(selected: Iterable[str], needs: Mapping[str, Iterable[str]]) -> set[str]:
    result: set[str] = set()
    stack = list(selected)
    while stack:
        node = stack.pop()
        if node in result:
            continue
        result.add(node)
        stack.extend(needs.get(node, ()))
    return result


def normalize(path: str) -> str:
    """A project-relative POSIX path without ``./`` or trailing slashes."""
    return posixpath.normpath(path.strip() or ".")


def overlaps(input_pattern: str, output_path: str) -> bool:
    """Whether reading ``input_pattern`` may read what writing ``output_path`` writes
    (the output may be a file or a directory: the plan cannot know which)."""
    pattern, output = normalize(input_pattern), normalize(output_path)
    if not is_glob(pattern):
        return _related(pattern, output)
    return covers(pattern, output) or may_hold(pattern, output)


def _related(a: str, b: str) -> bool:
    return a == b or "." in (a, b) or a.startswith(b + "/") or b.startswith(a + "/")


class PathIndex:
    """Outputs by path, answering "which outputs may this input read" without a full scan
    for plain paths (globs still test every output)."""

    def __init__(self, outputs: Mapping[str, str]) -> None:
        self._owner = {normalize(path): owner for path, owner in outputs.items()}
        self._sorted = sorted(self._owner)

    def overlapping(self, pattern: str) -> Iterator[tuple[str, str]]:
        """``(output, owner)`` pairs whose output ``pattern`` may read."""
        path = normalize(pattern)
        if is_glob(path) or path == ".":
            for output, owner in self._owner.items():
                if overlaps(path, output):
                    yield output, owner
            return
        probe, previous = path, ""  # the path itself and every directory above it
        while probe and probe != previous:  # an absolute path ends at "/", not ""
            if probe in self._owner:
                yield probe, self._owner[probe]
            probe, previous = posixpath.dirname(probe), probe
        prefix = path + "/"  # everything below it, a contiguous range once sorted
        start = bisect.bisect_left(self._sorted, prefix)
        for output in self._sorted[start:]:
            if not output.startswith(prefix):
                break
            yield output, self._owner[output]
