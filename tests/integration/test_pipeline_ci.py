"""`conveyor pipeline ci` against the real engines: podman builds the example's
Dockerfile, the image is tagged with the commit and pushed to the registry of
scripts/engines/registry.sh, pulled back by the digest the CI record holds, the specs are
updated with the new tag and the jobs' outputs are checked against an independent Sobel
filter. A second CI of an unchanged context reuses the build; a code change rebuilds."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines import engine_missing
from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pachyderm-edges"
IMAGE_PATH = "pachyderm-example/edges"


def ok(repo: Repo, *args: str) -> str:
    result = repo.run(*args, timeout=600)
    assert result.code == 0, result.err
    return result.out


def git(repo: Repo, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo.path, capture_output=True, text=True, check=True
    ).stdout.strip()


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)


def read_pgm(data: bytes) -> tuple[int, int, list[int]]:
    """P2 or P5 8-bit, comments allowed: enough for the example's pictures."""
    tokens: list[bytes] = []
    at = 0
    while len(tokens) < 4:
        while data[at : at + 1].isspace():
            at += 1
        if data[at : at + 1] == b"#":
            at = data.index(b"\n", at) + 1
            continue
        end = at
        while not data[end : end + 1].isspace():
            end += 1
        tokens.append(data[at:end])
        at = end
    magic, w, h = tokens[0], int(tokens[1]), int(tokens[2])
    if magic == b"P5":
        return w, h, list(data[at + 1 : at + 1 + w * h])
    return w, h, [int(t) for t in data[at:].split()][: w * h]


def sobel(w: int, h: int, px: list[int]) -> list[int]:
    def at(x: int, y: int) -> int:
        return px[min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)]

    out = []
    for y in range(h):
        for x in range(w):
            gx = (at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1)) - (
                at(x - 1, y - 1) + 2 * at(x - 1, y) + at(x - 1, y + 1)
            )
            gy = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1)) - (
                at(x - 1, y - 1) + 2 * at(x, y - 1) + at(x + 1, y - 1)
            )
            out.append(min(255, int(math.sqrt(gx * gx + gy * gy))))
    return out


@pytest.fixture
def engines() -> str:
    if not os.environ.get("CONVEYOR_TEST_PODMAN_IMAGE") or shutil.which("podman") is None:
        engine_missing("podman", "podman is not configured for tests: scripts/engines/podman.sh")
    registry = os.environ.get("CONVEYOR_TEST_REGISTRY")
    if not registry:
        engine_missing("registry", "no image registry: scripts/engines/registry.sh up")
    assert registry is not None
    return registry


@pytest.fixture
def example(repo: Repo, engines: str) -> Iterator[Repo]:
    shutil.copytree(EXAMPLE, repo.path, dirs_exist_ok=True)
    (repo.path / ".conveyor").mkdir()
    (repo.path / ".conveyor" / "config.toml").write_text(f'[containers]\nregistry = "{engines}"\n')
    (repo.path / ".gitignore").write_text(".conveyor/\n")
    repo.commit("edge detection")
    ok(repo, "data", "create", "images")
    pictures = sorted(str(p) for p in (repo.path / "images").glob("*.pgm"))
    ok(repo, "data", "put", "images:/", *pictures)
    yield repo
    # the images this test tagged (one tag per commit of its repository), with their
    # digest references (a pushed image keeps one after its tags go); layers stay cached
    tags = [f"{engines}/{IMAGE_PATH}:{sha}" for sha in git(repo, "log", "--format=%H").split()]
    found = podman("image", "inspect", "--format", "{{.Id}}", *tags).stdout.split()
    if found:
        podman("rmi", "--ignore", "-f", *sorted(set(found)))


def ci(repo: Repo) -> dict[str, Any]:
    # montage first on the command line: the flow orders the specs itself
    out = ok(repo, "pipeline", "ci", "-f", "montage.json", "-f", "edges.json", "--push", "--json")
    record: dict[str, Any] = json.loads(out)
    return record


def steps(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in record["steps"]}


