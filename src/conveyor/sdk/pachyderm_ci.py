"""The CI flow of Pachyderm pipelines: build, tag, push, update, reprocess.

``conveyor pipeline ci -f SPEC...`` does what a Pachyderm CI job does on a push, as
steps recorded in ``.conveyor/pachyderm/ci/<id>.json`` (each with its log beside it):

1. **build** the repository's Dockerfile with the container runtime, unless an image
   of the same context (Dockerfile and every file of the context, by content digest)
   was built before and still exists;
2. **tag** it with the git commit: the spec's image name, in the registry of
   ``[containers] registry``, tag replaced by the commit SHA;
3. **push** it (``--push``) and read back the digest the registry gave it;
4. **update** every spec file, in dependency order, with ``transform.image`` retagged
   (a copy under the CI record: the repository's files are not rewritten);
5. **run** every pipeline of the specs, then every pipeline downstream of them (reading
   their outputs, and so on), in DAG order: a new image reruns its datums, and each of
   the specs' output commits' provenance holds the build (``ci``: commit, image,
   pushed digest).

Every value from a spec or the settings goes to the runtime as one argument of an
argument list, never through a shell.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from conveyor.errors import ConveyorError, ExecutorError, UsageError
from conveyor.sdk.pachyderm_jobs import Pipelines
from conveyor.sdk.project import Project
from conveyor.spec.pachyderm import load_specs
from conveyor.spec.pachyderm_model import PfsInput, leaves
from conveyor.spec.pachyderm_retag import check_tag, parse_image, retag

BUILD_TIMEOUT = 3600.0  # seconds of one image build
PUSH_TIMEOUT = 1800.0
SKIPPED_DIRS = {".git", ".conveyor"}  # never part of the build context's digest
LOCAL_REGISTRY_HOSTS = {"127.0.0.1", "localhost", "[::1]"}  # plain HTTP, as registry.sh


class CiFailed(ExecutorError):
    """A step of the CI flow failed: its log says why."""


@dataclass(frozen=True)
class SpecFile:
    path: Path
    shown: str


Progress = Callable[[str], None]
Scrub = Callable[[str], str]
"""What the logs and errors show of a text: a server's replaces its scratch paths."""


def _as_is(text: str) -> str:
    return text


