"""compile_plan: spec + params + selection -> ExecutionPlan, and its errors with positions."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import pytest

from conveyor.cli.context import param_values
from conveyor.errors import ParamError, Position, SpecError
from conveyor.plan.compile import check_params, compile_plan
from conveyor.plan.model import ExecutionPlan
from conveyor.spec.load import parse_pipeline
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


def spec_of(text: str) -> PipelineSpec:
    return parse_pipeline(dedent(text), FILE)


def parse_params(spec: PipelineSpec, given: Sequence[str]) -> dict[str, Any]:
    """What ``-p name=value`` options become: the CLI splits them, the compiler reads them."""
    return check_params(spec, param_values(given))


def compile_text(text: str, params: Sequence[str] = (), only: Sequence[str] = ()) -> ExecutionPlan:
    spec = spec_of(text)
    return compile_plan(spec, parse_params(spec, params), only)


def compile_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_text(text)
    return info.value


def assert_at(error: SpecError, text: str, needle: str, nth: int = 0) -> None:
    line, column = locate(dedent(text), needle, nth)
    assert error.position == Position(FILE, line, column), str(error)
    assert str(error).startswith(f"{FILE}:{line}:{column}: ")
    assert error.exit_code == 2


def ids(plan: ExecutionPlan) -> list[str]:
    return [s.id for s in plan.steps]


# -- ordering ------------------------------------------------------------------------

PIPELINE = """
    jobs:
      train:
        needs: prep
        steps:
          - id: fit
            run: python fit.py
          - id: score
            run: python score.py
      prep:
        steps:
          - id: fetch
            run: curl -o raw.csv http://x
          - id: clean
            run: python clean.py
      docs:
        steps:
          - id: build
            run: make docs
    """


def test_steps_follow_each_other_and_jobs_follow_needs() -> None:
    plan = compile_text(PIPELINE)
    assert ids(plan) == [
        "prep.fetch",
        "prep.clean",
        "train.fit",
        "train.score",
        "docs.build",
    ]
    assert plan.step("prep.fetch").needs == ()
    assert plan.step("prep.clean").needs == ("prep.fetch",)
    assert plan.step("train.fit").needs == ("prep.clean",)  # the last step of the job
    assert plan.step("train.score").needs == ("train.fit",)
    assert plan.step("docs.build").needs == ()
    assert plan.step("train.fit").job == "train"


def test_every_step_comes_after_its_needs() -> None:
    plan = compile_text(PIPELINE)
    seen: set[str] = set()
    for step in plan.steps:
        assert set(step.needs) <= seen
        seen.add(step.id)


def test_compile_is_deterministic() -> None:
    spec = spec_of(PIPELINE)
    first = compile_plan(spec, {})
    assert compile_plan(spec, {}) == first
    assert compile_text(PIPELINE).to_json() == first.to_json()


def test_plan_json_round_trips() -> None:
    plan = compile_text(PIPELINE)
    assert ExecutionPlan.from_json(plan.to_json()) == plan


def test_needs_naming_a_missing_job() -> None:
    text = """
        jobs:
          a:
            needs: [b, nope]
            steps: [{run: x}]
          b:
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert_at(error, text, "nope")
    assert "'nope'" in error.detail and "not a job" in error.detail


def test_cycle_reports_the_path() -> None:
    text = """
        jobs:
          a:
            needs: c
            steps: [{id: s, run: x}]
          b:
            needs: a
            steps: [{id: s, run: x}]
          c:
            needs: b
            steps: [{id: s, run: x}]
        """
    error = compile_error(text)
    assert "cycle" in error.detail
    path = error.detail.split(": ", 1)[1]
    members = path.split(" -> ")
    assert members[0] == members[-1]
    assert set(members) == {"a.s", "b.s", "c.s"}
    assert len(members) == 4
    assert error.position is not None and error.position.line is not None


