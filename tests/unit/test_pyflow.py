"""Python pipelines: tracing draws the DAG without running steps, kinds from type hints,
shape errors at the file and line of the ``def`` or the call, and what keys the cache."""

from __future__ import annotations

import importlib.util
import json
import linecache
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.load import validate
from conveyor.spec.pycode import code_digest, code_files
from conveyor.spec.pyflow import Result
from conveyor.spec.pyspec import native
from conveyor.spec.pytypes import Kind, KindError, kind_of
from conveyor.spec.yamlsource import SourceMap

HERE = Path(__file__).resolve()
CALLED: list[str] = []


@conveyor.step
def numbers(n: int) -> list[int]:
    CALLED.append("numbers")
    return list(range(n))


@conveyor.step
def total(values: list[int], scale: float) -> float:
    CALLED.append("total")
    return sum(values) * scale


@conveyor.step
def label(value: float, text: str) -> str:
    return f"{text}={value}"


@conveyor.pipeline
def flow(n: int = 3, caption: str = "sum") -> None:
    values = numbers(n)
    label(total(values, 0.5), caption)
    label(total(numbers(2), 2), "again")


def test_tracing_draws_the_dag_without_running_a_step() -> None:
    CALLED.clear()
    traced = flow.trace()
    assert [c.id for c in traced.calls] == [
        "numbers",
        "total",
        "label",
        "numbers-2",
        "total-2",
        "label-2",
    ]
    assert CALLED == []
    arguments = traced.calls[1].arguments
    assert isinstance(arguments["values"], Result) and arguments["values"].call.id == "numbers"
    assert arguments["scale"] == 0.5
    assert traced.params["n"][0] == Kind("int")


def test_outside_a_pipeline_a_step_is_its_function() -> None:
    assert total([1, 2, 3], 2.0) == 12.0
    assert flow.fn is not None and label(1.5, "x") == "x=1.5"


@conveyor.pipeline(name="with-env", env={"CONVEYOR_PYTHON": "/opt/py/bin/python3"})
def with_env(n: int) -> None:
    numbers(n)


def test_the_pipeline_env_reaches_every_step() -> None:
    data, _ = native(with_env.trace(), HERE.parents[2])
    assert data["env"] == {"CONVEYOR_PYTHON": "/opt/py/bin/python3"}
    assert list(data["jobs"]) == ["with-env"]
    plan = compile_plan(validate(data, SourceMap("p.py"), "python"), {"n": "1"}, (), lambda _p: [])
    assert dict(plan.steps[0].env)["CONVEYOR_PYTHON"] == "/opt/py/bin/python3"


def test_the_native_data_compiles_with_needs_from_results() -> None:
    data, marks = native(flow.trace(), HERE.parents[2])
    source = SourceMap("pipeline.py", {tuple(loc): (line, col) for loc, line, col in marks})
    plan = compile_plan(validate(data, source, "python"), {"n": "5"}, (), lambda _p: [])
    needs = {s.id: list(s.needs) for s in plan.steps}
    assert needs["flow.total"] == ["flow.numbers"]
    assert needs["flow.label"] == ["flow.total"]
    assert needs["flow.numbers"] == []
    step = next(s for s in plan.steps if s.id == "flow.numbers")
    assert "--value n int 5 --result json _pyflow/numbers/return.json" in step.command
    # a parameter given to a step argument of another name: the parameter's value
    label_step = next(s for s in plan.steps if s.id == "flow.label")
    assert "--value text str sum --result" in label_step.command
    assert "_pyflow/numbers/return.json" in step.outputs


@pytest.mark.parametrize(
    ("annotation", "kind"),
    [
        (str, "str"),
        (int, "int"),
        (bool, "bool"),
        (float, "float"),
        (dict[str, list[float]], "dict"),
        (list[dict[str, int | None]], "list"),
        (Path, "path"),
    ],
)
def test_kinds_of_annotations(annotation: Any, kind: str) -> None:
    assert str(kind_of(annotation)) == kind


@pytest.mark.parametrize("annotation", [set[int], object, dict[int, str], tuple[int, int], bytes])
def test_unserialisable_annotations_are_refused(annotation: Any) -> None:
    with pytest.raises(KindError):
        kind_of(annotation)


