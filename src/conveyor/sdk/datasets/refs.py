"""Dataset names, paths and references (``NAME[@REF][:PATH]``): text from a user, checked.

A reference names a branch, a commit id or a unique prefix of one, followed by any
number of ``^`` (the parent) and ``~N`` (the N-th ancestor), as in Pachyderm and git.
Pure: resolving a reference against the records is the caller's work.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from conveyor.errors import UsageError

DEFAULT_BRANCH = "master"  # Pachyderm's
MAX_PATH = 4096  # bytes of a path inside a dataset
MAX_ANCESTRY = 100_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_ANCESTRY = re.compile(r"(\^|~[0-9]*)+$")


@dataclass(frozen=True)
class DatasetRef:
    """What a user wrote: ``dataset``, the ``ref`` before any ancestry (None: the default
    branch), how many generations back, and a ``path`` inside the commit ("" for its root)."""

    dataset: str
    ref: str | None = None
    back: int = 0
    path: str = ""
    slash: bool = False
    """The path was written with a trailing ``/``: a directory to put files into."""

    def __str__(self) -> str:
        ref = f"@{self.ref}" if self.ref is not None else ""
        back = f"~{self.back}" if self.back else ""
        return f"{self.dataset}{ref}{back}" + (f":/{self.path}" if self.path else "")


def names_dataset(text: str) -> bool:
    """Whether ``text`` is written as a dataset reference: a name, then ``@``, ``:``,
    ``^`` or ``~`` (a bare name could as well be a file)."""
    name = re.split(r"[@:^~]", text, maxsplit=1)[0]
    return name != text and _NAME.fullmatch(name) is not None


def check_name(name: str, what: str = "dataset") -> str:
    """A dataset or branch name: letters, digits, ``_`` and ``-``, at most 63, no path."""
    if not _NAME.fullmatch(name):
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise UsageError(
            f"{shown!r} is not a valid {what} name: use 1 to 63 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_path(path: str) -> str:
    """A path inside a dataset, normalised without its leading ``/`` ("" for the root);
    ``..``, NUL and over-long paths are refused."""
    if "\0" in path:
        raise UsageError("a dataset path cannot hold a NUL character")
    if len(path.encode()) > MAX_PATH:
        raise UsageError(f"a dataset path is at most {MAX_PATH} bytes long")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UsageError(f"the dataset path {path!r} leaves the dataset ('..')")
    return posixpath.join(*parts) if parts else ""


def parse_ref(text: str) -> DatasetRef:
    """``NAME``, ``NAME@REF``, ``NAME@REF^``, ``NAME@REF~2``, each with an optional
    ``:PATH`` (``images@master:/cats``)."""
    head, colon, path = text.partition(":")
    name, at, ref = head.partition("@")
    back = 0
    if not at and (bare := _ANCESTRY.search(name)):  # `images^`: the default branch's
        back, name = _generations(bare.group(0), text), name[: bare.start()]
    check_name(name)
    if at:
        found = _ANCESTRY.search(ref)
        if found:
            back = _generations(found.group(0), text)
            ref = ref[: found.start()]
        if ref == "" and back:
            ref = DEFAULT_BRANCH  # `images@^`: like git's bare `^` on HEAD
        elif not _NAME.fullmatch(ref):
            raise UsageError(
                f"{text!r}: {ref!r} is neither a branch name nor a commit id (use NAME@BRANCH, "
                "NAME@COMMIT, and ^ or ~N for ancestors)"
            )
    return DatasetRef(
        name, ref if at else None, back, check_path(path) if colon else "", path.endswith("/")
    )


def _generations(suffix: str, text: str) -> int:
    back = 0
    for token in re.findall(r"\^|~[0-9]*", suffix):
        back += 1 if token in ("^", "~") else int(token[1:])
        if back > MAX_ANCESTRY:
            raise UsageError(f"{text!r} goes back more than {MAX_ANCESTRY} commits")
    return back
