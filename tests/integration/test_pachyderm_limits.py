"""``resource_limits.memory`` enforced on the datum's process with real bubblewrap: locally
through ``prlimit`` (a datum allocating past the limit fails, one under it succeeds, in
the same job), and on a batch worker through the datum's shell text (``ulimit -v``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conveyor.executors.pfs_sandbox import datum_shell
from conveyor.metadata.lite import open_lite
from conveyor.sdk.datasets.refs import parse_ref
from conveyor.sdk.pachyderm_jobs import JobFailed, Pipelines
from conveyor.sdk.project import Project
from conveyor.store.cas import ContentStore
from tests.engines import engine_missing
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration
GROW = (
    "import sys; b = bytearray(int(open(sys.argv[1]).read()) * 2**20); "
    "open('/pfs/out/' + sys.argv[1].rsplit('/', 1)[1], 'w').write('ok')"
)


def _grow(
    tmp_path: Path, sizes: dict[str, str], transform: dict[str, Any], limits: dict[str, Any]
) -> tuple[Pipelines, dict[str, Any], str]:
    """A job of pipeline ``grow`` over a dataset of one file per datum (each holding a
    size in MiB), which must fail on ``large``: its pipelines, job and error."""
    records = open_lite(tmp_path / ".conveyor" / "conveyor.db")
    project = Project(tmp_path, records=records, store=ContentStore(tmp_path / "store"))
    pipelines = Pipelines(project)
    pipelines.datasets.create("sizes", "")
    for name, mib in sizes.items():
        target = parse_ref(f"sizes:/{name}")
        pipelines.datasets.put(target, ["-"], stdin=io.BytesIO(mib.encode()))
    spec = {
        "pipeline": {"name": "grow"},
        "transform": transform,
        "input": {"pfs": {"repo": "sizes", "glob": "/*", "name": "in"}},
        "datum_tries": 1,
        "resource_limits": limits,
    }
    path = tmp_path / "grow.json"
    path.write_text(json.dumps(spec))
    pipelines.create(path, "grow.json", False, False)
    with pytest.raises(JobFailed, match=r"/pfs/in/large") as failed:
        pipelines.run("grow", executor="local")
    job = pipelines.state.job(pipelines.jobs("grow")[0]["id"])
    states = {row["files"][0]: row["state"] for row in job["datums"]}
    assert states == {"/pfs/in/small": "success", "/pfs/in/large": "failed"}, job
    return pipelines, job, str(failed.value)


def test_a_datum_past_its_memory_limit_fails_and_one_under_it_succeeds(tmp_path: Path) -> None:
    need_bwrap()
    transform = {"cmd": ["sh", "-c", f'python3 -c "{GROW}" /pfs/in/*']}
    limits = {"memory": "200Mi", "cpu": 1}
    _, _, error = _grow(tmp_path, {"small": "8", "large": "400"}, transform, limits)
    assert "MemoryError" in error


def test_a_batch_workers_datum_gets_the_limit(tmp_path: Path) -> None:
    need_bwrap()
    text = datum_shell(["sh", "-c", "ulimit -v > /pfs/out/limit"], None, {}, [], False, 300 * 2**20)
    done = subprocess.run(["/bin/sh", "-e", "-c", text], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pfs" / "out" / "limit").read_text().strip() == str(300 * 1024)


def test_an_image_datum_gets_the_memory_and_cpu_limits_from_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """podman's ``--memory`` (no swap beyond it) and ``--cpus``: a datum allocating past
    the limit is killed, one under it succeeds; the container sees the CPU quota."""
    image = os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE")
    if not image or shutil.which("podman") is None:
        engine_missing("podman", "podman is not configured for tests: scripts/engines/podman.sh")
    caller = tmp_path / "caller"  # the caller's directory gets nothing of the runtime's
    caller.mkdir()
    monkeypatch.chdir(caller)
    # dd's buffer is one block: it holds bs bytes at once
    script = (
        'for f in /pfs/in/*; do dd if=/dev/zero of=/dev/null bs="$(cat "$f")M" count=1 '
        '&& echo ok > "/pfs/out/$(basename "$f")" || exit 1; done; '
        "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
        "> /pfs/out/cpu-$PACH_DATUM_ID 2>/dev/null; true"
    )
    transform = {"cmd": ["sh", "-c", script], "image": image}
    limits = {"memory": "64Mi", "cpu": 0.5}
    pipelines, job, _ = _grow(tmp_path, {"small": "1", "large": "200"}, transform, limits)
    project = pipelines.project
    small = next(r for r in job["datums"] if r["files"][0] == "/pfs/in/small")
    tree = project.store.read_tree(small["tree"])
    cpu = next(e for e in tree if e.path.startswith("cpu-"))
    assert project.store.read_bytes(cpu.digest).split()[0] == b"50000", cpu  # half a core
    assert list(caller.iterdir()) == []  # conmon's oom file stayed in the try's scratch
