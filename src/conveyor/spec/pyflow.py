"""``@conveyor.step`` and ``@conveyor.pipeline``: pipelines written in Python.

A step is a function whose parameters and return value are typed (``spec/pytypes.py``).
A pipeline is a function that calls steps; tracing it (:meth:`PipelineFunction.trace`)
calls it once with placeholders, so that each step call records a node and returns a
:class:`Result` that later calls take as an argument: that draws the DAG. No step's
function runs while tracing. Outside a trace a step is its plain function (a test, a
notebook cell).

Every shape error (a missing or unusable annotation, a result given where another type
is expected) is a :class:`SpecError` at the file and line of the ``def`` or the call.
Stdlib only: a step's module imports this on every worker.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Generic, ParamSpec, TypeVar, overload

from conveyor.errors import Position, SpecError
from conveyor.spec.pytypes import SCALARS, Kind, KindError, kind_of, value_kind

P = ParamSpec("P")
R = TypeVar("R")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
MAX_STEPS = 10_000
"""The most step calls one pipeline may trace (a runaway loop is a mistake)."""


def where_defined(fn: Callable[..., Any]) -> Position:
    """The file and line of a function's ``def``."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return Position("<unknown>")
    return Position(code.co_filename, code.co_firstlineno, 1)


def _precise(frame: types.FrameType) -> Position:
    """The file, line and column of the code a frame is running (the column costs a walk
    over the code's positions: for errors only)."""
    info = inspect.getframeinfo(frame, context=0)
    column = info.positions.col_offset if info.positions else None
    return Position(info.filename, info.lineno, (column or 0) + 1)


def _hints(fn: Callable[..., Any], where: Position) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # a hint naming what does not exist: the user's mistake
        raise SpecError(
            f"the type hints of {fn.__qualname__} cannot be read: {exc}", where
        ) from None


