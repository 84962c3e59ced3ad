"""The plain reader of conveyor.yml (spec/plainspec.py) against the pydantic model: the
same plan or the same error for every file it reads, None for every file it is not sure
of (which the model then loads, as before)."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.errors import ConveyorError
from conveyor.plan.compile import compile_plan
from conveyor.sdk.listing import ProjectFiles
from conveyor.spec import model, plainspec
from conveyor.spec.formats import parse_text
from conveyor.spec.plainspec import parse_file, plain_spec


def read_plain(path: Path, display: str) -> model.PipelineSpec | None:
    """The file as the run path reads it on a plan-cache miss: plain objects, or None."""
    parsed = parse_file(path, display)
    return None if parsed is None else plain_spec(parsed)


ROOT = Path(__file__).resolve().parents[2]
CORPUS = sorted(
    p
    for base in (ROOT / "tests", ROOT / "examples")
    for suffix in ("*.yml", "*.yaml")
    for p in base.rglob(suffix)
    if ".venv" not in p.parts
)
BAD_VALUES: list[Any] = [
    None,
    0,
    -1,
    101,
    1.5,
    True,
    "",
    "x y",
    "90s",
    [],
    ["a"],
    [1],
    {},
    {"a": 1},
]


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _outcome(load: Callable[[], Any], path: Path) -> tuple[Any, ...]:
    """The plan (as JSON) or the error a spec gives, with the side files of a golden case."""
    params = dict(line.split("=", 1) for line in _lines(path.with_suffix(".params")))
    only = _lines(path.with_suffix(".only"))
    try:
        spec = load()
        with tempfile.TemporaryDirectory() as root:
            for rel in _lines(path.with_suffix(".files")):
                (Path(root) / rel).parent.mkdir(parents=True, exist_ok=True)
                (Path(root) / rel).touch()
            plan = compile_plan(spec, params, only, ProjectFiles(Path(root)))
        return ("plan", json.dumps(plan.to_json(), sort_keys=True))
    except ConveyorError as exc:
        return ("error", type(exc).__name__, str(exc))


def _compare(path: Path, display: str = "conveyor.yml") -> bool:
    """Both loaders give the same outcome; False when the plain reader declines."""
    plain = read_plain(path, display)
    if plain is None:
        return False
    text = path.read_text(encoding="utf-8")
    try:
        spec = parse_text(text, display, "conveyor", path.parent)
    except ConveyorError as exc:
        pytest.fail(f"the plain reader took a file the model refuses ({exc}):\n{text[:2000]}")
    assert _outcome(lambda: plain, path) == _outcome(lambda: spec, path), text[:2000]
    return True


def _model_defaults(cls: type[model.BaseModel], skip: set[str]) -> dict[str, Any]:
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in cls.model_fields.items()
        if name not in skip
    }


def test_plain_objects_carry_every_field_of_the_model_with_its_default() -> None:
    assert plainspec.step_defaults() == _model_defaults(model.StepSpec, set())
    assert plainspec.job_defaults() == _model_defaults(model.JobSpec, {"steps"})
    assert plainspec.pipeline_defaults() == _model_defaults(model.PipelineSpec, {"on", "jobs"})
    assert plainspec.param_defaults() == _model_defaults(model.ParamSpec, set())


@pytest.mark.parametrize(
    ("keys", "cls"),
    [
        (plainspec.STEP_KEYS, model.StepSpec),
        (plainspec.JOB_KEYS, model.JobSpec),
        (plainspec.PIPELINE_KEYS, model.PipelineSpec),
    ],
)
def test_every_key_read_is_a_key_of_the_model(keys: dict[str, Any], cls: Any) -> None:
    written = {field.alias or name for name, field in cls.model_fields.items()}
    assert set(keys) <= written


def test_the_corpus_is_found_and_partly_read() -> None:
    assert len(CORPUS) > 100
    read = [p for p in CORPUS if read_plain(p, "conveyor.yml") is not None]
    assert len(read) >= 8, read  # golden cases, examples, format cases


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_plan_or_error_as_the_model(path: Path) -> None:
    _compare(path)


def _paths(data: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*here, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*here, index))


def _set(data: Any, where: tuple[Any, ...], value: Any) -> Any:
    if not where:
        return value
    out = copy.deepcopy(data)
    node = out
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return out


def _readable() -> list[Path]:
    return [p for p in CORPUS if read_plain(p, "conveyor.yml") is not None]


@pytest.mark.parametrize("path", _readable(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_value_changed_to_a_wrong_type_behaves_as_with_the_model(
    path: Path, tmp_path: Path
) -> None:
    """Each value of a file the reader takes, replaced by values of other types and
    shapes, and each key renamed: the reader declines, or gives the model's outcome."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    target = tmp_path / "conveyor.yml"
    for where in list(_paths(data))[:400]:
        variants = [_set(data, where, bad) for bad in BAD_VALUES]
        if where and isinstance(where[-1], str):  # the key misspelt, or in field spelling
            parent = _set(data, (), data)
            node = parent
            for part in where[:-1]:
                node = node[part]
            for other in (where[-1] + "s", where[-1].replace("-", "_"), "uses", "on"):
                if other not in node:
                    renamed = copy.deepcopy(parent)
                    spot = renamed
                    for part in where[:-1]:
                        spot = spot[part]
                    spot[other] = spot.pop(where[-1])
                    variants.append(renamed)
        for variant in variants:
            target.write_text(yaml.safe_dump(variant, sort_keys=False), encoding="utf-8")
            _compare(target)


