"""The tools under test: how to find them, run them, reset them and time them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_REF_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "conveyor"
    / "oracles"
    / "bench-ref"
)
"""Where snakemake and dvc live: beside the other oracle tools, never in Conveyor's venv."""
REF_PACKAGES = ("snakemake", "dvc")
INSTALL_TIMEOUT = 300.0  # seconds: past this the reference tools are skipped


class ToolFailed(RuntimeError):
    """A tool exited non-zero; the message names its log."""


class ToolTimedOut(RuntimeError):
    """A tool ran longer than the time limit and was stopped."""

    def __init__(self, name: str, limit: float) -> None:
        super().__init__(f"{name} ran longer than {limit:g}s and was stopped")
        self.limit = limit


@dataclass(frozen=True)
class Tool:
    """One pipeline runner: its command line and the state a clean run starts without."""

    name: str
    executable: str
    state: tuple[str, ...] = ()
    """Paths relative to the tool directory removed for a from-scratch run."""
    repo_state: tuple[str, ...] = ()
    """Paths relative to the repository root removed for a from-scratch run."""
    env: Mapping[str, str] = field(default_factory=dict)

    def argv(self, jobs: int) -> list[str]:
        if self.name == "conveyor":
            return [self.executable, "run", "-j", str(jobs)]
        if self.name == "make":
            return [self.executable, f"-j{jobs}"]
        if self.name == "snakemake":
            return [self.executable, "--cores", str(jobs)]
        if self.name == "dvc":
            return [self.executable, "repro"]  # dvc repro runs stages one at a time
        raise ValueError(self.name)

    def reset(self, tool_dir: Path, repo: Path) -> None:
        for rel in self.state:
            _remove(tool_dir / rel)
        for rel in self.repo_state:
            _remove(repo / rel)

    def run(self, tool_dir: Path, jobs: int, log: Path, timeout: float | None = None) -> float:
        """Run once in ``tool_dir``; returns the wall time in seconds."""
        env = {**os.environ, **self.env}
        with open(log, "ab") as out:
            out.write(f"\n=== {' '.join(self.argv(jobs))} (in {tool_dir})\n".encode())
            out.flush()
            start = time.perf_counter()
            proc = subprocess.Popen(
                self.argv(jobs),
                cwd=tool_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so a timeout stops it all
            )
            # a blocking wait, with the time limit on a timer: Popen.wait(timeout) polls
            # with sleeps of up to 50 ms, which would round every figure up by as much
            expired = threading.Event()

            def stop() -> None:
                expired.set()
                _kill_group(proc.pid)

            timer = threading.Timer(timeout, stop) if timeout else None
            if timer is not None:
                timer.start()
            try:
                code = proc.wait()
            except BaseException:  # Ctrl-C: do not leave the tool running
                _kill_group(proc.pid)
                proc.wait()
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            elapsed = time.perf_counter() - start
        if expired.is_set():
            raise ToolTimedOut(self.name, timeout or 0)
        if code != 0:
            raise ToolFailed(f"{self.name} exited with {code} in {tool_dir}; see {log}")
        return elapsed


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def find_conveyor(override: str | None) -> str:
    found = override or shutil.which("conveyor")
    if not found:
        sys.exit("conveyor: not found on PATH (install the package or pass --conveyor PATH)")
    return str(Path(found).resolve())


def conveyor_tool(executable: str) -> Tool:
    return Tool("conveyor", executable, state=(".conveyor",))


def make_tool() -> Tool | None:
    found = shutil.which("make")
    return Tool("make", found) if found else None


def snakemake_tool(executable: str) -> Tool:
    return Tool("snakemake", executable, state=(".snakemake",))


def dvc_tool(executable: str) -> Tool:
    return Tool(
        "dvc",
        executable,
        state=("dvc.lock",),
        repo_state=(".dvc/cache", ".dvc/tmp"),
        env={"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"},
    )


@dataclass
class References:
    """Where snakemake and dvc are (None: skipped) and what happened finding them."""

    snakemake: str | None = None
    dvc: str | None = None
    notes: list[str] = field(default_factory=list)


def _in_venv(venv_dir: Path, name: str) -> str | None:
    path = venv_dir / "bin" / name
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def find_references(venv_dir: Path, install: bool, wanted: Sequence[str], log: Path) -> References:
    """Find snakemake and dvc in ``venv_dir`` or on PATH; else try to install them there.

    The install goes into its own virtual environment, never the one Conveyor runs in,
    and gives up after a few minutes.
    """
    refs = References()
    wanted = [name for name in REF_PACKAGES if name in wanted]
    if not wanted:
        return refs

    def locate() -> None:
        for name in wanted:
            setattr(refs, name, _in_venv(venv_dir, name) or shutil.which(name))

    locate()
    missing = [name for name in wanted if getattr(refs, name) is None]
    if missing and install:
        print(f"installing {', '.join(missing)} into {venv_dir} (log: {log}) ...", flush=True)
        start = time.monotonic()
        try:
            if not (venv_dir / "bin" / "python").exists():
                venv.create(venv_dir, with_pip=True)
            with open(log, "ab") as out:
                subprocess.run(
                    [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "-q", *missing],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT,
                    check=True,
                )
            refs.notes.append(
                f"installed {', '.join(missing)} into {venv_dir} in {time.monotonic() - start:.0f}s"
            )
        except (OSError, subprocess.SubprocessError) as exc:
            refs.notes.append(f"could not install {', '.join(missing)} ({exc}); see {log}")
        locate()
    for name in wanted:
        path = getattr(refs, name)
        if path is None:
            refs.notes.append(f"{name}: not available, skipped")
        else:
            refs.notes.append(f"{name}: {path} ({tool_version(path)})")
    return refs


def tool_version(executable: str) -> str:
    try:
        proc = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "version unknown"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else "version unknown"