def test_a_dataframe_is_recognised_by_name() -> None:
    pandas = pytest.importorskip("pandas")
    assert kind_of(pandas.DataFrame) == Kind("dataframe")
    assert Kind("dataframe").file == "return.parquet"


def test_an_int_may_be_given_where_a_float_is_expected_not_the_reverse() -> None:
    assert Kind("float").accepts(Kind("int"))
    assert not Kind("int").accepts(Kind("float"))
    assert not Kind("json", "dict").accepts(Kind("json", "list"))


def _line_after() -> int:
    return sys._getframe(1).f_lineno + 1


def test_a_missing_annotation_is_an_error_at_the_def() -> None:
    line = _line_after()
    with pytest.raises(SpecError) as caught:

        @conveyor.step
        def untyped(n) -> int:  # type: ignore[no-untyped-def]
            return int(n)

    assert caught.value.position is not None
    assert (caught.value.position.path, caught.value.position.line) == (str(HERE), line + 2)
    assert "parameter 'n' has no type hint" in str(caught.value)


def test_a_missing_return_annotation_is_an_error() -> None:
    with pytest.raises(SpecError, match="the return value has no type hint"):

        @conveyor.step
        def no_return(n: int):  # type: ignore[no-untyped-def]
            return n


def test_an_unserialisable_return_is_an_error_at_the_def() -> None:
    with pytest.raises(SpecError, match=r"set.* cannot be stored as a typed file") as caught:

        @conveyor.step
        def a_set(n: int) -> set[int]:
            return {n}

    assert caught.value.position is not None and caught.value.position.path == str(HERE)


@conveyor.pipeline
def wrong_type() -> None:
    values = numbers(3)
    label(values, "x")  # type: ignore[arg-type]


def test_a_result_of_the_wrong_type_is_an_error_at_the_call() -> None:
    with pytest.raises(SpecError) as caught:
        wrong_type.trace()
    message = str(caught.value)
    assert "'value' expects float but is given the result of step numbers (list)" in message
    assert caught.value.position is not None
    assert caught.value.position.path == str(HERE)
    assert caught.value.position.line == wrong_type.fn.__code__.co_firstlineno + 3


@conveyor.step
def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@conveyor.pipeline
def nested() -> None:
    mean([total(numbers(2), 1.0), 2.0])


def test_a_result_inside_a_literal_is_an_error_at_the_call() -> None:
    with pytest.raises(SpecError, match="pass each as an argument of its own") as caught:
        nested.trace()
    assert caught.value.position is not None
    assert caught.value.position.line == nested.fn.__code__.co_firstlineno + 2


@conveyor.step(after=["second"])
def first(n: int) -> int:
    return n


@conveyor.step(after=["first"])
def second(n: int) -> int:
    return n


@conveyor.pipeline
def cyclic() -> None:
    first(1)
    second(2)


def test_a_cycle_is_an_error_before_any_step_runs() -> None:
    data, marks = native(cyclic.trace(), HERE.parents[2])
    source = SourceMap("pipeline.py", {tuple(loc): (line, col) for loc, line, col in marks})
    with pytest.raises(SpecError, match="cycle") as caught:
        compile_plan(validate(data, source, "python"), {}, (), lambda _p: [])
    assert caught.value.position is not None and caught.value.position.path == "pipeline.py"
    assert caught.value.position.line == cyclic.fn.__code__.co_firstlineno  # the pipeline


def test_a_pipeline_parameter_needs_a_scalar_hint() -> None:
    with pytest.raises(SpecError, match="parameter 'rows' needs a type hint"):

        @conveyor.pipeline
        def bad(rows: list[int]) -> None:
            numbers(len(rows))


def _module(directory: Path, name: str, text: str) -> Any:
    path = directory / f"{name}.py"
    # a cached .pyc of the last text of the same size, written in the same second, would
    # be taken for this one (its check is by mtime and size): there is none
    shutil.rmtree(directory / "__pycache__", ignore_errors=True)
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


STEPS = """\
import conveyor
import {helper}
import {unrelated}

RATE = {rate}


def scale(x: float) -> float:
    return x * RATE


def other() -> int:
    return {other}


@conveyor.step
def uses(x: float) -> float:
    return {helper}.double(scale(x))


@conveyor.step
def unused(x: float) -> float:
    return {unrelated}.VALUE + x
"""