class PipelineCi:
    """``pipelines``, ``registry`` and ``executor``: the server's (its project's
    datasets, the lead's registry setting, jobs run here); by default the project's.
    ``scrub``: applied to every log line and error (the server's hides its paths)."""

    def __init__(
        self,
        project: Project,
        pipelines: Pipelines | None = None,
        registry: str | None = None,
        executor: str | None = None,
        scrub: Scrub = _as_is,
    ) -> None:
        self.project = project
        self.scrub = scrub
        self.pipelines = pipelines or Pipelines(project)
        self.registry = registry or project.settings.containers.registry
        self.executor = executor
        self.root = project.state_dir / "pachyderm" / "ci"

    def run(
        self,
        specs: list[SpecFile],
        *,
        push: bool,
        context: Path,
        dockerfile: Path,
        tag: str | None = None,
        parallel: int = 1,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        say = progress or (lambda _line: None)
        loaded = [(f, load_specs(f.path, f.shown)) for f in specs]  # bad specs: exit 2 first
        image = _one_image(loaded)
        if not dockerfile.is_file():
            raise UsageError(f"no Dockerfile at {dockerfile} (give one with --dockerfile)")
        if not context.is_dir():
            raise UsageError(f"the build context {context} is not a directory")
        commit = tag or self._commit()
        check_tag(commit)
        registry = self.registry
        if push and registry is None:
            raise UsageError(
                '--push needs the registry to push to: set registry = "HOST:PORT" under '
                "[containers] in .conveyor/config.toml"
            )
        cli = self._runtime()
        target = image.at(registry, commit)
        ordered = _order(loaded)
        self.project.ensure_state_dir()
        ci_id = uuid.uuid4().hex
        logs = self.root / ci_id
        logs.mkdir(parents=True)
        record: dict[str, Any] = {
            "id": ci_id,
            "commit": commit,
            "image": target,
            "registry": registry,
            "pushed": push,
            "digest": None,
            "state": "running",
            "started_at": time.time(),
            "finished_at": None,
            "steps": [],
        }
        try:
            context_digest = _context_digest(context, dockerfile)
            record["context"] = context_digest
            with self._step(record, "build", say) as step:
                step["image_id"], step["cached"] = self._build(
                    cli, context, dockerfile, context_digest, logs / "build.log"
                )
            with self._step(record, "tag", say) as step:
                argv = [*cli, "tag", record["steps"][0]["image_id"], target]
                _call(argv, logs / "tag.log", 60, self.scrub)
                step["image"] = target
            if push:
                with self._step(record, "push", say) as step:
                    record["digest"] = step["digest"] = self._push(cli, target, logs / "push.log")
            provenance = {
                "id": ci_id,
                "commit": commit,
                "image": target,
                "image_id": record["steps"][0]["image_id"],
                "digest": record["digest"],
                "context": context_digest,
            }
            names: list[str] = []
            with self._step(record, "update", say) as step:
                step["specs"] = self._update(ordered, _written_images(loaded), target, logs)
                names = [n for s in step["specs"] for n in s["pipelines"]]
            with self._step(record, "run", say) as step:
                step["jobs"] = self._run_jobs(loaded, names, provenance, parallel, logs, say)
        except ConveyorError as exc:
            record.update(state="failed", finished_at=time.time(), error=self.scrub(str(exc)))
            self._save(record)
            raise
        record.update(state="success", finished_at=time.time())
        self._save(record)
        return record

    def _run_jobs(
        self,
        loaded: list[tuple[SpecFile, Any]],
        names: list[str],
        provenance: dict[str, Any],
        parallel: int,
        logs: Path,
        say: Progress,
    ) -> list[dict[str, Any]]:
        """A job of each pipeline of the files, then of each pipeline downstream of them
        (reading their outputs, then those reading these), in DAG order."""
        jobs = []
        listed = _pipeline_order(loaded, names)
        for name in self.pipelines.with_downstream(listed):
            downstream = name not in listed
            say(f"run pipeline {name}" + (" (downstream)" if downstream else ""))
            job = self.pipelines.run(
                name,
                parallel,
                executor=self.executor,
                ci=None if downstream else provenance,  # it runs no image of this build
            )
            counts: dict[str, int] = {}
            for row in job["datums"]:
                counts[row["state"]] = counts.get(row["state"], 0) + 1
            _note(
                logs / "run.log",
                f"pipeline {name}: job {job['id']} {job['state']}, datums {counts}, "
                f"commit {job['output_commit']} (datum logs: conveyor datum list "
                f"{job['id'][:12]})",
            )
            jobs.append(
                {
                    "pipeline": name,
                    "job": job["id"],
                    "commit": job["output_commit"],
                    "downstream": downstream,
                }
            )
        return jobs

    def refused(self, commit: str, error: str) -> dict[str, Any]:
        """The record of a flow refused before its first step (no build, no update)."""
        now = time.time()
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex, "commit": commit, "image": None, "registry": self.registry,
            "pushed": False, "digest": None, "state": "failed", "started_at": now,
            "finished_at": now, "steps": [], "error": error,
        }  # fmt: skip
        self.root.mkdir(parents=True, exist_ok=True)
        self._save(record)
        return record

    def records(self, limit: int = 50) -> list[dict[str, Any]]:
        """The flows' records, newest first."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.glob("*.json"):
            if path.name != "builds.json":
                found.append(json.loads(path.read_text()))
        found.sort(key=lambda r: r["started_at"], reverse=True)
        return found[:limit]

    # -- steps ------------------------------------------------------------------
    def _step(self, record: dict[str, Any], name: str, say: Progress) -> _Step:
        return _Step(self, record, name, say)

    def _save(self, record: dict[str, Any]) -> None:
        path = self.root / f"{record['id']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def _commit(self) -> str:
        from conveyor.errors import ProjectError
        from conveyor.vcs.git import git_state

        try:
            state = git_state(self.project.root)
        except ProjectError:
            state = None
        if state is None or state.commit is None:
            raise UsageError(
                "the image is tagged with the git commit, and there is none: commit first "
                "(or give --tag)"
            )
        return state.commit

    def _runtime(self) -> tuple[str, ...]:
        from conveyor.execute.images import find_runtime

        runtime = find_runtime(self.project.settings.containers.runtime)
        if runtime is None:
            raise UsageError(
                "building the image needs a container runtime: install podman "
                "(scripts/engines/podman.sh install) or set [containers] runtime"
            )
        return runtime.cli

    def _build(
        self, cli: tuple[str, ...], context: Path, dockerfile: Path, digest: str, log: Path
    ) -> tuple[str, bool]:
        """The image ID of the context's build, and whether it was reused."""
        builds_file = self.root / "builds.json"
        builds: dict[str, str] = (
            json.loads(builds_file.read_text()) if builds_file.is_file() else {}
        )
        known = builds.get(digest)
        if known and _exists(cli, known):
            log.write_text(f"context {digest} was built before: image {known}, not rebuilt\n")
            return known, True
        iidfile = log.with_suffix(".iid")
        argv = [
            *cli, "build", "--network", "none", "--iidfile", str(iidfile),
            "--label", f"conveyor.context={digest}", "-f", str(dockerfile), str(context),
        ]  # fmt: skip
        _call(argv, log, BUILD_TIMEOUT, self.scrub)
        image_id = iidfile.read_text().strip()
        if not image_id.startswith("sha256:"):
            image_id = f"sha256:{image_id}"
        builds[digest] = image_id
        tmp = builds_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(builds, indent=2, sort_keys=True))
        os.replace(tmp, builds_file)
        return image_id, False

    def _push(self, cli: tuple[str, ...], target: str, log: Path) -> str:
        digestfile = log.with_suffix(".digest")
        argv = [*cli, "push"]
        host = target.split("/", 1)[0].rsplit(":", 1)[0] if "/" in target else ""
        if host in LOCAL_REGISTRY_HOSTS:
            argv.append("--tls-verify=false")  # the machine's own plain-HTTP registry
        argv += ["--digestfile", str(digestfile), target]
        _call(argv, log, PUSH_TIMEOUT, self.scrub)
        digest = digestfile.read_text().strip()
        if not digest.startswith("sha256:"):
            raise CiFailed(self.scrub(f"the push of {target} gave no digest; see {log}"))
        return digest

    def _update(
        self, ordered: list[SpecFile], names: dict[str, str], target: str, logs: Path
    ) -> list[dict[str, Any]]:
        """Each spec file retagged, then created or updated; their pipelines. One that
        fails takes back the files done before it (all or nothing: no pipeline is left
        on the new image while another that feeds it or reads it is not)."""
        done: list[dict[str, Any]] = []
        try:
            self._update_each(ordered, names, target, logs, done)
        except ConveyorError:
            self._roll_back(done, logs)
            raise
        return done

    def _update_each(
        self,
        ordered: list[SpecFile],
        names: dict[str, str],
        target: str,
        logs: Path,
        done: list[dict[str, Any]],
    ) -> None:
        out = logs / "specs"
        out.mkdir()
        for number, spec_file in enumerate(ordered):
            text = spec_file.path.read_text(encoding="utf-8")
            is_json = spec_file.path.name.endswith(".json") or (
                not spec_file.path.name.endswith((".yaml", ".yml"))
                and text.lstrip()[:1] in ("{", "[")
            )
            updated = retag(text, is_json, dict.fromkeys(names, target))
            copy = out / f"{number:02d}-{spec_file.path.name}"
            copy.write_text(updated, encoding="utf-8")
            pipelines = [p.name for p in load_specs(copy, spec_file.shown).pipelines]
            exist = [self.pipelines.state.exists(n) for n in pipelines]
            if any(exist) and not all(exist):
                raise UsageError(
                    f"{spec_file.shown}: some of its pipelines exist and some do not; "
                    "create or delete them so that the file is all new or all known"
                )
            created = self.pipelines.create(copy, spec_file.shown, all(exist), False)
            action = "updated" if all(exist) else "created"
            _note(
                logs / "update.log",
                self.scrub(
                    f"{action} {', '.join(created)} from {spec_file.shown} with image "
                    f"{target} (the spec given: {copy})"
                ),
            )
            done.append(
                {
                    "file": spec_file.shown,
                    "spec": str(copy),
                    "pipelines": created,
                    "versions": [len(self.pipelines.state.versions(n)) for n in created],
                    "action": action,
                }
            )

    def _roll_back(self, done: list[dict[str, Any]], logs: Path) -> None:
        """The pipelines of the files done return to their version before this flow (new
        ones go, with their still-empty output datasets), the last file first."""
        for spec_done in reversed(done):
            for name, number in zip(
                reversed(spec_done["pipelines"]), reversed(spec_done["versions"]), strict=True
            ):
                now = self.pipelines.undo(name, number)
                back = f"back to version {now}" if now else "deleted (it was new)"
                _note(logs / "update.log", f"rolled back {name}: {back}")
            spec_done["action"] = "rolled back"


