"""action.yml manifests, `uses` references, and `with:` type checks (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.action_manifest import parse_manifest
from conveyor.spec.actions import check_value
from conveyor.spec.formats import parse_text
from conveyor.spec.uses import parse_uses
from conveyor.spec.yamlsource import load_documents

MANIFEST = """\
name: Greet
description: says hello
inputs:
  who: {type: string, required: true}
  times: {type: number, default: 1}
  loud: {type: boolean, default: false}
  data: {type: file}
  extra: {type: json}
  tags: {type: array, default: [a]}
outputs:
  said: {description: what was said}
runs:
  command: echo "::said::\\"$INPUT_WHO\\""
"""


def _manifest(text: str) -> object:
    return parse_manifest(*next(load_documents(text, "action.yml")))


def test_a_manifest_declares_typed_inputs_outputs_and_how_it_runs() -> None:
    manifest = parse_manifest(*next(load_documents(MANIFEST, "action.yml")))
    assert manifest.name == "Greet"
    assert manifest.inputs["who"].required and manifest.inputs["who"].type == "string"
    assert manifest.inputs["times"].default == 1
    assert manifest.inputs["tags"].default == ["a"]
    assert manifest.outputs == ("said",)
    assert manifest.runs.command is not None and manifest.runs.python is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nruns: {command: a}\ninputs: {a: {type: int}}\n", "unknown input type 'int'"),
        ("name: x\nruns: {}\n", "runs needs `command`, `python` or `image`"),
        ("name: x\nruns: {python: a.py, command: b}\n", "a python action has no `command`"),
        ("name: x\nruns: {command: a, requirements: r.txt}\n", "`requirements` is for python"),
        ("name: x\nruns: {command: a}\ninputs: {n: {type: number, default: x}}\n", "default"),
        ("runs: {command: a}\n", "needs a `name`"),
    ],
)
def test_a_bad_manifest_is_refused_with_its_position(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _manifest(text)
    assert message in str(info.value)
    assert "action.yml:" in str(info.value)


def test_values_are_checked_against_their_type_without_silent_casts() -> None:
    assert check_value("string", 3) == "3"
    assert check_value("number", 2.5) == 2.5
    assert check_value("boolean", True) is True
    assert check_value("json", '{"a": 1}') == {"a": 1}
    assert check_value("json", [1]) == [1]
    assert check_value("array", [1, 2]) == [1, 2]
    assert check_value("file", "data/x.csv") == "data/x.csv"
    for kind, value in [
        ("number", "3"),
        ("number", True),
        ("boolean", "true"),
        ("array", "a,b"),
        ("json", "{nope"),
        ("file", "../secret"),
        ("file", "/etc/passwd"),
        ("string", ["a"]),
    ]:
        with pytest.raises(ValueError):
            check_value(kind, value)


def test_uses_references() -> None:
    local = parse_uses("./actions/greet")
    assert local.local and local.git is None
    assert parse_uses("local/greet").name == "local/greet"
    short = parse_uses("acme/greet@v1")
    # a native owner/name is under the project's [actions] base, in no format's library
    assert (short.name, short.tag, short.git, short.library) == ("acme/greet", "v1", None, None)
    url = parse_uses("https://git.example.org/acme/greet.git@v2")
    assert (url.git, url.tag) == ("https://git.example.org/acme/greet.git", "v2")
    ssh = parse_uses("git@example.org:acme/greet.git@main")
    assert (ssh.git, ssh.tag) == ("git@example.org:acme/greet.git", "main")
    repo = parse_uses("/srv/repos/greet@v1")
    assert (repo.git, repo.tag, repo.local) == ("/srv/repos/greet", "v1", False)
    for bad in ("acme/greet", "greet@v1", "./x@", "https://example.org/x.git"):
        with pytest.raises(ValueError):
            parse_uses(bad)


PIPELINE = """\
name: p
jobs:
  j:
    steps:
      - id: a
        uses: ./greet
        with: WITH
      - id: b
        uses: ./greet
        with:
          who: ${{ steps.a.outputs.said }}
