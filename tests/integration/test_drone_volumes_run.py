"""Drone's temp volumes through real podman: a directory of the run shared by the steps
that mount it, removed when the run ends."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo
from tests.integration.test_containers import image  # noqa: F401 (fixture, used by name)

pytestmark = pytest.mark.integration


def test_steps_share_a_temp_volume_and_it_is_gone_after_the_run(repo: Repo, image: str) -> None:  # noqa: F811
    repo.write(
        ".drone.yml",
        f"""\
kind: pipeline
name: ci
steps:
  - name: fill
    image: {image}
    commands: [echo cached > /cache/file]
    volumes:
      - name: cache
        path: /cache
  - name: read
    image: {image}
    commands: [cp /cache/file seen.txt]
    volumes:
      - name: cache
        path: /cache
volumes:
  - name: cache
    temp: {{}}
""",
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err + result.out
    assert (repo.path / "seen.txt").read_text() == "cached\n"
    run_id = repo.show()["id"]
    assert not (repo.path / ".conveyor" / "volumes" / run_id).exists()
