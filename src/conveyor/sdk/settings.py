"""Project settings from ``.conveyor/config.toml`` (chosen once by the project lead)."""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from conveyor.domain.types import FieldValues
from conveyor.errors import ProjectError

CONFIG_NAME = "config.toml"
_KNOWN = {"executor", "parallelism", "database", "store"}
# a registry host: DNS labels or an IPv4 address, an optional port, nothing else
_REGISTRY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(?::[0-9]{1,5})?")


def is_registry(text: str) -> bool:
    """Whether ``text`` is a registry address, ``HOST[:PORT]`` and nothing else."""
    return bool(_REGISTRY.fullmatch(text))


@dataclass(frozen=True)
class ContainerSettings:
    """``[containers]``: what to do with steps that name an image."""

    runtime: str = "auto"
    """``auto`` (podman, else docker, on PATH), ``podman``, ``docker``, ``none``, or a
    docker-compatible socket URL (``unix://...``, ``tcp://...``)."""
    network: str = "none"
    """Image steps' network: ``none`` or ``host`` (never podman's bridge network)."""
    on_missing: str = "fail"
    """No container runtime is configured: ``fail`` the step, or run it on the ``host``."""
    plugins: dict[str, str] = field(default_factory=dict)
    """Plugin image (without tag) -> host command, for image steps without commands."""
    privileged: bool = False
    """Whether steps may ask for a privileged container (Drone's ``privileged: true``);
    a server never lets a pushed file choose it."""
    host_volumes: tuple[str, ...] = ()
    """Directories of the machine (absolute) that steps may mount, with what is under
    them (Drone's host volumes); a server allows none."""
    registry: str | None = None
    """``HOST[:PORT]`` of the image registry `conveyor pipeline ci --push` pushes to."""

    @staticmethod
    def parse(path: Path, data: object) -> "ContainerSettings":
        if not isinstance(data, dict):
            raise ProjectError(f"{path}: [containers] must be a table")
        known = {
            "runtime",
            "network",
            "on_missing",
            "plugins",
            "privileged",
            "host_volumes",
            "registry",
        }
        unknown = set(data) - known
        if unknown:
            raise ProjectError(
                f"{path}: unknown setting containers.{sorted(unknown)[0]} "
                f"(known: {', '.join(sorted(known))})"
            )
        runtime = data.get("runtime", "auto")
        if not isinstance(runtime, str) or not runtime:
            raise ProjectError(
                f'{path}: containers.runtime is "auto", "podman", "docker", "none" '
                "or a socket URL (unix://...)"
            )
        network = data.get("network", "none")
        if network not in ("none", "host"):
            raise ProjectError(f'{path}: containers.network is "none" or "host"')
        on_missing = data.get("on_missing", "fail")
        if on_missing not in ("fail", "host"):
            raise ProjectError(f'{path}: containers.on_missing is "fail" or "host"')
        plugins = data.get("plugins", {})
        if not isinstance(plugins, dict) or not all(isinstance(v, str) for v in plugins.values()):
            raise ProjectError(f"{path}: containers.plugins maps image names to commands")
        privileged = data.get("privileged", False)
        if not isinstance(privileged, bool):
            raise ProjectError(f"{path}: containers.privileged is true or false")
        host_volumes = data.get("host_volumes", [])
        if not isinstance(host_volumes, list) or not all(
            isinstance(v, str) and v.startswith("/") for v in host_volumes
        ):
            raise ProjectError(
                f"{path}: containers.host_volumes is a list of absolute directories "
                '(["/data/shared"])'
            )
        registry = data.get("registry")
        if registry is not None and (
            not isinstance(registry, str) or not _REGISTRY.fullmatch(registry)
        ):
            raise ProjectError(
                f'{path}: containers.registry is a registry address, HOST[:PORT] ("127.0.0.1:5000")'
            )
        return ContainerSettings(
            runtime,
            network,
            on_missing,
            {str(k): v for k, v in plugins.items()},
            privileged,
            tuple(host_volumes),
            registry,
        )