class _Step:
    """One step of the record: its state, times and log, saved as it goes."""

    def __init__(self, ci: PipelineCi, record: dict[str, Any], name: str, say: Progress) -> None:
        self.ci, self.record, self.say = ci, record, say
        self.data: dict[str, Any] = {
            "name": name,
            "state": "running",
            "started_at": time.time(),
            "finished_at": None,
            "log": str(ci.root / record["id"] / f"{name}.log"),
        }

    def __enter__(self) -> dict[str, Any]:
        self.record["steps"].append(self.data)
        self.ci._save(self.record)
        self.say(f"{self.data['name']} ...")
        return self.data

    def __exit__(self, kind: object, error: object, _tb: object) -> None:
        self.data["state"] = "failed" if kind else "success"
        self.data["finished_at"] = time.time()
        if error is not None:
            self.data["error"] = self.ci.scrub(str(error))
        self.ci._save(self.record)
        took = self.data["finished_at"] - self.data["started_at"]
        self.say(f"{self.data['name']} {self.data['state']} ({took:.1f} s)")


def _note(log: Path, line: str) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(line + "\n")


def _call(argv: list[str], log: Path, timeout: float, scrub: Scrub = _as_is) -> None:
    """Run ``argv``, its output appended to ``log`` line by line through ``scrub`` (so
    the log never holds what ``scrub`` hides, even while the command runs)."""
    with log.open("ab") as out:
        out.write(scrub(f"$ {' '.join(argv)}\n").encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise CiFailed(scrub(f"cannot start {argv[0]}: {exc}")) from None
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, expire)
        with proc:  # closes its pipe; kills it if this thread is interrupted
            timer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    out.write(scrub(line.decode("utf-8", "replace")).encode())
                    out.flush()
                code = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
    if expired.is_set():
        raise CiFailed(scrub(f"`{argv[1]}` ran over {timeout:g} s; see {log}"))
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-10:]
        shown = "\n".join(f"  {line}" for line in tail)
        raise CiFailed(scrub(f"`{argv[0]} {argv[1]}` failed (exit {code}); {log}:\n{shown}"))


