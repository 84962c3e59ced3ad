"""Metrics files and tracking logs are data a step wrote: read within bounds (size, keys,
depth), never executed (YAML tags), never read whole when huge (``conveyor metrics``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.metadata.records import OutputRecord
from conveyor.sdk.metricfiles import MAX_BYTES, MAX_KEYS, MetricsFileError, parse_metrics
from conveyor.sdk.tracking import read_bounded
from conveyor.store.cas import ContentStore
from tests.integration.conftest import Repo

GIB = 1 << 30


def _blob(store: ContentStore, size: int) -> str:
    digest = "ab" * 32
    path = store.path_of(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as blob:
        blob.truncate(size)  # sparse: costs no disk
    return digest


@pytest.mark.parametrize("recorded", [GIB, 10])
def test_a_1_gib_metrics_file_is_refused_without_being_read(tmp_path: Path, recorded: int) -> None:
    # also when the record understates the size: the store's file is what counts
    store = ContentStore(tmp_path / "store")
    digest = _blob(store, GIB)
    with pytest.raises(MetricsFileError, match=f"is {GIB} bytes; .* at most 16 MiB"):
        read_bounded(store, OutputRecord("out/m.json", digest, "file", recorded), "")


def test_a_file_at_the_bound_is_read(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "store")
    digest = _blob(store, MAX_BYTES)
    assert len(read_bounded(store, OutputRecord("m.json", digest, "file", MAX_BYTES), "")) == (
        MAX_BYTES
    )


def test_a_yaml_alias_bomb_stops_at_the_key_bound() -> None:
    # nine levels of ten aliases: 10**9 leaves if walked; refused after MAX_KEYS
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(MetricsFileError, match=f"more than {MAX_KEYS} values"):
        parse_metrics("m.yaml", "\n".join(lines).encode())


def test_deep_nesting_is_refused() -> None:
    data = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MetricsFileError, match="nests"):
        parse_metrics("m.json", ('{"a": ' + data + "}").encode())
    shallow = json.dumps({"a": json.loads("[" * 40 + "1" + "]" * 40)}).encode()
    with pytest.raises(MetricsFileError, match="deeper than 32"):
        parse_metrics("m.json", shallow)


def test_yaml_tags_are_never_constructed() -> None:
    with pytest.raises(MetricsFileError, match="is not YAML"):
        parse_metrics("m.yaml", b"a: !!python/object/apply:os.system ['touch /tmp/pwned']\n")


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [
        ["metrics", "show", "%"],
        ["metrics", "diff", "../..", "latest"],
        ["params", "diff", "latest", "_"],
        ["runs", "compare", "latest", "--", "--json"],
    ],
)
def test_run_refs_are_data_never_patterns_paths_or_options(repo: Repo, args: list[str]) -> None:
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo 1\n")
    repo.commit()
    assert repo.run("run").code == 0
    result = repo.run(*args)
    assert result.code == 2, result.out + result.err
    assert "no run matches" in result.err and "Traceback" not in result.err
