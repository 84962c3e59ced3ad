"""``conveyor pipeline``: Pachyderm pipeline specs, read unchanged.

``check`` reads a spec file and prints its pipelines and their input trees; ``datums``
lists the datums a local directory per input would give. ``create``/``update`` record a
spec in the project, ``run`` runs a job over the project's datasets; ``job`` and
``datum`` show what jobs did (``sdk/pachyderm_jobs.py``).
"""

from __future__ import annotations

import sys
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
_REMOTE = click.option(
    "--remote", is_flag=True, help="The pipelines of the project's server ([remote] settings)."
)


@click.group()
def pipeline() -> None:
    """Pachyderm pipelines: check specs, create them over datasets, run their jobs.

    A pipeline reads datasets (its inputs' repos) and writes the dataset named after
    it. A job runs one datum per glob match, each in bubblewrap with its files at
    /pfs/<input> and /pfs/out writable, and commits the outputs of all datums at once.

    \b
    Examples:
      conveyor pipeline check -f edges.json
      conveyor pipeline datums -f edges.json --input images=./images
      conveyor data create images && conveyor data put images -r ./photos
      conveyor pipeline create -f edges.json
      conveyor pipeline run edges -j 2
      conveyor pipeline ci -f edges.json --push   # build, tag, push, update, run
      conveyor job list && conveyor datum list JOB

    \b
    On the team server (--remote): a commit to an input dataset runs the
    pipelines downstream, and cron inputs tick on the server's clock:
      conveyor pipeline create -f edges.json --remote
      conveyor data put images -r ./photos --remote
      conveyor job list --remote && conveyor job wait JOB --remote
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


def _pipelines(ctx: Context, remote: bool = False) -> Any:
    """The project's own pipelines, or (``--remote``) those of its server: same methods."""
    if remote:
        from conveyor.sdk.pachyderm_client import RemotePipelines
        from conveyor.sdk.remote import RemoteClient

        return RemotePipelines(RemoteClient.for_project(ctx.project()))
    from conveyor.sdk.pachyderm_jobs import Pipelines

    return Pipelines(ctx.project())


def tell_worker_notice(ctx: Context) -> None:
    """After a remote command that queues triggers: the server's line when they wait for
    a ``conveyor worker`` that does not ask for work (on stderr: --json stays clean)."""
    from conveyor.sdk.pachyderm_client import RemotePipelines
    from conveyor.sdk.remote import RemoteClient

    notice = RemotePipelines(RemoteClient.for_project(ctx.project())).worker_notice()
    if notice:
        click.echo(f"note: {notice}", err=True)


def _create(
    ctx: Context, spec_file: Path, update: bool, reprocess: bool, as_json: bool, remote: bool
) -> None:
    path = spec_file if spec_file.is_absolute() else ctx.directory / spec_file
    names = _pipelines(ctx, remote).create(path, str(spec_file), update, reprocess)
    if remote:
        tell_worker_notice(ctx)
    if as_json:
        emit_json({"pipelines": names, "updated": update, "reprocess": reprocess})
        return
    verb = "updated" if update else "created"
    for name in names:
        click.echo(f"{verb} pipeline {name} (output dataset {name})")


@pipeline.command()
@_SPEC
@_JSON
@_REMOTE
@pass_context
def create(ctx: Context, spec_file: Path, as_json: bool, remote: bool) -> None:
    """Create the pipelines of a spec file, and the output dataset of each (named after
    it). Every input repo must be a dataset, or the output of a pipeline of the file."""
    _create(ctx, spec_file, False, False, as_json, remote)


@pipeline.command()
@_SPEC
@click.option(
    "--reprocess", is_flag=True, help="The next job runs every datum again, not only new ones."
)
@_JSON
@_REMOTE
@pass_context
def update(ctx: Context, spec_file: Path, reprocess: bool, as_json: bool, remote: bool) -> None:
    """Record a new version of existing pipelines from a spec file. Datums keyed by the
    transform run again when it changed; --reprocess reruns all of them."""
    _create(ctx, spec_file, True, reprocess, as_json, remote)