def test_a_job_that_needs_itself_is_a_cycle() -> None:
    text = """
        jobs:
          a:
            needs: a
            steps: [{id: s, run: x}]
        """
    error = compile_error(text)
    assert "cycle" in error.detail
    assert "a.s -> a.s" in error.detail
    assert_at(error, text, "a:")


# -- inferred ordering -----------------------------------------------------------------


def test_reading_another_jobs_output_orders_after_it() -> None:
    plan = compile_text(
        """
        jobs:
          report:
            steps:
              - id: plot
                run: python plot.py
                inputs: [data/clean.csv]
          prep:
            steps:
              - id: clean
                run: python clean.py
                outputs: [data/clean.csv]
        """
    )
    assert ids(plan) == ["prep.clean", "report.plot"]
    assert plan.step("report.plot").needs == ("prep.clean",)
    assert plan.inferred == (("report.plot", "prep.clean", "data/clean.csv"),)


@pytest.mark.parametrize(
    ("reads", "writes"),
    [
        ("data/*.csv", "data/clean.csv"),  # a glob that names the output
        ("data", "data/clean.csv"),  # a directory holding the output
        ("data/clean.csv", "data"),  # a file inside an output directory
        ("./data/clean.csv", "data/clean.csv"),  # spelled differently
        ("data/**/*.csv", "data/sub/x.csv"),  # `**` crosses directories
        ("data/**/*.csv", "data/sub"),  # a directory that may hold what it names
        ("data/*", "data/sub/x.csv"),  # a file inside a directory the glob names
    ],
)
def test_inference_sees_overlapping_paths(reads: str, writes: str) -> None:
    plan = compile_text(
        f"""
        jobs:
          use:
            steps: [{{id: s, run: x, inputs: ["{reads}"]}}]
          make:
            steps: [{{id: s, run: x, outputs: ["{writes}"]}}]
        """
    )
    assert plan.step("use.s").needs == ("make.s",)
    assert [(c, p) for c, p, _ in plan.inferred] == [("use.s", "make.s")]


def test_unrelated_paths_infer_nothing() -> None:
    plan = compile_text(
        """
        jobs:
          use:
            steps: [{id: s, run: x, inputs: [data/a.csv]}]
          make:
            steps: [{id: s, run: x, outputs: [data/b.csv]}]
        """
    )
    assert plan.inferred == ()
    assert ids(plan) == ["use.s", "make.s"]


@pytest.mark.parametrize(
    ("reads", "writes"),
    [
        ("data/*.csv", "data/sub/x.csv"),  # `*` does not cross `/`, as in the workspace
        ("data/*.csv", "data/sub"),  # nothing below data/sub can match data/*.csv
        ("data/*.csv", "data/.hidden.csv"),  # `*` skips dot files, as in the workspace
        ("*/x.csv", "data/sub/x.csv"),
    ],
)
def test_globs_order_only_after_what_they_can_read(reads: str, writes: str) -> None:
    plan = compile_text(
        f"""
        jobs:
          use:
            steps: [{{id: s, run: x, inputs: ["{reads}"]}}]
          make:
            steps: [{{id: s, run: x, outputs: ["{writes}"]}}]
        """
    )
    assert plan.inferred == ()
    assert plan.step("use.s").needs == ()


def test_declared_need_is_not_listed_as_inferred() -> None:
    plan = compile_text(
        """
        jobs:
          use:
            needs: make
            steps: [{id: s, run: x, inputs: [out.csv]}]
          make:
            steps: [{id: s, run: x, outputs: [out.csv]}]
        """
    )
    assert plan.inferred == ()
    assert plan.step("use.s").needs == ("make.s",)


