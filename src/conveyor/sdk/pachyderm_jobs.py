"""Pachyderm pipelines run locally over the project's datasets.

``Pipelines.create``/``update`` record a spec version (``pachyderm_state``) and create
the output dataset named after the pipeline. ``Pipelines.run`` is one job: the inputs'
branch heads are listed, the datums made by the pure code (``plan/pachyderm_datums``),
each datum that needs it run in bubblewrap, or in its image through the container
runtime (``executors/pfs_sandbox``), with its files
at ``/pfs/<input>`` and ``/pfs/out`` writable, and the outputs of all datums merged into
ONE new commit of the output dataset, written only at the end (a job killed midway
leaves no commit).

Incremental: each output commit's provenance names a store blob, the datum map
(datum key -> the store tree of that datum's outputs). The next job reuses the tree of
every datum whose key (files + transform + salt) is in the previous commit's map, and
of every datum that succeeded in an unfinished or failed job since (a rerun retries only
the failed ones). Datums that are gone simply are not merged: their outputs leave the
commit. ``--reprocess``, ``update --reprocess`` and ``reprocess_spec: every_job`` run
every datum again. Datums run on a local thread pool (``-j``) when the project's
executor (or ``--executor``) is local; on any other, each datum is a step of that
executor (``pachyderm_remote``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ConcurrencyError, ConveyorError, SpecError, UsageError
from conveyor.executors.pfs_lane import remove_tree
from conveyor.plan.pachyderm_datums import datums, transform_digest
from conveyor.sdk.datasets import trees
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH, DatasetRef, check_name
from conveyor.sdk.datasets.service import Datasets
from conveyor.sdk.pachyderm_datum import (
    DatumWork,
    Files,
    ImageRun,
    datum_lanes,
    memory_limit,
    run_datum,
)
from conveyor.sdk.pachyderm_state import PachydermState, SpecVersion, new_version
from conveyor.sdk.project import Project
from conveyor.spec.pachyderm import PachydermFile, load_specs, parse_specs
from conveyor.spec.pachyderm_model import CronInput, PachydermPipeline, PfsInput, leaves
from conveyor.store.cas import TreeEntry

MAX_SPEC = 1024 * 1024  # bytes of a spec file
LOG_TAIL = 20  # lines of a failed datum's log in the job's error


class JobFailed(ConveyorError):
    """A datum failed (after its tries): the job made no commit."""


class Pipelines:
    def __init__(
        self, project: Project, datasets: Datasets | None = None, ticks: bool = False
    ) -> None:
        """``datasets``: the project's own, or a server's scoped to one of its projects;
        ``ticks``: cron inputs get their ticks (a server's clock), so they may run."""
        self.project = project
        self.ticks = ticks
        self.state = PachydermState(project.state_dir / "pachyderm")
        self.datasets = datasets if datasets is not None else Datasets(project)

    # -- specs ----------------------------------------------------------------
    def create(self, spec_file: Path, shown: str, update: bool, reprocess: bool) -> list[str]:
        """Record every pipeline of the file as a new version (``update``: of an existing
        pipeline; else a new one); returns their names."""
        specs = load_specs(spec_file, shown)
        if spec_file.stat().st_size > MAX_SPEC:
            raise UsageError(f"{shown} is larger than {MAX_SPEC // 1024} KiB")
        text = spec_file.read_text(encoding="utf-8")
        return self._record(specs, text, shown, _looks_json(spec_file, text), update, reprocess)

    def create_text(
        self, text: str, shown: str, is_json: bool, update: bool, reprocess: bool
    ) -> list[str]:
        """:meth:`create` from a spec file's text (a server's request body)."""
        if len(text.encode()) > MAX_SPEC:
            raise UsageError(f"{shown} is larger than {MAX_SPEC // 1024} KiB")
        specs = parse_specs(text, shown, is_json=is_json)
        return self._record(specs, text, shown, is_json, update, reprocess)

    def _record(
        self,
        specs: PachydermFile,
        text: str,
        shown: str,
        is_json: bool,
        update: bool,
        reprocess: bool,
    ) -> list[str]:
        produced = {p.name for p in specs.pipelines}
        for spec in specs.pipelines:
            check_name(spec.name, "pipeline")
            if update and not self.state.exists(spec.name):
                raise UsageError(
                    f"there is no pipeline {spec.name} to update; create it with "
                    "`conveyor pipeline create -f SPEC`"
                )
            if not update and self.state.exists(spec.name):
                raise UsageError(
                    f"pipeline {spec.name} already exists; change it with "
                    "`conveyor pipeline update -f SPEC`"
                )
            self._check_inputs(spec, produced)
        self.project.ensure_state_dir()
        for spec in specs.pipelines:
            number = len(self.state.versions(spec.name)) + 1 if update else 1
            version = new_version(text, shown, is_json, spec.name, number)
            if reprocess:
                version = dataclasses.replace(version, reprocess=True)
            self.state.add_version(version)
            if self.datasets.records.get_dataset(spec.name) is None:
                self.datasets.create(spec.name, f"output of pipeline {spec.name}")
            for leaf in leaves(spec.input):  # a cron input's ticks, as Pachyderm makes them
                if isinstance(leaf, CronInput) and not self.datasets.records.get_dataset(leaf.repo):
                    self.datasets.create(leaf.repo, f"ticks of {spec.name}'s cron {leaf.name}")
        return [p.name for p in specs.pipelines]

    def _check_inputs(self, spec: PachydermPipeline, produced: set[str]) -> None:
        for leaf in leaves(spec.input):
            if not isinstance(leaf, PfsInput):
                continue
            if leaf.repo in produced or self.datasets.records.get_dataset(leaf.repo) is not None:
                continue
            raise SpecError(
                f"input {leaf.name!r} reads the dataset {leaf.repo!r}, which does not exist; "
                f"create it with `conveyor data create {leaf.repo}` (or create the pipeline "
                "that writes it first)",
                leaf.position,
            )

    def summaries(self) -> list[dict[str, Any]]:
        rows = []
        for name in self.state.names():
            latest = self.state.versions(name)[-1]
            jobs = self.state.jobs(name)
            rows.append(
                {
                    "name": name,
                    "version": latest.version,
                    "inputs": [leaf.repo for leaf in leaves(latest.spec().input)],
                    "created_at": latest.created_at,
                    "last_job": _job_summary(jobs[0]) if jobs else None,
                }
            )
        return rows

    def inspect(self, name: str) -> dict[str, Any]:
        from conveyor.spec.pachyderm import input_tree

        versions = self.state.versions(name)
        latest = versions[-1]
        spec = latest.spec()
        return {
            "name": name,
            "version": latest.version,
            "spec_digest": latest.digest,
            "versions": [
                {"version": v.version, "created_at": v.created_at, "file": v.display}
                for v in versions
            ],
            "image": spec.transform.image,
            "cmd": list(spec.transform.cmd),
            "stdin": list(spec.transform.stdin),
            "input": input_tree(spec),
            "output": {"dataset": name, "branch": spec.output_branch},
            "datum_tries": spec.datum_tries,
            "reprocess_spec": spec.reprocess_spec,
            "jobs": [_job_summary(j) for j in self.state.jobs(name)[:10]],
        }

    def undo(self, name: str, number: int) -> int:
        """Take back version ``number`` of ``name`` just recorded (a CI flow whose later
        spec failed): the pipeline returns to its previous version, or, when that was its
        first, goes with its output dataset if still empty. Returns the version now
        (0: none)."""
        left = self.state.drop_version(name, number)
        records = self.datasets.records
        new = left == 0 and records.get_dataset(name) is not None
        if new and not any(records.dataset_branches(name).values()):  # nothing committed
            self.datasets.delete(name)
        return left

    def delete(self, name: str, keep_dataset: bool) -> None:
        self.state.delete(name)
        if not keep_dataset and self.datasets.records.get_dataset(name) is not None:
            self.datasets.delete(name)

    def downstream(self, dataset: str, branch: str) -> list[str]:
        """The pipelines a new commit on ``dataset@branch`` makes run, in the order they
        run: those reading it, then those reading their outputs, each after every one of
        them whose output it reads (a DAG: specs were checked for cycles when each file
        was read; a cycle across files is run once, in name order)."""
        return self._dag_order([], {(dataset, branch)})

    def with_downstream(self, names: list[str]) -> list[str]:
        """``names`` and every pipeline downstream of them (reading their outputs, then
        those reading these ...), in DAG order: what a new commit of each of ``names``'
        outputs would run, as one pass."""
        return self._dag_order(names, set())

    def _dag_order(self, names: list[str], changed: set[tuple[str, str]]) -> list[str]:
        reads: dict[str, set[tuple[str, str]]] = {}
        writes: dict[str, tuple[str, str]] = {}
        for name in self.state.names():
            spec = self.state.versions(name)[-1].spec()
            reads[name] = {
                (leaf.repo, leaf.branch if isinstance(leaf, PfsInput) else DEFAULT_BRANCH)
                for leaf in leaves(spec.input)
            }
            writes[name] = (name, spec.output_branch)
        chosen = {n for n in names if n in writes}
        changed = changed | {writes[n] for n in chosen}
        while grown := {n for n in reads if n not in chosen and reads[n] & changed}:
            chosen |= grown
            changed |= {writes[n] for n in grown}
        order: list[str] = []
        while len(order) < len(chosen):
            done = {writes[n] for n in order}
            feeding = {writes[n] for n in chosen} - done  # outputs still to be made
            ready = sorted(n for n in chosen - set(order) if not reads[n] & feeding)
            order += ready or sorted(chosen - set(order))  # a cycle: each once
        return order

    # -- jobs -----------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        return _alive(self.state.job(job_id))

    def jobs(self, pipeline: str | None) -> list[dict[str, Any]]:
        if pipeline is not None:
            self.state.versions(pipeline)
        return [_alive(j) for j in self.state.jobs(pipeline)]

    def run(
        self,
        name: str,
        parallel: int | None = None,
        reprocess: bool = False,
        progress: Callable[[dict[str, Any]], None] | None = None,
        executor: str | None = None,
        ci: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run one job of pipeline ``name`` on ``executor`` (default: the project's);
        returns the job's record (raises JobFailed when a datum failed, UsageError when
        outputs clash: no commit then). ``ci``: the image build that led to the job
        (``pachyderm_ci``), kept in its provenance."""
        versions = self.state.versions(name)
        version = versions[-1]
        spec = version.spec()
        _check_runnable(spec, self.ticks)
        where = _executor_name(spec, executor, self.project.settings.executor)
        image = self._image(spec)
        commits, listings, files = self._inputs(spec)
        found = datums(spec.input, listings, key=_listing_key)
        # the image's ID keys datums too: a new image behind the same tag runs them again
        transform = transform_digest(spec.transform) + (f":{image.id}" if image else "")
        job_id = uuid.uuid4().hex
        output = self._output_head(spec)
        forced = reprocess or spec.reprocess_spec == "every_job" or self._reprocess(version)
        known = {} if forced else self._known(name, output)
        work = []
        for datum in found:
            key = datum.key(transform, spec.salt)
            row = {
                "id": datum.id,
                "key": key,
                "state": "pending",
                "files": [path for path, _ in datum.files()],
                "duration": None,
                "tries": 0,
                "tree": None,
                "log": None,
            }
            item = DatumWork(datum, key, row)
            tree = known.get(key)
            kept = self._intact(tree) if tree is not None else None
            if kept is not None:
                item.tree, item.outputs = tree, kept
                row.update(state="skipped", tree=tree)
            work.append(item)
        job: dict[str, Any] = {
            "id": job_id,
            "pipeline": name,
            "spec_version": version.version,
            "spec_digest": version.digest,
            "state": "running",
            "started_at": time.time(),
            "finished_at": None,
            "pid": os.getpid(),
            "inputs": commits,
            "output_commit": None,
            "error": None,
            "reprocess": forced,
            "image": image.provenance() if image else None,
            "executor": where,
            "ci": ci,
            "datums": [w.row for w in work],
        }
        self.state.save_job(job)
        deadline = time.monotonic() + spec.job_timeout if spec.job_timeout else None
        run = _JobRun(spec, job_id, files, image, deadline, progress)
        todo = [w for w in work if w.tree is None]
        # gc refuses to run until the job ends: the datums' outputs are in the store
        # before the commit (or a later job) refers to them
        with self.project.data_lock(exclusive=False):
            try:
                self._run_datums(run, where, parallel, todo)
            except ConveyorError as exc:  # the executor failed: no commit
                return self._fail(job, exc)
            failed = [w for w in work if w.row["state"] == "failed"]
            if failed:
                return self._fail(job, JobFailed(_failure(failed[0], len(failed))))
            try:
                merged = self._merge(work)
                job["output_commit"] = self._commit(spec, version, job, work, merged, output)
            except ConveyorError as exc:  # clashing outputs, a head that moved meanwhile
                return self._fail(job, exc)
        job.update(state="success", finished_at=time.time())
        self.state.save_job(job)
        return job

    def _run_datums(
        self, run: _JobRun, where: str, parallel: int | None, todo: list[DatumWork]
    ) -> None:
        """Every datum of ``todo``: on a local thread pool, or as steps of executor
        ``where`` (``-j``, else that executor's own parallelism)."""
        scratch = self.project.state_dir / "tmp" / f"pach-{run.job_id}"
        logs = self.state.root / "logs" / run.job_id
        with self.state.finished_datums(run.job_id) as record:
            self._run_datums_in(run, where, parallel, todo, scratch, logs, record)

    def _run_datums_in(
        self,
        run: _JobRun,
        where: str,
        parallel: int | None,
        todo: list[DatumWork],
        scratch: Path,
        logs: Path,
        record: Callable[[dict[str, Any]], None],
    ) -> None:
        lock = threading.Lock()
        store = self.project.store

        def ended(item: DatumWork) -> None:
            with lock:
                record(item.row)
                if run.progress is not None:
                    run.progress(item.row)

        local = where == "local" and run.image is None and todo
        lanes = datum_lanes(scratch / "lanes") if local else None

        def one(item: DatumWork) -> None:
            lane = lanes.take() if lanes is not None else None
            try:
                run_datum(
                    store,
                    run.spec,
                    run.job_id,
                    item,
                    run.files,
                    scratch,
                    logs,
                    run.image,
                    run.deadline,
                    lane,
                )
            finally:
                if lanes is not None and lane is not None:
                    lanes.give(lane)
            ended(item)

        if where == "local":
            logs.mkdir(parents=True, exist_ok=True)
            try:
                with ThreadPoolExecutor(max_workers=max(1, parallel or 1)) as pool:
                    list(pool.map(one, todo))
            finally:
                if lanes is not None:
                    lanes.close()
                remove_tree(scratch)
            return
        if not todo:
            return
        from conveyor.executors.registry import load_executor
        from conveyor.sdk.pachyderm_remote import RemoteDatums

        executor = load_executor(where, self.project.settings.executors.get(where))
        try:
            remote = RemoteDatums(
                executor, store, run.spec, run.job_id, run.files, scratch, logs, run.deadline
            )
            remote.run(todo, parallel or executor.default_parallelism, ended)
        finally:
            executor.close()

    def _fail(self, job: dict[str, Any], error: ConveyorError) -> dict[str, Any]:
        job.update(state="failed", finished_at=time.time(), error=str(error))
        self.state.save_job(job)
        raise error

    def _inputs(
        self, spec: PachydermPipeline
    ) -> tuple[dict[str, Any], dict[str, list[tuple[str, str]]], Files]:
        """Each input's commit (its branch head, or the commit it pins), listing and files."""
        commits: dict[str, Any] = {}
        listings: dict[str, list[tuple[str, str]]] = {}
        files: Files = {}
        for leaf in leaves(spec.input):
            key = _listing_key(leaf)
            branch = leaf.branch if isinstance(leaf, PfsInput) else DEFAULT_BRANCH
            ref = leaf.commit or branch
            heads = self.datasets.branches(leaf.repo)
            if leaf.commit is None and heads.get(branch) is None:
                commits[leaf.name] = {"dataset": leaf.repo, "branch": branch, "commit": None}
                listings[key], files[(leaf.name, leaf.repo)] = [], {}
                continue
            resolved = self.datasets.resolve(DatasetRef(leaf.repo, ref))
            commits[leaf.name] = {
                "dataset": leaf.repo,
                "branch": branch,
                "commit": resolved.commit.id,
            }
            files[(leaf.name, leaf.repo)] = resolved.files
            listings[key] = [(path, entry.digest) for path, entry in resolved.files.items()]
        return commits, listings, files

    def _image(self, spec: PachydermPipeline) -> ImageRun | None:
        """The container runtime and the image's ID, when the transform names an image."""
        if not spec.transform.image:
            return None
        from conveyor.execute.images import find_runtime

        settings = self.project.settings.containers
        runtime = find_runtime(settings.runtime, network=settings.network)
        if runtime is None:
            raise UsageError(
                f"pipeline {spec.name} runs in the image {spec.transform.image}, but no "
                "container runtime is configured here: install podman (scripts/engines/"
                "podman.sh install), or remove transform.image to run on the host in bubblewrap"
            )
        image_id = runtime.image_id(spec.transform.image, None, docker_names=True)
        limits = spec.resource_limits
        return ImageRun(
            spec.transform.image,
            image_id,
            runtime.label,
            runtime.kind,
            runtime.cli,
            runtime.network,
            memory_limit(spec),
            limits.cpu if limits and limits.cpu else None,
        )

    def _output_head(self, spec: PachydermPipeline) -> str | None:
        return self.datasets.branches(spec.name).get(spec.output_branch)

    def _reprocess(self, version: SpecVersion) -> bool:
        """``update --reprocess``: every datum of the version's first successful job."""
        if not version.reprocess:
            return False
        return not any(
            j["state"] == "success" and j["spec_version"] == version.version
            for j in self.state.jobs(version.name)
        )

    def _known(self, name: str, output: str | None) -> dict[str, str]:
        """Datum key -> output tree: the previous output commit's map, then the datums
        that succeeded in jobs after it (failed or interrupted ones)."""
        known: dict[str, str] = {}
        if output is not None:
            commit = self.datasets.records.dataset_commit(name, output)
            digest = (commit.provenance or {}).get("datums") if commit else None
            if isinstance(digest, str) and self.project.store.has(digest):
                loaded = json.loads(self.project.store.read_bytes(digest))
                known.update({str(k): str(v) for k, v in loaded.items()})
        for job in reversed(self.state.jobs(name)):  # oldest first: later ones win
            if job["state"] == "success":
                continue
            for row in job["datums"]:
                if row["state"] == "success" and row.get("tree"):
                    known[row["key"]] = row["tree"]
        return known

    def _intact(self, tree: str) -> list[TreeEntry] | None:
        """The tree's files when it and they are all in the store (the merge reuses them)."""
        store = self.project.store
        if not store.has(tree):
            return None
        files = store.read_tree(tree)
        return files if all(store.has(e.digest) for e in files) else None

    def _merge(self, work: list[DatumWork]) -> dict[str, TreeEntry]:
        """The outputs of all datums as one tree; two datums writing one path with
        different content is an error (and so is a path both a file and a directory)."""
        merged: dict[str, TreeEntry] = {}
        writer: dict[str, str] = {}
        store = self.project.store
        for item in sorted(work, key=lambda w: w.datum.id):
            if item.tree is None:  # recovered by err_cmd: it writes nothing
                continue
            stored = item.outputs if item.outputs is not None else store.read_tree(item.tree)
            for entry in stored:
                seen = merged.get(entry.path)
                if seen is not None and (seen.digest, seen.executable) != (
                    entry.digest,
                    entry.executable,
                ):
                    raise UsageError(
                        f"datums {writer[entry.path][:12]} and {item.datum.id[:12]} both write "
                        f"/pfs/out/{entry.path} with different content; the job made no commit"
                    )
                merged[entry.path] = entry
                writer.setdefault(entry.path, item.datum.id)
        clash = trees.conflicts({}, merged)
        if clash is not None:
            raise UsageError(
                f"/pfs/out/{clash} is written both as a file and as a directory by the "
                "datums; the job made no commit"
            )
        return merged

    def _commit(
        self,
        spec: PachydermPipeline,
        version: SpecVersion,
        job: dict[str, Any],
        work: list[DatumWork],
        merged: dict[str, TreeEntry],
        parent: str | None,
    ) -> str:
        store = self.project.store
        datum_map = {w.key: w.tree for w in work if w.tree is not None}
        blob = store.put_bytes(json.dumps(datum_map, sort_keys=True).encode())
        provenance = {
            "pipeline": spec.name,
            "job": job["id"],
            "spec_version": version.version,
            "spec_digest": version.digest,
            "inputs": job["inputs"],
            "git_commit": _git_commit(self.project.root),
            "image": job["image"],
            "datums": blob,
            **({"ci": job["ci"]} if job.get("ci") else {}),
        }
        message = f"job {job['id'][:12]} of pipeline {spec.name}"
        commit = self.datasets.commit_files(
            spec.name, spec.output_branch, parent, merged, message, provenance
        )
        if commit is None:
            raise ConcurrencyError(
                f"{spec.name}@{spec.output_branch} moved during the job; run the job again"
            )
        return commit.id


@dataclass(frozen=True)
class _JobRun:
    """What every datum of one job shares."""

    spec: PachydermPipeline
    job_id: str
    files: Files
    image: ImageRun | None
    deadline: float | None
    progress: Callable[[dict[str, Any]], None] | None


def _executor_name(spec: PachydermPipeline, given: str | None, project: str) -> str:
    """Where the datums run: ``given`` (``--executor``), else the project's executor.
    Only the local executor starts a datum's image: an image pipeline runs locally when
    the project's executor is another, and is refused when ``given`` names another."""
    from conveyor.executors.registry import BUILTIN, available

    if given is None and spec.transform.image:
        return "local"
    name = project if given is None else given
    if name not in BUILTIN and name not in available():  # plugins: entry points
        raise UsageError(f"unknown executor {name!r}; available: {', '.join(available())}")
    if name != "local" and spec.transform.image:
        raise UsageError(
            f"pipeline {spec.name} runs in the image {spec.transform.image}, which only "
            f"the local executor can start for datums, not {name}; run it with "
            "--executor local, or remove transform.image to run its datums on the "
            f"{name} workers in bubblewrap"
        )
    return name


def _listing_key(leaf: PfsInput | CronInput) -> str:
    if isinstance(leaf, PfsInput):
        return f"{leaf.repo}\0{leaf.commit or leaf.branch}"
    return f"{leaf.repo}\0{leaf.commit or DEFAULT_BRANCH}"


def _check_runnable(spec: PachydermPipeline, ticks: bool) -> None:
    for leaf in leaves(spec.input):
        if isinstance(leaf, CronInput) and not ticks:
            raise UsageError(
                f"pipeline {spec.name} has the cron input {leaf.name}; cron inputs tick on "
                "the server's clock (`pipeline create -f SPEC --remote`), not locally"
            )
        if leaf.name == "out":
            raise UsageError(f"pipeline {spec.name}: an input cannot be named out")


def _failure(first: DatumWork, count: int) -> str:
    log = Path(first.row["log"])
    tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:] if log.is_file() else []
    shown = "\n".join(f"  {line}" for line in tail)
    return (
        f"{count} datum(s) failed, the job made no commit; datum {first.datum.id[:12]} "
        f"({', '.join(first.row['files'][:3])}) after {first.row['tries']} tries, its log "
        f"{log}:\n{shown}"
    )


def _git_commit(root: Path) -> str | None:
    from conveyor.errors import ProjectError
    from conveyor.vcs.git import git_state

    try:
        return git_state(root).commit
    except ProjectError:
        return None


def _looks_json(path: Path, text: str) -> bool:
    if path.name.endswith(".json"):
        return True
    if path.name.endswith((".yaml", ".yml")):
        return False
    return text.lstrip()[:1] in ("{", "[")


def _alive(job: dict[str, Any]) -> dict[str, Any]:
    """A job recorded as running whose process is gone was interrupted."""
    if job["state"] == "running" and not _pid_alive(job.get("pid")):
        return {**job, "state": "interrupted"}
    return job


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _job_summary(job: dict[str, Any]) -> dict[str, Any]:
    job = _alive(job)
    counts: dict[str, int] = {}
    for row in job["datums"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return {
        "id": job["id"],
        "pipeline": job["pipeline"],
        "state": job["state"],
        "spec_version": job["spec_version"],
        "started_at": job["started_at"],
        "finished_at": job["finished_at"],
        "output_commit": job["output_commit"],
        "datums": counts,
    }
