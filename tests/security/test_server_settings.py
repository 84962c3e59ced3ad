"""The settings of a server's run: the checkout's ``.conveyor/config.toml`` as ``conveyor
run`` reads it, with what the server and the project's lead decide put back on top.

Anyone who can push writes the committed file; the lead chooses the executor, its options
and the network through the API, and the admin owns the database, the store and the
sandbox. A pushed file must not move any of those.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from conveyor.errors import ProjectError
from conveyor.sdk.actions import project_resolver
from conveyor.server.config import ServerConfig
from conveyor.server.worker import Worker
from conveyor.spec.uses import parse_uses

PUSHED = """\
[project]
executor = "spark"
parallelism = 64
database = "sqlite:////tmp/elsewhere.db"
store = "../../store-of-another"

[executors.local]
sandbox = false
[executors.spark]
master = "spark://attacker:7077"

[containers]
runtime = "tcp://attacker:2375"
network = "host"
on_missing = "host"
plugins = { "acme/lint" = "true" }

[actions]
paths = ["acts"]
base = "file:///srv/other-projects"
"""


def _worker(tmp_path: Path, chosen: dict[str, object], sandbox: str = "bwrap") -> Worker:
    accounts = SimpleNamespace(settings=lambda name: dict(chosen))
    config = ServerConfig(data=tmp_path / "data", sandbox=sandbox)
    return Worker(config, SimpleNamespace(accounts=accounts), "w", threading.Event())  # type: ignore[arg-type]


def _checkout(tmp_path: Path, text: str) -> Path:
    worktree = tmp_path / "work"
    (worktree / ".conveyor").mkdir(parents=True)
    (worktree / ".conveyor" / "config.toml").write_text(text)
    return worktree


def test_a_pushed_config_keeps_the_servers_and_the_leads_choices(tmp_path: Path) -> None:
    chosen = {"network": False, "parallelism": 2, "executors": {"local": {"grace_seconds": 1}}}
    worker = _worker(tmp_path, chosen)
    settings = worker._settings("demo", _checkout(tmp_path, PUSHED), tmp_path / "state")
    # the committed file's own settings count, as for `conveyor run`
    assert settings.action_paths == ("acts",)
    assert settings.containers.on_missing == "host"
    assert settings.containers.plugins == {"acme/lint": "true"}
    # the admin's
    assert settings.database == worker.config.database_url
    assert settings.store == str(worker.config.store_dir)
    assert settings.server_sandbox is True
    assert settings.containers.runtime == "auto"
    # a base on the server's disk counts, and its actions are refused when resolved
    resolver = project_resolver(
        tmp_path, [], tmp_path / "cache", settings.action_base, server=settings.server_sandbox
    )
    with pytest.raises(ValueError, match="names a repository on the server's disk"):
        resolver(parse_uses("acme/tool@v1"))
    # the lead's
    assert settings.executor == "local"
    assert settings.parallelism == 2
    assert settings.containers.network == "none"
    assert set(settings.executors) == {"local"}
    local = settings.executors["local"]
    assert local["grace_seconds"] == 1
    assert str(worker.config.data) in local["sandbox"]["hide"]
    assert local["sandbox"]["network"] is False


def test_without_a_committed_config_the_server_defaults_hold(tmp_path: Path) -> None:
    worker = _worker(tmp_path, {}, sandbox="none")
    worktree = tmp_path / "work"
    worktree.mkdir()
    settings = worker._settings("demo", worktree, tmp_path / "state")
    assert settings.executor == worker.config.executor
    assert settings.parallelism == 0
    assert settings.containers.network == "host"
    assert settings.executors == {"local": {"sandbox": None}}
    assert settings.server_sandbox is False


def test_a_broken_committed_config_is_one_sentence(tmp_path: Path) -> None:
    worker = _worker(tmp_path, {})
    worktree = _checkout(tmp_path, "[project]\nexecutor = \n")
    with pytest.raises(ProjectError, match=r"config\.toml: cannot read the settings"):
        worker._settings("demo", worktree, tmp_path / "state")


@pytest.mark.parametrize("link", [".conveyor", ".conveyor/config.toml"])
def test_a_committed_config_that_leads_outside_the_checkout_is_refused(
    tmp_path: Path, link: str
) -> None:
    """A pushed symlink must not make the server read its own files as settings."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.toml").write_text('[actions]\npaths = ["elsewhere"]\n')
    worktree = tmp_path / "work"
    (worktree / ".conveyor").mkdir(parents=True)
    target = outside if link == ".conveyor" else outside / "config.toml"
    if link == ".conveyor":
        (worktree / ".conveyor").rmdir()
    (worktree / link).symlink_to(target)
    with pytest.raises(ProjectError, match=r"\.conveyor/config\.toml leads outside the checkout"):
        _worker(tmp_path, {})._settings("demo", worktree, tmp_path / "state")


def test_an_oversized_committed_config_is_refused(tmp_path: Path) -> None:
    worktree = _checkout(tmp_path, "# padding\n" * 200_000)
    with pytest.raises(ProjectError, match=r"config\.toml is \d+ bytes; .* at most 1048576"):
        _worker(tmp_path, {})._settings("demo", worktree, tmp_path / "state")


def test_a_symlink_inside_the_checkout_is_read(tmp_path: Path) -> None:
    worktree = _checkout(tmp_path, '[actions]\npaths = ["acts"]\n')
    (worktree / ".conveyor" / "config.toml").rename(worktree / "shared.toml")
    (worktree / ".conveyor" / "config.toml").symlink_to("../shared.toml")
    settings = _worker(tmp_path, {})._settings("demo", worktree, tmp_path / "state")
    assert settings.action_paths == ("acts",)