def test_reading_an_earlier_steps_output_in_the_same_job_is_fine() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            steps:
              - {id: w, run: x, outputs: [f.txt]}
              - {id: r, run: y, inputs: [f.txt]}
        """
    )
    assert plan.inferred == ()
    assert plan.step("a.r").needs == ("a.w",)


def test_reading_a_later_steps_output_in_the_same_job_is_an_error() -> None:
    text = """
        jobs:
          a:
            steps:
              - id: r
                run: y
                inputs: [f.txt]
              - id: w
                run: x
                outputs: [f.txt]
        """
    error = compile_error(text)
    assert_at(error, text, "id: r")
    assert "a.r" in error.detail and "a.w" in error.detail and "later" in error.detail


def test_two_steps_writing_one_output_is_an_error() -> None:
    text = """
        jobs:
          a:
            steps: [{id: s, run: x, outputs: [f.txt]}]
          b:
            steps: [{id: s, run: x, outputs: [f.txt]}]
        """
    error = compile_error(text)
    assert_at(error, text, "f.txt", nth=1)
    assert "both write" in error.detail


def test_inferred_cycle_is_reported() -> None:
    text = """
        jobs:
          a:
            needs: b
            steps: [{id: s, run: x, outputs: [a.txt]}]
          b:
            steps: [{id: s, run: x, inputs: [a.txt]}]
        """
    error = compile_error(text)
    assert "cycle" in error.detail and " -> " in error.detail


# -- outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        ("/etc/passwd", "outside the project"),
        ("../up.txt", "outside the project"),
        ("data/../../up.txt", "outside the project"),
        ("..", "outside the project"),
        ("data/*.csv", "glob"),
        ("model-?.pkl", "glob"),
        ("out/[ab].txt", "glob"),
        (".", "whole project"),
        (".git/config", "git"),
        (".conveyor/x", "Conveyor"),
    ],
)
def test_bad_outputs(output: str, fragment: str) -> None:
    text = f"""
        jobs:
          a:
            steps:
              - run: x
                outputs: [ok.txt, "{output}"]
        """
    error = compile_error(text)
    assert fragment in error.detail
    assert_at(error, text, f'"{output}"')


def test_outputs_are_normalised() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            steps: [{id: s, run: x, outputs: [./out/, "data//x.csv"], inputs: [./in.csv]}]
        """
    )
    assert plan.step("a.s").outputs == ("out", "data/x.csv")
    assert plan.step("a.s").inputs == ("in.csv",)


def test_a_templated_output_outside_the_project_is_refused() -> None:
    text = """
        params: {dir: ..}
        jobs:
          a:
            steps:
              - run: x
                outputs: ["${{ params.dir }}/f.txt"]
        """
    error = compile_error(text)
    assert "outside the project" in error.detail
    assert_at(error, text, '"${{')


# -- matrix ----------------------------------------------------------------------------

MATRIX = """
    jobs:
      test:
        matrix:
          py: ["3.11", "3.12"]
          os: [linux, mac]
          exclude:
            - {py: "3.11", os: mac}
          include:
            - {py: "3.13", os: linux}
        steps:
          - id: run
            run: "pytest on ${{ matrix.os }} with ${{ matrix.py }}"
      report:
        needs: test
        steps:
          - id: sum
            run: summarise
    """


def test_matrix_expands_with_include_and_exclude() -> None:
    plan = compile_text(MATRIX)
    assert ids(plan) == [
        "test[py=3.11,os=linux].run",
        "test[py=3.12,os=linux].run",
        "test[py=3.12,os=mac].run",
        "test[py=3.13,os=linux].run",
        "report.sum",
    ]
    step = plan.step("test[py=3.12,os=mac].run")
    assert step.job == "test[py=3.12,os=mac]"
    assert step.command == "pytest on mac with 3.12"
    assert dict(step.matrix) == {"py": "3.12", "os": "mac"}


def test_a_job_needing_a_matrix_job_waits_for_every_instance() -> None:
    plan = compile_text(MATRIX)
    assert plan.step("report.sum").needs == (
        "test[py=3.11,os=linux].run",
        "test[py=3.12,os=linux].run",
        "test[py=3.12,os=mac].run",
        "test[py=3.13,os=linux].run",
    )


