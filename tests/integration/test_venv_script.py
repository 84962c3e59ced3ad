"""``scripts/venv.sh`` is sourced by the scripts and by people in their own shells: it
keeps strict mode to itself, so a failing command afterwards does not end the shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "venv.sh"


def _shell(commands: str) -> subprocess.CompletedProcess[str]:
    """An interactive-like bash (no -e) that sources the script, then runs ``commands``;
    the venv is this test's interpreter's, so nothing is created or installed."""
    env = {**os.environ, "CONVEYOR_VENV": sys.prefix}
    script = f'source "{SCRIPT}"\n{commands}\n'
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sourcing_leaves_the_shell_s_options_as_they_were() -> None:
    done = _shell('false\necho "still here; options: $-; $(set -o | grep pipefail)"')
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("still here")
    flags = line.split("options: ")[1].split(";")[0]
    assert "e" not in flags and "u" not in flags
    assert line.split()[-1] == "off"  # pipefail


def test_a_failing_install_returns_its_code_and_the_shell_goes_on() -> None:
    # the venv's python replaced by a function that fails: install_conveyor stops there
    done = _shell('python() { return 3; }\ninstall_conveyor dev\necho "after: $?"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "after: 3"
