"""The native loader: YAML -> PipelineSpec, with file:line:col on every error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conveyor.domain.durations import parse_duration
from conveyor.errors import Position, ProjectError, SpecError, UsageError
from conveyor.spec.load import load_pipeline, parse_pipeline
from conveyor.spec.model import PipelineSpec

FILE = "conveyor.yml"


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def locate(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def load(text: str) -> PipelineSpec:
    return parse_pipeline(text, FILE)


def load_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(text)
    return info.value


def assert_at(error: SpecError, text: str, needle: str, nth: int = 0) -> None:
    line, column = locate(text, needle, nth)
    assert error.position == Position(FILE, line, column), str(error)
    assert str(error).startswith(f"{FILE}:{line}:{column}: ")


# -- a valid file -------------------------------------------------------------------


def test_a_valid_pipeline_loads_with_defaults() -> None:
    spec = load(
        dedent(
            """
            name: demo
            jobs:
              prep:
                steps:
                  - run: echo hi
            """
        )
    )
    assert spec.name == "demo"
    assert list(spec.jobs) == ["prep"]
    step = spec.jobs["prep"].steps[0]
    assert step.run == "echo hi"
    assert step.if_ == "success()"
    assert step.retries == 0
    assert step.timeout is None
    assert step.cache is True
    assert spec.format == "conveyor"
    assert spec.source.path == FILE


def test_needs_accepts_one_name_or_a_list() -> None:
    spec = load(
        dedent(
            """
            jobs:
              a: {steps: [{run: x}]}
              b: {needs: a, steps: [{run: x}]}
              c: {needs: [a, b], steps: [{run: x}]}
            """
        )
    )
    assert spec.jobs["b"].needs == ["a"]
    assert spec.jobs["c"].needs == ["a", "b"]


def test_param_shorthand_infers_the_type() -> None:
    spec = load(
        dedent(
            """
            params:
              n: 3
              lr: 0.1
              flag: true
              label: hello
              empty:
              full: {type: int, default: 7, description: count}
            jobs:
              a: {steps: [{run: x}]}
            """
        )
    )
    params = spec.params
    assert (params["n"].type, params["n"].default) == ("int", 3)
    assert (params["lr"].type, params["lr"].default) == ("float", 0.1)
    assert (params["flag"].type, params["flag"].default) == ("bool", True)
    assert (params["label"].type, params["label"].default) == ("str", "hello")
    assert (params["empty"].type, params["empty"].default) == ("str", None)
    assert (params["full"].type, params["full"].default) == ("int", 7)


# -- durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("30", 30.0), ("1.5h", 5400.0), ("2d", 172800.0)],
)
def test_timeout_durations(written: str, seconds: float) -> None:
    spec = load(f"jobs:\n  a:\n    steps:\n      - run: x\n        timeout: {written}\n")
    assert spec.jobs["a"].steps[0].timeout == seconds


def test_timeout_as_a_bare_number() -> None:
    spec = load("jobs:\n  a:\n    steps:\n      - run: x\n        timeout: 30\n")
    assert spec.jobs["a"].steps[0].timeout == 30.0


def test_a_queue_timeout_is_a_duration_checked_at_its_key() -> None:
    text = "jobs:\n  a:\n    steps:\n      - run: x\n        queue-timeout: 10m\n"
    assert load(text).jobs["a"].steps[0].queue_timeout == 600.0
    error = load_error(text.replace("10m", "later"))
    assert_at(error, text.replace("10m", "later"), "queue-timeout")
    assert "duration" in error.detail


@pytest.mark.parametrize(
    ("value", "seconds"), [(90, 90.0), (2.5, 2.5), ("90s", 90.0), ("5m", 300.0), ("500ms", 0.5)]
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "-5s", 0, "0s", -3, True, ""])
def test_parse_duration_rejects_non_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_a_bad_timeout_is_a_spec_error_at_its_key() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - run: x
                timeout: soon
        """
    )
    error = load_error(text)
    assert_at(error, text, "timeout")
    assert "duration" in error.detail


# -- error classes (all exit code 2) ---------------------------------------------------


