"""A large file truncated by another process while it is hashed: the hasher lives (a
memory mapping of the file cut meanwhile would die of SIGBUS on the pages past its new
end). Here the hasher holds a read lease, so the truncation waits until the hash is
done; the copy made after it is what the blob holds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import blake3

_SCRIPT = """
import sys
from pathlib import Path
from conveyor.store.cas import ContentStore
print("start", flush=True)
got = ContentStore(Path(sys.argv[2])).ingest(sys.argv[1])
print(got.digest, got.size, got.read)
"""


def test_a_large_file_truncated_while_it_is_hashed_is_stored_as_read(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as handle:
        handle.truncate(8 * 1024**3)  # holes: no disk used, and seconds to hash
    store = tmp_path / "store"
    child = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(sparse), str(store)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "start\n"
    time.sleep(0.2)  # inside the hash (not asserted: a late truncation only tests less)
    with open(sparse, "r+b") as handle:
        handle.truncate(0)
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, f"the hasher died (signal {-child.returncode})"
    digest, size, read = out.split()
    # the blob is named by what it holds: the copy made after the truncation
    assert (store / "objects" / digest[:2] / digest[2:]).read_bytes() == b"\0" * int(size)
    assert blake3.blake3(b"\0" * int(size)).hexdigest() == digest
    assert read == "None"  # changed while read: never vouched for to the digest cache
