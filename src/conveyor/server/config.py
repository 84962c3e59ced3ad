"""Where a server keeps its things, and how it runs pipelines."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import UsageError
from conveyor.store.cas import ContentStore

if TYPE_CHECKING:
    from conveyor.store.objects import ObjectStore

PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
SANDBOXES = ("bwrap", "none")


@dataclass(frozen=True)
class ServerConfig:
    data: Path
    """The data directory: projects (bare repositories, run state), the store, the key."""
    database: str | None = None
    """A SQLAlchemy URL; default: SQLite in the data directory."""
    executor: str = "local"
    host: str = "127.0.0.1"
    port: int = 8700
    workers: int = 1
    """Workers inside the server process (0: only separate ``conveyor worker`` processes)."""
    public_url: str | None = None
    """How users reach the server (for the URLs printed after a push)."""
    max_push_body: int = 1024**3
    """The largest git request body (a push) the server accepts, in bytes."""
    max_webhook_body: int = 25 * 1024**2
    """The largest webhook body, in bytes (GitHub sends at most 25 MB)."""
    max_api_body: int = 1024**2
    """The largest body of any other request (the REST API), in bytes."""
    max_dataset_body: int = 1024**3
    """The largest file put into a dataset through the REST API, in bytes."""
    max_craft_body: int = 32 * 1024**2
    """The largest body of the Craft AI API (a code folder, a run's files), in bytes."""
    replay_window: float = 7 * 24 * 3600.0
    """Seconds during which a webhook delivery (its id, its body) is remembered."""
    status_retry: float = 5.0
    """Seconds before a commit status the forge did not take is sent again (doubling)."""
    stale_after: float = 15.0
    """Seconds without a heartbeat after which a running run's worker counts as gone."""
    mirror_roots: tuple[Path, ...] = ()
    """Directories under which a project's ``mirror`` may be a local path (none: no local
    mirrors at all; URLs are always allowed)."""
    sandbox: str = "bwrap"
    """How local steps are isolated: ``bwrap`` (bubblewrap), or ``none`` (the admin opts out)."""
    sandbox_hide: tuple[Path, ...] = ()
    """More directories steps must not see (besides the data directory and the home)."""
    allow_executors: tuple[str, ...] = ()
    """Executors besides ``local`` (sandboxed) and ``executor`` that projects may use."""
    store_url: str | None = None
    """An object store the workers share (``s3://bucket/prefix``, any fsspec URL); the
    data directory's store is then a cache in front of it. None: the local store alone."""
    store_endpoint: str | None = None
    """The endpoint URL of an S3-compatible service (MinIO, Ceph...)."""
    store_credentials: Path | None = None
    """A TOML file of the object store's options (``key``/``secret`` for S3); without one,
    the filesystem's own sources (``AWS_*`` variables, ``~/.aws``...)."""

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL; a plain ``postgresql://`` URL uses psycopg 3."""
        if self.database and self.database.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + self.database.split("://", 1)[1]
        return self.database or f"sqlite:///{self.data / 'server.db'}"

    @property
    def executors_allowed(self) -> frozenset[str]:
        """Where projects' steps may run: the local executor (in the sandbox), the
        default executor and what the admin allows (others may run on this machine,
        unsandboxed, as Spark's ``local[*]`` does)."""
        return frozenset({"local", self.executor, *self.allow_executors})

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def hook_url(self) -> str:
        """Where the git hooks of this process call back (always a local address)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::", "localhost") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/internal/post-receive"

    @property
    def store_dir(self) -> Path:
        return self.data / "store"

    def open_store(self) -> ContentStore:
        """The store runs read and write: the local one, or a cache of the object store."""
        if not self.store_url:
            return ContentStore(self.store_dir)
        from conveyor.store.cached import CachedStore

        return CachedStore(self.store_dir, _object_store(self))

    @property
    def key_path(self) -> Path:
        return self.data / "server.key"

    def project_dir(self, name: str) -> Path:
        check_project_name(name)
        return self.data / "projects" / name

    def repo_dir(self, name: str) -> Path:
        return self.project_dir(name) / "repo.git"


def _object_store(config: ServerConfig) -> ObjectStore:
    from conveyor.store.objects import ObjectStore, ObjectStoreSettings

    key = (config.store_url or "", config.store_endpoint, config.store_credentials)
    with _OPENED_LOCK:
        found = _OPENED.get(key)
        if found is None:  # one per settings: its filesystem (and connections) is reused
            settings = ObjectStoreSettings(*key)
            found = _OPENED[key] = ObjectStore(settings)
    return found


_OPENED: dict[tuple[str, str | None, Path | None], ObjectStore] = {}
_OPENED_LOCK = threading.Lock()


def check_project_name(name: str) -> str:
    if not PROJECT_NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a valid project name: use lower-case letters, digits, "
            "'.', '_' and '-' (up to 63 characters, starting with a letter or digit)"
        )
    return name


def check_user_name(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a valid user name: use letters, digits, '.', '_', '@' and '-'"
        )
    return name
