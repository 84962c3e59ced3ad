"""W5: hashing a large file with Conveyor's BLAKE3 helpers versus ``b3sum``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

GIB = 1024**3
_BLOCK = 16 * 1024 * 1024
_HEADROOM = 1 * GIB  # free space to leave on the temp file system


@dataclass
class HashResult:
    size: int
    conveyor_s: float | None = None
    b3sum_s: float | None = None
    cache_first_s: float | None = None
    cache_second_s: float | None = None
    """Second ``DigestCache.digest`` call on the same instance, before any flush."""
    cache_flushed_s: float | None = None
    """A fresh ``DigestCache`` on the same database after the first one flushed."""
    digest: str | None = None
    notes: list[str] = field(default_factory=list)

    def gib_per_s(self, seconds: float | None) -> float | None:
        return self.size / GIB / seconds if seconds else None


def make_blob(path: Path, size: int) -> None:
    """``size`` bytes of random-looking content: one random block, varied per copy."""
    block = bytearray(os.urandom(_BLOCK))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        written, counter = 0, 0
        while written < size:
            block[:8] = counter.to_bytes(8, "little")
            chunk = memoryview(block)[: min(_BLOCK, size - written)]
            handle.write(chunk)
            written += len(chunk)
            counter += 1


def _best(times: list[float]) -> float:
    return min(times)


def run_w5(workdir: Path, size: int, reps: int, b3sum: str | None) -> HashResult:
    from conveyor.store.hashing import DigestCache, hash_file

    result = HashResult(size)
    free = shutil.disk_usage(workdir).free
    if free < size + _HEADROOM:
        result.notes.append(
            f"skipped: {free / GIB:.1f} GiB free in {workdir}, need {(size + _HEADROOM) / GIB:.1f}"
        )
        return result
    blob = workdir / "blob.bin"
    if not blob.exists() or blob.stat().st_size != size:
        make_blob(blob, size)

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(reps):
        start = time.perf_counter()
        digest = hash_file(blob)
        ours.append(time.perf_counter() - start)
        result.digest = digest
        if b3sum is not None:
            start = time.perf_counter()
            proc = subprocess.run(
                [b3sum, "--no-names", str(blob)], capture_output=True, text=True, check=True
            )
            theirs.append(time.perf_counter() - start)
            if proc.stdout.strip() != digest:
                result.notes.append(f"DIGEST MISMATCH: b3sum {proc.stdout.strip()} vs {digest}")
    result.conveyor_s = _best(ours)
    if theirs:
        result.b3sum_s = _best(theirs)
    else:
        result.notes.append("b3sum not found (apt-get install -y b3sum): ratio skipped")

    db = workdir / "digests.sqlite"
    db.unlink(missing_ok=True)
    cache = DigestCache(db)
    start = time.perf_counter()
    first = cache.digest(blob)
    result.cache_first_s = time.perf_counter() - start
    start = time.perf_counter()
    second = cache.digest(blob)
    result.cache_second_s = time.perf_counter() - start
    cache.close()
    fresh = DigestCache(db)
    start = time.perf_counter()
    third = fresh.digest(blob)
    result.cache_flushed_s = time.perf_counter() - start
    fresh.close()
    if not first == second == third == result.digest:
        result.notes.append("DIGEST MISMATCH between hash_file and DigestCache")
    return result
