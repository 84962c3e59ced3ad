"""``conveyor server`` and ``conveyor worker`` (registered through the
``conveyor.commands`` entry-point group, so the CLI layer never imports the server)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from conveyor.server.commands_admin import ADMIN_COMMANDS, open_state
from conveyor.server.config import SANDBOXES, ServerConfig

DATA_HELP = "The server's data directory (env CONVEYOR_SERVER_DATA; default ./conveyor-server)."


def _shared_config(
    data: Path,
    database: str | None,
    executor: str,
    stale_after: float,
    sandbox: str,
    sandbox_hide: tuple[Path, ...],
    allow_executors: tuple[str, ...],
    **own: Any,
) -> ServerConfig:
    """The config from the options ``conveyor server`` and ``conveyor worker`` share
    (in the order they are given here; paths made absolute), plus ``own``: those of
    the server alone."""
    return ServerConfig(
        data=data.resolve(),
        database=database,
        executor=executor,
        stale_after=stale_after,
        sandbox=sandbox,
        sandbox_hide=tuple(p.resolve() for p in sandbox_hide),
        allow_executors=allow_executors,
        **own,
    )


F = TypeVar("F", bound=Callable[..., Any])


def _object_store_options(command: F) -> F:
    """``--store-url``, ``--store-endpoint``, ``--store-credentials``: where workers on
    several machines share their artifacts."""
    command = click.option(
        "--store-credentials",
        metavar="FILE",
        envvar="CONVEYOR_STORE_CREDENTIALS",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A TOML file of the object store's options (key = ..., secret = ... for S3); "
        "default: AWS_* variables, ~/.aws.",
    )(command)
    command = click.option(
        "--store-endpoint",
        metavar="URL",
        envvar="CONVEYOR_STORE_ENDPOINT",
        help="The endpoint of an S3-compatible service (e.g. http://minio:9000).",
    )(command)
    return click.option(
        "--store-url",
        metavar="URL",
        envvar="CONVEYOR_STORE_URL",
        help="Keep artifacts in an object store shared by every worker (s3://bucket/prefix, "
        "gs://..., any fsspec URL); the data directory's store becomes its cache.",
    )(command)


def _store_settings(
    url: str | None, endpoint: str | None, credentials: Path | None
) -> dict[str, Any]:
    return {
        "store_url": url,
        "store_endpoint": endpoint,
        "store_credentials": credentials.resolve() if credentials else None,
    }


def _check_object_store(config: ServerConfig) -> None:
    """Reach the object store once before taking runs: a wrong URL, endpoint or key is
    one error at start, not a failed run later."""
    if config.store_url:
        from conveyor.store.cached import CachedStore

        store = config.open_store()
        if isinstance(store, CachedStore):
            store.remote.has("0" * 64)


def _body_cap(name: str, default: int, help: str) -> Callable[[F], F]:
    return click.option(
        name,
        metavar="BYTES",
        default=default,
        show_default=True,
        type=click.IntRange(min=1),
        help=help,
    )


_sandbox_option = click.option(
    "--sandbox",
    type=click.Choice(SANDBOXES),
    envvar="CONVEYOR_SERVER_SANDBOX",
    default="bwrap",
    show_default=True,
    help="Run local steps in a bubblewrap sandbox; none: unsandboxed (members become admins).",
)
_sandbox_hide_option = click.option(
    "--sandbox-hide",
    "sandbox_hide",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Another directory steps must not see (repeatable; the data directory and the "
    "server user's home always are hidden).",
)
_allow_executor_option = click.option(
    "--allow-executor",
    "allow_executors",
    multiple=True,
    metavar="NAME",
    help="An executor projects may use besides local and --executor (repeatable); its "
    "steps run without Conveyor's sandbox.",
)
_data_option = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CONVEYOR_SERVER_DATA",
    default="conveyor-server",
    help=DATA_HELP,
)


@click.group(invoke_without_command=True)
@_data_option
@click.option(
    "--database",
    metavar="URL",
    envvar="CONVEYOR_SERVER_DATABASE",
    help="SQLAlchemy URL (default: SQLite in the data directory).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=0),
    help="Workers inside the server (0: only separate `conveyor worker` processes).",
)
@click.option(
    "--http-processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Processes serving HTTP on the port (the first one also runs the workers).",
)
@click.option(
    "--keep-answers",
    metavar="SECONDS",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long one process keeps who a token is and each deployment's record (a change"
    " made through this server or its admin commands is seen at once; 0 keeps nothing).",
)
@click.option("--executor", default="local", show_default=True, help="The default executor.")
@click.option("--public-url", metavar="URL", help="How users reach the server (printed URLs).")
@click.option(
    "--mirror-root",
    "mirror_roots",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Allow project mirrors that are local paths under DIR (repeatable; default: none).",
)
@click.option("--stale-after", default=15.0, hidden=True, type=click.FloatRange(min=0.5))
@click.option(
    "--status-retry",
    metavar="SECONDS",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Wait before sending again a commit status the forge did not take (doubling).",
)
@_body_cap("--max-push-body", 1024**3, "The largest git request body (a push), in bytes.")
@_body_cap("--max-webhook-body", 25 * 1024**2, "The largest webhook body, in bytes.")
@_body_cap("--max-api-body", 1024**2, "The largest body of any other request, in bytes.")
@_body_cap("--max-dataset-body", 1024**3, "The largest file put into a dataset, in bytes.")
@click.option(
    "--replay-window",
    metavar="SECONDS",
    default=7 * 24 * 3600.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a webhook delivery is remembered (a repeat within them is refused).",
)
@_sandbox_option
@_sandbox_hide_option
@_allow_executor_option
@_object_store_options
@click.pass_context
def server(
    ctx: click.Context,
    data: Path,
    database: str | None,
    host: str,
    port: int,
    workers: int,
    http_processes: int,
    keep_answers: float,
    executor: str,
    public_url: str | None,
    mirror_roots: tuple[Path, ...],
    stale_after: float,
    status_retry: float,
    max_push_body: int,
    max_webhook_body: int,
    max_api_body: int,
    max_dataset_body: int,
    replay_window: float,
    sandbox: str,
    sandbox_hide: tuple[Path, ...],
    allow_executors: tuple[str, ...],
    store_url: str | None,
    store_endpoint: str | None,
    store_credentials: Path | None,
) -> None:
    """Start the team server: git remotes per project, a run queue, workers, a REST API.

    \b
    Set up:
      conveyor server --data DIR add-user alice --admin   prints alice's token once
      conveyor server --data DIR add-project demo
      conveyor server --data DIR grant demo bob member
    Start:
      conveyor server --data DIR --port 8700
    Push:
      git remote add conveyor http://127.0.0.1:8700/git/demo.git
      git push conveyor main        (user: anything, password: your token)
    """
    ctx.ensure_object(dict)
    shared = (data, database, executor, stale_after, sandbox, sandbox_hide, allow_executors)
    ctx.obj["server_config"] = _shared_config(
        *shared,
        host=host,
        port=port,
        workers=workers,
        public_url=public_url,
        mirror_roots=tuple(root.resolve() for root in mirror_roots),
        max_push_body=max_push_body,
        max_webhook_body=max_webhook_body,
        max_api_body=max_api_body,
        max_dataset_body=max_dataset_body,
        replay_window=replay_window,
        status_retry=status_retry,
        **_store_settings(store_url, store_endpoint, store_credentials),
    )
    if ctx.invoked_subcommand is None:
        _check_object_store(ctx.obj["server_config"])
        _serve(ctx.obj["server_config"], http_processes, keep_answers)


def _serve(config: ServerConfig, processes: int = 1, keep_answers: float = 1.0) -> None:
    import logging

    import uvicorn

    from conveyor.server.db.recent import Recent

    Recent.ttl = keep_answers

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from conveyor.server.app import create_app
    from conveyor.server.sandbox import announce

    state = open_state(config)
    if config.workers:
        announce(config)
    click.echo(
        f"conveyor server on {config.base_url} (data {config.data}, "
        f"{config.workers} worker(s), database {state.db.engine.url.render_as_string()})",
        err=True,
    )
    if processes > 1:
        from conveyor.server.processes import serve_processes

        serve_processes(state, processes, lambda: open_state(config))
        return
    uvicorn.run(
        create_app(state),
        host=config.host,
        port=config.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )


for _command in ADMIN_COMMANDS:
    server.add_command(_command)


@click.command()
@_data_option
@click.option(
    "--database",
    metavar="URL",
    envvar="CONVEYOR_SERVER_DATABASE",
    help="The server's database (PostgreSQL to share it between machines).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--executor", default="local", show_default=True)
@click.option("--stale-after", default=15.0, hidden=True, type=click.FloatRange(min=0.5))
@_sandbox_option
@_sandbox_hide_option
@_allow_executor_option
@_object_store_options
def worker(
    data: Path,
    database: str | None,
    workers: int,
    executor: str,
    stale_after: float,
    sandbox: str,
    sandbox_hide: tuple[Path, ...],
    allow_executors: tuple[str, ...],
    store_url: str | None,
    store_endpoint: str | None,
    store_credentials: Path | None,
) -> None:
    """Take queued runs from a server's database and run them (scale out a server).

    It also runs the Pachyderm jobs of the projects whose `pachyderm_jobs` setting is
    `worker` (datums in bubblewrap, up to max(4, --workers) projects at once)."""
    import logging

    from conveyor.server.pachyderm_jobs import SLOTS, claim_loop, projects_of
    from conveyor.server.sandbox import announce
    from conveyor.server.worker import Worker, watch, worker_name

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = _shared_config(
        data,
        database,
        executor,
        stale_after,
        sandbox,
        sandbox_hide,
        allow_executors,
        **_store_settings(store_url, store_endpoint, store_credentials),
    )
    _check_object_store(config)
    state = open_state(config)
    announce(config)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()
        state.wake.set()
        for each in pool:
            each.shutdown()

    pool = [
        Worker(config, state.db, worker_name(i), state.wake, state.secrets_for)
        for i in range(workers)
    ]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=w.serve, args=(stop,), daemon=True) for w in pool]
    threads.append(
        threading.Thread(
            target=watch, args=(config, state.db, pool, stop, state.secrets_for), daemon=True
        )
    )
    # the Pachyderm jobs of projects whose setting pachyderm_jobs is "worker"
    claimer = threading.Thread(
        target=claim_loop,
        args=(state, f"{worker_name(0)}:pachyderm", lambda: projects_of(state, True), stop),
        kwargs={"slots": max(SLOTS, workers), "seen": True},
        daemon=True,
    )
    claimer.start()  # not joined: a job of hours must not hold the stop up
    for thread in threads:
        thread.start()
    click.echo(
        f"conveyor worker: {workers} worker(s) on {config.database_url} (pid {os.getpid()})",
        err=True,
    )
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=60)


__all__ = ["server", "worker"]