class StepFunction(Generic[P, R]):
    """A function made a step by ``@conveyor.step``; calling it inside a pipeline records
    the call, elsewhere runs the function."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        cache: bool = True,
        retries: int = 0,
        timeout: str | float | None = None,
        after: Sequence[str] = (),
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.where = where_defined(fn)
        self.name = name or fn.__name__
        if not _NAME.fullmatch(self.name):
            raise SpecError(f"step name {self.name!r} is not letters, digits, _ and -", self.where)
        self.cache, self.retries, self.timeout, self.after = cache, retries, timeout, tuple(after)
        self.signature = inspect.signature(fn)
        self.inputs, self.result = self._kinds()

    def _kinds(self) -> tuple[dict[str, Kind], Kind]:
        hints = _hints(self.fn, self.where)
        inputs: dict[str, Kind] = {}
        for parameter in self.signature.parameters.values():
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise SpecError(
                    f"step {self.name}: *{parameter.name} cannot be typed as files; "
                    "name each input",
                    self.where,
                )
            if parameter.name not in hints:
                raise SpecError(
                    f"step {self.name}: parameter {parameter.name!r} has no type hint; "
                    "a step's inputs are typed (e.g. `n: int`)",
                    self.where,
                )
            inputs[parameter.name] = self._kind(hints[parameter.name], f"{parameter.name!r}")
        if "return" not in hints:
            raise SpecError(
                f"step {self.name}: the return value has no type hint; add `-> TYPE` "
                "(`-> None` when it returns nothing)",
                self.where,
            )
        return inputs, self._kind(hints["return"], "return value", result=True)

    def _kind(self, annotation: Any, what: str, result: bool = False) -> Kind:
        try:
            return kind_of(annotation, result)
        except KindError as exc:
            raise SpecError(f"step {self.name}: the {what}: {exc}", self.where) from None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = _TRACE.get()
        if trace is None:
            return self.fn(*args, **kwargs)
        result: Any = trace.call(self, args, kwargs, sys._getframe(1))
        return typing.cast(R, result)

    def __repr__(self) -> str:
        return f"<conveyor step {self.name} ({self.fn.__module__}.{self.fn.__qualname__})>"


@dataclass(frozen=True)
class Param:
    """A pipeline parameter, as its steps see it while tracing."""

    name: str
    kind: Kind

    def __bool__(self) -> bool:
        raise TypeError(f"parameter {self.name} has no value while the pipeline is traced")


@dataclass(eq=False)
class StepCall:
    """One call of a step in a traced pipeline: a node of the DAG."""

    id: str
    step: StepFunction[..., Any]
    arguments: dict[str, object]
    """Parameter name -> :class:`Result`, :class:`Param` or a literal value."""
    where: Position


@dataclass(frozen=True)
class Result:
    """What a step call returns while tracing: the value its step will write."""

    call: StepCall
    kind: Kind

    def __bool__(self) -> bool:
        raise TypeError(
            f"the result of step {self.call.id} has no value while the pipeline is traced; "
            "decide inside a step"
        )


@dataclass
class TracedPipeline:
    """A pipeline's parameters and step calls, in call order."""

    name: str
    where: Position
    params: dict[str, tuple[Kind, object]]
    """Name -> kind and default (``inspect.Parameter.empty``: required)."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables every step gets (the pipeline's ``env``)."""
    calls: list[StepCall] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def call(
        self,
        step: StepFunction[..., Any],
        args: tuple[object, ...],
        kwargs: dict[str, object],
        frame: types.FrameType,
    ) -> Result | None:
        """Record one call of ``step`` made by the code of ``frame``."""
        if len(self.calls) >= MAX_STEPS:
            raise SpecError(f"the pipeline calls more than {MAX_STEPS} steps", _precise(frame))
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise SpecError(f"step {step.name}: {exc}", _precise(frame)) from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            problem = _check_argument(step, name, value)
            if problem:
                raise SpecError(problem, _precise(frame))
        node_id, n = step.name, 1
        while node_id in self.ids:
            n += 1
            node_id = f"{step.name}-{n}"
        self.ids.add(node_id)
        where = Position(frame.f_code.co_filename, frame.f_lineno)
        node = StepCall(node_id, step, dict(bound.arguments), where)
        self.calls.append(node)
        return None if step.result.name == "none" else Result(node, step.result)


def _check_argument(step: StepFunction[..., Any], name: str, value: object) -> str:
    """Why ``value`` cannot be given as ``name`` (empty: it can)."""
    expected = step.inputs[name]
    if isinstance(value, Result | Param):
        given, what = (
            value.kind,
            (
                f"the result of step {value.call.id}"
                if isinstance(value, Result)
                else f"parameter {value.name}"
            ),
        )
    else:
        if _holds_placeholder(value):
            return (
                f"step {step.name}, {name!r}: a step result or parameter inside a list or "
                "dict has no value yet; pass each as an argument of its own"
            )
        try:
            given, what = value_kind(value), repr(value)
        except KindError as exc:
            return f"step {step.name}, {name!r}: {exc}"
        if isinstance(value, PurePath) and value.is_absolute():
            return f"step {step.name}, {name!r}: {value} is not a project path"
    if not expected.accepts(given):
        return f"step {step.name}: {name!r} expects {expected} but is given {what} ({given})"
    return ""


