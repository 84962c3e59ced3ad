"""A Conveyor project: a directory with a pipeline file inside a git repository.

``Project`` finds the parts and opens them lazily (the records and the store are not
touched until a command needs them); what to do with them lives in the sibling modules.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from conveyor.domain.digests import blake2b
from conveyor.domain.runrefs import run_number
from conveyor.domain.states import RunStatus, StepStatus
from conveyor.errors import ConcurrencyError, NotFoundError, ProjectError
from conveyor.metadata.records import EventRecord, RunRecord
from conveyor.metadata.repository import MetadataRepository, WriteBatch
from conveyor.sdk.settings import Settings
from conveyor.spec.files import PIPELINE_FILES, PYTHON_PIPELINE, find_pipeline_file

if TYPE_CHECKING:  # loading the spec pulls in YAML and pydantic: only when needed
    from conveyor.spec.model import PipelineSpec
    from conveyor.spec.plainspec import Parsed
    from conveyor.store.cas import ContentStore
    from conveyor.store.hashing import DigestCache

STATE_DIR = ".conveyor"
CACHE_KEY_FILE = "cache-key"
_LOCK_FILES = (
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "pdm.lock",
    "pixi.lock",
    "conda-lock.yml",
    "environment.yml",
    "requirements.txt",
)
_GITIGNORE = (
    "# Conveyor's local state; only the settings and local actions are shared.\n"
    "*\n!.gitignore\n!config.toml\n!actions/\n!actions/**\n"
)


class Project:
    def __init__(
        self,
        root: Path,
        pipeline_file: Path | None = None,
        state_dir: Path | None = None,
        settings: Settings | None = None,
        records: MetadataRepository | None = None,
        store: ContentStore | None = None,
    ) -> None:
        """``settings`` replaces ``.conveyor/config.toml``, ``records`` an open repository
        the configured database and ``store`` an open store the configured one (a server
        passes all three)."""
        self.root = root.resolve()
        self._pipeline_file = pipeline_file
        self.state_dir = state_dir or self.root / STATE_DIR
        if settings is not None:
            self.__dict__["settings"] = settings  # fills the cached properties below
        if records is not None:
            self.__dict__["records"] = records
        if store is not None:
            self.__dict__["store"] = store

    @staticmethod
    def discover(start: Path, pipeline_file: Path | None = None) -> Project:
        """The project whose pipeline file is in ``start`` or its nearest parent."""
        if pipeline_file is not None:
            path = (start / pipeline_file).resolve()
            if not path.is_file():
                raise ProjectError(f"pipeline file {pipeline_file} does not exist")
            return Project(path.parent, path)
        here = start.resolve()
        for directory in (here, *here.parents):
            if any((directory / name).is_file() for name in (*PIPELINE_FILES, PYTHON_PIPELINE)):
                return Project(directory)
            if (directory / STATE_DIR).is_dir():  # runs of a file given with -f before
                return Project(directory)
            if (directory / ".git").exists():
                break
        raise ProjectError(
            f"no pipeline file ({' or '.join((*PIPELINE_FILES, PYTHON_PIPELINE))}) in {here} "
            "or its parents; "
            "run `conveyor init` to write an example"
        )

    # -- parts ----------------------------------------------------------------
    @cached_property
    def settings(self) -> Settings:
        return Settings.load(self.state_dir)

    @property
    def pipeline_file(self) -> Path:
        return self._pipeline_file or find_pipeline_file(self.root)

    def display_path(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
        return str(path)

    def load_spec(self, parsed: Parsed | None = None) -> PipelineSpec:
        """The pipeline file's spec (``parsed``: its text and YAML, already read)."""
        from conveyor.sdk.actions import project_resolver
        from conveyor.spec.formats import load_file

        path = self.pipeline_file
        if path.suffix == ".py":
            from conveyor.sdk.pyflow import load_python_spec

            local = self.settings.executors.get("local", {})
            return load_python_spec(self.root, path, self.display_path(path), local.get("sandbox"))
        search = [self.root / p for p in self.settings.action_paths]
        resolver = project_resolver(
            self.root,
            search,
            self.state_dir / "cache" / "actions",
            self.settings.action_base,
            server=self.settings.server_sandbox,
        )
        return load_file(path, self.display_path(path), resolver, parsed)

    @cached_property
    def records(self) -> MetadataRepository:
        from conveyor.metadata.database import open_records

        self.ensure_state_dir()
        url = self.settings.database or f"sqlite:///{self.state_dir / 'conveyor.db'}"
        return open_records(url)

    @cached_property
    def store(self) -> ContentStore:
        from conveyor.store.cas import ContentStore  # read-only commands seldom need it

        configured = self.settings.store
        root = (self.root / configured) if configured else self.state_dir / "store"
        return ContentStore(root)

    @cached_property
    def digests(self) -> DigestCache:
        from conveyor.store.hashing import DigestCache

        return DigestCache(self.state_dir / "cache" / "digests.sqlite")

    def log_dir(self, run_id: str) -> Path:
        return self.state_dir / "logs" / run_id

    def ensure_state_dir(self) -> None:
        if not self.state_dir.is_dir():
            self.state_dir.mkdir(parents=True)
        ignore = self.state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")

    def cache_key(self) -> bytes:
        """The project's random key for the HMACs of secret values in fingerprints
        (``.conveyor/cache-key``, 0600, made on first use)."""
        self.ensure_state_dir()
        return cache_key_at(self.state_dir / CACHE_KEY_FILE)

    def environment_digest(self) -> str:
        """Python version plus the digest of any lock file at the project root."""
        digest = blake2b(sys.version.encode(), digest_size=16)
        for name in _LOCK_FILES:
            path = self.root / name
            if path.is_file():
                digest.update(name.encode() + b"\0" + self.digests.digest(path).encode())
        return digest.hexdigest()

    # -- runs ---------------------------------------------------------------------
    def resolve_run(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, number (``#12``) or ``latest``."""
        self.recover_interrupted()
        number = run_number(ref)
        if number is not None:
            return self._numbered(number)
        if ref == "latest":
            run = self.records.latest_run()
            if run is None:
                raise NotFoundError("there are no runs yet; start one with `conveyor run`")
            return run
        exact = self.records.get_run(ref)
        if exact is not None:
            return exact
        found = self.records.find_runs(ref)
        if not found:
            raise NotFoundError(f"no run matches {ref!r}; `conveyor runs` lists them")
        if len(found) > 1:
            ids = ", ".join(r.id for r in found[:5])
            raise NotFoundError(f"{ref!r} matches several runs ({ids}); give more characters")
        return found[0]

    def _numbered(self, number: int) -> RunRecord:
        found = self.records.runs_numbered(number)
        if not found:
            raise NotFoundError(f"there is no run #{number}; `conveyor runs` lists them")
        if len(found) > 1:  # records shared with other scopes (a server's database)
            ids = ", ".join(r.id for r in found[:5])
            raise NotFoundError(f"#{number} names several runs ({ids}); give the run's id")
        return found[0]

    # -- the run lock ---------------------------------------------------------------
    @contextlib.contextmanager
    def run_lock(self, wait: bool, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """One run at a time per project; a second one waits (or refuses)."""
        self.ensure_state_dir()
        path = self.state_dir / "run.lock"
        with open(path, "a+", encoding="utf-8") as handle:
            if not _try_lock(handle):
                holder = _read_holder(handle)
                if not wait:
                    raise ConcurrencyError(
                        f"another run is in progress in this project ({holder}); "
                        "wait for it, or run again without --no-wait to queue behind it"
                    )
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
            try:
                self._mark_interrupted()
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def data_lock(self, exclusive: bool) -> Iterator[None]:
        """Dataset puts hold it shared while their blobs are not yet recorded; ``gc``
        holds it exclusive, and refuses rather than wait while a put is in progress."""
        self.ensure_state_dir()
        with open(self.state_dir / "data.lock", "a+", encoding="utf-8") as handle:
            if exclusive:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise ConcurrencyError(
                        "a dataset put is in progress in this project; run gc once it is done"
                    ) from None
            else:
                fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recover_interrupted(self) -> None:
        """Mark runs left 'running' by a killed process, when no run is active here."""
        path = self.state_dir / "run.lock"
        if not path.exists():
            return
        with open(path, "a+", encoding="utf-8") as handle:
            if _try_lock(handle):
                try:
                    self._mark_interrupted()
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _mark_interrupted(self) -> None:
        """Called with the run lock held: nothing of this project can still be running."""
        host = hostname()
        stale = [
            r
            for r in self.records.runs_in_progress()
            if r.workdir == str(self.root) or (r.host == host and not _alive(r.pid))
        ]
        for run in stale:
            reason = "the conveyor process ended mid-run"
            mark_interrupted(self.records, run, reason, self.settings.executors)
        if (self.state_dir / "leftovers").exists():  # a run whose executor broke mid-run
            self._recover_leftovers()

    def _recover_leftovers(self) -> None:
        from conveyor.sdk.recovery import recover_broken

        done = recover_broken(self.state_dir, self.records.events, self.settings.executors)
        now = time.time()
        batch = WriteBatch()
        for run_id, recovered in done.items():
            ended = [f"{r.key}: {r.message}" for r in recovered if r.ended]
            batch.events.append(
                EventRecord(run_id, "leftovers-recovered", now, data={"recovered": ended})
            )
        if batch:
            self.records.write(batch)


def mark_interrupted(
    records: MetadataRepository,
    run: RunRecord,
    reason: str,
    executors: Mapping[str, Mapping[str, Any]],
) -> None:
    """Record that ``run`` did not end on its own (its process or worker died, or a server
    stopped it): its unfinished steps cancelled, the run ``interrupted`` (it can be resumed),
    and what its steps left on this host ended. The one routine of the CLI and the server."""
    now = time.time()
    batch = WriteBatch()
    for step in records.step_runs(run.id):
        if not step.status.finished:
            step.status = StepStatus.CANCELLED
            step.error = f"interrupted: {reason}"
            step.ended_at = now
            batch.put_step_run(step)
    events = records.events(run.id)
    from conveyor.execute.images import remove_leftovers  # rare: keeps start-up lean
    from conveyor.sdk.recovery import recover_leftovers

    same_host = run.host == hostname()  # another host's process ids mean nothing
    recovered = recover_leftovers(events, executors, same_host)
    if same_host:
        remove_leftovers(run.id, [e.data for e in events if e.kind == "step-started"])
        from conveyor.execute.services import SERVICES_EVENT, end_leftovers

        end_leftovers(run.id, [e.data for e in events if e.kind == SERVICES_EVENT])
    batch.run_updates[run.id] = (RunStatus.INTERRUPTED, now, reason)
    ended = [f"{r.key}: {r.message}" for r in recovered if r.ended]
    data = {"recovered": ended} if ended else {}
    batch.events.append(EventRecord(run.id, "run-interrupted", now, data=data))
    records.write(batch)


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it (both read uname's node
    name) without importing ``socket`` on every command's start-up."""
    return os.uname().nodename


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(handle: IO[str]) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown process"


def cache_key_at(path: Path) -> bytes:
    """The 32-byte random key kept at ``path`` (mode 0600), made on first use.

    Written whole to a temporary file and linked into place, so a concurrent reader
    sees no key or the whole key; a symlink planted at ``path`` is refused."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if not os.path.lexists(path):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    try:
        fd = os.open(path, os.O_RDONLY | nofollow)
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the cache key: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as key_file:
        if os.fstat(key_file.fileno()).st_mode & 0o077:
            os.fchmod(key_file.fileno(), 0o600)
        key = key_file.read(4096)
    if len(key) < 32:
        raise ProjectError(
            f"{path} is damaged (shorter than 32 bytes); delete it and the steps "
            "that read secrets run again"
        )
    return key
