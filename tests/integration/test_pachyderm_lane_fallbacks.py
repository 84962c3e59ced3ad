"""A datum lane's less common paths, simulated on a machine that takes the common ones:
a kernel without pidfd (the shim polls the datum's main process), a sandbox the shim
cannot clear and a lane directory the host cannot empty (the next datum gets a fresh
sandbox), and a system python3 without the shim's modules (a sandbox per datum). The
shim runs only inside bubblewrap here too: lanes start it, the test never does."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.executors import pfs_lane
from conveyor.executors.pfs_lane import Lane, _tail, lane_python
from conveyor.executors.sandbox import Sandbox
from conveyor.sdk.pachyderm_datum import datum_lanes
from conveyor.sdk.pachyderm_jobs import Pipelines
from conveyor.sdk.project import Project
from tests.integration.conftest import Repo
from tests.integration.server_support import need_bwrap

pytestmark = pytest.mark.integration

# prepended to the shim's text: pidfd_open fails as on a kernel before 5.3, and says so
NO_PIDFD = """\
import os, sys

def _no_pidfd(pid, flags=0):
    sys.stderr.write("pidfd refused\\n")
    sys.stderr.flush()
    raise OSError(38, "Function not implemented")

os.pidfd_open = _no_pidfd
"""


@pytest.fixture
def lane(tmp_path: Path) -> Iterator[Lane]:
    need_bwrap()
    python = lane_python()
    if python is None:
        pytest.skip("the system python3 cannot run the lane shim here")
    made = Lane(tmp_path / "lane", Sandbox().check(), python)
    yield made
    made.close()


def write(path: Path, text: str) -> None:
    path.write_text(text)


def datum(lane: Lane, script: str, stdin: bytes = b"") -> tuple[int, str, Path]:
    """One datum whose input ``/pfs/in/x`` holds ``hello``: its exit code and log."""
    pfs = lane.prepare({"in/x": "hello\n"}, ["in"], write)
    out = io.BytesIO()
    code = lane.run(("sh", "-c", script), stdin, lane.environment({}), None, None, 60, out)
    return code, out.getvalue().decode(), pfs


def test_without_pidfd_the_shim_polls_the_datum(
    lane: Lane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "shim.py"
    shim.write_text(NO_PIDFD + pfs_lane.SHIM.read_text())
    monkeypatch.setattr(pfs_lane, "SHIM", shim)
    # a background process holding the output pipe does not keep the datum going
    code, log, pfs = datum(
        lane, "tr a-z A-Z < /pfs/in/x > /pfs/out/x; echo said; sleep 300 & exit 3"
    )
    assert (code, log) == (3, "said\n")
    assert (pfs / "out" / "x").read_text() == "HELLO\n"
    code, log, _ = datum(lane, "cat; ps -e -o comm= | grep -c sleep", stdin=b"from stdin\n")
    assert (code, log) == (1, "from stdin\n0\n")  # grep -c found no sleep left: exit 1
    assert lane.starts == 1  # both in one sandbox
    assert b"pidfd refused" in _tail(lane.errors)


def test_a_sandbox_the_shim_cannot_clear_is_replaced(lane: Lane) -> None:
    code, log, _ = datum(lane, "touch /tmp/left; chmod 000 /tmp")
    assert code == 0  # the datum itself succeeded
    assert "could not be cleared" in log
    code, log, _ = datum(lane, "ls -A /tmp; cat /pfs/in/x")
    assert (code, log) == (0, "hello\n")  # a fresh sandbox: an empty /tmp
    assert lane.starts == 2


def test_a_lane_directory_the_host_cannot_empty_gets_a_fresh_sandbox(
    lane: Lane, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, first = datum(lane, "echo one > /pfs/out/one")
    assert code == 0 and lane.starts == 1
    monkeypatch.setattr(pfs_lane, "_empty", lambda folder, keep=None: False)
    code, log, pfs = datum(lane, "ls -A /pfs/out; cat /pfs/in/x")
    assert (code, log) == (0, "hello\n")
    assert lane.starts == 2 and pfs != first and not first.exists()


def test_a_python_without_the_shims_modules_gives_a_sandbox_per_datum(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_bwrap()
    monkeypatch.setattr(pfs_lane, "SHIM_MODULES", "import ctypes, no_such_module_of_the_shim")
    monkeypatch.setattr(pfs_lane, "_pythons", {})
    assert lane_python() is None
    assert datum_lanes(tmp_path / "lanes") is None
    project = repo.with_echo_pipeline()
    Repo.ok(project, "data", "create", "images")
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(f"{name}\n")
        Repo.ok(project, "data", "put", f"images:/{name}", str(tmp_path / name))
    spec = {
        "pipeline": {"name": "pids"},
        # in a sandbox of its own the command is PID 2 (bwrap's init is 1); in a lane
        # the shim is, and the datum comes later
        "transform": {"cmd": ["sh", "-c", 'echo $$ > /pfs/out/"${images##*/}"']},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    project.write("pids.json", json.dumps(spec))
    Repo.ok(project, "pipeline", "create", "-f", "pids.json")
    job = Pipelines(Project(project.path)).run("pids", parallel=1)
    assert job["state"] == "success"
    for name in ("a", "b", "c"):
        target = tmp_path / "got" / name
        Repo.ok(project, "data", "get", f"pids:/{name}", str(target))
        assert target.read_text() == "2\n"


def test_a_datum_starts_with_no_signal_ignored(lane: Lane) -> None:
    """The shim (Python) ignores SIGPIPE; its datums must not inherit that (nor an
    ignored SIGXFSZ), as subprocess would restore them."""
    code, log, _ = datum(lane, "grep SigIgn /proc/self/status; yes | head -n 1")
    ignored, rest = log.split("\n", 1)
    mask = int(ignored.removeprefix("SigIgn:\t"), 16)
    assert not mask & (1 << (signal.SIGPIPE - 1)) and not mask & (1 << (signal.SIGXFSZ - 1))
    assert (code, rest) == (0, "y\n")  # yes ended by SIGPIPE, not by a write error
