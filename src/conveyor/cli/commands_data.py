"""``conveyor data``: versioned datasets (Pachyderm's repos) in the project."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from conveyor.cli.context import Context, emit_json

if TYPE_CHECKING:
    from conveyor.sdk.datasets.local import LocalDatasets
    from conveyor.sdk.datasets.remote import RemoteDatasets

pass_context = click.make_pass_decorator(Context)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
REMOTE = click.option(
    "--remote", is_flag=True, help="The datasets of the project's server ([remote] settings)."
)


def _backend(ctx: Context, remote: bool) -> LocalDatasets | RemoteDatasets:
    """The project's own datasets, or (``--remote``) those of its server: same methods,
    same JSON."""
    if remote:
        from conveyor.sdk.datasets.remote import RemoteDatasets
        from conveyor.sdk.remote import RemoteClient

        return RemoteDatasets(RemoteClient.for_project(ctx.project()))
    from conveyor.sdk.datasets.local import LocalDatasets
    from conveyor.sdk.datasets.service import Datasets

    return LocalDatasets(Datasets(ctx.project()))


def _ref(text: str) -> Any:
    from conveyor.sdk.datasets.refs import parse_ref

    return parse_ref(text)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _commit_line(c: dict[str, Any]) -> str:
    message = c["message"].splitlines()[0] if c["message"] else ""
    when = (c["created_at"] or "")[:19].replace("T", " ")  # UTC
    size = _size(c["size"])
    return f"{c['id']}  {c['branch']:12}  {when}  {c['files']:>7} files  {size:>10}  {message}"


def _entries(items: list[dict[str, Any]]) -> None:
    for item in items:
        shown = item["path"] + ("/" if item["kind"] == "dir" else "")
        click.echo(f"{item['kind']:4}  {_size(item['size']):>10}  {shown}")


@click.group()
def data() -> None:
    """Versioned datasets: immutable commits of files, branches that move (Pachyderm's repos).

    \b
    A reference is NAME[@REF][:PATH]. REF is a branch (default: master), a commit id or
    a unique prefix of one (4+ characters), followed by ^ (the parent) or ~N (N back):
      images                  the head of images' master branch
      images@dev:/cats        the cats directory at the head of the dev branch
      images@master^^         two commits before master's head (also images@master~2)
    \b
    Start here:
      conveyor data create images
      conveyor data put images -r ./photos -m "first photos"   (files under /photos)
      conveyor data ls images@master:/photos
      conveyor data get images:/photos/cat.png out.png
    """


@data.command()
@click.argument("name")
@click.option("-d", "--description", default="", help="What the dataset holds.")
@JSON
@REMOTE
@pass_context
def create(ctx: Context, name: str, description: str, as_json: bool, remote: bool) -> None:
    """Create an empty dataset NAME (letters, digits, '_' and '-')."""
    record = _backend(ctx, remote).create(name, description)
    if as_json:
        emit_json(record)
    else:
        click.echo(f"created dataset {record['name']}")


@data.command()
@click.argument("target", metavar="NAME[@BRANCH][:PATH]")
@click.argument("sources", metavar="FILE_OR_DIR...", nargs=-1, required=True)
@click.option("-m", "--message", default="", help="The commit message.")
@click.option("-r", "--recursive", is_flag=True, help="Put the files of directories.")
@click.option(
    "-a", "--append", is_flag=True, help="Add to the end of files already at those paths."
)
@click.option(
    "-o",
    "--overwrite",
    is_flag=True,
    help="Replace files already at those paths (the default, as in Pachyderm 2).",
)
@click.option(
    "--run",
    "run_pipelines",
    is_flag=True,
    help="Then run a job of each pipeline downstream of this branch (in DAG order).",
)
@JSON
@REMOTE
@pass_context
def put(
    ctx: Context,
    target: str,
    sources: tuple[str, ...],
    message: str,
    recursive: bool,
    append: bool,
    overwrite: bool,
    run_pipelines: bool,
    as_json: bool,
    remote: bool,
) -> None:
    """Put files into a new commit on a branch (created on first use).

    \b
    The commit holds the branch head's files plus these: a path put again is
    replaced (or, with --append, continued). '-' reads standard input into one PATH.
      conveyor data put images photo.png                 -> /photo.png
      conveyor data put images:/raw/ a.png b.png         -> /raw/a.png, /raw/b.png
      conveyor data put images@dev:/raw -r ./photos      -> /raw/... (photos' contents)
      curl -s URL | conveyor data put logs:/day1.log -   -> /day1.log
    \b
    Already stored content costs only its hashing; links inside a directory are read
    as the file they name while it lies inside that directory, never outside.
    With --remote, directories and several files go to the server as one tar
    stream (regular files; one commit), within its size limit and 100,000 files.
    """
    if append and overwrite:
        raise click.UsageError("--append and --overwrite contradict each other; choose one")
    if run_pipelines and remote:
        raise click.UsageError("--run runs the project's pipelines locally; drop --remote")
    backend = _backend(ctx, remote)
    progress = None if as_json or not sys.stderr.isatty() else _progress
    commit = backend.put(_ref(target), list(sources), message, append, recursive, progress)
    if progress is not None:
        click.echo("", err=True)
    if not as_json:
        click.echo(
            f"{commit['dataset']}@{commit['branch']}: commit {commit['id']} "
            f"({commit['files']} files, {_size(commit['size'])})"
        )
    if remote:
        from conveyor.cli.commands_pipeline import tell_worker_notice

        tell_worker_notice(ctx)
    jobs = _run_downstream(ctx, commit, as_json) if run_pipelines else None
    if as_json:
        emit_json(commit if jobs is None else {**commit, "jobs": jobs})


def _run_downstream(ctx: Context, commit: dict[str, Any], quiet: bool) -> list[dict[str, Any]]:
    """``put --run``: a job of each downstream pipeline, in order; a failed one stops."""
    from conveyor.sdk.pachyderm_jobs import Pipelines

    pipelines = Pipelines(ctx.project())
    jobs = []
    for name in pipelines.downstream(commit["dataset"], commit["branch"]):
        job = pipelines.run(name)
        jobs.append({"id": job["id"], "pipeline": name, "output_commit": job["output_commit"]})
        if not quiet:
            click.echo(f"pipeline {name}: job {job['id']} made commit {job['output_commit']}")
    return jobs


def _progress(done: int, total: int, stored: int) -> None:
    click.echo(f"\rstored {done}/{total} files, {_size(stored)}", nl=False, err=True)


@data.command(name="ls")
@click.argument("target", metavar="[NAME[@REF][:PATH]]", required=False)
@JSON
@REMOTE
@pass_context
def ls(ctx: Context, target: str | None, as_json: bool, remote: bool) -> None:
    """List datasets, or the files and directories at a path of a commit."""
    backend = _backend(ctx, remote)
    if target is None:
        rows = backend.summaries()
        if as_json:
            emit_json(rows)
            return
        if not rows:
            click.echo("no datasets yet; create one with `conveyor data create NAME`")
        for row in rows:
            click.echo(
                f"{row['name']:24} {row['files']:>7} files  {_size(row['size']):>10}  "
                f"{','.join(row['branches']) or '-'}"
            )
        return
    listed = backend.ls(_ref(target))
    if as_json:
        emit_json(listed)
    else:
        _entries(listed)


@data.command()
@click.argument("target", metavar="NAME[@REF]:PATTERN")
@JSON
@REMOTE
@pass_context
def glob(ctx: Context, target: str, as_json: bool, remote: bool) -> None:
    """The files and directories a Pachyderm glob names in a commit.

    \b
      conveyor data glob 'images:/*'          every top-level file and directory
      conveyor data glob 'images@dev:/**'     everything, at every depth
      conveyor data glob 'images:/*/*.png'    png files one directory down
    """
    from conveyor.errors import UsageError

    head, colon, pattern = target.partition(":")
    if not colon or not pattern:
        raise UsageError("give a glob after the reference: NAME[@REF]:/PATTERN")
    if "\0" in pattern or len(pattern) > 4096:
        raise UsageError("a glob is at most 4096 characters, without NUL")
    found = _backend(ctx, remote).glob(_ref(head), pattern)
    if as_json:
        emit_json(found)
    else:
        _entries(found)


@data.command()
@click.argument("target", metavar="NAME[@REF][:PATH]")
@click.argument("dest", type=click.Path(path_type=Path), required=False)
@JSON
@REMOTE
@pass_context
def get(ctx: Context, target: str, dest: Path | None, as_json: bool, remote: bool) -> None:
    """Write a file (to DEST, or standard output) or a directory (below DEST)."""
    from conveyor.cli.context import write_out
    from conveyor.errors import UsageError

    ref = _ref(target)
    if remote:
        from conveyor.sdk.datasets.remote import RemoteDatasets

        client = _backend(ctx, remote)
        assert isinstance(client, RemoteDatasets)
        if dest is None:
            write_out(client.read(ref))
            return
        count = client.download(ref, dest)
    else:
        from conveyor.sdk.datasets.service import Datasets

        datasets = Datasets(ctx.project())
        if dest is None:
            resolved = datasets.resolve(ref)
            entry = resolved.files.get(ref.path)
            if entry is None:
                from conveyor.sdk.datasets import trees

                trees.listing(resolved.files, ref.path)  # a path not there: NotFoundError
                raise UsageError(f"/{ref.path} is a directory: give a destination to write it to")
            with open(datasets.project.store.path_of(entry.digest), "rb") as blob:
                write_out(iter(lambda: blob.read(1024 * 1024), b""))
            return
        count = datasets.checkout(ref, dest)
    if as_json:
        emit_json({"files": count, "dest": str(dest)})
    else:
        click.echo(f"wrote {count} file{'s' if count != 1 else ''} to {dest}")


@data.command()
@click.argument("target", metavar="NAME[@REF]")
@click.option("-n", "--limit", default=20, show_default=True, help="How many commits.")
@JSON
@REMOTE
@pass_context
def log(ctx: Context, target: str, limit: int, as_json: bool, remote: bool) -> None:
    """The commits of a branch (or from a commit back), newest first."""
    chain = _backend(ctx, remote).log(_ref(target), limit)
    if as_json:
        emit_json(chain)
        return
    for c in chain:
        click.echo(_commit_line(c))


@data.command()
@click.argument("old", metavar="NAME@A")
@click.argument("new", metavar="NAME@B")
@JSON
@REMOTE
@pass_context
def diff(ctx: Context, old: str, new: str, as_json: bool, remote: bool) -> None:
    """What changed between two commits: added (+), removed (-) and changed (M) files."""
    change = _backend(ctx, remote).diff(_ref(old), _ref(new))
    if as_json:
        emit_json(change)
        return
    for e in change["added"]:
        click.echo(f"+ {e['path']}")
    for e in change["removed"]:
        click.echo(f"- {e['path']}")
    for pair in change["changed"]:
        click.echo(f"M {pair['new']['path']}")


@data.command()
@click.argument("name")
@click.argument("branch", required=False)
@click.option("--head", metavar="NAME@REF", help="Point BRANCH at this commit.")
@click.option("--delete", "remove", is_flag=True, help="Delete BRANCH (its commits stay).")
@JSON
@REMOTE
@pass_context
def branch(
    ctx: Context,
    name: str,
    branch: str | None,
    head: str | None,
    remove: bool,
    as_json: bool,
    remote: bool,
) -> None:
    """List a dataset's branches, or create, move (--head) or delete (--delete) BRANCH.

    \b
      conveyor data branch images                          list branches
      conveyor data branch images dev --head images@master make dev point at master's head
      conveyor data branch images dev --delete             remove dev
    """
    backend = _backend(ctx, remote)
    if branch is None:
        heads = backend.branches(name)
        if as_json:
            emit_json(heads)
            return
        for b, h in heads.items():
            click.echo(f"{b:24} {h or '-'}")
        return
    if remove:
        backend.delete_branch(name, branch)
        result: dict[str, Any] = {"dataset": name, "branch": branch, "deleted": True}
    else:
        result = backend.set_branch(name, branch, _ref(head) if head else None)
    if as_json:
        emit_json(result)
    elif remove:
        click.echo(f"deleted branch {branch} of {name}")
    else:
        click.echo(f"{name}@{branch} -> {result['head'] or '(no commits)'}")


@data.command()
@click.argument("target", metavar="NAME | NAME@BRANCH:PATH")
@click.option("-m", "--message", default="", help="The commit message (deleting a path).")
@click.option("-y", "--yes", is_flag=True, help="Delete a whole dataset without asking.")
@JSON
@REMOTE
@pass_context
def delete(ctx: Context, target: str, message: str, yes: bool, as_json: bool, remote: bool) -> None:
    """Delete a dataset (with its commits and branches), or a path in a new commit.

    \b
      conveyor data delete images --yes              the dataset
      conveyor data delete images@master:/raw/a.png  a new commit without that file
    Blobs stay in the store until `conveyor gc`.
    """
    backend = _backend(ctx, remote)
    ref = _ref(target)
    if ref.path:
        commit = backend.delete_path(ref, message)
        if as_json:
            emit_json(commit)
        else:
            click.echo(
                f"{commit['dataset']}@{commit['branch']}: commit {commit['id']} without /{ref.path}"
            )
        return
    if ref.ref is not None:
        from conveyor.errors import UsageError

        raise UsageError("delete a branch with `conveyor data branch NAME BRANCH --delete`")
    if not yes and not click.confirm(f"delete dataset {ref.dataset} and all its commits?"):
        raise click.exceptions.Abort()
    backend.delete(ref.dataset)
    if as_json:
        emit_json({"deleted": ref.dataset})
    else:
        click.echo(f"deleted dataset {ref.dataset}")


@data.command()
@click.argument("target", metavar="NAME[@REF][:PATH]")
@JSON
@REMOTE
@pass_context
def inspect(ctx: Context, target: str, as_json: bool, remote: bool) -> None:
    """A commit's size, file count, parent and provenance, and the dataset's branches."""
    info = _backend(ctx, remote).inspect(_ref(target))
    if as_json:
        emit_json(info)
        return
    d = info["dataset"]
    click.echo(f"dataset   {d['name']}  (created {d['created_at']})")
    if d["description"]:
        click.echo(f"          {d['description']}")
    for b, h in info["branches"].items():
        click.echo(f"branch    {b} -> {h or '(no commits)'}")
    c = info["commit"]
    if c is None:
        return
    click.echo(f"commit    {c['id']} on {c['branch']}  ({c['created_at']})")
    click.echo(f"parent    {c['parent'] or '-'}")
    click.echo(f"size      {_size(c['size'])} in {c['files']} files (tree {c['tree'][:12]})")
    if c["message"]:
        click.echo(f"message   {c['message']}")
    click.echo(f"provenance {c['provenance'] or '(none: put by hand)'}")
    if "path" in info:
        p = info["path"]
        click.echo(f"path      {p['path']}: {_size(p['size'])} in {p['files']} files")


COMMANDS = [data]
