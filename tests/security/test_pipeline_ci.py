"""`conveyor pipeline ci`: the image name of a spec, the registry of the settings and the
tag reach the container runtime as data. A value that is not an image reference, a
registry address or a tag is one sentence and exit 2, before anything is built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.errors import ProjectError
from conveyor.sdk.settings import Settings

MARK = "/tmp/conveyor-ci-pwned"


def project(tmp_path: Path, image: str, config: str = "") -> Path:
    root = tmp_path / "repo"
    (root / ".conveyor").mkdir(parents=True)
    (root / ".conveyor" / "config.toml").write_text(config)
    (root / "Dockerfile").write_text("FROM local/conveyor-base\n")
    spec = {
        "pipeline": {"name": "edges"},
        "transform": {"image": image, "cmd": ["sh"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    (root / "edges.json").write_text(json.dumps(spec))
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "x"],
        cwd=root,
        check=True,
    )
    return root


def conveyor(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from conveyor.cli.main import main; main()", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": os.environ.get("PATH", "")},
        check=False,
    )


@pytest.mark.parametrize(
    "image",
    [
        f"x; touch {MARK}",
        f"$(touch {MARK})",
        "--help",
        "edges\n--privileged",
    ],
)
def test_a_spec_image_that_is_not_a_reference_is_refused(tmp_path: Path, image: str) -> None:
    root = project(tmp_path, image)
    done = conveyor(root, "pipeline", "ci", "-f", "edges.json")
    assert done.returncode == 2, done.stderr
    assert "is not an image reference" in done.stderr and "Traceback" not in done.stderr
    assert not Path(MARK).exists()
    assert not (root / ".conveyor" / "pachyderm" / "ci").exists()  # nothing built


@pytest.mark.parametrize("tag", ["--rm", f"x;touch {MARK}", "a b"])
def test_a_tag_that_is_not_a_tag_is_refused(tmp_path: Path, tag: str) -> None:
    root = project(tmp_path, "org/edges:1")
    done = conveyor(root, "pipeline", "ci", "-f", "edges.json", "--tag", tag)
    assert done.returncode == 2, done.stderr
    assert "is not an image tag" in done.stderr
    assert not Path(MARK).exists()


@pytest.mark.parametrize(
    "registry", ["127.0.0.1:5000 --tls-verify=false", "evil/../x", f"h;touch {MARK}", ""]
)
def test_a_registry_setting_that_is_not_an_address_is_refused(
    tmp_path: Path, registry: str
) -> None:
    conveyor_dir = tmp_path / ".conveyor"
    conveyor_dir.mkdir()
    (conveyor_dir / "config.toml").write_text(f"[containers]\nregistry = {json.dumps(registry)}\n")
    with pytest.raises(ProjectError, match=r"containers\.registry is a registry address"):
        Settings.load(conveyor_dir)
    root = project(tmp_path, "org/edges:1", f"[containers]\nregistry = {json.dumps(registry)}\n")
    done = conveyor(root, "pipeline", "ci", "-f", "edges.json", "--push")
    assert done.returncode == 2 and "containers.registry" in done.stderr, done.stderr


def test_push_without_a_registry_says_where_to_set_it(tmp_path: Path) -> None:
    root = project(tmp_path, "org/edges:1")
    done = conveyor(root, "pipeline", "ci", "-f", "edges.json", "--push")
    assert done.returncode == 2
    assert "[containers]" in done.stderr and "registry" in done.stderr