"""


def _load(tmp_path: Path, given: str) -> object:
    (tmp_path / "greet").mkdir(exist_ok=True)
    (tmp_path / "greet" / "action.yml").write_text(MANIFEST)
    text = PIPELINE.replace("WITH", given)
    return parse_text(text, "conveyor.yml", "conveyor", tmp_path)


def test_a_uses_step_becomes_a_native_action_step(tmp_path: Path) -> None:
    spec = _load(tmp_path, "{who: '$(touch pwned)', data: in.csv, extra: '[1]'}")
    plan = compile_plan(spec)  # type: ignore[arg-type]
    first, second = plan.steps
    assert first.action == "./greet" and first.action_commit is None
    inputs = dict(first.action_inputs)
    assert inputs["who"] == "$(touch pwned)"  # data, never part of the command
    assert "pwned" not in first.command
    assert inputs["extra"] == [1] and inputs["times"] == 1 and inputs["tags"] == ["a"]
    assert set(first.inputs) == {"greet", "in.csv"}  # the code and the file input
    assert dict(first.env)["CONVEYOR_ACTION_PATH"] == "greet"
    assert dict(second.action_inputs)["who"] == "${{ steps.a.outputs.said }}"
    assert spec.read_files == (str(tmp_path / "greet" / "action.yml"),) * 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{who: x, times: '3'}", "7:24: input 'times' of action ./greet: a number is expected"),
        ("{who: x, nope: 1}", "7:24: action ./greet has no input 'nope' (its inputs: who,"),
        ("{times: 3}", "7:9: input 'who' is required by action ./greet; give it in `with`"),
        ("{who: x, loud: 'yes'}", "7:24: input 'loud' of action ./greet: true or false"),
        ("{who: x, times: '${{ params.n }}'}", "only string and file inputs take templates"),
    ],
)
def test_bad_inputs_are_refused_at_their_with_key(tmp_path: Path, given: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _load(tmp_path, given)
    assert f"conveyor.yml:{message}" in str(info.value) or message in str(info.value)


def test_uses_excludes_run(tmp_path: Path) -> None:
    (tmp_path / "greet").mkdir()
    (tmp_path / "greet" / "action.yml").write_text(MANIFEST)
    text = "jobs:\n  j:\n    steps:\n      - uses: ./greet\n        run: echo\n"
    with pytest.raises(SpecError) as info:
        parse_text(text, "conveyor.yml", "conveyor", tmp_path)
    assert str(info.value).endswith("a step with `uses` has no `run`")


def test_a_reference_to_an_undeclared_output_is_refused(tmp_path: Path) -> None:
    _load(tmp_path, "{who: x}")
    text = PIPELINE.replace("WITH", "{who: x}").replace("outputs.said", "outputs.nope")
    spec = parse_text(text, "conveyor.yml", "conveyor", tmp_path)
    with pytest.raises(SpecError) as info:
        compile_plan(spec)
    assert "conveyor.yml:11:11:" in str(info.value)  # the `with` key
    assert "which that step's action does not declare (outputs: said)" in str(info.value)


def test_an_image_action_is_an_image_step(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "action.yml").write_text(
        "name: Img\ninputs: {n: {type: number}}\nruns: {image: 'alpine:3', command: echo hi}\n"
    )
    text = "jobs:\n  j:\n    steps:\n      - uses: ./img\n        with: {n: 1}\n"
    (step,) = compile_plan(parse_text(text, "conveyor.yml", "conveyor", tmp_path)).steps
    assert (step.image, step.command, dict(step.action_inputs)) == ("alpine:3", "echo hi", {"n": 1})


TEMPLATED = """\
params: {n: 4}
jobs:
  j:
    steps:
      - id: a
        uses: ./greet
        with: {who: x}
      - id: b
        uses: ./greet
        with:
          who: n=${{ params.n }} ${{ steps.a.outputs.said }}
          data: d/${{ params.n }}.csv
"""


def test_string_and_file_inputs_take_templates_rendered_with_the_plan(tmp_path: Path) -> None:
    _load(tmp_path, "{who: x}")
    plan = compile_plan(parse_text(TEMPLATED, "conveyor.yml", "conveyor", tmp_path))
    second = plan.steps[1]
    inputs = dict(second.action_inputs)
    assert inputs["who"] == "n=4 ${{ steps.a.outputs.said }}"
    assert inputs["data"] == "d/4.csv"
    assert "d/4.csv" in second.inputs  # the file input, rendered too
    assert dict(second.params) == {"n": 4}  # part of the fingerprint


def test_short_names_are_found_under_the_configured_base(tmp_path: Path) -> None:
    from conveyor.sdk.actions import git_url
    from conveyor.sdk.settings import Settings

    ref = parse_uses("acme/greet@v1")
    assert git_url(ref) == "https://github.com/acme/greet"
    assert git_url(ref, "https://git.example.org/") == "https://git.example.org/acme/greet"
    (tmp_path / "repos" / "acme" / "greet.git").mkdir(parents=True)
    assert git_url(ref, "repos", tmp_path) == str(tmp_path / "repos" / "acme" / "greet.git")
    assert git_url(parse_uses("./r@v1"), "x", tmp_path) == str(tmp_path / "r")
    (tmp_path / "config.toml").write_text('[actions]\nbase = "/srv/actions"\npaths = ["a"]\n')
    settings = Settings.load(tmp_path)
    assert (settings.action_base, settings.action_paths) == ("/srv/actions", ("a",))


def test_local_names_are_looked_up_in_the_project(tmp_path: Path) -> None:
    from conveyor.spec.actions import local_resolver

    (tmp_path / ".conveyor" / "actions" / "greet").mkdir(parents=True)
    (tmp_path / "shared" / "other").mkdir(parents=True)
    resolve = local_resolver(tmp_path, [tmp_path / "shared"])
    found = resolve(parse_uses("local/greet")).directory
    assert found == tmp_path / ".conveyor" / "actions" / "greet"
    assert resolve(parse_uses("local/other")).directory == tmp_path / "shared" / "other"
    with pytest.raises(ValueError, match=r"no directory missing in \.conveyor/actions"):
        resolve(parse_uses("local/missing"))


def test_a_server_reads_the_triggers_of_a_pipeline_with_uses_steps() -> None:
    from conveyor.spec.load import validate_native
    from conveyor.spec.uses import stub_uses

    text = "on: {push: {branches: [release]}}\n" + PIPELINE.replace("WITH", "{who: x}")
    documents = [(stub_uses(d), s) for d, s in load_documents(text, "conveyor.yml")]
    spec = validate_native(documents, "conveyor.yml")
    assert spec.on.push is not None and spec.on.push.branches == ["release"]