def _exists(cli: tuple[str, ...], image_id: str) -> bool:
    done = subprocess.run(
        [*cli, "image", "inspect", "--format", "{{.Id}}", image_id],
        capture_output=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode == 0


def _context_digest(context: Path, dockerfile: Path) -> str:
    """BLAKE3 of the Dockerfile and every entry of the context: a file's path, executable
    bit and content; a link's path and target (never followed, as a build copies it);
    anything else (a FIFO, a socket) by its path only, never opened."""
    digest = blake3.blake3()
    digest.update(b"dockerfile\0" + _file_digest(dockerfile) + b"\0")
    for path in sorted(_entries(context)):
        rel = path.relative_to(context).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            digest.update(f"link\0{rel}\0{os.readlink(path)}\0".encode())
        elif stat.S_ISREG(mode):
            digest.update(f"file\0{rel}\0{int(bool(mode & 0o111))}\0".encode())
            digest.update(_file_digest(path))
        else:
            digest.update(f"other\0{rel}\0{stat.S_IFMT(mode)}\0".encode())
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    hasher = blake3.blake3()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            hasher.update(chunk)
    return hasher.digest()


def _entries(root: Path) -> list[Path]:
    """Every file, link and special file below ``root`` (links to directories too)."""
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        found += [Path(top) / d for d in dirs if (Path(top) / d).is_symlink()]
        found += [Path(top) / f for f in files]
    return found


def _one_image(loaded: list[tuple[SpecFile, Any]]) -> Any:
    """The one image name the specs run (one Dockerfile builds one image)."""
    names = {
        parse_image(p.transform.image).path: parse_image(p.transform.image)
        for _, specs in loaded
        for p in specs.pipelines
        if p.transform.image
    }
    if not names:
        raise UsageError("no pipeline of the specs names a transform.image to build")
    if len(names) > 1:
        raise UsageError(
            f"the specs name several images ({', '.join(sorted(names))}); one Dockerfile "
            "builds one image: run `conveyor pipeline ci` once per image with its specs"
        )
    return next(iter(names.values()))


def _written_images(loaded: list[tuple[SpecFile, Any]]) -> dict[str, str]:
    """The image references as the specs write them (each is retagged)."""
    return {
        p.transform.image: p.transform.image
        for _, specs in loaded
        for p in specs.pipelines
        if p.transform.image
    }


def _order(loaded: list[tuple[SpecFile, Any]]) -> list[SpecFile]:
    """Spec files, each after the files whose pipelines write what it reads."""
    writer = {p.name: i for i, (_, specs) in enumerate(loaded) for p in specs.pipelines}
    needs = {
        i: {
            writer[leaf.repo]
            for p in specs.pipelines
            for leaf in leaves(p.input)
            if isinstance(leaf, PfsInput) and leaf.repo in writer and writer[leaf.repo] != i
        }
        for i, (_, specs) in enumerate(loaded)
    }
    order: list[int] = []
    while len(order) < len(loaded):
        ready = [i for i in sorted(needs) if i not in order and needs[i] <= set(order)]
        if not ready:
            shown = ", ".join(loaded[i][0].shown for i in needs if i not in order)
            raise UsageError(f"the spec files read each other's outputs in a cycle: {shown}")
        order += ready
    return [loaded[i][0] for i in order]


def _pipeline_order(loaded: list[tuple[SpecFile, Any]], names: list[str]) -> list[str]:
    """The pipelines, each after those whose output it reads."""
    reads = {
        p.name: {leaf.repo for leaf in leaves(p.input) if isinstance(leaf, PfsInput)}
        for _, specs in loaded
        for p in specs.pipelines
    }
    order: list[str] = []
    while len(order) < len(names):
        ready = [n for n in names if n not in order and (reads[n] & set(names)) <= set(order)]
        if not ready:
            raise UsageError(f"the pipelines read each other in a cycle: {', '.join(names)}")
        order += ready
    return order