def _steps(directory: Path, tag: str, rate: float = 2.0, other: int = 1) -> Any:
    linecache.clearcache()  # the same file names with new text
    helper, unrelated = f"helper_{tag}", f"unrelated_{tag}"
    _module(directory, f"base_{tag}", "def twice(x):\n    return 2 * x\n")
    _module(directory, helper, f"import base_{tag}\n\ndouble = base_{tag}.twice\n")
    _module(directory, unrelated, "VALUE = 1\n")
    text = STEPS.format(helper=helper, unrelated=unrelated, rate=rate, other=other)
    return _module(directory, f"steps_{tag}", text)


def test_code_files_are_the_project_modules_a_step_uses_transitively(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    steps = _steps(tmp_path, tag)
    root = tmp_path.resolve()
    assert code_files(steps.uses, root) == sorted([f"base_{tag}.py", f"helper_{tag}.py"])
    assert code_files(steps.unused, root) == [f"unrelated_{tag}.py"]


def test_the_code_digest_follows_the_functions_and_constants_the_step_uses(
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:8]
    base = code_digest(_steps(tmp_path, tag).uses)
    assert code_digest(_steps(tmp_path, tag, other=22).uses) == base  # a function it never calls
    assert code_digest(_steps(tmp_path, tag, rate=3.25).uses) != base  # a constant it reads


def test_the_runner_reads_and_writes_each_kind(tmp_path: Path) -> None:
    from conveyor import pystep

    assert pystep.read_text("int", "3") == 3
    assert pystep.read_text("float", "3") == 3.0
    assert pystep.read_text("bool", "true") is True
    assert pystep.read_text("json", '{"a": [1]}') == {"a": [1]}
    assert pystep.read_text("path", "data/x.csv") == Path("data/x.csv")
    with pytest.raises(pystep.StepInputError):
        pystep.read_text("int", "3.5")
    out = tmp_path / "r" / "return.json"
    pystep.write_result("float", str(out), 2.5)
    assert json.loads(out.read_text()) == 2.5
    assert pystep.read_file("float", str(out)) == 2.5
    with pytest.raises(TypeError):
        pystep.write_result("int", str(out), "three")
    with pytest.raises(TypeError):
        pystep.write_result("int", str(out), True)
    pystep.write_result("float", str(out), 3)
    assert pystep.read_file("float", str(out)) == 3.0


def test_the_runner_refuses_code_that_is_not_the_planned_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conveyor import pystep

    name = f"runner_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import conveyor\n\n\n@conveyor.step\ndef add(a: int, b: float) -> float:\n"
        "    return a + b\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    args = ["--value", "a", "int", "2", "--value", "b", "float", "0.5"]
    assert pystep.main([f"{name}:add", "sha256:0", *args, "--result", "float", "r.json"]) == 2
    assert "not the code the plan was made from" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    digest = code_digest(sys.modules[name].add)
    assert pystep.main([f"{name}:add", digest, *args, "--result", "float", "r.json"]) == 0
    assert json.loads((tmp_path / "r.json").read_text()) == 2.5


def test_a_pipeline_defined_in_a_notebook_is_refused_with_what_to_do() -> None:
    from conveyor.errors import UsageError
    from conveyor.sdk.client import _pipeline_file

    namespace: dict[str, Any] = {"__name__": "__main__", "conveyor": conveyor, "label": label}
    exec(  # what a notebook cell does: the function's module is __main__
        compile("@conveyor.pipeline\ndef cell() -> None:\n    label(1.0, 'x')\n", "<cell>", "exec"),
        namespace,
    )
    with pytest.raises(UsageError, match="define it in a module"):
        _pipeline_file(namespace["cell"])
    assert _pipeline_file(flow) == HERE


def test_pipeline_py_is_the_pipeline_file_when_there_is_no_yaml_one(tmp_path: Path) -> None:
    from conveyor.spec.files import find_pipeline_file

    (tmp_path / "pipeline.py").write_text("")
    assert find_pipeline_file(tmp_path) == tmp_path / "pipeline.py"
    (tmp_path / ".drone.yml").write_text("")
    assert find_pipeline_file(tmp_path) == tmp_path / ".drone.yml"
