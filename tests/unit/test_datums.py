"""Datums and Python steps in the compiler (a fixed file listing), and the project lister."""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.errors import ParamError, SpecError
from conveyor.plan.compile import compile_plan
from conveyor.plan.datums import RUNNER, Datum, expand
from conveyor.plan.model import ExecutionPlan
from conveyor.sdk.listing import ProjectFiles
from conveyor.spec.load import parse_pipeline

FILES = ("code/__init__.py", "code/f.py", "data/a.csv", "data/b.csv", "data/sub/c.csv")

PIPELINE = """
jobs:
  prep:
    steps:
      - run: echo prep
  fan:
    needs: [prep]
    steps:
      - id: each
        python: code.f:work
        datums: data/*.csv
        inputs: [conf.toml]
  after:
    needs: [fan]
    steps:
      - run: cat results/fan/each/*.json
"""


def lister_of(files: Sequence[str]) -> ProjectFilesStub:
    return ProjectFilesStub(files)


class ProjectFilesStub:
    """Literal paths and one-level ``dir/*.ext`` globs over a fixed listing."""

    def __init__(self, files: Sequence[str]) -> None:
        self.files = sorted(files)

    def __call__(self, pattern: str) -> Sequence[str]:
        if "*" not in pattern:
            return [f for f in self.files if f == pattern]
        directory, _, suffix = pattern.partition("/*")
        return [
            f
            for f in self.files
            if f.startswith(directory + "/")
            and "/" not in f[len(directory) + 1 :]
            and f.endswith(suffix)
        ]


def plan_of(text: str, files: Sequence[str] = FILES, only: Sequence[str] = ()) -> ExecutionPlan:
    spec = parse_pipeline(textwrap.dedent(text).lstrip(), "conveyor.yml")
    return compile_plan(spec, {}, only, lister_of(files))


def test_one_instance_per_datum_with_readable_ids_and_its_own_inputs() -> None:
    plan = plan_of(PIPELINE)
    assert [s.id for s in plan.steps] == [
        "prep.step-1",
        "fan.each[a.csv]",
        "fan.each[b.csv]",
        "after.step-1",
    ]
    step = plan.step("fan.each[a.csv]")
    assert step.inputs == ("data/a.csv", "code/__init__.py", "code/f.py", "conf.toml")
    assert step.outputs == ("results/fan/each/a.csv.json",)
    assert dict(step.env)["CONVEYOR_DATUM"] == "data/a.csv"
    assert step.command.startswith('"${CONVEYOR_PYTHON:-python3}" -B -c ')
    assert shlex.split(step.command) == [
        "${CONVEYOR_PYTHON:-python3}",
        "-B",
        "-c",
        RUNNER,
        "code.f:work",
        "results/fan/each/a.csv.json",
        "data/a.csv",
    ]
    assert step.needs == ("prep.step-1",)
    assert plan.step("after.step-1").needs == ("fan.each[a.csv]", "fan.each[b.csv]")


def test_an_instance_does_not_change_when_other_datums_come_and_go() -> None:
    before = plan_of(PIPELINE).step("fan.each[a.csv]")
    after = plan_of(PIPELINE, (*FILES, "data/z.csv")).step("fan.each[a.csv]")
    assert after == before
    assert "fan.each[z.csv]" in [s.id for s in plan_of(PIPELINE, (*FILES, "data/z.csv")).steps]


def test_the_step_after_a_datum_step_in_its_job_waits_for_every_datum() -> None:
    plan = plan_of(
        """
        jobs:
          j:
            steps:
              - python: code.f:work
                datums: data/*.csv
              - run: echo last
        """
    )
    assert plan.step("j.step-2").needs == ("j.step-1[a.csv]", "j.step-1[b.csv]")


def test_selection_by_step_takes_every_datum_or_one() -> None:
    every = plan_of(PIPELINE, only=["fan.each"])
    assert [s.id for s in every.steps] == ["prep.step-1", "fan.each[a.csv]", "fan.each[b.csv]"]
    one = plan_of(PIPELINE, only=["fan.each[b.csv]"])
    assert [s.id for s in one.steps] == ["prep.step-1", "fan.each[b.csv]"]
    assert [s.id for s in plan_of(PIPELINE, only=["each"]).steps][-1] == "fan.each[b.csv]"
    with pytest.raises(ParamError):
        plan_of(PIPELINE, only=["fan.each[nope.csv]"])


