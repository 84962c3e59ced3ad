"""The pure parts of the CI flow: spec files and pipelines in dependency order, and the
build context's digest (what decides a rebuild)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.errors import UsageError
from conveyor.sdk.pachyderm_ci import (
    SpecFile,
    _context_digest,
    _one_image,
    _order,
    _pipeline_order,
)
from conveyor.spec.pachyderm import load_specs


def write_spec(tmp: Path, name: str, repos: list[str], image: str = "org/x:1") -> SpecFile:
    inputs = [{"pfs": {"repo": r, "glob": "/"}} for r in repos]
    data = {
        "pipeline": {"name": name},
        "transform": {"image": image, "cmd": ["sh"]},
        "input": inputs[0] if len(inputs) == 1 else {"cross": inputs},
    }
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(data))
    return SpecFile(path, path.name)


def loaded(files: list[SpecFile]) -> list[tuple[SpecFile, object]]:
    return [(f, load_specs(f.path, f.shown)) for f in files]


def test_a_spec_reading_another_specs_output_comes_after_it(tmp_path: Path) -> None:
    montage = write_spec(tmp_path, "montage", ["images", "edges"])
    edges = write_spec(tmp_path, "edges", ["images"])
    files = loaded([montage, edges])
    assert [f.shown for f in _order(files)] == ["edges.json", "montage.json"]
    assert _pipeline_order(files, ["montage", "edges"]) == ["edges", "montage"]


def test_spec_files_reading_each_other_are_a_cycle(tmp_path: Path) -> None:
    files = loaded([write_spec(tmp_path, "a", ["b"]), write_spec(tmp_path, "b", ["a"])])
    with pytest.raises(UsageError, match=r"in a cycle: a\.json, b\.json"):
        _order(files)


def test_one_dockerfile_builds_one_image(tmp_path: Path) -> None:
    one = write_spec(tmp_path, "a", ["images"], "org/x:1")
    same = write_spec(tmp_path, "b", ["a"], "org/x:2")  # same name, another tag: one image
    assert _one_image(loaded([one, same])).path == "org/x"
    other = write_spec(tmp_path, "c", ["images"], "org/y:1")
    with pytest.raises(UsageError, match=r"several images \(org/x, org/y\)"):
        _one_image(loaded([one, other]))


def test_the_context_digest_follows_content_not_times_and_skips_state(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "code").mkdir(parents=True)
    (ctx / "code" / "a.pl").write_text("print 1;\n")
    dockerfile = ctx / "Dockerfile"
    dockerfile.write_text("FROM local/base\nCOPY code/ /app/\n")
    first = _context_digest(ctx, dockerfile)
    os.utime(ctx / "code" / "a.pl", (1, 1))
    for skipped in (".git", ".conveyor"):
        (ctx / skipped).mkdir()
        (ctx / skipped / "x").write_text("changes all the time")
    assert _context_digest(ctx, dockerfile) == first
    (ctx / "code" / "a.pl").write_text("print 2;\n")
    second = _context_digest(ctx, dockerfile)
    assert second != first
    (ctx / "code" / "a.pl").chmod(0o755)
    assert _context_digest(ctx, dockerfile) != second
    dockerfile.write_text("FROM local/base\nCOPY code/ /srv/\n")
    assert _context_digest(ctx, dockerfile) not in (first, second)


@pytest.mark.parametrize(
    ("target", "plain_http"),
    [
        ("127.0.0.1:5000/org/edges:abc", True),
        ("localhost:5000/org/edges:abc", True),
        ("localhost/edges:abc", True),
        ("registry.example.org/org/edges:abc", False),
        ("127.0.0.1.example.org:5000/edges:abc", False),
    ],
)
def test_tls_is_skipped_only_for_the_machines_own_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, plain_http: bool
) -> None:
    from conveyor.sdk import pachyderm_ci

    calls: list[list[str]] = []

    def fake_call(argv: list[str], log: Path, timeout: float, *_scrub: object) -> None:
        calls.append(argv)
        Path(argv[argv.index("--digestfile") + 1]).write_text("sha256:" + "a" * 64)

    monkeypatch.setattr(pachyderm_ci, "_call", fake_call)
    ci = pachyderm_ci.PipelineCi.__new__(pachyderm_ci.PipelineCi)
    ci.scrub = str
    digest = ci._push(("podman",), target, tmp_path / "push.log")
    assert digest == "sha256:" + "a" * 64
    assert ("--tls-verify=false" in calls[0]) is plain_http
    assert calls[0][-1] == target  # the reference is one argument, last


def test_links_are_hashed_as_links_and_a_fifo_is_never_opened(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / "real").mkdir(parents=True)
    (ctx / "real" / "a").write_text("a")
    dockerfile = ctx / "Dockerfile"
    dockerfile.write_text("FROM local/base\n")
    (ctx / "to-dir").symlink_to("real")
    os.mkfifo(ctx / "pipe")  # reading it would block the build forever
    first = _context_digest(ctx, dockerfile)
    (ctx / "to-dir").unlink()
    (ctx / "to-dir").symlink_to("elsewhere")
    assert _context_digest(ctx, dockerfile) != first
