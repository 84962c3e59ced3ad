"""One datum of a Pachyderm job run: its files copied out of the store, its transform
tried ``datum_tries`` times (each in a fresh directory, bubblewrap or the image through
the container runtime: ``executors/pfs_sandbox``), ``err_cmd`` after the last failure,
its outputs stored as a tree. No records: the job (``pachyderm_jobs``) keeps the row.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError, UsageError
from conveyor.executors.pfs_lane import Lane, Lanes, lane_python, remove_tree
from conveyor.executors.pfs_sandbox import container_argv, datum_argv, datum_environment, limited
from conveyor.executors.sandbox import Sandbox
from conveyor.plan.pachyderm_datums import Datum
from conveyor.spec.pachyderm_model import PachydermPipeline
from conveyor.spec.pachyderm_quantity import whole_bytes
from conveyor.store.cas import ContentStore, TreeEntry

Files = dict[tuple[str, str], dict[str, TreeEntry]]
"""The files of each input by (input name, dataset)."""


@dataclass
class DatumWork:
    """One datum of the job and what became of it."""

    datum: Datum
    key: str
    row: dict[str, Any]
    tree: str | None = None
    outputs: list[TreeEntry] | None = None
    """The files of ``tree`` when this process stored it (the job merges them unread)."""


@dataclass(frozen=True)
class ImageRun:
    """Where datums of an image pipeline run: the runtime and the image's ID."""

    name: str
    id: str
    runtime: str
    kind: str
    cli: tuple[str, ...]
    network: str
    memory: int | None = None
    """``resource_limits``: bytes of memory and CPUs, the container's cgroup limits."""
    cpus: float | None = None

    def provenance(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id, "runtime": self.runtime}

    def argv(
        self,
        pfs: Path,
        cmd: tuple[str, ...],
        working_dir: str | None,
        env: dict[str, str],
        name: str,
    ) -> list[str]:
        return container_argv(
            self.cli,
            self.kind,
            self.id,
            pfs,
            cmd,
            working_dir,
            list(env),
            name,
            self.network,
            self.memory,
            self.cpus,
        )


@dataclass
class _Place:
    """Where one datum's tries run: a fresh directory each, then bwrap or the image."""

    store: ContentStore
    datum: Datum
    files: Files
    root: Path
    image: ImageRun | None
    env: dict[str, str]
    working_dir: str | None
    memory_limit: int | None = None
    out: Any = None
    lane: Lane | None = None

    def run(
        self, name: str, cmd: tuple[str, ...], stdin: tuple[str, ...], limit: float | None
    ) -> tuple[int, Path]:
        pfs = self.root / name / "pfs"
        if limit is not None and limit <= 0:
            self.out.write(b"--- the job's timeout has passed\n")
            return -1, pfs
        text = "".join(line + "\n" for line in stdin).encode()
        if self.lane is not None:  # its output comes through ``out`` itself: no flush
            lane = self.lane
            files, dirs = layout(self.datum, self.files)
            pfs = lane.prepare(files, dirs, partial(place_input, self.store))
            env = lane.environment(self.env)
            return lane.run(
                cmd, text, env, self.working_dir, self.memory_limit, limit, self.out
            ), pfs
        materialise(self.store, self.datum, self.files, pfs)
        working_dir = self.working_dir
        if self.image is None:
            argv = limited(datum_argv(pfs, cmd, working_dir), self.memory_limit)
            environment = datum_environment(self.env)
        else:
            label = f"conveyor-pach-{self.env['PACH_JOB_ID'][:12]}-{self.datum.id[:12]}-{name}"
            argv = self.image.argv(pfs, cmd, working_dir, self.env, label)
            environment = {**os.environ, **self.env}
        self.out.flush()
        return _run(argv, environment, text, self.out, limit, pfs.parent), pfs

    def done(self, pfs: Path) -> None:
        """A try's directory removed (a lane's is emptied by its next datum)."""
        if self.lane is None:
            remove_tree(pfs.parent)