def test_build_tag_push_update_and_run_with_the_pushed_image(example: Repo, engines: str) -> None:
    spec_before = (example.path / "edges.json").read_text()
    sha = git(example, "rev-parse", "HEAD")
    record = ci(example)
    target = f"{engines}/{IMAGE_PATH}:{sha}"
    assert record["state"] == "success" and record["image"] == target
    assert [s["name"] for s in record["steps"]] == ["build", "tag", "push", "update", "run"]
    assert all(s["state"] == "success" and Path(s["log"]).is_file() for s in record["steps"])
    build = steps(record)["build"]
    assert build["cached"] is False and build["image_id"].startswith("sha256:")
    assert "COPY code/ /app/" in Path(build["log"]).read_text()
    digest = record["digest"]
    assert digest.startswith("sha256:") and steps(record)["push"]["digest"] == digest

    # the registry serves that manifest under the commit's tag, and by its digest
    request = urllib.request.Request(
        f"http://{engines}/v2/{IMAGE_PATH}/manifests/{sha}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Docker-Content-Digest"] == digest
    by_digest = f"{engines}/{IMAGE_PATH}@{digest}"
    assert podman("rmi", "-f", target).returncode == 0
    pulled = podman("pull", "--tls-verify=false", by_digest)
    assert pulled.returncode == 0, pulled.stderr
    inspected = podman("image", "inspect", "--format", "{{.Id}}", by_digest)
    assert "sha256:" + inspected.stdout.strip().removeprefix("sha256:") == build["image_id"]
    podman("tag", by_digest, target)  # tagged again: the fixture's clean-up removes it

    # the specs, in dependency order, with the new tag; the repository's files unchanged
    update = steps(record)["update"]
    assert [s["pipelines"] for s in update["specs"]] == [["edges"], ["montage"]]
    assert (example.path / "edges.json").read_text() == spec_before
    inspected_spec = json.loads(ok(example, "pipeline", "inspect", "edges", "--json"))
    assert inspected_spec["image"] == target

    # the jobs ran in that image: edges match an independent Sobel filter
    assert [j["pipeline"] for j in steps(record)["run"]["jobs"]] == ["edges", "montage"]
    out = example.path / "out"
    for name in ("disc", "ring", "stripes"):
        ok(example, "data", "get", f"edges:/{name}.pgm", str(out / f"{name}.pgm"))
        w, h, px = read_pgm((example.path / "images" / f"{name}.pgm").read_bytes())
        assert read_pgm((out / f"{name}.pgm").read_bytes()) == (w, h, sobel(w, h, px))
    ok(example, "data", "get", "montage:/montage.pgm", str(out / "montage.pgm"))
    mw, mh, _ = read_pgm((out / "montage.pgm").read_bytes())
    assert (mw, mh) == (40 + 4 + 40, 3 * 40 + 2 * 4)

    # provenance: the output commit names the build and the pushed digest
    commit = json.loads(ok(example, "data", "inspect", "edges", "--json"))["commit"]
    prov = commit["provenance"]
    assert prov["ci"]["digest"] == digest and prov["ci"]["commit"] == sha
    assert prov["image"]["name"] == target and prov["git_commit"] == sha


def test_an_unchanged_context_is_not_rebuilt_and_a_changed_one_is(example: Repo) -> None:
    first = steps(ci(example))["build"]
    example.commit("nothing in the context changed")
    again = ci(example)
    assert steps(again)["build"]["cached"] is True
    assert steps(again)["build"]["image_id"] == first["image_id"]
    assert steps(again)["update"]["specs"][0]["action"] == "updated"
    assert json.loads(ok(example, "pipeline", "inspect", "edges", "--json"))["version"] == 2
    assert again["image"].endswith(":" + git(example, "rev-parse", "HEAD"))
    # the new tag is a new transform: every datum ran again (the reprocess)
    edges_job = steps(again)["run"]["jobs"][0]["job"]
    job = json.loads(ok(example, "job", "inspect", edges_job, "--json"))
    assert job["datum_counts"] == {"success": 3}

    script = example.path / "code" / "edges.pl"
    script.write_text(script.read_text() + "# a change to the code\n")
    example.commit("edges: comment")
    changed = steps(ci(example))["build"]
    assert changed["cached"] is False and changed["image_id"] != first["image_id"]


def test_a_failed_build_stops_the_flow_before_any_update(example: Repo) -> None:
    (example.path / "Dockerfile").write_text("FROM local/conveyor-base\nRUN exit 7\n")
    example.commit("a broken build")
    result = example.run("pipeline", "ci", "-f", "edges.json", "-f", "montage.json", "--push")
    assert result.code == 1 and "Traceback" not in result.err
    assert "podman build` failed (exit" in result.err
    (record_file,) = (example.path / ".conveyor" / "pachyderm" / "ci").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["state"] == "failed" and record["digest"] is None
    assert [(s["name"], s["state"]) for s in record["steps"]] == [("build", "failed")]
    assert "RUN exit 7" in Path(record["steps"][0]["log"]).read_text()
    assert json.loads(ok(example, "pipeline", "list", "--json")) == []
