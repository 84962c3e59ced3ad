"""``conveyor data ... --remote``: the project's datasets on its server, over the REST API.

The answers are the JSON the local commands print. A put makes one commit, as locally:
one file (or standard input) is the body of one request; directories or several files
(placed as a local put places them) go as one tar stream (``tarstream.py``).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

from conveyor.errors import RemoteError, UsageError
from conveyor.sdk.datasets.put import Progress, Source, plan_sources
from conveyor.sdk.datasets.refs import DEFAULT_BRANCH, DatasetRef
from conveyor.sdk.datasets.tarstream import MAX_FILES, write_tar
from conveyor.sdk.remote import RemoteClient, check


def ref_text(ref: DatasetRef) -> str | None:
    """The ``ref`` query of a reference: branch or commit, then ``~N``."""
    if ref.ref is None and not ref.back:
        return None
    return (ref.ref or DEFAULT_BRANCH) + (f"~{ref.back}" if ref.back else "")


class RemoteDatasets:
    def __init__(self, client: RemoteClient) -> None:
        self.client = client

    def _path(self, dataset: str, *rest: str) -> str:
        return "/".join(["/datasets", quote(dataset, safe=""), *rest])

    def _get(self, url: str, params: dict[str, Any]) -> Any:
        """A read, retried when the server is briefly away (``RemoteClient.request``)."""
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return self.client.request("GET", f"{url}?{query}" if query else url)

    def summaries(self) -> list[dict[str, Any]]:
        return list(self.client.request("GET", "/datasets"))

    def create(self, name: str, description: str) -> dict[str, Any]:
        body = {"name": name, "description": description}
        return dict(self.client.request("POST", "/datasets", body))

    def delete(self, name: str) -> None:
        self.client.request("DELETE", self._path(name))

    def inspect(self, ref: DatasetRef) -> dict[str, Any]:
        return dict(self._get(self._path(ref.dataset), {"ref": ref_text(ref), "path": ref.path}))

    def log(self, ref: DatasetRef, limit: int) -> list[dict[str, Any]]:
        return list(
            self._get(self._path(ref.dataset, "log"), {"ref": ref_text(ref), "limit": limit})
        )

    def ls(self, ref: DatasetRef) -> list[dict[str, Any]]:
        return list(
            self._get(self._path(ref.dataset, "ls"), {"ref": ref_text(ref), "path": ref.path})
        )

    def glob(self, ref: DatasetRef, pattern: str) -> list[dict[str, Any]]:
        path = self._path(ref.dataset, "glob")
        return list(self._get(path, {"ref": ref_text(ref), "pattern": pattern}))

    def diff(self, old: DatasetRef, new: DatasetRef) -> dict[str, Any]:
        if old.dataset != new.dataset:
            raise UsageError("with --remote, diff compares two commits of one dataset")
        path = self._path(old.dataset, "diff")
        return dict(
            self._get(
                path,
                {"from": ref_text(old) or DEFAULT_BRANCH, "to": ref_text(new) or DEFAULT_BRANCH},
            )
        )

    def branches(self, name: str) -> dict[str, str | None]:
        return dict(self.client.request("GET", self._path(name, "branches")))

    def set_branch(self, name: str, branch: str, head: DatasetRef | None) -> dict[str, Any]:
        body = {"head": ref_text(head) or DEFAULT_BRANCH} if head is not None else {"head": None}
        path = self._path(name, "branches", quote(branch, safe=""))
        return dict(self.client.request("PUT", path, body))

    def delete_branch(self, name: str, branch: str) -> None:
        self.client.request("DELETE", self._path(name, "branches", quote(branch, safe="")))

    def delete_path(self, ref: DatasetRef, message: str) -> dict[str, Any]:
        params = urlencode({"branch": ref.ref or DEFAULT_BRANCH, "message": message})
        path = self._path(ref.dataset, "files", quote(ref.path, safe="/"))
        return dict(self.client.request("DELETE", f"{path}?{params}"))

    def put_one(
        self, ref: DatasetRef, body: IO[bytes], message: str, append: bool
    ) -> dict[str, Any]:
        """One file, streamed as the request body: one commit on the branch."""
        import httpx

        if not ref.path or ref.slash:
            raise UsageError("with --remote, put one file to a path: NAME@BRANCH:/PATH")
        params = {"branch": ref.ref or DEFAULT_BRANCH, "message": message}
        if append:
            params["append"] = "true"
        path = self._path(ref.dataset, "files", quote(ref.path, safe="/"))
        try:  # a put is not idempotent: never retried
            response = self.client.client.put(path, params=params, content=_chunks(body))
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.client.settings.url}: {exc}") from exc
        return dict(_json(response, self.client.settings.url))

    def put(
        self,
        ref: DatasetRef,
        sources: list[str],
        message: str,
        append: bool,
        recursive: bool,
        progress: Progress | None = None,
        stdin: IO[bytes] | None = None,
    ) -> dict[str, Any]:
        """``data put --remote``: one file or standard input, or (directories, several
        files) a tar stream of them all; one commit either way, as locally."""
        if "-" in sources and len(sources) > 1:
            raise UsageError("standard input ('-') is put alone, to one NAME@BRANCH:/PATH")
        if len(sources) > 1 or recursive or Path(sources[0]).is_dir():
            planned = plan_sources(sources, ref.path, ref.slash, recursive)
            return self.put_tree(ref, planned, message, append, progress)
        if sources[0] == "-":
            return self.put_one(ref, stdin or sys.stdin.buffer, message, append)
        source = Path(sources[0])
        if not source.is_file():
            raise UsageError(f"{source} is not a file (with --remote, put one file)")
        if not ref.path or ref.slash:
            name = source.name
            ref = dataclasses.replace(
                ref, path=f"{ref.path}/{name}" if ref.path else name, slash=False
            )
        with open(source, "rb") as body:
            return self.put_one(ref, body, message, append)

    def put_tree(
        self,
        ref: DatasetRef,
        planned: list[Source],
        message: str,
        append: bool,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Files already placed, as one tar stream: one commit on the branch."""
        import httpx

        if not planned:
            raise UsageError("nothing to put: the directories given hold no files")
        if len(planned) > MAX_FILES:
            raise UsageError(
                f"a put over HTTP holds at most {MAX_FILES} files ({len(planned)} given); "
                "put the directory in parts"
            )
        params = {"branch": ref.ref or DEFAULT_BRANCH, "message": message}
        if append:
            params["append"] = "true"
        try:  # a put is not idempotent: never retried
            response = self.client.client.put(
                self._path(ref.dataset, "tree"),
                params=params,
                content=write_tar(planned, progress),
                headers={"Content-Type": "application/x-tar"},
            )
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.client.settings.url}: {exc}") from exc
        return dict(_json(response, self.client.settings.url))

    def read(self, ref: DatasetRef) -> Iterator[bytes]:
        """A file's content, streamed."""
        import httpx

        path = self._path(ref.dataset, "files", quote(ref.path, safe="/"))
        query = {"ref": ref_text(ref)} if ref_text(ref) else {}
        try:
            with self.client.client.stream("GET", path, params=query) as response:
                if response.status_code >= 400:
                    response.read()
                    _json(response, self.client.settings.url)
                yield from response.iter_bytes()
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.client.settings.url}: {exc}") from exc

    def download(self, ref: DatasetRef, dest: Path) -> int:
        target = dest / ref.path.rsplit("/", 1)[-1] if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.conveyor-tmp")
        try:
            with open(tmp, "wb") as out:
                for chunk in self.read(ref):
                    out.write(chunk)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return 1


def _chunks(body: IO[bytes]) -> Iterator[bytes]:
    while chunk := body.read(1024 * 1024):
        yield chunk


def _json(response: Any, url: str) -> Any:
    check(response)
    return response.json()
