"""Property-based tests of the store: any tree round-trips, concurrent writers agree."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.store.cas import ContentStore
from conveyor.store.hashing import hash_bytes

# names a filesystem takes: no "/", no NUL, not "." or "..", unicode welcome
_NAME = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 200)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, object]:
    """path -> bytes (a file), (bytes, True) (an executable), "->target" (a link), None (dir)."""
    spec: dict[str, object] = {}
    dirs = draw(st.lists(st.lists(_NAME, min_size=1, max_size=3), max_size=4))
    for parts in dirs:
        spec["/".join(parts)] = None
    files = draw(
        st.lists(
            st.tuples(
                st.lists(_NAME, min_size=1, max_size=3), st.binary(max_size=300), st.booleans()
            ),
            max_size=6,
        )
    )
    for parts, data, executable in files:
        spec["/".join(parts)] = (data, executable)
    # a prefix of another path cannot be a file: keep a consistent tree
    paths = sorted(spec, key=len)
    consistent: dict[str, object] = {}
    for path in paths:
        if any(path.startswith(other + "/") for other, v in consistent.items() if v is not None):
            continue
        if any(other.startswith(path + "/") for other in consistent):
            continue
        consistent[path] = spec[path]
    files_only = [p for p, v in consistent.items() if v is not None]
    for index, target in enumerate(
        draw(st.lists(st.sampled_from(files_only), max_size=3)) if files_only else []
    ):
        name = f"link-{index}"
        if name not in consistent:
            consistent[name] = "->" + target
    return consistent


def _materialise(root: Path, spec: dict[str, object]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for path, value in spec.items():
        full = root / path
        if value is None:
            full.mkdir(parents=True, exist_ok=True)
        elif isinstance(value, str):
            full.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(value[2:], full)  # relative to the tree root: links sit at the top
        else:
            data, executable = value  # type: ignore[misc]
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data)
            full.chmod(0o755 if executable else 0o644)


def _snapshot(root: Path) -> dict[str, object]:
    """What a tree holds, as compared: content, executable bit, link targets, empty dirs."""
    seen: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        if base != root and not dirnames and not filenames:
            seen[base.relative_to(root).as_posix()] = "dir"
        for name in [*dirnames, *filenames]:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_file():
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                seen[rel] = (path.read_bytes(), executable)
    return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=trees())
def test_any_tree_round_trips(spec: dict[str, object]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        store = ContentStore(base / "store")
        source = base / "ws" / "out"
        _materialise(source, spec)
        digest, _size = store.put_tree(source, boundary=base / "ws")
        restored = base / "restored"
        store.checkout_tree(digest, restored)
        assert _snapshot(restored) == _snapshot(source)
        again, _ = store.put_tree(restored, boundary=base)
        assert again == digest  # the same tree, the same manifest
        # restoring over a different tree makes it equal the stored one
        other = base / "other"
        _materialise(other, {"stray": (b"x", False), "d/e": None, "l": "->stray"})
        store.checkout_tree(digest, other)
        assert _snapshot(other) == _snapshot(source)


def _write_many(root: str, data: bytes, rounds: int) -> None:
    store = ContentStore(Path(root))
    for _ in range(rounds):
        store.put_bytes(data)
        big = Path(root).parent / f"big-{os.getpid()}-{threading.get_ident()}"
        big.write_bytes(data * 1024)
        store.put_file(big)


@settings(max_examples=5, deadline=None)
@given(data=st.binary(min_size=1, max_size=200))
def test_concurrent_writers_of_the_same_blob_agree(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        shared = ContentStore(root)  # threads share one instance, processes have their own

        def in_thread() -> None:
            for _ in range(20):
                shared.put_bytes(data)

        threads = [threading.Thread(target=in_thread) for _ in range(4)]
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_write_many, args=(str(root), data, 10)) for _ in range(3)]
        for worker in [*procs, *threads]:  # fork before any thread of ours exists
            worker.start()
        for worker in [*threads, *procs]:
            worker.join(60)
        assert all(p.exitcode == 0 for p in procs)
        store = ContentStore(root)
        small, big = hash_bytes(data), hash_bytes(data * 1024)
        assert sorted(store.iter_digests()) == sorted({small, big})
        assert store.read_bytes(small) == data
        assert store.read_bytes(big) == data * 1024
        assert not any((root / "tmp").iterdir())  # no writer left a partial file behind
        shutil.rmtree(root)