def test_matrix_instances_run_their_steps_in_order() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            matrix: {k: [1, 2]}
            steps:
              - {id: one, run: x}
              - {id: two, run: y}
        """
    )
    assert plan.step("a[k=1].two").needs == ("a[k=1].one",)
    assert plan.step("a[k=2].two").needs == ("a[k=2].one",)
    assert plan.step("a[k=2].one").needs == ()


def test_include_alone_makes_the_instances() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            matrix:
              include: [{k: x}, {k: y}]
            steps: [{id: s, run: "${{ matrix.k }}"}]
        """
    )
    assert ids(plan) == ["a[k=x].s", "a[k=y].s"]
    assert [s.command for s in plan.steps] == ["x", "y"]


def test_matrix_axis_without_values() -> None:
    text = """
        jobs:
          a:
            matrix:
              seed: [1, 2]
              lr: []
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert "'lr'" in error.detail and "no values" in error.detail
    assert_at(error, text, "lr")


def test_matrix_exclude_removing_everything() -> None:
    text = """
        jobs:
          a:
            matrix:
              seed: [1]
              exclude: [{seed: 1}]
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert "no job instance" in error.detail
    assert_at(error, text, "matrix")


def test_matrix_entry_that_is_not_a_mapping() -> None:
    text = """
        jobs:
          a:
            matrix:
              seed: [1]
              exclude: [seed]
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert "mapping" in error.detail
    assert_at(error, text, "exclude")


def test_matrix_value_not_a_list_is_a_spec_error() -> None:
    text = """
        jobs:
          a:
            matrix:
              seed: 1
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert_at(error, text, "seed")


# -- templates ---------------------------------------------------------------------------


def test_templates_render_params_and_matrix() -> None:
    plan = compile_text(
        """
        params:
          lr: 0.1
          epochs: 3
          unused: x
        env:
          MODE: ${{ params.lr }}
        jobs:
          fit:
            matrix: {seed: [7]}
            steps:
              - name: fit ${{ matrix.seed }}
                run: python fit.py --lr ${{ params.lr }} --seed ${{matrix.seed}}
                outputs: ["model-${{ matrix.seed }}.pkl"]
                inputs: ["data/${{ params.epochs }}.csv"]
        """
    )
    (step,) = plan.steps
    assert step.command == "python fit.py --lr 0.1 --seed 7"
    assert step.name == "fit 7"
    assert step.id == "fit[seed=7].step-1"  # a templated name gives no slug
    assert step.outputs == ("model-7.pkl",)
    assert step.inputs == ("data/3.csv",)
    assert dict(step.env) == {"MODE": "0.1"}
    assert dict(step.params) == {"epochs": 3, "lr": 0.1}  # only those it refers to


def test_sandboxed_expressions_evaluate() -> None:
    plan = compile_text(
        """
        params: {n: 4}
        jobs:
          a:
            steps: [{id: s, run: "echo ${{ params.n * 2 }}"}]
        """
    )
    assert plan.step("a.s").command == "echo 8"
    assert dict(plan.step("a.s").params) == {"n": 4}