HOSTILE = {
    "deep": "jobs:\n  a:\n    steps:\n      - run: x\n        env: " + "[" * 80 + "]" * 80 + "\n",
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
        for p, c in zip("abcdef", "bcdefg", strict=True)
    )
    + "jobs: {j: {steps: [{run: x}]}}\n",
    "recursive alias": "jobs: &j {j: {steps: [{run: x, env: *j}]}}\n",
    "duplicate key": "jobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: [{run: y}]\n",
    "duplicate step key": "jobs:\n  a:\n    steps:\n      - run: x\n        run: y\n",
    "non-string key": "jobs:\n  1:\n    steps: [{run: x}]\n  true:\n    steps: [{run: y}]\n",
    "mapping key": "jobs:\n  ? [a, b]\n  : steps: [{run: x}]\n",
    "merge key": "base: &b {run: x, outputs: [o]}\njobs: {a: {steps: [{<<: *b, id: s}]}}\n",
    "merged step": "jobs: {a: {steps: [{<<: {run: x, outputs: [o]}, id: s}]}}\n",
    "binary": "jobs: {a: {steps: [{run: !!binary aGVsbG8=}]}}\n",
    "timestamp": "jobs: {a: {steps: [{run: x, env: {T: 2024-01-01}}]}}\n",
    "huge int": "jobs: {a: {steps: [{run: x, retries: " + "9" * 5000 + "}]}}\n",
    "two documents": "jobs: {a: {steps: [{run: x}]}}\n---\njobs: {b: {steps: [{run: y}]}}\n",
    "not a mapping": "- jobs\n",
    "empty": "",
    "invalid yaml": "jobs: {a: [}\n",
    "tab": "jobs:\n\ta: {}\n",
    "python tag": "jobs: !!python/object:os.system {}\n",
    "trailing newline name": 'jobs: {"a\\n": {steps: [{run: x}]}}\n',
    "long name": "jobs: {" + "a" * 101 + ": {steps: [{run: x}]}}\n",
    "unicode name": "jobs: {ä: {steps: [{run: x}]}}\n",
    "null steps": "jobs: {a: {steps: }}\n",
    "no run": "jobs: {a: {steps: [{id: s}]}}\n",
    "empty run": "jobs: {a: {steps: [{run: ''}]}}\n",
    "null env value": "jobs: {a: {steps: [{run: x, env: {A: }}]}}\n",
    "bad policy": "jobs: {a: {steps: [{run: x, if: 'sometimes()'}]}}\n",
    "bad duration": "jobs: {a: {steps: [{run: x, timeout: 0}]}}\n",
    "inf duration": "jobs: {a: {steps: [{run: x, timeout: .inf}]}}\n",
    "bool retries": "jobs: {a: {steps: [{run: x, retries: true}]}}\n",
    "string cache": "jobs: {a: {steps: [{run: x, cache: 'false'}]}}\n",
    "param bad default": "params: {n: {type: int, default: x}}\njobs: {a: {steps: [{run: x}]}}\n",
    "param shorthand": "params: {n: 3, f: 0.5, b: true, s: hi, z: }\n"
    "jobs: {a: {steps: [{run: 'echo ${{ params.n }} ${{ params.z }}'}]}}\n",
    "param list": "params: {n: [1]}\njobs: {a: {steps: [{run: x}]}}\n",
    "matrix not lists": "jobs: {a: {matrix: {i: 3}, steps: [{run: x}]}}\n",
    "matrix empty axis": "jobs: {a: {matrix: {i: []}, steps: [{run: x}]}}\n",
    "matrix include": "jobs: {a: {matrix: {i: [1, 2], include: [{i: 3}], exclude: [{i: 1}]}, "
    "steps: [{run: 'echo ${{ matrix.i }}', outputs: ['o${{ matrix.i }}']}]}}\n",
    "needs unknown": "jobs: {a: {needs: b, steps: [{run: x}]}}\n",
    "needs cycle": "jobs: {a: {needs: b, steps: [{run: x}]}, b: {needs: a, steps: [{run: y}]}}\n",
    "zero concurrency": "jobs: {a: {concurrency: 0, steps: [{run: x}]}}\n",
    "uses": "jobs: {a: {steps: [{uses: ./act}]}}\n",
    "field spelling": "jobs: {a: {steps: [{run: x, continue_on_error: true}]}}\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_behave_as_with_the_model(name: str, tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_text(HOSTILE[name], encoding="utf-8")
    _compare(path)


