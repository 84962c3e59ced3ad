"""Drone's temp volumes through real podman: a directory of the run shared by the steps
that mount it, removed when the run ends."""

from __future__ import annotations

from pathlib import Path

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


def host_volume_file(name: str, host: str) -> str:
    return f"""\
kind: pipeline
name: ci
steps:
  - name: read
    image: {name}
    commands: [cp /shared/data.txt seen.txt]
    volumes:
      - name: shared
        path: /shared
volumes:
  - name: shared
    host:
      path: {host}
"""


def test_a_host_volume_under_an_allowed_directory_is_mounted(
    repo: Repo,
    image: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    shared = tmp_path / "allowed" / "shared"
    shared.mkdir(parents=True)
    (shared / "data.txt").write_text("from the machine\n")
    repo.write(
        ".conveyor/config.toml", f'[containers]\nhost_volumes = ["{tmp_path / "allowed"}"]\n'
    )
    repo.write(".drone.yml", host_volume_file(image, str(shared)))
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err + result.out
    assert (repo.path / "seen.txt").read_text() == "from the machine\n"


def test_a_host_volume_the_project_does_not_allow_fails_the_step_with_a_sentence(
    repo: Repo,
    image: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "allowed").mkdir()
    (tmp_path / "secret").mkdir()
    repo.write(
        ".conveyor/config.toml", f'[containers]\nhost_volumes = ["{tmp_path / "allowed"}"]\n'
    )
    repo.write(".drone.yml", host_volume_file(image, f"{tmp_path}/allowed/../secret"))
    repo.commit()
    result = repo.run("run")
    assert result.code != 0
    assert "is not under a directory this project allows" in result.out + result.err
    assert not (repo.path / "seen.txt").exists()