def test_text_without_templates_is_untouched() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            steps: [{id: s, run: "echo ${HOME} {{ x }} $((1+2))"}]
        """
    )
    assert plan.step("a.s").command == "echo ${HOME} {{ x }} $((1+2))"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("${{ foo.bar }}", "unknown name 'foo'"),
        ("${{ params.nope }}", "params.nope is not defined"),
        ("${{ matrix.k }}", "matrix.k is not defined"),
        ("${{ 1 + }}", "cannot parse"),
        ("${{ nothing }}", "nothing"),
        ("${{ params.n.foo }}", "foo"),
    ],
)
def test_unknown_template_names_are_errors_at_their_key(expr: str, fragment: str) -> None:
    text = f"""
        params: {{n: 1}}
        jobs:
          a:
            steps:
              - name: first
                run: "echo {expr}"
        """
    error = compile_error(text)
    assert fragment in error.detail
    assert_at(error, text, "run")


def test_unknown_template_name_in_env_is_at_the_env_key() -> None:
    text = """
        jobs:
          a:
            steps:
              - run: x
                env:
                  OK: fine
                  BAD: ${{ params.nope }}
        """
    error = compile_error(text)
    assert_at(error, text, "BAD")


# -- env -------------------------------------------------------------------------------


def test_env_merges_pipeline_job_step_and_renders_scalars() -> None:
    plan = compile_text(
        """
        env: {A: pipeline, B: pipeline, C: pipeline, FLAG: true, N: 3}
        jobs:
          a:
            env: {B: job, C: job}
            steps:
              - id: s
                run: x
                env: {C: step}
        """
    )
    assert plan.step("a.s").env == (
        ("A", "pipeline"),
        ("B", "job"),
        ("C", "step"),
        ("FLAG", "true"),
        ("N", "3"),
    )


# -- params ----------------------------------------------------------------------------

PARAMS = """
    params:
      n: 3
      lr: {type: float, default: 0.5}
      name: {type: str, default: run}
      fast: false
    jobs:
      a:
        steps:
          - id: s
            run: "go ${{ params.n }} ${{ params.lr }} ${{ params.name }} ${{ params.fast }}"
    """


def test_param_defaults_and_overrides() -> None:
    plan = compile_text(PARAMS)
    assert plan.params == (("fast", False), ("lr", 0.5), ("n", 3), ("name", "run"))
    assert plan.step("a.s").command == "go 3 0.5 run false"
    plan = compile_text(PARAMS, ["n=10", "lr=1e-3", "name=x=y", "fast=yes"])
    assert dict(plan.params) == {"n": 10, "lr": 0.001, "name": "x=y", "fast": True}
    assert plan.step("a.s").command == "go 10 0.001 x=y true"


@pytest.mark.parametrize(
    ("given", "value"),
    [("n=-4", -4), ("fast=off", False), ("fast=TRUE", True), ("lr=2", 2.0), ("name=", "")],
)
def test_parse_params_coerces(given: str, value: Any) -> None:
    spec = spec_of(PARAMS)
    name = given.partition("=")[0]
    parsed = parse_params(spec, [given])
    assert parsed == {name: value}
    assert type(parsed[name]) is type(value)


@pytest.mark.parametrize("given", ["n=abc", "n=1.5", "lr=fast", "fast=maybe", "n="])
def test_parse_params_wrong_type(given: str) -> None:
    spec = spec_of(PARAMS)
    with pytest.raises(ParamError) as info:
        parse_params(spec, [given])
    assert info.value.exit_code == 2
    assert repr(given.partition("=")[0]) in str(info.value)


def test_parse_params_int_message() -> None:
    with pytest.raises(ParamError, match=r"'n' is int, and 'abc' is not a valid int"):
        parse_params(spec_of(PARAMS), ["n=abc"])


@pytest.mark.parametrize("given", ["nope=1", "=1", "n"])
def test_parse_params_unknown_or_malformed(given: str) -> None:
    with pytest.raises(ParamError):
        parse_params(spec_of(PARAMS), [given])


def test_unknown_param_names_the_declared_ones() -> None:
    with pytest.raises(ParamError, match=r"unknown parameter 'epochs'.*fast, lr, n, name"):
        parse_params(spec_of(PARAMS), ["epochs=3"])


@pytest.mark.parametrize(
    ("given", "value"),
    [
        ({"n": 4}, 4),
        ({"lr": 2}, 2.0),
        ({"lr": 0.5}, 0.5),
        ({"fast": True}, True),
        ({"name": 5}, "5"),
        ({"name": False}, "false"),
        ({"n": "7"}, 7),
    ],
)
def test_typed_params_keep_their_type(given: dict[str, Any], value: Any) -> None:
    checked = check_params(spec_of(PARAMS), given)
    assert list(checked.values()) == [value]
    assert type(next(iter(checked.values()))) is type(value)


@pytest.mark.parametrize(
    "given", [{"n": 1.5}, {"n": True}, {"lr": False}, {"fast": 1}, {"fast": 0.0}]
)
def test_typed_params_of_the_wrong_type(given: dict[str, Any]) -> None:
    with pytest.raises(ParamError, match=f"parameter '{next(iter(given))}' is"):
        check_params(spec_of(PARAMS), given)


def test_compile_checks_typed_params() -> None:
    with pytest.raises(ParamError, match="'n' is int"):
        compile_plan(spec_of(PARAMS), {"n": 2.5})
    assert dict(compile_plan(spec_of(PARAMS), {"n": 2}).params)["n"] == 2


def test_compile_refuses_an_unknown_param() -> None:
    with pytest.raises(ParamError, match="unknown parameter 'epochs'"):
        compile_plan(spec_of(PARAMS), {"epochs": 3})


@pytest.mark.parametrize("declared", ["{type: int}", ""])
def test_param_without_default_must_be_given(declared: str) -> None:
    text = f"""
        params:
          seed: {declared}
        jobs:
          a:
            steps: [{{id: s, run: "echo ${{{{ params.seed }}}}"}}]
        """
    with pytest.raises(ParamError, match="'seed' has no default"):
        compile_text(text)
    assert compile_text(text, ["seed=5"]).step("a.s").command == "echo 5"


def test_param_default_of_the_wrong_type_is_a_spec_error() -> None:
    text = """
        params:
          n: {type: int, default: many}
        jobs:
          a:
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert "'n'" in error.detail and "int" in error.detail
    assert_at(error, text, "default")