def test_spec_errors_are_usage_errors_with_exit_code_2() -> None:
    error = load_error("jobs: [")
    assert isinstance(error, UsageError)
    assert error.exit_code == 2


def test_invalid_yaml_reports_line_and_column() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - run: [x
        """
    )
    error = load_error(text)
    assert error.detail.startswith("invalid YAML")
    assert error.position is not None
    assert error.position.path == FILE
    assert error.position.line is not None and error.position.line >= 4
    assert error.position.column is not None


def test_invalid_yaml_tab_indentation() -> None:
    text = "jobs:\n  a:\n\tsteps: []\n"
    error = load_error(text)
    assert error.detail.startswith("invalid YAML")
    assert error.position is not None and error.position.line == 3


def test_unknown_top_level_key() -> None:
    text = dedent(
        """
        name: p
        jobz:
          a:
            steps: [{run: x}]
        """
    )
    error = load_error(text)
    assert_at(error, text, "jobz")
    assert "unknown key 'jobz'" in error.detail
    assert "top level" in error.detail
    assert "did you mean 'jobs'" in error.detail


def test_unknown_job_key() -> None:
    text = dedent(
        """
        jobs:
          train:
            steps: [{run: x}]
            need: [prep]
        """
    )
    error = load_error(text)
    assert_at(error, text, "need:")
    assert "unknown key 'need'" in error.detail
    assert "jobs.train" in error.detail
    assert "did you mean 'needs'" in error.detail


def test_unknown_step_key() -> None:
    text = dedent(
        """
        jobs:
          train:
            steps:
              - run: python train.py
              - run: python eval.py
                output: [model.pkl]
        """
    )
    error = load_error(text)
    assert_at(error, text, "output:")
    assert "unknown key 'output'" in error.detail
    assert "jobs.train.steps[1]" in error.detail
    assert "did you mean 'outputs'" in error.detail


def test_unknown_key_reported_before_the_missing_key_it_hides() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - runs: x
        """
    )
    error = load_error(text)
    assert "unknown key 'runs'" in error.detail
    assert_at(error, text, "runs")


def test_wrong_type() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - run: x
                retries: many
        """
    )
    error = load_error(text)
    assert_at(error, text, "retries")
    assert "jobs.a.steps[0].retries" in error.detail
    assert "'many'" in error.detail


def test_wrong_type_for_steps() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps: echo hi
        """
    )
    error = load_error(text)
    assert_at(error, text, "steps")
    assert "jobs.a.steps" in error.detail


def test_negative_retries_is_refused() -> None:
    text = "jobs:\n  a:\n    steps:\n      - run: x\n        retries: -1\n"
    error = load_error(text)
    assert_at(error, text, "retries")


def test_missing_required_key() -> None:
    text = dedent(
        """
        jobs:
          a:
            name: no steps
        """
    )
    error = load_error(text)
    assert "missing required key" in error.detail
    assert "jobs.a.steps" in error.detail
    assert_at(error, text, "a:")  # the job's own position


def test_a_step_without_a_command() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - name: no command
        """
    )
    error = load_error(text)
    assert "jobs.a.steps[0]: a step has either `run:`" in error.detail
    assert "`python:`" in error.detail
    assert_at(error, text, "name")  # the step's own position


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("run: x\n        python: m:f", "only one of `run:`, `python:` and `notebook:`"),
        ("run: x\n        notebook: a.ipynb", "(this one has run and notebook)"),
        ("notebook: a.txt", "'a.txt' is not a notebook file (NAME.ipynb)"),
        ("notebook: a.ipynb\n        result: r.json", "path ending in .ipynb"),
        ("run: x\n        parameters: {a: 1}", "`parameters:` is for `notebook:` steps"),
        ("python: just_a_module", "'just_a_module' is not package.module:function"),
        ("python: m:f()", "is not package.module:function"),
        ("run: x\n        result: r.json", "`result:` is for `python:` steps"),
        ("python: m:f\n        datums: []", "datums"),
    ],
)
def test_python_step_errors(step: str, message: str) -> None:
    text = f"jobs:\n  a:\n    steps:\n      - {step}\n"
    error = load_error(text)
    assert message in error.detail
    assert error.exit_code == 2


def test_python_step_with_datums() -> None:
    text = "jobs:\n  a:\n    steps:\n      - python: pkg.mod:Cls.run\n        datums: d/*.csv\n"
    step = parse_pipeline(text, "conveyor.yml").jobs["a"].steps[0]
    assert (step.python, step.datums, step.run) == ("pkg.mod:Cls.run", ["d/*.csv"], None)


def test_duplicate_yaml_key() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps:
              - run: x
                run: y
        """
    )
    error = load_error(text)
    assert_at(error, text, "run", nth=1)
    assert "duplicate key 'run'" in error.detail


