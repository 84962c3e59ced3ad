"""Project settings from ``.conveyor/config.toml`` (chosen once by the project lead)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.errors import ProjectError

CONFIG_NAME = "config.toml"
_KNOWN = {"executor", "parallelism", "database", "store"}


@dataclass(frozen=True)
class RemoteSettings:
    """``[remote]``: the Conveyor server this project pushes to and runs on."""

    url: str
    project: str
    token_env: str = "CONVEYOR_TOKEN"
    """The environment variable that holds the user's API token (never the file)."""


@dataclass(frozen=True)
class Settings:
    executor: str = "local"
    parallelism: int = 0
    """0: one step per CPU."""
    database: str | None = None
    """A SQLAlchemy URL; default: SQLite in ``.conveyor/conveyor.db``."""
    store: str | None = None
    """The content store directory; default: ``.conveyor/store``."""
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    remote: RemoteSettings | None = None

    @staticmethod
    def load(conveyor_dir: Path) -> Settings:
        path = conveyor_dir / CONFIG_NAME
        if not path.is_file():
            return Settings()
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
        )


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