# -- selection -------------------------------------------------------------------------


def test_only_keeps_the_upstream_closure() -> None:
    plan = compile_text(PIPELINE, only=["train.fit"])
    assert ids(plan) == ["prep.fetch", "prep.clean", "train.fit"]


def test_only_a_job_keeps_its_steps_and_their_upstream() -> None:
    plan = compile_text(PIPELINE, only=["prep"])
    assert ids(plan) == ["prep.fetch", "prep.clean"]
    plan = compile_text(PIPELINE, only=["docs", "prep.fetch"])
    assert ids(plan) == ["prep.fetch", "docs.build"]


def test_only_a_step_name_alone() -> None:
    plan = compile_text(PIPELINE, only=["score"])
    assert ids(plan) == ["prep.fetch", "prep.clean", "train.fit", "train.score"]


def test_only_keeps_inferred_upstream_and_drops_the_rest() -> None:
    plan = compile_text(
        """
        jobs:
          use:
            steps: [{id: s, run: x, inputs: [f.txt]}]
          make:
            steps: [{id: s, run: x, outputs: [f.txt]}]
          other:
            steps: [{id: s, run: x, outputs: [g.txt]}]
        """,
        only=["use.s"],
    )
    assert ids(plan) == ["make.s", "use.s"]
    assert plan.inferred == (("use.s", "make.s", "f.txt"),)


def test_only_naming_nothing_is_a_param_error() -> None:
    with pytest.raises(ParamError, match="'nope'"):
        compile_text(PIPELINE, only=["nope"])


# -- step ids --------------------------------------------------------------------------


