"""init, validate, plan, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from conveyor.cli.context import (
    Context,
    emit_json,
    file_argument,
    file_option,
    param_values,
    payload_option,
)
from conveyor.cli.templates import CONFIG_TEMPLATE, EXAMPLE_PIPELINE

pass_context = click.make_pass_decorator(Context)


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing conveyor.yml.")
@pass_context
def init(ctx: Context, force: bool) -> None:
    """Write an example conveyor.yml and the .conveyor/ settings here."""
    from conveyor.errors import UsageError
    from conveyor.sdk.project import Project

    target = ctx.directory / "conveyor.yml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")
    target.write_text(EXAMPLE_PIPELINE, encoding="utf-8")
    project = Project(ctx.directory)
    project.ensure_state_dir()
    config = project.state_dir / "config.toml"
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE, encoding="utf-8")
    click.echo(f"wrote {target.name} and .conveyor/config.toml")
    if not (ctx.directory / ".git").exists():
        click.echo("note: Conveyor pins runs to git commits; run `git init` here first")
    click.echo("next: `conveyor run`, then `conveyor show latest`")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@payload_option
@file_option
@pass_context
def validate(ctx: Context, as_json: bool, payload: dict[str, Any]) -> None:
    """Check the pipeline file; exit code 2 with file:line:col when it is wrong.

    A pipeline that reads the trigger's event (${{ event.FIELD }}) is checked against
    the one --payload FILE.json gives."""
    from conveyor.plan.compile import compile_plan
    from conveyor.sdk.listing import ProjectFiles
    from conveyor.sdk.plancache import run_trigger

    project = ctx.project()
    spec = project.load_spec()
    trigger = run_trigger(project, payload)
    plan = compile_plan(spec, lister=ProjectFiles(project.root), trigger=trigger)
    for warning in spec.warnings:
        click.echo(f"warning: {warning}", err=True)
    shown = project.display_path(project.pipeline_file)
    if as_json:
        emit_json(
            {
                "file": shown,
                "format": spec.format,
                "valid": True,
                "jobs": len(spec.jobs),
                "steps": len(plan.steps),
            }
        )
    else:
        click.echo(f"{shown} is valid: {len(spec.jobs)} jobs, {len(plan.steps)} steps")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the compiled plan as JSON.")
@click.option(
    "--param", "-p", "params", multiple=True, metavar="NAME=VALUE", help="Set a parameter."
)
@click.option(
    "--only", multiple=True, metavar="STEP", help="Plan only these steps and what they need."
)
@payload_option
@file_option
@file_argument
@pass_context
def plan(
    ctx: Context,
    as_json: bool,
    params: tuple[str, ...],
    only: tuple[str, ...],
    payload: dict[str, Any],
) -> None:
    """Print the compiled plan: steps in run order with their dependencies.

    PIPELINE (or -f) names another pipeline file than conveyor.yml: a Drone, Dotscience
    or DataTorch file, or a Python pipeline (`conveyor plan pipeline.py`).
    """
    from conveyor.sdk.plancache import (
        compile_cached,  # unchanged file: no YAML, no pydantic
        run_trigger,
    )

    project = ctx.project()
    trigger = run_trigger(project, payload)
    compiled, _ = compile_cached(project, param_values(params), only, False, trigger)
    if as_json:
        emit_json(compiled.to_json())
        return
    click.echo(f"pipeline {compiled.pipeline}: {len(compiled.steps)} steps")
    for step in compiled.steps:
        extra = []
        if step.needs:
            extra.append("after " + ", ".join(step.needs))
        if step.policy != "success":
            extra.append(f"if {step.policy}()")
        if step.allow_failure:
            extra.append("may fail")
        click.echo(f"  {step.id}" + (f"  ({'; '.join(extra)})" if extra else ""))
        if step.image:
            click.echo(f"      image {step.image}")
        if step.action:
            pinned = f" at {step.action_commit[:12]}" if step.action_commit else ""
            click.echo(f"      action {step.action}{pinned}")
        for path in step.inputs:
            notes = [
                n
                for n, of in (
                    ("optional", step.optional_inputs),
                    ("not keyed", step.unkeyed_inputs),
                )
                if path in of
            ]
            click.echo(f"      < {path}" + (f"  ({', '.join(notes)})" if notes else ""))
        for path in step.outputs:
            click.echo(f"      > {path}")
    for consumer, producer, path in compiled.inferred:
        click.echo(f"note: {consumer} runs after {producer} because it reads {path}")


@click.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema of conveyor.yml (for editors and linters)."""
    from conveyor.spec.model import PipelineSpec

    data: dict[str, Any] = PipelineSpec.model_json_schema(by_alias=True)
    # `uses`/`with` steps are rewritten into `run` + `action` before the model sees them
    step = data["$defs"]["StepSpec"]["properties"]
    step["uses"] = {
        "type": "string",
        "description": "A reusable action: ./path, local/name, owner/name@ref, URL@ref.",
    }
    step["with"] = {"type": "object", "description": "The action's inputs."}
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "conveyor.yml"
    text = json.dumps(data, indent=2)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)


@click.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@file_option
@pass_context
def convert(ctx: Context, output: Path | None) -> None:
    """Print the pipeline file (Dotscience, Drone, DataTorch) as the equivalent conveyor.yml.

    \b
    Example:
      conveyor convert -f .drone.yml -o conveyor.yml
    """
    from conveyor.spec.convert import to_native_yaml

    project = ctx.project()
    spec = project.load_spec()
    for warning in spec.warnings:
        click.echo(f"warning: {warning}", err=True)
    text = to_native_yaml(spec, project.pipeline_file.name)
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


COMMANDS = [init, validate, plan, schema, convert]
