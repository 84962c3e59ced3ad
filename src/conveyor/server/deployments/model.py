"""What a deployment is, as a lead declares it, and a call's inputs checked against it.

Pure: no database, no processes. Inputs are mapped as Craft AI maps them: from the
request body, a constant, an environment variable of the server, a dataset path, or
nothing (the pipeline's default). Every value is checked against its declared type and
a bad one is a :class:`CallInputError` that names the input and the type expected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.errors import UsageError

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
Kind = Literal["endpoint", "periodic"]
Mode = Literal["elastic", "low_latency"]
InputType = Literal["string", "number", "integer", "boolean", "json", "array", "file"]
InputSource = Literal["request", "constant", "environment", "dataset", "none"]
OutputSource = Literal["result", "file", "none"]
TOKEN_SCHEME = "EndpointToken"
MAX_POOL = 32
MEDIA = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/(\*|[a-z0-9!#$&^_.+-]{1,64})$")


@dataclass(frozen=True)
class CallFile:
    """A file a call sent (a multipart part): its bytes and declared content type. The
    client's filename is never kept: the file is named after its input."""

    data: bytes
    content_type: str

    def record(self) -> dict[str, Any]:
        """What an execution's record keeps of it (not the bytes)."""
        digest = hashlib.sha256(self.data).hexdigest()
        return {"file": {"size": len(self.data), "sha256": digest, "type": self.content_type}}


class CallInputError(UsageError):
    """A call's input is missing or not of its declared type (a 4xx naming it)."""

    def __init__(self, name: str, message: str, expected: str | None = None) -> None:
        self.input = name
        self.expected = expected
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputMapping(_Strict):
    """Where one input of a call comes from."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    type: InputType = "string"
    source: InputSource = "request"
    value: Any = Field(
        default=None,
        description="constant: the value; environment: the variable's name; "
        "dataset: `NAME@REF:PATH`; request: the default when the body leaves it out.",
    )
    required: bool = True
    accept: tuple[str, ...] = Field(
        default=(),
        description="file: the content types a part may have (`image/png`, `image/*`); none: any.",
    )

    @model_validator(mode="after")
    def _value_fits(self) -> InputMapping:
        if self.type == "file" and (self.source != "request" or self.value is not None):
            raise ValueError(f"input {self.name!r}: a file comes from the request, with no value")
        if self.accept and self.type != "file":
            raise ValueError(f"input {self.name!r}: only a file input has `accept`")
        if any(not MEDIA.fullmatch(a) for a in self.accept):
            raise ValueError(f"input {self.name!r}: `accept` holds types such as image/png")
        if self.source == "constant":
            try:
                check_value(self.name, self.type, self.value)
            except CallInputError as exc:
                raise ValueError(str(exc)) from None
        if self.source in ("environment", "dataset") and not isinstance(self.value, str):
            raise ValueError(f"input {self.name!r}: a {self.source} mapping needs a text value")
        return self


class OutputMapping(_Strict):
    """Where one output of a call comes from: ``result`` (a key of the function's return
    value, or all of it without ``key``), ``file`` (an output file of the run, ``path``)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    source: OutputSource = "result"
    key: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _path_for_files(self) -> OutputMapping:
        if self.source == "file" and not self.path:
            raise ValueError(f"output {self.name!r}: a file output needs its `path`")
        return self


class DeploymentSettings(_Strict):
    """What can change after creation (``deploy update``)."""

    inputs: tuple[InputMapping, ...] = ()
    outputs: tuple[OutputMapping, ...] = ()
    schedule: str | None = Field(default=None, description="periodic: five cron fields (UTC).")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds a call may take.")
    rate_limit: int = Field(default=6000, ge=0, description="Calls per minute (0: no limit).")
    max_body: int = Field(default=1024**2, ge=1, le=64 * 1024**2, description="Request bytes.")
    pool_size: int = Field(default=2, ge=1, le=MAX_POOL, description="low_latency workers.")
    max_parallel_executions: int = Field(default=8, ge=1, le=1000)

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique(cls, value: tuple[Any, ...]) -> tuple[Any, ...]:
        names = [m.name for m in value]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"{dup!r} is mapped twice")
        return value


class DeploymentCreate(_Strict):
    name: str
    kind: Kind = "endpoint"
    mode: Mode = "elastic"
    ref: str = Field(default="main", description="The branch to follow, or to pin with `pin`.")
    pin: bool = Field(default=False, description="Serve the ref's commit now, never a newer.")
    settings: DeploymentSettings = Field(default_factory=DeploymentSettings)

    @model_validator(mode="after")
    def _kind_fits(self) -> DeploymentCreate:
        check_name(self.name)
        check_kind(self.kind, self.settings)
        return self