def test_errors_of_a_file_the_reader_declines_are_the_models(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.yml"
    path.write_text("jobs: {a: {steps: [{run: x, ouputs: [o]}]}}\n", encoding="utf-8")
    assert read_plain(path, "conveyor.yml") is None
    assert read_plain(tmp_path / "missing.yml", "missing.yml") is None
    (tmp_path / "dir.yml").mkdir()
    assert read_plain(tmp_path / "dir.yml", "dir.yml") is None


def test_a_huge_matrix_gives_the_same_plan(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(2000))
    path = tmp_path / "conveyor.yml"
    path.write_text(
        f"jobs:\n  leaf:\n    matrix: {{i: [{values}], j: [a, b]}}\n    steps:\n"
        "      - run: echo ${{ matrix.i }} > out/${{ matrix.i }}-${{ matrix.j }}\n"
        "        outputs: ['out/${{ matrix.i }}-${{ matrix.j }}']\n"
        "  join: {needs: leaf, steps: [{run: cat out/*, inputs: [out]}]}\n",
        encoding="utf-8",
    )
    assert _compare(path)


def test_a_declined_file_is_parsed_once_and_loaded_by_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.sdk import plancache
    from conveyor.sdk.project import Project
    from conveyor.spec import formats

    (tmp_path / "conveyor.yml").write_text(
        "on: {push: {branches: [main]}}\njobs: {a: {steps: [{run: x}]}}\n", encoding="utf-8"
    )
    calls: list[str] = []
    for module in (plainspec, formats):
        inner = module.load_documents  # type: ignore[attr-defined]

        def counted(text: str, path: str, inner: Any = inner) -> Any:
            calls.append(path)
            return inner(text, path)

        monkeypatch.setattr(module, "load_documents", counted)
    spec = plancache._load(Project.discover(tmp_path))
    assert isinstance(spec, model.PipelineSpec)  # the model's: `on` is not read plainly
    assert spec.on.push is not None and spec.on.push.branches == ["main"]
    assert len(calls) == 1
