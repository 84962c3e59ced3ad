"""``conveyor pipeline``: Pachyderm pipeline specs, read unchanged.

``check`` reads a spec file and prints its pipelines and their input trees; ``datums``
lists the datums a local directory per input would give. Creating and running pipelines
comes with datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conveyor.cli.context import Context, emit_json

pass_context = click.make_pass_decorator(Context)

_SPEC = click.option(
    "-f",
    "--file",
    "spec_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Pachyderm spec file: pipeline.json (one spec or a JSON stream) or YAML documents.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


@click.group()
def pipeline() -> None:
    """Pachyderm pipeline specs: check them and see their datums.

    \b
    Examples:
      conveyor pipeline check -f edges.json
      conveyor pipeline datums -f edges.json --input images=./images
    """


@pipeline.command()
@_SPEC
@_JSON
@pass_context
def check(ctx: Context, spec_file: Path, as_json: bool) -> None:
    """Check a spec file; print its pipelines and their inputs (exit 2 with file:line:col
    when it is wrong)."""
    from conveyor.spec.pachyderm import input_tree

    specs = _load(ctx, spec_file)
    for warning in specs.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        emit_json(
            {
                "file": specs.path,
                "valid": True,
                "pipelines": [_pipeline_json(p, input_tree(p)) for p in specs.pipelines],
                "warnings": list(specs.warnings),
            }
        )
        return
    click.echo(f"{specs.path} is valid: {len(specs.pipelines)} pipeline(s)")
    for spec in specs.pipelines:
        where = f"{spec.project}/{spec.name}" if spec.project else spec.name
        image = spec.transform.image or "(no image: runs on the host)"
        click.echo(f"\npipeline {where}  image {image}")
        click.echo(f"  cmd {' '.join(spec.transform.cmd)}")
        _print_tree(input_tree(spec), "  ")


@pipeline.command()
@_SPEC
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=DIR",
    help="A local directory standing for the input NAME (repeat for each input).",
)
@click.option(
    "--pipeline", "name", default=None, help="The pipeline of the file (when it holds several)."
)
@_JSON
@pass_context
def datums(
    ctx: Context, spec_file: Path, inputs: tuple[str, ...], name: str | None, as_json: bool
) -> None:
    """List the datums a pipeline would run over local directories, one per input."""
    from conveyor.errors import UsageError
    from conveyor.plan.pachyderm_datums import datum_json, transform_digest
    from conveyor.plan.pachyderm_datums import datums as make_datums
    from conveyor.sdk.pachyderm_listing import PROGRESS_EVERY, list_directory
    from conveyor.spec.pachyderm_model import leaves

    specs = _load(ctx, spec_file)
    for warning in specs.warnings:
        click.echo(f"warning: {warning}", err=True)
    chosen = [p for p in specs.pipelines if name is None or p.name == name]
    if not chosen:
        raise UsageError(f"{specs.path} has no pipeline named {name!r}")
    if len(chosen) > 1:
        names = ", ".join(p.name for p in chosen)
        raise UsageError(
            f"{specs.path} holds several pipelines ({names}); name one with --pipeline"
        )
    spec = chosen[0]
    known = {leaf.name for leaf in leaves(spec.input)}
    listings = {}
    for item in inputs:
        input_name, sep, directory = item.partition("=")
        if not sep or not input_name or not directory:
            raise UsageError(f"--input takes NAME=DIR, got {item!r}")
        if input_name not in known:
            raise UsageError(
                f"pipeline {spec.name!r} has no input named {input_name!r} "
                f"(its inputs: {', '.join(sorted(known))})"
            )
        counter = _progress(input_name)
        listings[input_name] = list_directory(ctx.directory / directory, directory, counter)
        if counter is not None and len(listings[input_name]) >= PROGRESS_EVERY:
            click.echo(err=True)  # end the counter's line
    found = make_datums(spec.input, listings)
    transform = transform_digest(spec.transform)
    if as_json:
        emit_json(
            {
                "pipeline": spec.name,
                "datums": [datum_json(d, transform, spec.salt) for d in found],
            }
        )
        return
    for datum in found:
        shown = "  ".join(
            f"{i.name}:{i.path} ({len(i.files)} file{'s' if len(i.files) != 1 else ''})"
            for i in datum.inputs
        )
        click.echo(f"{datum.id[:12]}  {shown}")
    click.echo(f"{len(found)} datum(s)", err=True)


def _progress(name: str) -> Any:
    """A counter of files hashed on a terminal's stderr (nothing when it is not one)."""
    import sys

    if not sys.stderr.isatty():
        return None
    return lambda count: click.echo(f"\rhashing {name}: {count} files", nl=False, err=True)


def _load(ctx: Context, spec_file: Path) -> Any:
    from conveyor.spec.pachyderm import load_specs

    path = spec_file if spec_file.is_absolute() else ctx.directory / spec_file
    return load_specs(path, str(spec_file))


def _pipeline_json(spec: Any, tree: Any) -> dict[str, Any]:
    t = spec.transform
    return {
        "name": spec.name,
        "project": spec.project,
        "description": spec.description,
        "image": t.image,
        "cmd": list(t.cmd),
        "stdin": list(t.stdin),
        "input": tree,
        "output_branch": spec.output_branch,
        "datum_tries": spec.datum_tries,
        "parallelism": spec.parallelism,
        "job_timeout": spec.job_timeout,
        "datum_timeout": spec.datum_timeout,
        "reprocess_spec": spec.reprocess_spec,
        "salt": spec.salt,
    }


def _print_tree(node: dict[str, Any], indent: str) -> None:
    ((kind, value),) = node.items()
    if isinstance(value, list):
        click.echo(f"{indent}{kind}")
        for child in value:
            _print_tree(child, indent + "  ")
        return
    extra = [f"{k}={v}" for k, v in value.items() if k not in ("name", "repo", "glob", "spec")]
    target = f"{value['repo']} {value.get('glob') or value.get('spec')}"
    click.echo(f"{indent}{kind} {value['name']}: {target}  {' '.join(extra)}".rstrip())


COMMANDS = [pipeline]