def test_duplicate_job_name() -> None:
    text = dedent(
        """
        jobs:
          a:
            steps: [{run: x}]
          a:
            steps: [{run: y}]
        """
    )
    error = load_error(text)
    assert_at(error, text, "a:", nth=1)
    assert "duplicate key 'a'" in error.detail


def test_invalid_job_name() -> None:
    text = dedent(
        """
        jobs:
          "bad name":
            steps: [{run: x}]
        """
    )
    error = load_error(text)
    assert error.position is not None and error.position.line == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a\n- b\n", "mapping"),
        ("jobs: {}\n", "jobs"),
        ("jobs:\n  a:\n    steps: []\n", "jobs.a.steps"),
    ],
)
def test_structurally_wrong_files(text: str, fragment: str) -> None:
    error = load_error(text)
    assert fragment in error.detail
    assert error.position is not None and error.position.path == FILE


def test_more_than_one_document_is_an_error_at_the_second() -> None:
    text = "jobs:\n  a:\n    steps: [{run: x}]\n---\njobs: {}\n"
    error = load_error(text)
    assert "one YAML document" in error.detail
    assert error.position is not None and error.position.line == 5


def test_error_message_never_carries_a_traceback() -> None:
    error = load_error("jobs:\n  a:\n    steps:\n      - run: x\n        retries: many\n")
    assert "Traceback" not in str(error)
    assert "\n" not in str(error)


# -- files ---------------------------------------------------------------------------


def test_load_pipeline_reads_a_file_and_shows_the_display_name(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_text("jobs:\n  a:\n    steps:\n      - run: x\n        bogus: 1\n")
    with pytest.raises(SpecError) as info:
        load_pipeline(path, display="conveyor.yml")
    assert info.value.position == Position("conveyor.yml", 5, 9)
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    assert info.value.position == Position(str(path), 5, 9)


def test_load_pipeline_missing_file_is_a_project_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_pipeline(tmp_path / "conveyor.yml")
    assert info.value.exit_code == 2


def test_load_pipeline_binary_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_bytes(b"\xff\xfe\x00jobs")
    with pytest.raises(SpecError):
        load_pipeline(path)


def test_position_str() -> None:
    assert str(Position("f.yml")) == "f.yml"
    assert str(Position("f.yml", 3)) == "f.yml:3"
    assert str(Position("f.yml", 3, 7)) == "f.yml:3:7"


def test_mapping_keys_are_taken_as_written() -> None:
    # YAML 1.1 reads bare on/no/off/yes as booleans; a key must keep its spelling
    spec = load(
        dedent(
            """
            jobs:
              on:
                env: {NO: "1", OFF: "2", Yes: "3", PATH_X: "4"}
                steps: [{run: x}]
            """
        )
    )
    assert list(spec.jobs) == ["on"]
    assert spec.jobs["on"].env == {"NO": "1", "OFF": "2", "Yes": "3", "PATH_X": "4"}


def test_anchors_and_aliases_are_expanded() -> None:
    spec = load(
        dedent(
            """
            jobs:
              a:
                steps:
                  - &fit {id: fit, run: python fit.py, retries: 1}
              b:
                steps:
                  - *fit
            """
        )
    )
    assert spec.jobs["b"].steps[0] == spec.jobs["a"].steps[0]
    assert spec.jobs["b"].steps[0].retries == 1
