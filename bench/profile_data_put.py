"""Where a `conveyor data put` of files already stored spends its time: wall and CPU
spans of one put run in this process (the CLI's own ``main``), phase by phase.

    python bench/profile_data_put.py              # 1,000 files, 100 MiB
    python bench/profile_data_put.py --full       # 10,000 files, 1 GiB
    python bench/profile_data_put.py --cprofile   # and the top functions of the main thread

The files are put once into dataset ``a`` (a fresh store), then the digest cache is
removed and they are put into ``b`` under the timers: every file read and hashed,
nothing copied (bench_data_put.py's "stored" figure). The phases are wrapped where
the put calls them; "imports" is the import of the CLI and the dataset modules.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_data_put import conveyor, make_files, make_project

Span = tuple[float, float]  # wall, CPU of the process
SPANS: dict[str, Span] = {}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def span(name: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), _cpu()
    try:
        yield
    finally:
        old = SPANS.get(name, (0.0, 0.0))
        SPANS[name] = (old[0] + time.perf_counter() - wall, old[1] + _cpu() - cpu)


def wrap(owner: Any, name: str, label: str) -> None:
    """Time ``owner.name`` under ``label`` (absent in an older src/: not timed)."""
    inner: Callable[..., Any] | None = getattr(owner, name, None)
    if inner is None:
        return

    @functools.wraps(inner)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with span(label):
            return inner(*args, **kwargs)

    setattr(owner, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--full", action="store_true", help="10,000 files, 1 GiB")
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--tmpdir", type=Path, default=None)
    args = parser.parse_args()
    if args.full:
        args.files, args.mib = 10_000, 1024
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="profile-data-put-") as tmp:
        work = Path(tmp)
        data = work / "data"
        make_files(data, args.files, args.mib * 1024 * 1024)
        project = work / "p"
        make_project(project)
        for name in ("a", "b"):
            conveyor(project, "data", "create", name)
        conveyor(project, "data", "put", "a", "-r", str(data))
        for extra in ("", "-wal", "-shm"):
            Path(f"{project}/.conveyor/cache/digests.sqlite{extra}").unlink(missing_ok=True)
        os.chdir(project)
        total = span("total")
        total.__enter__()
        with span("imports"):
            from conveyor.cli.main import main as cli
            from conveyor.sdk.datasets import put, service, trees
            from conveyor.store import cas, hashing
        wrap(service, "plan_sources", "walk (plan_sources)")
        wrap(service, "store_sources", "read + hash (store_sources)")
        wrap(hashing.DigestCache, "flush", "digest cache writes (flush, a thread)")
        wrap(service.Datasets, "_commit_put", "commit: merge, tree, records")
        wrap(trees, "conflicts", "  of which file/directory clashes")
        wrap(cas.ContentStore, "put_manifest", "  of which the tree manifest")
        del put
        sys.argv = ["conveyor", "data", "put", "b", "-r", str(data), "--json"]
        profiler = cProfile.Profile() if args.cprofile else None
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            if profiler is not None:
                profiler.enable()
            with contextlib.suppress(SystemExit):
                cli()
            if profiler is not None:
                profiler.disable()
        total.__exit__(None, None, None)
    print(f"{args.files} files, {args.mib} MiB, load {os.getloadavg()[0]:.1f}")
    print(f"{'phase':40} {'wall s':>8} {'CPU s':>8}")
    for name, (wall, cpu) in SPANS.items():
        print(f"{name:40} {wall:8.3f} {cpu:8.3f}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
