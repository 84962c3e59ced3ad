"""Pachyderm's datums, pure: an input tree and a listing of each input's files in, the
datums out (no I/O; the caller lists the files).

As Pachyderm 2 documents them: a pfs input gives a datum per path its glob matches (a
matched directory brings every file under it; ``/`` is one datum of the whole
repository; a listing with no match gives no datum); ``cross`` is the product of its
inputs' datums, ``union`` their concatenation; ``join`` pairs the datums of its inputs
whose ``join_on`` values (the glob's capture groups, ``$1``) are equal, one datum per
combination, and keeps the datums of an ``outer_join`` input that pair with nothing;
``group`` puts every datum whose ``group_by`` value is equal into one. A cron input is
its repository read whole (glob ``/``).

Each datum sees, for each input, its files at ``/pfs/<input name>/<path>``; its id
(``PACH_DATUM_ID``) hashes the input names and matched paths, as Pachyderm's does, and
its key hashes the content of its files with the transform and the salt: the key of the
incremental cache (an unchanged datum is not run again).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

from conveyor.domain.pathsets import ancestors
from conveyor.errors import UsageError
from conveyor.spec.pachyderm_glob import compile_glob, expand
from conveyor.spec.pachyderm_model import CombinedInput, CronInput, Input, PfsInput, Transform

MAX_DATUMS = 1_000_000
"""The most datums a job may have (a cross of large inputs grows as their product)."""

Listing = Sequence[tuple[str, str]]
"""An input's files: ``(path, digest)``, the path from the repository's root (``a/b``
or ``/a/b``)."""


class DatumError(UsageError):
    """Datums cannot be made from these inputs (a missing listing, too many datums)."""


@dataclass(frozen=True)
class DatumInput:
    """What one input contributes to a datum: the path its glob matched and the files
    under it."""

    name: str
    repo: str
    path: str
    files: tuple[tuple[str, str], ...]
    join_on: str | None = None
    group_by: str | None = None
    lazy: bool = False
    empty_files: bool = False

    @property
    def mount(self) -> str:
        """Where the matched path is seen: ``/pfs/<name><path>``."""
        return f"/pfs/{self.name}" + ("" if self.path == "/" else self.path)


@dataclass(frozen=True)
class Datum:
    inputs: tuple[DatumInput, ...]

    @property
    def id(self) -> str:
        """The datum's id, from its input names and matched paths (``PACH_DATUM_ID``)."""
        digest = hashlib.sha256()
        for item in self.inputs:
            digest.update(f"{item.name}\0{item.path}\0".encode())
        return digest.hexdigest()

    def key(self, transform: str, salt: str | None) -> str:
        """The incremental key: the files' paths and content, the transform, the salt."""
        files = [[i.name, path, digest] for i in self.inputs for path, digest in i.files]
        text = json.dumps([transform, salt or "", files], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def files(self) -> list[tuple[str, str]]:
        """``(where the file is seen under /pfs, digest)`` for every file of the datum."""
        return [(f"/pfs/{i.name}{path}", digest) for i in self.inputs for path, digest in i.files]

    def env(self) -> dict[str, str]:
        """The variables Pachyderm sets for a datum (``PACH_JOB_ID`` is the job's): the
        datum id, one variable per input name holding its path under /pfs (the last one
        when a group gives an input several), and the join and group values."""
        env = {"PACH_DATUM_ID": self.id}
        for item in self.inputs:
            env[item.name] = item.mount
            if item.join_on is not None:
                env[f"PACH_DATUM_{item.name}_JOIN_ON"] = item.join_on
            if item.group_by is not None:
                env[f"PACH_DATUM_{item.name}_GROUP_BY"] = item.group_by
        return env


def transform_digest(transform: Transform) -> str:
    """The transform as it keys datums: its fields as canonical JSON, hashed."""
    text = json.dumps(asdict(transform), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def datum_json(datum: Datum, transform: str, salt: str | None) -> dict[str, object]:
    """A datum as ``conveyor pipeline datums --json`` prints it."""
    return {
        "id": datum.id,
        "key": datum.key(transform, salt),
        "inputs": [
            {
                "name": i.name,
                "repo": i.repo,
                "path": i.path,
                "files": [{"path": p, "digest": d} for p, d in i.files],
                "join_on": i.join_on,
                "group_by": i.group_by,
                "lazy": i.lazy,
                "empty_files": i.empty_files,
            }
            for i in datum.inputs
        ],
        "env": datum.env(),
    }


def by_name(leaf: PfsInput | CronInput) -> str:
    return leaf.name


def datums(
    tree: Input,
    listings: Mapping[str, Listing],
    key: Callable[[PfsInput | CronInput], str] = by_name,
) -> list[Datum]:
    """The datums of ``tree`` over ``listings``: ``key(input)`` -> that input's files. By
    default an input's listing is found by its name (the inputs of a union may share a
    name, and then a listing); a caller that lists repositories passes its own ``key``
    (repository, branch, commit)."""
    return [Datum(inputs) for inputs in _datums(tree, _Listings(listings, key))]


@dataclass(frozen=True)
class _Listings:
    listings: Mapping[str, Listing]
    key: Callable[[PfsInput | CronInput], str]

    def of(self, leaf: PfsInput | CronInput) -> Listing:
        found = self.listings.get(self.key(leaf))
        if found is None:
            raise DatumError(
                f"no listing for input {leaf.name!r}: give its files (--input {leaf.name}=DIR)"
            )
        return found


def _datums(node: Input, listings: _Listings) -> list[tuple[DatumInput, ...]]:
    if not isinstance(node, CombinedInput):
        return [(item,) for item, _ in _matches(node, listings)]
    if node.kind in ("join", "group"):
        return _keyed(node, listings)
    parts = [_datums(child, listings) for child in node.inputs]
    if node.kind == "union":
        out = [inputs for part in parts for inputs in part]
        _check_count(len(out))
        return out
    total = 1
    for part in parts:
        total *= len(part)
    _check_count(total)
    return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]


def _keyed(node: CombinedInput, listings: _Listings) -> list[tuple[DatumInput, ...]]:
    by_key: dict[str, list[list[DatumInput]]] = {}
    outer = []
    for index, child in enumerate(node.inputs):
        assert isinstance(child, PfsInput)  # the spec reader allows pfs inputs only
        outer.append(child.outer_join)
        template = child.join_on if node.kind == "join" else child.group_by
        joined = node.kind == "join"
        for item, groups in _matches(child, listings):
            key = expand(template or "", groups)
            slots = by_key.setdefault(key, [[] for _ in node.inputs])
            slots[index].append(_with(item, join_on=key) if joined else _with(item, group_by=key))
    out: list[tuple[DatumInput, ...]] = []
    for key in sorted(by_key):
        slots = by_key[key]
        if node.kind == "group":
            out.append(tuple(item for slot in slots for item in slot))
            continue
        present = [index for index, slot in enumerate(slots) if slot]
        if len(present) < len(slots) and not any(outer[index] for index in present):
            continue  # an inner join needs every input; an outer input keeps its own
        combos = list(itertools.product(*(slots[index] for index in present)))
        _check_count(len(out) + len(combos))
        out.extend(combos)
    return out


def _with(
    item: DatumInput, *, join_on: str | None = None, group_by: str | None = None
) -> DatumInput:
    return DatumInput(
        item.name, item.repo, item.path, item.files, join_on, group_by, item.lazy, item.empty_files
    )


def _matches(
    node: PfsInput | CronInput, listings: _Listings
) -> list[tuple[DatumInput, tuple[str, ...]]]:
    """The paths the input's glob matches, each with the files under it and the glob's
    capture groups, in path order."""
    files = sorted((_clean(path), digest) for path, digest in listings.of(node))
    if not files:
        return []
    pfs = isinstance(node, PfsInput)
    glob = compile_glob(node.glob if isinstance(node, PfsInput) else "/")
    lazy = pfs and node.lazy  # type: ignore[union-attr]
    empty = pfs and node.empty_files  # type: ignore[union-attr]
    paths = [path for path, _ in files]
    if glob.pattern == "/":
        return [
            (DatumInput(node.name, node.repo, "/", tuple(files), lazy=lazy, empty_files=empty), ())
        ]
    candidates = set(paths) | ancestors(paths)
    out = []
    for candidate in sorted(candidates):
        groups = glob.match(candidate)
        if groups is None:
            continue
        start = bisect.bisect_left(paths, candidate)
        if start < len(paths) and paths[start] == candidate:
            end = start + 1  # a file
        else:  # a directory: the paths from "dir/" up to "dir0" ("0" follows "/")
            start = bisect.bisect_left(paths, candidate + "/")
            end = bisect.bisect_left(paths, candidate + "0")
        item = DatumInput(
            node.name, node.repo, candidate, tuple(files[start:end]), lazy=lazy, empty_files=empty
        )
        out.append((item, groups))
    _check_count(len(out))
    return out


def _clean(path: str) -> str:
    path = "/" + path.strip("/")
    if any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise DatumError(f"the listed path {path!r} is not a clean path")
    return path


def _check_count(count: int) -> None:
    if count > MAX_DATUMS:
        raise DatumError(
            f"these inputs give more than {MAX_DATUMS} datums; use a coarser glob "
            "(or a cross of fewer datums)"
        )
