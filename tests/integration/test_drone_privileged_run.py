"""Drone's `privileged: true`: refused in one sentence unless the project allows it; where
it does, the step's container is privileged (real podman)."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo
from tests.integration.test_containers import image  # noqa: F401 (fixture, used by name)

pytestmark = pytest.mark.integration


def drone(base: str) -> str:
    return f"""\
kind: pipeline
name: ci
steps:
  - name: caps
    image: {base}
    privileged: true
    commands:
      - grep CapEff /proc/self/status > caps.txt
"""


def test_a_privileged_step_is_refused_unless_the_project_allows_it(
    repo: Repo,
    image: str,  # noqa: F811
) -> None:
    repo.write(".drone.yml", drone(image))
    repo.commit()
    assert repo.run("run").code == 1
    assert repo.steps()["ci.caps"]["error"] == (
        "step ci.caps asks for a privileged container, which this project does not allow; "
        "a lead may set `privileged = true` under [containers] in .conveyor/config.toml "
        "(a server never allows it)"
    )
    repo.write(".conveyor/config.toml", "[containers]\nprivileged = true\n")
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err + result.out
    caps = (repo.path / "caps.txt").read_text().split()[-1]
    assert int(caps, 16) > 0xA80425FB  # more than podman's default capabilities
