"""Parameter sweeps: one run per combination of parameter values, then the runs compared.

The values come from the pipeline's ``sweep:`` block and from the command line (``-p
lr=0.1,0.01``: a name given there replaces the block's list). Each combination is an
ordinary run with those parameters, so each has its own cache entries: sweeping again
serves every run from the cache, and adding a value runs only the new combinations.

One run at a time (``run_sweep``), the runs share the project's workspace. Several at
once (``run_sweep_parallel``), each runs the committed pipeline in a worktree of its own
(their outputs have the same paths), with the project's records and store, as a
server's workers do: the outputs land in the store, not in the workspace.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conveyor.domain.types import ParamValue
from conveyor.errors import ParamError, UsageError
from conveyor.metadata.records import RunRecord
from conveyor.sdk.project import Project
from conveyor.sdk.running import RunHooks, RunRequest, start_run
from conveyor.sdk.tracking import Comparison, compare

MAX_COMBINATIONS = 256
"""A sweep larger than this is refused (a typo in a list should not queue a thousand runs)."""

Axes = dict[str, list[ParamValue]]


def split_values(given: Mapping[str, str]) -> Axes:
    """``-p name=a,b,c`` values as lists (text: the compiler reads each as its type)."""
    axes: Axes = {}
    for name, text in given.items():
        values = [v.strip() for v in text.split(",")]
        if any(v == "" for v in values):
            raise ParamError(f"--param {name}={text}: an empty value in the sweep's list")
        axes[name] = list(dict.fromkeys(values))
    return axes


def combinations(axes: Mapping[str, Sequence[ParamValue]]) -> list[dict[str, ParamValue]]:
    """Every combination, the first name varying slowest (the order the runs start in)."""
    if not axes:
        raise ParamError(
            "nothing to sweep: give values as -p NAME=A,B or a `sweep:` block in the pipeline"
        )
    names = list(axes)
    count = 1
    for name in names:
        if not axes[name]:
            raise ParamError(f"the sweep gives no value for {name}")
        count *= len(axes[name])
    if count > MAX_COMBINATIONS:
        raise ParamError(
            f"the sweep makes {count} runs; at most {MAX_COMBINATIONS} (fewer values per name)"
        )
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


@dataclass(frozen=True)
class Sweep:
    """The runs of a sweep, in the order of their combinations, and their comparison."""

    combinations: list[dict[str, ParamValue]]
    runs: list[RunRecord]
    comparison: Comparison

    @property
    def succeeded(self) -> bool:
        return all(str(run.status) == "succeeded" for run in self.runs)

    def values(self) -> list[dict[str, Any]]:
        """Each run's swept values as the run recorded them (typed by their declaration)."""
        return [
            {name: (run.params or {}).get(name, value) for name, value in combination.items()}
            for run, combination in zip(self.runs, self.combinations, strict=True)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {"run": run.id, "status": str(run.status), "params": values}
                for run, values in zip(self.runs, self.values(), strict=True)
            ],
            "comparison": self.comparison.to_json(),
        }


def run_sweep_parallel(
    project: Project,
    base: RunRequest,
    axes: Mapping[str, Sequence[ParamValue]],
    hooks: Callable[[], RunHooks],
    jobs: int,
    on_start: Callable[[int, int, Mapping[str, ParamValue]], None] | None = None,
) -> Sweep:
    """Up to ``jobs`` runs at once, each in a worktree of HEAD's commit; the working
    tree must hold no uncommitted change (the worktrees would not see it)."""
    from concurrent.futures import ThreadPoolExecutor

    from conveyor.vcs.git import git_state

    chosen = combinations(axes)
    state = git_state(project.root)
    if state.commit is None or state.dirty:
        raise UsageError(
            "runs of a sweep in parallel run the committed pipeline, each in a worktree; "
            "commit your changes first, or sweep with -j 1 (one run after another, here)"
        )
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="conveyor-sweep") as pool:
        futures = []
        for index, combination in enumerate(chosen):
            if on_start is not None:
                on_start(index, len(chosen), combination)
            request = replace(base, params={**base.params, **combination})
            futures.append(
                pool.submit(_run_in_worktree, project, state.toplevel, state.commit, request, hooks)
            )
        runs = [future.result() for future in futures]
    return Sweep(chosen, runs, compare(project, runs))


def _run_in_worktree(
    project: Project, top: Path, commit: str, request: RunRequest, hooks: Callable[[], RunHooks]
) -> RunRecord:
    import shutil
    import tempfile

    from conveyor.sdk.checkout import Checkout, run_checkout
    from conveyor.vcs.git import add_worktree, remove_worktree

    place = Path(tempfile.mkdtemp(prefix="conveyor-sweep-"))
    tree = place / "tree"
    add_worktree(top, commit, tree)
    try:
        inside = tree / project.root.relative_to(top)
        checkout = Checkout(inside, commit, place / "state")
        return run_checkout(
            checkout, project.settings, project.store, project.records, request, hooks()
        )
    finally:
        remove_worktree(top, tree)
        shutil.rmtree(place, ignore_errors=True)


def run_sweep(
    project: Project,
    base: RunRequest,
    axes: Mapping[str, Sequence[ParamValue]],
    hooks: Callable[[], RunHooks],
    on_start: Callable[[int, int, Mapping[str, ParamValue]], None] | None = None,
) -> Sweep:
    """One run per combination (a failed run does not stop the others, a cancelled one
    ends the sweep), then compared; ``hooks`` makes each run's hooks (a reporter counts
    one run's steps)."""
    chosen = combinations(axes)
    runs: list[RunRecord] = []
    for index, combination in enumerate(chosen):
        if on_start is not None:
            on_start(index, len(chosen), combination)
        request = replace(base, params={**base.params, **combination})
        runs.append(start_run(project, request, hooks()))
        if str(runs[-1].status) == "cancelled":
            break
    return Sweep(chosen[: len(runs)], runs, compare(project, runs))