def check_kind(kind: str, settings: DeploymentSettings) -> None:
    """A periodic deployment has a schedule and no request to read inputs from."""
    if kind == "periodic" and not settings.schedule:
        raise UsageError("a periodic deployment needs settings.schedule (five cron fields)")
    if kind == "periodic" and any(i.source == "request" for i in settings.inputs):
        raise UsageError("a periodic deployment has no request: map its inputs otherwise")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"{name[:100]!r} is not a valid deployment name: use lower-case letters, digits, "
            "'_' and '-' (up to 63 characters)"
        )
    return name


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "file": (),  # never a JSON value: a multipart part
}


def check_value(name: str, kind: str, value: Any) -> Any:
    """``value`` if it is of type ``kind`` (JSON's types; a bool is no number)."""
    if kind == "json":
        return value
    ok = isinstance(value, _TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
    if not ok:
        got = "null" if value is None else type(value).__name__
        raise CallInputError(name, f"input {name!r} must be {_article(kind)} (got {got})", kind)
    return value


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def call_inputs(
    mappings: tuple[InputMapping, ...],
    body: dict[str, Any],
    environ: Callable[[], Mapping[str, str]],
    files: Mapping[str, CallFile] | None = None,
) -> dict[str, Any]:
    """A call's inputs from its body (and its files: a multipart call's parts) and the
    mappings; unknown keys are refused. A file input's value is its :class:`CallFile`.
    ``environ``: the project's environment variables (its secrets), read only when an
    input is mapped from one."""
    files = files or {}
    known = {m.name for m in mappings if m.source == "request"}
    extra = sorted((set(body) | set(files)) - known)
    if extra:
        names = ", ".join(sorted(known)) or "none"
        raise CallInputError(extra[0], f"{extra[0][:100]!r} is not an input (inputs: {names})")
    values: dict[str, Any] = {}
    for m in mappings:
        if m.source == "request" and (m.type == "file" or m.name in files):
            found = _file_input(m, body, files)
            if found is not None:
                values[m.name] = found
        elif m.source == "request":
            if m.name in body:
                values[m.name] = check_value(m.name, m.type, body[m.name])
            elif m.value is not None:
                values[m.name] = m.value
            elif m.required:
                raise CallInputError(m.name, f"input {m.name!r} ({m.type}) is required", m.type)
        elif m.source == "constant":
            values[m.name] = m.value
        elif m.source == "environment":
            variables = environ()
            if m.value not in variables:
                raise CallInputError(m.name, f"input {m.name!r}: ${m.value} is not set")
            values[m.name] = variables[m.value]
        elif m.source == "dataset":
            values[m.name] = m.value
    return values


def _file_input(m: InputMapping, body: dict[str, Any], files: Mapping[str, CallFile]) -> Any:
    if m.type != "file":
        raise CallInputError(
            m.name, f"input {m.name!r} is {_article(m.type)}: send it as a form field", m.type
        )
    if m.name in body:
        raise CallInputError(
            m.name,
            f"input {m.name!r} is a file: send the call as multipart/form-data with a "
            f"file part named {m.name!r}",
            "file",
        )
    found = files.get(m.name)
    if found is None:
        if m.required:
            raise CallInputError(m.name, f"input {m.name!r} (file) is required", "file")
        return None
    if m.accept and not any(_media_fits(found.content_type, a) for a in m.accept):
        raise CallInputError(
            m.name,
            f"input {m.name!r} must be a file of type {' or '.join(m.accept)} "
            f"(got {found.content_type[:100]!r})",
            "file",
        )
    return found


def _media_fits(given: str, accepted: str) -> bool:
    kind = given.split(";", 1)[0].strip().lower()
    if accepted.endswith("/*"):
        return kind.startswith(accepted[:-1])
    return kind == accepted


def form_value(m: InputMapping | None, name: str, text: str) -> Any:
    """A multipart form field's text as the value of its input: a string input takes it
    as it is, the others as JSON (``3``, ``true``, ``[1, 2]``)."""
    if m is None or m.type == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise CallInputError(
            name, f"input {name!r} must be {_article(m.type)} (got {text[:40]!r})", m.type
        ) from None


def pick_outputs(mappings: tuple[OutputMapping, ...], result: Any) -> dict[str, Any]:
    """The outputs a call returns from the function's value (no mapping: all of it)."""
    if not mappings:
        return {"result": result}
    out: dict[str, Any] = {}
    for m in mappings:
        if m.source != "result":
            continue
        if m.key is None:
            out[m.name] = result
        elif isinstance(result, dict):
            out[m.name] = result.get(m.key)
        else:
            out[m.name] = None
    return out


def new_token() -> tuple[str, str]:
    """A fresh endpoint token and its digest (only the digest is stored)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(header: str | None, digest: str | None) -> bool:
    """Whether ``Authorization: EndpointToken T`` carries the token of ``digest``."""
    if not header or not digest:
        return False
    scheme, _, value = header.partition(" ")
    if scheme != TOKEN_SCHEME or not value.strip():
        return False
    return hmac.compare_digest(token_digest(value.strip()), digest)