def test_datum_templates_and_a_run_step_over_datums() -> None:
    plan = plan_of(
        """
        jobs:
          j:
            steps:
              - name: copy ${{ datum.stem }}
                run: cp ${{ datum.path }} out/${{ datum.name }}
                datums: [data/a.csv]
                outputs:
                  - out/${{ datum.name }}
              - python: code.f:one
                datums: data/b.csv
                result: r/${{ datum.stem }}.json
        """
    )
    copy = plan.step("j.step-1[a.csv]")
    assert (copy.name, copy.command, copy.outputs) == (
        "copy a",
        "cp data/a.csv out/a.csv",
        ("out/a.csv",),
    )
    assert copy.inputs == ("data/a.csv",)
    assert plan.step("j.step-2[b.csv]").outputs == ("r/b.json",)


def test_a_python_step_without_datums_calls_the_function_without_arguments() -> None:
    plan = plan_of("jobs:\n  j:\n    steps:\n      - python: code.f:summary\n")
    step = plan.step("j.step-1")
    assert shlex.split(step.command)[-2:] == ["code.f:summary", "results/j/step-1.json"]
    assert step.inputs == ("code/__init__.py", "code/f.py")
    assert "CONVEYOR_DATUM" not in dict(step.env)


def test_a_module_outside_the_project_adds_no_input() -> None:
    plan = plan_of("jobs:\n  j:\n    steps:\n      - python: json:dumps\n")
    assert plan.step("j.step-1").inputs == ()


def test_datums_that_match_nothing_are_an_error_at_their_position() -> None:
    text = "jobs:\n  j:\n    steps:\n      - python: code.f:work\n        datums: none/*.csv\n"
    with pytest.raises(SpecError) as info:
        plan_of(text)
    assert info.value.exit_code == 2
    assert str(info.value).startswith("conveyor.yml:5:9: datums none/*.csv match no file")


@pytest.mark.parametrize(
    ("datums", "message"),
    [("../up/*.csv", "outside the project"), (".git/*", "git's own directory")],
)
def test_datums_outside_the_project_are_refused(datums: str, message: str) -> None:
    text = f"jobs:\n  j:\n    steps:\n      - python: code.f:work\n        datums: {datums}\n"
    with pytest.raises(SpecError, match=message):
        plan_of(text)


def test_datum_in_a_step_without_datums_is_an_undefined_name() -> None:
    text = "jobs:\n  j:\n    steps:\n      - run: echo ${{ datum.path }}\n"
    with pytest.raises(SpecError, match="datum"):
        plan_of(text)


def test_two_instances_writing_one_result_are_refused() -> None:
    text = (
        "jobs:\n  j:\n    steps:\n      - python: code.f:work\n"
        "        datums: data/*.csv\n        result: r.json\n"
    )
    with pytest.raises(SpecError, match=r"both write 'r\.json'"):
        plan_of(text)


def test_datum_names_fall_back_to_paths_when_they_collide() -> None:
    datums = expand(["a/x.csv", "b/x.csv"], lister_of(["a/x.csv", "b/x.csv"]))
    assert datums == [Datum("a/x.csv", "a/x.csv"), Datum("b/x.csv", "b/x.csv")]
    assert [d.stem for d in datums] == ["x", "x"]
    assert Datum("d/.hidden", ".hidden").stem == ".hidden"


def test_project_files_lists_like_glob_and_remembers(tmp_path: Path) -> None:
    for rel in ("data/a.csv", "data/sub/b.csv", ".git/x.csv", "data/c.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    files = ProjectFiles(tmp_path)
    assert files("data/*.csv") == ("data/a.csv",)
    assert files("data/**/*.csv") == ("data/a.csv", "data/sub/b.csv")
    assert files("data/*/") == ("data/sub",)
    assert files("**/*.csv") == ("data/a.csv", "data/sub/b.csv")
    assert files("data/c.txt") == ("data/c.txt",)
    assert files("data/none.txt") == ()
    seen = dict(files.seen)
    assert ProjectFiles(tmp_path).unchanged(seen)
    (tmp_path / "data/d.csv").write_text("x")
    assert not ProjectFiles(tmp_path).unchanged(seen)


def test_a_trailing_slash_takes_directories_only(tmp_path: Path) -> None:
    for rel in ("data/x/1.csv", "data/y/2.csv", "data/top.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    files = ProjectFiles(tmp_path)
    assert expand(["data/*/"], files) == [Datum("data/x", "x"), Datum("data/y", "y")]
    assert [d.name for d in expand(["data/*"], files)] == ["top.csv", "x", "y"]
