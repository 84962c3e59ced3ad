"""Checks of a pipeline's values that hold whatever the run (``spec/validate.py``,
``spec/params.py``), and the executor tables a job passes on opaquely: the compiler
calls them, so their errors keep the file:line of the value."""

from __future__ import annotations

import textwrap

import pytest

from conveyor.domain.types import Resources
from conveyor.errors import ParamError, SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec import validate
from conveyor.spec.load import parse_pipeline
from conveyor.spec.model import ResourcesSpec
from conveyor.spec.params import check_params

PIPELINE = textwrap.dedent(
    """\
    params:
      n: {type: int, default: 2}
    jobs:
      a:
        htcondor:
          request_memory: 2048
          accounting_group: group_ml
        steps:
          - id: s
            run: echo hi
            if: ${{ failure() }}
    """
)


def test_run_policies_in_their_spellings() -> None:
    source = parse_pipeline(PIPELINE, "conveyor.yml").source
    assert validate.run_policy("success()", source, ()) == "success"
    assert validate.run_policy("${{ always() }}", source, ()) == "always"
    with pytest.raises(SpecError, match="is not a run policy"):
        validate.run_policy("sometimes()", source, ("jobs", "a", "steps", 0, "if"))


def test_sizes_in_megabytes() -> None:
    source = parse_pipeline(PIPELINE, "conveyor.yml").source
    assert validate.megabytes("4G", source, ()) == 4096
    assert validate.megabytes("512k", source, ()) == 1
    assert validate.megabytes(300, source, ()) == 300
    spec = ResourcesSpec(cpus=2, memory="1.5GiB")
    assert validate.resources(spec, source, ()) == Resources(cpus=2.0, memory_mb=1536)
    with pytest.raises(SpecError, match="is not a size"):
        validate.megabytes("lots", source, ("jobs", "a", "resources", "memory"))


def test_matrix_entries_are_checked() -> None:
    source = parse_pipeline(PIPELINE, "conveyor.yml").source
    axes = validate.matrix_axes({"x": [1, 2], "include": [{"x": 3}]}, source, ())
    assert axes == {"x": [1, 2]}
    with pytest.raises(SpecError, match="matrix exclude entries are mappings"):
        validate.matrix_axes({"x": [1], "exclude": ["x"]}, source, ())


def test_params_are_read_as_their_declared_type() -> None:
    spec = parse_pipeline(PIPELINE, "conveyor.yml")
    assert check_params(spec, {"n": "3"}) == {"n": 3}
    with pytest.raises(ParamError, match="unknown parameter"):
        check_params(spec, {"m": "3"})


def test_a_jobs_executor_table_reaches_the_plan_as_prefixed_options() -> None:
    spec = parse_pipeline(PIPELINE, "conveyor.yml")
    expected = (("htcondor.accounting_group", "group_ml"), ("htcondor.request_memory", "2048"))
    assert spec.jobs["a"].executor_options() == expected
    step = compile_plan(spec).step("a.s")
    assert step.options == expected
    assert step.policy == "failure"
