"""Which format a pipeline file is in, and the loader for it.

By name: ``conveyor.yml``, ``.dotscience.yml``, ``.drone.yml``. Any other name (given
with ``-f``) is recognised by its shape: documents with ``kind: pipeline`` are Drone,
``jobs`` whose steps name an ``action`` are DataTorch, anything else is native.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from conveyor.errors import Position, SpecError
from conveyor.spec.actions import ActionResolver
from conveyor.spec.files import format_for_name
from conveyor.spec.load import read_pipeline, validate_native
from conveyor.spec.model import PipelineSpec
from conveyor.spec.plainspec import Parsed
from conveyor.spec.yamlsource import SourceMap, load_documents

TRANSLATORS = {
    "dotscience": "conveyor.spec.dotscience:translate",
    "drone": "conveyor.spec.dotscience:translate",
    "datatorch": "conveyor.spec.datatorch:translate",
}
"""Foreign format -> its translator, imported when a file of that format is loaded:
``translate(documents, display, fmt, base, resolver) -> PipelineSpec`` (``resolver``
None: actions in local directories only)."""
FORMATS = ("conveyor", *TRANSLATORS)
_HERE = Path(".")


def load_file(
    path: Path,
    display: str | None = None,
    resolver: ActionResolver | None = None,
    parsed: Parsed | None = None,
) -> PipelineSpec:
    """Read, detect and load the pipeline file at ``path`` in any supported format
    (DataTorch actions are found by ``resolver``; default: local directories only).
    ``parsed``: its text and documents, when the plain reader already parsed them."""
    shown = display or str(path)
    text = parsed.text if parsed else read_pipeline(path, shown)
    documents = parsed.documents if parsed else None
    fmt = format_for_name(path.name)
    return parse_text(text, shown, fmt, path.parent, resolver, documents)


def parse_text(
    text: str,
    display: str,
    fmt: str | None = None,
    base: Path = _HERE,
    resolver: ActionResolver | None = None,
    documents: list[tuple[Any, SourceMap]] | None = None,
) -> PipelineSpec:
    """Load pipeline text; ``fmt`` None detects the format from the data; actions are
    found from ``base`` (the directory of the file); ``documents``: the text's, parsed."""
    if fmt in ("drone", "dotscience"):
        from conveyor.spec.drone_documents import refuse_drone_08

        refuse_drone_08(text, display)
    if documents is None:
        documents = list(load_documents(text, display))
    if not documents:
        raise SpecError("the pipeline file is empty", Position(display))
    fmt = fmt or detect(documents)
    if fmt in TRANSLATORS:
        module, _, name = TRANSLATORS[fmt].partition(":")
        translate = getattr(import_module(module), name)
        spec: PipelineSpec = translate(documents, display, fmt, base, resolver)
        return spec
    if len(documents) == 1:
        from conveyor.spec.uses import has_uses

        if has_uses(documents[0][0]):
            return _native_with_uses(documents[0], display, base, resolver)
    return validate_native(documents, display)


def _native_with_uses(
    document: tuple[Any, SourceMap],
    display: str,
    base: Path,
    resolver: ActionResolver | None,
) -> PipelineSpec:
    """A conveyor.yml whose steps run reusable actions (``uses:``)."""
    from conveyor.spec.actions import local_resolver
    from conveyor.spec.uses import expand_uses

    data, source = document
    expanded = expand_uses(data, source, base, resolver or local_resolver(base))
    spec = validate_native([(expanded.data, source)], display)
    return spec.with_read_files(tuple(expanded.read_files)).with_warnings(tuple(expanded.warnings))


def detect(documents: list[tuple[Any, SourceMap]]) -> str:
    data = documents[0][0]
    if not isinstance(data, dict):
        return "conveyor"
    if "kind" in data:
        return "dotscience" if "after" in data else "drone"
    jobs = data.get("jobs")
    if isinstance(jobs, dict):
        for job in jobs.values():
            steps = job.get("steps") if isinstance(job, dict) else None
            if isinstance(steps, list) and any(_datatorch_step(s) for s in steps):
                return "datatorch"
    return "conveyor"


def _datatorch_step(step: object) -> bool:
    """A step that names an action, or gives its inputs as a mapping (native inputs are
    a list of paths)."""
    return isinstance(step, dict) and ("action" in step or isinstance(step.get("inputs"), dict))