def run_datum(
    store: ContentStore,
    spec: PachydermPipeline,
    job_id: str,
    item: DatumWork,
    files: Files,
    scratch: Path,
    logs: Path,
    image: ImageRun | None,
    deadline: float | None,
    lane: Lane | None = None,
) -> None:
    """Try the datum up to ``datum_tries`` times, each in a fresh directory (in
    ``lane``'s sandbox when given); after the last failure ``err_cmd`` (when given) may
    recover it: then it writes nothing."""
    row, datum = item.row, item.datum
    transform = spec.transform
    log = logs / f"{datum.id}.log"  # ``logs`` exists: the job made it
    row["log"] = str(log)
    env = {**dict(transform.env), **datum.env(), "PACH_JOB_ID": job_id}
    accepted = {0, *transform.accept_return_code}
    start = time.monotonic()
    place = _Place(
        store,
        datum,
        files,
        scratch / datum.id,
        image,
        env,
        transform.working_dir,
        memory_limit(spec) if image is None else None,  # an image's: its container's cgroup
        lane=lane,
    )
    with open(log, "wb") as out:
        place.out = out
        for attempt in range(1, max(1, spec.datum_tries) + 1):
            row["tries"] = attempt
            out.write(f"--- try {attempt} of {spec.datum_tries}\n".encode())
            limit = time_left(spec.datum_timeout, deadline)
            code, pfs = place.run(str(attempt), transform.cmd, transform.stdin, limit)
            if code in accepted:
                outputs: list[TreeEntry] = []
                try:
                    tree, _ = store.put_tree(pfs / "out", boundary=pfs / "out", files=outputs)
                except (ConveyorError, OSError) as exc:  # a link out of /pfs/out, a path too long
                    out.write(f"--- its outputs cannot be stored: {exc}\n".encode())
                    row["state"] = "failed"
                    break
                finally:
                    place.done(pfs)
                item.tree, item.outputs = tree, outputs
                row.update(state="success", tree=tree)
                break
            out.write(f"--- exit code {code}\n".encode())
            row["state"] = "failed"
            place.done(pfs)
            if limit is not None and limit <= 0:
                break  # the job's time is up: no further try
        if row["state"] == "failed" and transform.err_cmd:
            out.write(b"--- err_cmd\n")
            limit = time_left(spec.datum_timeout, deadline)
            code, pfs = place.run("err", transform.err_cmd, transform.err_stdin, limit)
            place.done(pfs)
            out.write(f"--- err_cmd exit code {code}\n".encode())
            if code == 0:
                row["state"] = "recovered"  # no outputs; the next job tries it again
    row["duration"] = round(time.monotonic() - start, 3)


def datum_lanes(root: Path) -> Lanes | None:
    """A job's datum lanes under ``root`` (a sandbox per worker slot:
    ``executors/pfs_lane``), or None where the sandbox cannot show the system's
    ``python3`` to the lanes' shim: a sandbox per datum then."""
    python = lane_python()
    if python is None:
        return None
    return Lanes(root, Sandbox().check(), python)


def memory_limit(spec: PachydermPipeline) -> int | None:
    """The bytes of memory a datum may use: ``resource_limits.memory``, enforced on the
    datum's process (RLIMIT_AS: ``prlimit`` here, ``ulimit -v`` on a batch worker) or,
    with an image, as its container's memory cgroup; ``resource_limits.cpu`` is a
    scheduling figure only (``step_resources``), except as an image's ``--cpus``."""
    return whole_bytes(spec.resource_limits.memory) if spec.resource_limits else None


def layout(datum: Datum, files: Files) -> tuple[dict[str, TreeEntry], list[str]]:
    """The datum's files below ``pfs`` (path -> its entry) and the input directories
    (one per input, even one that brings no file), as :func:`materialise` lays them out."""
    laid: dict[str, TreeEntry] = {}
    dirs = []
    for item in datum.inputs:
        inputs = files[(item.name, item.repo)]
        where = _component(item.name)
        dirs.append(where)
        for path, _digest in item.files:
            rel = path.lstrip("/")
            laid[f"{where}/{rel}"] = inputs[rel]
    return laid, dirs


def place_input(store: ContentStore, dest: Path, entry: TreeEntry) -> None:
    """One input file at ``dest`` (new) for a datum that sees it read-only: a hard link
    to the store's blob (no copy; the sandbox cannot write through it), or a copy for
    an executable file (a blob is not) or where no link can be made."""
    if not entry.executable:
        blob = store.local_path(entry.digest)
        if blob is not None:
            try:
                os.link(blob, dest)
                return
            except OSError:  # another filesystem, a store that forbids links
                pass
    store.checkout_file(entry.digest, dest, "copy", entry.executable)


def materialise(store: ContentStore, datum: Datum, files: Files, pfs: Path) -> None:
    """The datum's files copied out of the store below ``pfs``, and an empty ``out``."""
    (pfs / "out").mkdir(parents=True, exist_ok=True)
    for item in datum.inputs:
        inputs = files[(item.name, item.repo)]
        where = pfs / _component(item.name)
        where.mkdir(exist_ok=True)
        for path, _digest in item.files:
            entry = inputs[path.lstrip("/")]
            store.checkout_file(entry.digest, where / path.lstrip("/"), "copy", entry.executable)


def _component(name: str) -> str:
    """An input name as one directory under /pfs (the spec reader allows no other)."""
    if not name or "/" in name or "\0" in name or name in (".", "..", "out"):
        raise UsageError(f"the input name {name!r} cannot be a directory under /pfs")
    return name


def time_left(datum_timeout: float | None, deadline: float | None) -> float | None:
    """The seconds a try may take: the datum's timeout, cut by the job's."""
    left = None if deadline is None else deadline - time.monotonic()
    if datum_timeout is None:
        return left
    return datum_timeout if left is None else min(datum_timeout, left)


def _run(
    argv: list[str],
    env: dict[str, str],
    stdin: bytes,
    out: Any,
    timeout: float | None,
    cwd: Path | None = None,
) -> int:
    """``argv`` run in ``cwd``: the try's scratch directory, where a container runtime's
    monitor leaves its files (conmon writes ``oom`` to its working directory when the
    memory limit killed the datum), never the caller's directory."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
    )
    try:
        proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        out.write(f"--- timed out after {timeout} s\n".encode())
        return -1
    return proc.returncode