def _holds_placeholder(value: object, depth: int = 0) -> bool:
    if isinstance(value, Result | Param):
        return True
    if depth > 64:  # deeper than JSON worth passing on a command line
        return False
    if isinstance(value, dict):
        return any(_holds_placeholder(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_placeholder(v, depth + 1) for v in value)
    return False


_TRACE: ContextVar[TracedPipeline | None] = ContextVar("conveyor_trace", default=None)


class PipelineFunction(Generic[P, R]):
    """A function made a pipeline by ``@conveyor.pipeline``: its parameters are the
    pipeline's (typed str, int, float or bool), its body calls steps."""

    def __init__(
        self, fn: Callable[P, R], name: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.where = where_defined(fn)
        self.name = name or fn.__name__
        if not _NAME.fullmatch(self.name):
            raise SpecError(
                f"pipeline name {self.name!r} is not letters, digits, _ and -", self.where
            )
        self.params = self._params()
        self.env = dict(env or {})

    def _params(self) -> dict[str, tuple[Kind, object]]:
        hints = _hints(self.fn, self.where)
        params: dict[str, tuple[Kind, object]] = {}
        for parameter in inspect.signature(self.fn).parameters.values():
            hint = hints.get(parameter.name)
            if hint not in SCALARS:
                raise SpecError(
                    f"pipeline {self.name}: parameter {parameter.name!r} needs a type hint of "
                    "str, int, float or bool (it is set with -p NAME=VALUE)",
                    self.where,
                )
            params[parameter.name] = (kind_of(hint), parameter.default)
        return params

    def trace(self) -> TracedPipeline:
        """Call the pipeline with placeholders and return the steps it called."""
        traced = TracedPipeline(self.name, self.where, self.params, dict(self.env))
        token = _TRACE.set(traced)
        try:
            placeholders: dict[str, Any] = {n: Param(n, k) for n, (k, _) in self.params.items()}
            self.fn(**placeholders)  # type: ignore[call-arg]
        finally:
            _TRACE.reset(token)
        if not traced.calls:
            raise SpecError(f"pipeline {self.name} calls no step", self.where)
        return traced

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<conveyor pipeline {self.name} ({self.fn.__module__}.{self.fn.__qualname__})>"


@overload
def step(fn: Callable[P, R], /) -> StepFunction[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    timeout: str | float | None = None,
    after: Sequence[str] = (),
) -> Callable[[Callable[P, R]], StepFunction[P, R]]: ...
def step(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    cache: bool = True,
    retries: int = 0,
    timeout: str | float | None = None,
    after: Sequence[str] = (),
) -> StepFunction[P, R] | Callable[[Callable[P, R]], StepFunction[P, R]]:
    """Make a typed function a pipeline step.

    ``@conveyor.step`` or ``@conveyor.step(name=..., cache=False, retries=2,
    timeout="5m", after=["other-step"])``. Parameters and the return value need type
    hints: str, int, float, bool, dict/list (JSON), ``pathlib.Path`` (a file or
    directory), ``pandas.DataFrame`` (Parquet) or ``None`` (returns nothing). Values
    travel between steps as typed files through the content-addressed store.
    """

    def make(function: Callable[P, R]) -> StepFunction[P, R]:
        return StepFunction(function, name, cache, retries, timeout, after)

    return make if fn is None else make(fn)


@overload
def pipeline(fn: Callable[P, R], /) -> PipelineFunction[P, R]: ...
@overload
def pipeline(
    *, name: str | None = None, env: Mapping[str, str] | None = None
) -> Callable[[Callable[P, R]], PipelineFunction[P, R]]: ...
def pipeline(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> PipelineFunction[P, R] | Callable[[Callable[P, R]], PipelineFunction[P, R]]:
    """Make a function that calls steps a pipeline: ``conveyor run pipeline.py``,
    ``conveyor plan pipeline.py`` or ``conveyor.Client().run(my_pipeline, x=3)``.

    Its parameters (typed str, int, float or bool; defaults are the parameters'
    defaults) are set with ``-p NAME=VALUE``. Calling one step with another's result
    draws the DAG; the functions themselves run only as steps of a run. ``env``: variables
    every step gets, as a ``conveyor.yml``'s ``env`` (e.g. ``CONVEYOR_PYTHON``, the
    interpreter of the steps where ``python3`` cannot import Conveyor).
    """

    def make(function: Callable[P, R]) -> PipelineFunction[P, R]:
        return PipelineFunction(function, name, env)

    return make if fn is None else make(fn)
