"""The server's CI flow names no path of its data directory: a build that fails with
an error naming its context has the scratch paths replaced by neutral names
(``<context>``, ``<tree>``, ``<ci>``) in its stored log, in the step's and the record's
error. The container runtime is a shell script that prints its arguments (the paths it
was given) and fails, as podman does for a missing COPY source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.errors import ConveyorError
from conveyor.metadata.lite import open_lite
from conveyor.sdk.pachyderm_ci import PipelineCi, SpecFile
from conveyor.sdk.project import Project
from conveyor.server.pachyderm_ci import scrubber
from conveyor.store.cas import ContentStore

FAILING = 'for a; do echo "Error: checking on sources under \\"$a\\""; done; exit 125'


def test_a_failed_builds_log_and_error_name_no_scratch_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "server-data"
    records = open_lite(data / "p" / ".conveyor" / "conveyor.db")
    project = Project(data / "p", records=records, store=ContentStore(data / "store"))
    tree = data / "p" / "ci-scratch" / "0123abcd" / "tree"
    (tree / "image").mkdir(parents=True)
    (tree / "image" / "Dockerfile").write_text("FROM local/base\nCOPY missing /x\n")
    spec = {
        "pipeline": {"name": "edges"},
        "transform": {"image": "org/edges:1", "cmd": ["true"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
    }
    (tree / "edges.json").write_text(json.dumps(spec))
    ci = PipelineCi(project, registry="127.0.0.1:5000", executor="local")
    ci.scrub = scrubber(tree / "image", tree, ci.root, data)
    monkeypatch.setattr(ci, "_runtime", lambda: ("sh", "-c", FAILING))
    with pytest.raises(ConveyorError) as failed:
        ci.run(
            [SpecFile(tree / "edges.json", "edges.json")],
            push=True,
            context=tree / "image",
            dockerfile=tree / "image" / "Dockerfile",
            tag="a" * 40,
        )
    record = ci.records(1)[0]
    log = (ci.root / record["id"] / "build.log").read_text()
    shown = [str(failed.value), record["error"], record["steps"][0]["error"], log]
    for text in shown:
        assert str(data) not in text, text
        assert "ci-scratch" not in text, text
    assert 'checking on sources under "<context>"' in log, log
    assert "-f <context>/Dockerfile <context>" in log, log
    assert "<ci>/" in record["error"] and "build.log" in record["error"], record["error"]


def test_the_longest_path_is_replaced_first(tmp_path: Path) -> None:
    tree = tmp_path / "d" / "tree"
    scrub = scrubber(tree / "image", tree, tmp_path / "d" / "ci", tmp_path)
    assert scrub(f"{tree}/image/x {tree}/y {tmp_path}/z") == "<context>/x <tree>/y <data>/z"
    same = scrubber(tree, tree, tmp_path / "ci", tmp_path)  # the context is the tree
    assert same(f"{tree}/Dockerfile") == "<context>/Dockerfile"