class RetentionPolicy(NamedTuple):
    """``[retention]``: which runs ``conveyor prune`` (and a server, on its own) keeps.

    A run is kept when any rule keeps it: among the ``keep_last`` newest, younger than
    ``keep_days``, or made from a commit of a ``keep_branches`` branch. None: no such rule.
    """

    keep_last: int | None = None
    keep_days: float | None = None
    keep_branches: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.keep_last is None and self.keep_days is None and not self.keep_branches

    @staticmethod
    def parse(where: str, data: object) -> "RetentionPolicy":
        """From a ``[retention]`` table (or a server project's ``retention`` setting)."""
        if not isinstance(data, dict):
            raise ProjectError(f"{where}: [retention] must be a table")
        unknown = set(data) - {"keep_last", "keep_days", "keep_branches"}
        if unknown:
            raise ProjectError(
                f"{where}: unknown setting retention.{sorted(unknown)[0]} "
                "(known: keep_last, keep_days, keep_branches)"
            )
        last, days = data.get("keep_last"), data.get("keep_days")
        if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
            raise ProjectError(f"{where}: retention.keep_last is a whole number >= 0")
        if days is not None and (
            isinstance(days, bool)
            or not isinstance(days, int | float)
            or not math.isfinite(days)
            or days < 0
        ):
            raise ProjectError(f"{where}: retention.keep_days is a number of days >= 0")
        branches = data.get("keep_branches", [])
        if not isinstance(branches, list) or not all(
            isinstance(b, str) and b and not b.startswith("-") for b in branches
        ):
            raise ProjectError(f"{where}: retention.keep_branches is a list of branch names")
        return RetentionPolicy(last, None if days is None else float(days), tuple(branches))


class RemoteSettings(NamedTuple):
    """``[remote]``: the Conveyor server this project pushes to and runs on."""

    url: str
    project: str
    token_env: str = "CONVEYOR_TOKEN"
    """The environment variable that holds the user's API token (never the file)."""


@dataclass(frozen=True, eq=False, repr=False)  # FieldValues: 3 methods not generated
class Settings(FieldValues):
    """A project's ``.conveyor/config.toml``, checked."""

    executor: str = "local"
    parallelism: int = 0
    """0: one step per CPU."""
    database: str | None = None
    """A SQLAlchemy URL; default: SQLite in ``.conveyor/conveyor.db``."""
    store: str | None = None
    """The content store directory; default: ``.conveyor/store``."""
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    containers: ContainerSettings = field(default_factory=ContainerSettings)
    action_paths: tuple[str, ...] = ()
    """``[actions] paths``: directories (project-relative) holding ``owner/name`` actions."""
    action_base: str | None = None
    """``[actions] base``: where ``uses: owner/name@ref`` is cloned from (a URL, or a
    directory of repositories); default GitHub."""
    remote: RemoteSettings | None = None
    server_sandbox: bool = False
    """A sandboxed server runs the project: it takes actions only from the project or
    remote git and builds no Python environments for them (``sdk.actions``). Set by the
    server, not by the file."""
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    @staticmethod
    def load(conveyor_dir: Path) -> "Settings":
        path = conveyor_dir / CONFIG_NAME
        if not path.is_file():
            return Settings()
        import tomllib  # only when there is a settings file: keeps start-up lean

        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
            raise ProjectError(f"{path}: cannot read the settings: {exc}") from exc
        project = data.get("project", {})
        if not isinstance(project, dict):
            raise ProjectError(f"{path}: [project] must be a table")
        unknown = set(project) - _KNOWN
        if unknown:
            raise ProjectError(
                f"{path}: unknown setting project.{sorted(unknown)[0]} "
                f"(known: {', '.join(sorted(_KNOWN))})"
            )
        executors = data.get("executors", {})
        parallelism = project.get("parallelism", 0)
        if not isinstance(parallelism, int) or parallelism < 0:
            raise ProjectError(f"{path}: project.parallelism must be a whole number >= 0")
        return Settings(
            remote=_remote(path, data.get("remote")),
            executor=str(project.get("executor", "local")),
            parallelism=parallelism,
            database=project.get("database"),
            store=project.get("store"),
            executors={str(k): dict(v) for k, v in executors.items() if isinstance(v, dict)},
            containers=ContainerSettings.parse(path, data.get("containers", {})),
            action_paths=_action_paths(path, data.get("actions", {})),
            action_base=_action_base(path, data.get("actions", {})),
            retention=RetentionPolicy.parse(str(path), data.get("retention", {})),
        )


def _action_paths(path: Path, data: object) -> tuple[str, ...]:
    if not isinstance(data, dict) or set(data) - {"paths", "base"}:
        raise ProjectError(
            f"{path}: [actions] holds paths (a list of directories) and base (a URL or "
            "a directory of repositories)"
        )
    paths = data.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ProjectError(f"{path}: actions.paths is a list of directories")
    return tuple(paths)


def _action_base(path: Path, data: object) -> str | None:
    base = data.get("base") if isinstance(data, dict) else None
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise ProjectError(f"{path}: actions.base is a URL or a directory")
    return base


def _remote(path: Path, table: object) -> RemoteSettings | None:
    if table is None:
        return None
    if not isinstance(table, dict) or not {"url", "project"} <= set(table):
        raise ProjectError(f"{path}: [remote] needs url and project")
    unknown = set(table) - {"url", "project", "token_env"}
    if unknown:
        raise ProjectError(f"{path}: unknown setting remote.{sorted(unknown)[0]}")
    return RemoteSettings(
        str(table["url"]).rstrip("/"),
        str(table["project"]),
        str(table.get("token_env", "CONVEYOR_TOKEN")),
    )
