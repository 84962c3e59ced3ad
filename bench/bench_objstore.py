"""Put and get of 100 small blobs and one large one: the local store against the local
store as a cache in front of S3 (the endpoint of scripts/engines/s3.sh).

    eval "$(scripts/engines/s3.sh env)"
    python bench/bench_objstore.py                  # 100 x 1 KiB + 1 x 64 MiB
    python bench/bench_objstore.py --small 500 --large-mib 256 --reps 3

Figures (best of ``--reps`` wall times, each on fresh store directories):

- **put local**: ``ContentStore.put_file`` of every file;
- **put S3**: ``CachedStore.put_file`` one file after the other (the local copy plus
  an upload each; a large one asked about first);
- **put S3, outputs**: the same files as one step's outputs (their directory's tree
  stored as ``Workspace.store_outputs`` does: uploads made together at the end, on
  ``cached.UPLOADERS`` threads);
- **get local**: ``checkout_file`` of every blob from a local store;
- **get S3, cold**: ``checkout_file`` on a second machine's empty cache (download,
  hash, publish, copy out);
- **get S3, warm**: the same again (served by the cache: no request).

Nothing asserts on time; moto keeps objects in memory on this machine, so the S3 figures
are the client's costs (requests, hashing), not a network's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from conveyor.store.cached import CachedStore
from conveyor.store.cas import ContentStore
from conveyor.store.objects import ObjectStore, ObjectStoreSettings


def _files(root: Path, small: int, large_mib: int) -> list[Path]:
    root.mkdir(parents=True)
    paths = []
    for i in range(small):
        path = root / f"small-{i}"
        path.write_bytes(os.urandom(1024))
        paths.append(path)
    large = root / "large"
    with open(large, "wb") as out:
        for _ in range(large_mib):
            out.write(os.urandom(1024 * 1024))
    return [*paths, large]


def _best(reps: int, action: Callable[[], None]) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large-mib", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    endpoint = os.environ["CONVEYOR_S3_ENDPOINT"]
    options = {"key": os.environ["CONVEYOR_S3_KEY_ID"], "secret": os.environ["CONVEYOR_S3_SECRET"]}
    work = Path(tempfile.mkdtemp(prefix="bench-objstore-"))
    try:
        files = _files(work / "src", args.small, args.large_mib)
        counter = iter(range(10**6))

        def fresh(kind: str) -> Path:
            return work / f"{kind}-{next(counter)}"

        def remote() -> ObjectStore:
            url = f"s3://{os.environ['CONVEYOR_S3_BUCKET']}/bench-{uuid.uuid4().hex}"
            return ObjectStore(ObjectStoreSettings(url, endpoint, options=options))

        def put_all(store: ContentStore) -> list[str]:
            return [store.put_file(f)[0] for f in files]

        def put_outputs(store: ContentStore) -> None:
            with store.uploads():  # as Workspace.store_outputs stores a step's outputs
                store.put_tree(work / "src")

        def get_all(store: ContentStore, digests: list[str]) -> None:
            out = fresh("out")
            for i, digest in enumerate(digests):
                store.checkout_file(digest, out / str(i))

        local = ContentStore(fresh("local"))
        digests = put_all(local)
        figures = {
            "put local": _best(args.reps, lambda: put_all(ContentStore(fresh("local")))),
            "put S3": _best(args.reps, lambda: put_all(CachedStore(fresh("a"), remote()))),
            "put S3, outputs": _best(
                args.reps, lambda: put_outputs(CachedStore(fresh("a"), remote()))
            ),
            "get local": _best(args.reps, lambda: get_all(local, digests)),
        }
        shared = remote()
        put_all(CachedStore(fresh("a"), shared))
        figures["get S3, cold"] = _best(
            args.reps, lambda: get_all(CachedStore(fresh("b"), shared), digests)
        )
        warm = CachedStore(fresh("b"), shared)
        get_all(warm, digests)
        figures["get S3, warm"] = _best(args.reps, lambda: get_all(warm, digests))
        print(f"{args.small} x 1 KiB + 1 x {args.large_mib} MiB, best of {args.reps}:")
        for name, seconds in figures.items():
            print(f"  {name:<16} {seconds:7.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