def test_step_ids_default_from_name_or_position() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            steps:
              - name: Train the Model!
                run: x
              - run: y
              - name: "!!!"
                run: z
              - id: explicit
                name: Something Else
                run: w
        """
    )
    assert ids(plan) == ["a.train-the-model", "a.step-2", "a.step-3", "a.explicit"]
    assert plan.step("a.train-the-model").name == "Train the Model!"
    assert plan.step("a.step-2").name == "step-2"
    assert plan.step("a.explicit").name == "Something Else"


def test_a_dotted_name_gives_a_dotless_id() -> None:
    plan = compile_text("jobs:\n  a:\n    steps:\n      - {name: v1.2 fit, run: x}\n")
    (step,) = plan.steps
    assert step.id == "a.v1-2-fit"


def test_duplicate_step_id_in_a_job() -> None:
    text = """
        jobs:
          a:
            steps:
              - id: fit
                run: x
              - id: fit
                run: y
        """
    error = compile_error(text)
    assert "duplicate step id 'fit'" in error.detail and "'a'" in error.detail
    assert_at(error, text, "id: fit", nth=1)


def test_duplicate_default_ids_from_names() -> None:
    error = compile_error(
        """
        jobs:
          a:
            steps:
              - {name: Fit, run: x}
              - {name: fit, run: y}
        """
    )
    assert "duplicate step id 'fit'" in error.detail


def test_the_same_step_id_in_two_jobs_is_fine() -> None:
    plan = compile_text(
        """
        jobs:
          a: {steps: [{id: s, run: x}]}
          b: {steps: [{id: s, run: x}]}
        """
    )
    assert ids(plan) == ["a.s", "b.s"]


# -- run policy, timeouts, resources ----------------------------------------------------


@pytest.mark.parametrize(
    ("written", "policy"),
    [
        ("success()", "success"),
        ("failure()", "failure"),
        ("always()", "always"),
        ("${{ failure() }}", "failure"),
        ("${{always()}}", "always"),
        ("'  success()  '", "success"),
    ],
)
def test_if_accepts_run_policies(written: str, policy: str) -> None:
    text = f"jobs:\n  a:\n    steps:\n      - id: s\n        run: x\n        if: {written}\n"
    plan = compile_plan(parse_pipeline(text, FILE), {})
    assert plan.step("a.s").policy == policy


@pytest.mark.parametrize(
    "written",
    ["cancelled()", "'true'", "success", "'success() && failure()'", "github.ok", "'${{ x }}'"],
)
def test_if_rejects_anything_else(written: str) -> None:
    text = f"jobs:\n  a:\n    steps:\n      - run: x\n        if: {written}\n"
    with pytest.raises(SpecError) as info:
        compile_plan(parse_pipeline(text, FILE), {})
    assert "run policy" in info.value.detail
    assert info.value.position == Position(FILE, 5, 9)


def test_if_that_is_not_text_is_a_spec_error_at_its_key() -> None:
    text = "jobs:\n  a:\n    steps:\n      - run: x\n        if: true\n"
    with pytest.raises(SpecError) as info:
        compile_plan(parse_pipeline(text, FILE), {})
    assert info.value.position == Position(FILE, 5, 9)


@pytest.mark.parametrize("written", ["'${{ always()'", "'always() }}'"])
def test_if_rejects_unbalanced_template_braces(written: str) -> None:
    text = f"jobs:\n  a:\n    steps:\n      - run: x\n        if: {written}\n"
    with pytest.raises(SpecError) as info:
        compile_plan(parse_pipeline(text, FILE), {})
    assert info.value.position == Position(FILE, 5, 9)


def test_timeout_and_retries_reach_the_plan() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            steps:
              - {id: s, run: x, timeout: 5m, retries: 2}
              - {id: t, run: x, timeout: 90s}
              - {id: u, run: x, timeout: 30}
              - {id: v, run: x}
        """
    )
    assert [(s.timeout, s.retries) for s in plan.steps] == [
        (300.0, 2),
        (90.0, 0),
        (30.0, 0),
        (None, 0),
    ]


def test_resources_with_units() -> None:
    plan = compile_text(
        """
        jobs:
          a:
            resources: {cpus: 2, memory: 4G, disk: 512M}
            steps:
              - {id: s, run: x}
              - {id: t, run: x, resources: {cpus: 4, memory: 1.5G, gpus: 1, disk: 100}}
        """
    )
    s, t = plan.step("a.s").resources, plan.step("a.t").resources
    assert (s.cpus, s.memory_mb, s.gpus, s.disk_mb) == (2.0, 4096, 0, 512)
    assert (t.cpus, t.memory_mb, t.gpus, t.disk_mb) == (4.0, 1536, 1, 100)


def test_a_bad_size_is_a_spec_error() -> None:
    text = """
        jobs:
          a:
            resources: {memory: lots}
            steps: [{run: x}]
        """
    error = compile_error(text)
    assert "'lots'" in error.detail
    assert_at(error, text, "memory")
