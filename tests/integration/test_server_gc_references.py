"""``conveyor server gc`` keeps what the server's own tables name besides run records:
a warm deployment call's file outputs are blobs that only its execution row names (they
were collected before: its ``download`` then answered with a missing blob)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.server.commands_admin import open_state
from conveyor.server.config import ServerConfig
from conveyor.server.db import tables as t
from conveyor.server.gc import collect
from conveyor.server.state import ServerState
from conveyor.store.cas import ContentStore


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    config = ServerConfig(data=tmp_path / "data", database=f"sqlite:///{tmp_path / 's.db'}")
    opened = open_state(config)
    yield opened
    opened.db.close()


def test_a_deployment_executions_file_outputs_are_kept(state: ServerState) -> None:
    store = ContentStore(state.config.store_dir)
    kept = store.put_bytes(b"a warm call's report\n")
    orphan = store.put_bytes(b"named by nothing\n")
    with state.db.engine.begin() as conn:
        conn.execute(
            t.deployment_executions.insert().values(
                id="e1", project="demo", deployment="score", commit="0" * 40,
                status="succeeded", caller="ada", inputs={}, created_at=time.time(),
                outputs={
                    "report": {"digest": kept, "size": 21, "kind": "file", "path": "r.txt"},
                    "score": 0.5,  # a value output: no blob
                    "odd": {"digest": orphan, "kind": "not-a-file"},  # not a stored file
                },
            )
        )  # fmt: skip
    result = collect(state, grace=0.0)
    assert result.objects is None  # no object store
    assert store.has(kept) and not store.has(orphan)
    assert result.local.removed == 1