@pipeline.command()
@click.option(
    "-f",
    "--file",
    "spec_files",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A spec file whose pipelines run the image (repeat; any order).",
)
@click.option("--push", is_flag=True, help="Push the image to [containers] registry.")
@click.option(
    "--context",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="The build context (a directory of the repository).",
)
@click.option(
    "--dockerfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The Dockerfile (default: CONTEXT/Dockerfile).",
)
@click.option("--tag", default=None, help="The image tag (default: the git commit SHA).")
@click.option(
    "-j",
    "--jobs",
    "parallel",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Datums run at once in each job.",
)
@_JSON
@pass_context
def ci(
    ctx: Context,
    spec_files: tuple[Path, ...],
    push: bool,
    context: Path,
    dockerfile: Path | None,
    tag: str | None,
    parallel: int,
    as_json: bool,
) -> None:
    """The CI flow of a push: build the image, tag it with the commit, push it, update
    the pipelines with the new tag, and run them.

    \b
    Steps, each with its log under .conveyor/pachyderm/ci/ID/:
      build   the Dockerfile, skipped when the same Dockerfile and context were built
              before (keyed by their content digest) and the image still exists
      tag     SPEC_IMAGE_NAME:COMMIT_SHA, in the registry of [containers] registry
      push    (--push) to that registry; the digest it gives is recorded
      update  every spec, in dependency order, with only transform.image's tag replaced
              (a copy: the spec files are not rewritten); `pipeline create` if new
      run     each pipeline, upstream first; output commits name the build (provenance ci)

    \b
    Examples:
      conveyor pipeline ci -f edges.json -f montage.json
      conveyor pipeline ci -f edges.json --push --json
    """
    from conveyor.sdk.pachyderm_ci import PipelineCi, SpecFile

    def absolute(path: Path) -> Path:
        return path if path.is_absolute() else ctx.directory / path

    def say(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    build_context = absolute(context)
    record = PipelineCi(ctx.project()).run(
        [SpecFile(absolute(f), str(f)) for f in spec_files],
        push=push,
        context=build_context,
        dockerfile=absolute(dockerfile) if dockerfile else build_context / "Dockerfile",
        tag=tag,
        parallel=parallel,
        progress=say,
    )
    if as_json:
        emit_json(record)
        return
    pushed = f", pushed {record['digest']}" if record["digest"] else ""
    click.echo(f"image {record['image']}{pushed}")
    for step in record["steps"]:
        if step["name"] == "run":
            for job in step["jobs"]:
                click.echo(f"pipeline {job['pipeline']}: job {job['job']} commit {job['commit']}")


@pipeline.command(name="list")
@_JSON
@_REMOTE
@pass_context
def list_(ctx: Context, as_json: bool, remote: bool) -> None:
    """The project's pipelines, their spec version and last job."""
    rows = _pipelines(ctx, remote).summaries()
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        last = row["last_job"]
        shown = f"{last['id'][:12]} {last['state']}" if last else "no job yet"
        click.echo(f"{row['name']:24}  v{row['version']:<3}  in {','.join(row['inputs'])}  {shown}")


@pipeline.command()
@click.argument("name")
@_JSON
@_REMOTE
@pass_context
def inspect(ctx: Context, name: str, as_json: bool, remote: bool) -> None:
    """A pipeline: its spec versions, inputs, output and recent jobs."""
    data = _pipelines(ctx, remote).inspect(name)
    if as_json:
        emit_json(data)
        return
    click.echo(f"pipeline {name}  version {data['version']}  spec {data['spec_digest'][:12]}")
    click.echo(f"  cmd {' '.join(data['cmd'])}")
    click.echo(f"  output {data['output']['dataset']}@{data['output']['branch']}")
    _print_tree(data["input"], "  ")
    for job in data["jobs"]:
        click.echo(f"  job {job['id'][:12]}  {job['state']}")


@pipeline.command()
@click.argument("name")
@click.option("--keep-dataset", is_flag=True, help="Keep the pipeline's output dataset.")
@_JSON
@_REMOTE
@pass_context
def delete(ctx: Context, name: str, keep_dataset: bool, as_json: bool, remote: bool) -> None:
    """Delete a pipeline and (unless --keep-dataset) its output dataset."""
    _pipelines(ctx, remote).delete(name, keep_dataset)
    if as_json:
        emit_json({"deleted": name, "dataset_kept": keep_dataset})
    else:
        click.echo(f"deleted pipeline {name}")


@pipeline.command()
@click.argument("name")
@click.option(
    "-j",
    "--jobs",
    "parallel",
    default=None,
    type=click.IntRange(1, 64),
    help="Datums run at once [default: 1 locally, the executor's parallelism elsewhere].",
)
@click.option("--reprocess", is_flag=True, help="Run every datum, even those already done.")
@click.option(
    "--executor",
    "executor",
    default=None,
    metavar="NAME",
    help="Where datums run: local, htcondor, spark, dask [default: the project's executor]. "
    "Off this machine each datum is a step: its files staged at pfs/<input>, seen at "
    "/pfs through bubblewrap on the worker.",
)
@_JSON
@_REMOTE
@pass_context
def run(
    ctx: Context,
    name: str,
    parallel: int | None,
    reprocess: bool,
    executor: str | None,
    as_json: bool,
    remote: bool,
) -> None:
    """Run a job of the pipeline over its inputs' branch heads: only new or changed
    datums run; the outputs of all datums become the next commit of its dataset.
    With --remote the server queues the job (`conveyor job list --remote` shows it).

    \b
    Examples:
      conveyor pipeline run edges
      conveyor pipeline run edges --executor dask -j 8
      conveyor pipeline run edges --remote"""
    from conveyor.sdk.pachyderm_jobs import JobFailed

    if remote:
        if reprocess:
            raise click.UsageError(
                "--reprocess with --remote: use `pipeline update -f SPEC --reprocess --remote`"
            )
        if executor:
            raise click.UsageError("--executor with --remote: the server runs its jobs itself")
        queued = _pipelines(ctx, remote).queue_run(name)
        tell_worker_notice(ctx)
        if as_json:
            emit_json(queued)
        else:
            click.echo(f"queued a job of {name} on the server; `conveyor job list --remote`")
        return

    def progress(row: dict[str, Any]) -> None:
        if not as_json:
            click.echo(f"datum {row['id'][:12]} {row['state']} ({row['duration']} s)", err=True)

    pipelines = _pipelines(ctx)
    try:
        job = pipelines.run(name, parallel, reprocess, progress, executor)
    except JobFailed:
        if as_json:
            emit_json(_job_json(pipelines.jobs(name)[0]))
        raise
    if as_json:
        emit_json(_job_json(job))
        return
    counts = _counts(job)
    click.echo(
        f"job {job['id']} succeeded: {counts.get('success', 0)} datum(s) run, "
        f"{counts.get('skipped', 0)} skipped; commit {job['output_commit']} of {name}"
    )


def _counts(job: dict[str, Any]) -> dict[str, int]:
    if "datums" not in job:  # a server's job list has the counts only
        return dict(job.get("datum_counts", {}))
    counts: dict[str, int] = {}
    for row in job["datums"]:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def _job_json(job: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in job.items() if k != "datums"}
    data["datum_counts"] = _counts(job)
    return data


@click.group()
def job() -> None:
    """Jobs of Pachyderm pipelines: one per `conveyor pipeline run`."""


@job.command(name="list")
@click.option("--pipeline", "name", default=None, help="Only this pipeline's jobs.")
@_JSON
@_REMOTE
@pass_context
def job_list(ctx: Context, name: str | None, as_json: bool, remote: bool) -> None:
    """Jobs, newest first: state, pipeline, datums by state, output commit."""
    jobs = _pipelines(ctx, remote).jobs(name)
    if remote:
        tell_worker_notice(ctx)
    if as_json:
        emit_json([_job_json(j) for j in jobs])
        return
    for j in jobs:
        counts = " ".join(f"{k}={v}" for k, v in sorted(_counts(j).items()))
        click.echo(f"{j['id'][:12]}  {j['pipeline']:20}  {j['state']:11}  {counts}")


@job.command(name="inspect")
@click.argument("job_id", metavar="JOB")
@_JSON
@_REMOTE
@pass_context
def job_inspect(ctx: Context, job_id: str, as_json: bool, remote: bool) -> None:
    """A job: its inputs' commits, spec version, output commit, error."""
    data = _job_json(_pipelines(ctx, remote).job(job_id))
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")


@job.command(name="wait")
@click.argument("job_id", metavar="JOB")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Give up after this long (exit code 3; the job goes on).",
)
@_JSON
@_REMOTE
@pass_context
def job_wait(ctx: Context, job_id: str, timeout: float | None, as_json: bool, remote: bool) -> None:
    """Wait until JOB (an id or a 4+ character prefix) ends; its progress on stderr.

    \b
    Exit codes: 0 the job succeeded (its output commit was made), 1 it failed or was
    interrupted (its process died: `conveyor pipeline run` runs only the datums left),
    2 no such job, 3 --timeout expired while it still ran. A job that already ended
    returns at once.

    \b
      conveyor job wait 3f2a                 # the job `conveyor job list` shows
      conveyor job wait 3f2a --timeout 600 --json
    """
    from conveyor.sdk.pachyderm_wait import Progress, wait_job

    pipelines = _pipelines(ctx, remote)
    found = pipelines.job(job_id)  # an unknown id: exit 2 before any wait

    def show(progress: Progress) -> None:
        click.echo(progress.line(), err=True)

    ended = wait_job(lambda: pipelines.job(found["id"]), timeout, show)
    if as_json:
        emit_json(_job_json(ended))
    elif ended["state"] == "success":
        click.echo(f"job {ended['id']} succeeded: commit {ended['output_commit']}")
    else:
        reason = f": {ended['error']}" if ended.get("error") else ""
        click.echo(f"job {ended['id']} {ended['state']}{reason}")
    sys.exit(0 if ended["state"] == "success" else 1)


@click.group()
def datum() -> None:
    """Datums of a job: what ran, what was reused, what failed."""


@datum.command(name="list")
@click.argument("job_id", metavar="JOB")
@_JSON
@_REMOTE
@pass_context
def datum_list(ctx: Context, job_id: str, as_json: bool, remote: bool) -> None:
    """The datums of JOB (an id or a 4+ character prefix): state, id, files, duration, log
    (with --remote, the logs stay on the server)."""
    rows = _pipelines(ctx, remote).job(job_id)["datums"]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        took = "-" if row["duration"] is None else f"{row['duration']:.2f}s"
        click.echo(f"{row['state']:8}  {row['id'][:12]}  {took:>8}  {' '.join(row['files'])}")


COMMANDS = [pipeline, job, datum]
