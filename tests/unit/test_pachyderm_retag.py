"""Image references of Pachyderm specs and the retagged spec text (the CI flow's update)."""

from __future__ import annotations

import json

import pytest
import yaml

from conveyor.errors import UsageError
from conveyor.spec.pachyderm import parse_specs
from conveyor.spec.pachyderm_retag import ImageName, check_tag, parse_image, retag


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("edges", ImageName(None, "edges", None)),
        ("org/edges:1.0", ImageName(None, "org/edges", "1.0")),
        ("127.0.0.1:5000/org/edges:dev", ImageName("127.0.0.1:5000", "org/edges", "dev")),
        ("localhost/edges", ImageName("localhost", "edges", None)),
        ("registry.example.org/a/b/c:v_2", ImageName("registry.example.org", "a/b/c", "v_2")),
    ],
)
def test_image_references_split_into_host_path_and_tag(text: str, expected: ImageName) -> None:
    assert parse_image(text) == expected


def test_the_name_is_kept_and_only_the_registry_and_tag_change() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert parse_image("org/edges:1.0").at("127.0.0.1:5000", sha) == (
        f"127.0.0.1:5000/org/edges:{sha}"
    )
    assert parse_image("127.0.0.1:5000/org/edges:1.0").at(None, "x") == (
        "127.0.0.1:5000/org/edges:x"
    )
    assert parse_image("edges").at(None, "x") == "edges:x"


@pytest.mark.parametrize(
    "text",
    ["Edges", "edges; touch /tmp/x", "--privileged", "a b", "edges@sha256:" + "0" * 64, "", "x/"],
)
def test_anything_else_is_one_sentence(text: str) -> None:
    with pytest.raises(UsageError, match="is not an image reference"):
        parse_image(text)


@pytest.mark.parametrize("tag", ["-x", "a b", "a;b", "", "x" * 129])
def test_a_bad_tag_is_refused(tag: str) -> None:
    with pytest.raises(UsageError, match="is not an image tag"):
        check_tag(tag)


def test_a_json_stream_is_retagged_and_keeps_every_other_field() -> None:
    first = {
        "pipeline": {"name": "edges"},
        "transform": {"image": "org/edges:1.0", "cmd": ["perl", "e.pl"]},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        "salt": "s",
    }
    second = {
        "pipeline": {"name": "other"},
        "transform": {"image": "org/other:1", "cmd": ["sh"]},
        "input": {"pfs": {"repo": "edges", "glob": "/"}},
    }
    text = json.dumps(first) + "\n" + json.dumps(second)
    out = retag(text, True, {"org/edges:1.0": "r:5/org/edges:abc"})
    specs = parse_specs(out, "p.json", is_json=True)
    assert [p.transform.image for p in specs.pipelines] == ["r:5/org/edges:abc", "org/other:1"]
    assert specs.pipelines[0].salt == "s" and specs.pipelines[0].transform.cmd == ("perl", "e.pl")


def test_yaml_documents_are_retagged() -> None:
    text = (
        "pipeline: {name: edges}\ntransform: {image: 'edges:dev', cmd: [sh]}\n"
        "input: {pfs: {repo: images, glob: /*}}\n"
    )
    out = retag(text, False, {"edges:dev": "edges:0ff1ce"})
    assert next(iter(yaml.safe_load_all(out)))["transform"]["image"] == "edges:0ff1ce"
    specs = parse_specs(out, "p.yaml", is_json=False)
    assert specs.pipelines[0].input is not None
