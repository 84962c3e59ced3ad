"""A datum sent to a batch executor is shell text (``datum_shell``): the spec's command,
variables, working directory and input names must reach bubblewrap as the same strings,
never as shell code. The text runs here under /bin/sh with a stand-in ``bwrap`` that
writes the arguments it got; a payload that ran would leave its mark file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conveyor.executors.pfs_sandbox import NO_BWRAP, datum_shell

PAYLOADS = ["$(touch MARK)", "`touch MARK`", "'; touch MARK; '", '"; touch MARK; "', "a\nb"]


def _run(tmp_path: Path, text: str, with_bwrap: bool = True) -> subprocess.CompletedProcess[bytes]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mkdir").symlink_to("/bin/mkdir")
    if with_bwrap:
        fake = bin_dir / "bwrap"
        fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGS"\n')
        fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {"PATH": str(bin_dir), "ARGS": str(tmp_path / "args")}
    return subprocess.run(["/bin/sh", "-e", "-c", text], cwd=work, env=env, capture_output=True)


def test_spec_values_reach_bwrap_unchanged_and_never_run(tmp_path: Path) -> None:
    env = {f"V{i}": p for i, p in enumerate(PAYLOADS)}
    text = datum_shell(PAYLOADS, PAYLOADS[0], env, ["in-put"], stdin=False)
    done = _run(tmp_path, text)
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "args").read_bytes().split(b"\0")[:-1]
    argv = [a.decode() for a in args]
    cut = argv.index("--")
    assert argv[cut + 1 :] == PAYLOADS
    assert argv[argv.index("--chdir") + 1] == PAYLOADS[0]
    pairs = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv[:cut]) if a == "--setenv"}
    assert all(pairs[k] == v for k, v in env.items())
    assert "--clearenv" in argv  # the worker's own variables stay out
    assert not any(tmp_path.rglob("MARK"))
    work = tmp_path / "work"
    assert (work / "pfs" / "out").is_dir() and (work / "pfs" / "in-put").is_dir()
    binds = [argv[i + 1 : i + 3] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == [[f"{os.path.realpath(work)}/pfs/out", "/pfs/out"]] or binds == [
        [f"{work}/pfs/out", "/pfs/out"]
    ]


def test_a_worker_without_bwrap_ends_the_datum_with_the_reason(tmp_path: Path) -> None:
    text = datum_shell(["true"], None, {}, [], stdin=False)
    done = _run(tmp_path, text, with_bwrap=False)
    assert done.returncode == NO_BWRAP
    assert b"this worker has no bubblewrap" in done.stderr


def test_an_executor_name_is_one_of_the_registrys_or_refused(tmp_path: Path) -> None:
    from conveyor.errors import UsageError
    from conveyor.sdk.pachyderm_jobs import _executor_name
    from conveyor.spec.pachyderm_model import PachydermPipeline, PfsInput, Transform

    spec = PachydermPipeline("p", Transform(cmd=("true",)), PfsInput("i", "i", "/*"))
    for name in ("../../x", "conveyor.executors.local:LocalExecutor", "--help", ""):
        try:
            _executor_name(spec, name, "local")
        except UsageError as exc:
            assert "unknown executor" in str(exc)
        else:
            raise AssertionError(f"{name!r} was accepted")
    assert _executor_name(spec, "dask", "local") == "dask"
    assert _executor_name(spec, None, "dask") == "dask"
