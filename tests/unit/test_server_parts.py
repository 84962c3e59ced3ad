"""Pure parts of the server: triggers, result paths, masking, tokens, the secrets key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from conveyor.server.auth import token_of
from conveyor.server.db.accounts import role_at_least, token_digest
from conveyor.server.keyring import Keyring
from conveyor.server.masking import MASK, Masker, mask, mask_file
from conveyor.server.results import ResultFile, _safe, pointer_text
from conveyor.server.triggers import parse_updates, wanted
from conveyor.spec.load import parse_pipeline


def spec(on: str = "") -> object:
    return parse_pipeline(on + "jobs:\n  a:\n    steps:\n      - run: echo\n", "conveyor.yml")


@pytest.mark.parametrize(
    ("on", "ref", "expected"),
    [
        ("", "refs/heads/main", True),
        ("", "refs/heads/feature/x", True),
        ("", "refs/tags/v1", False),
        ("on:\n  push: {branches: [main]}\n", "refs/heads/dev", False),
        ("on:\n  push: {branches: ['release/*']}\n", "refs/heads/release/1.0", True),
        ("on:\n  push: {tags: ['v*']}\n", "refs/tags/v2.1", True),
        ("on:\n  push: {tags: ['v*']}\n", "refs/tags/x", False),
        ("on:\n  push: null\n", "refs/heads/main", False),
        ("", "refs/notes/commits", False),
        # GitHub's filter patterns: `*` stops at `/`, `**` does not
        ("on:\n  push: {branches: ['feature/*']}\n", "refs/heads/feature/a/b", False),
        ("on:\n  push: {branches: ['feature/**']}\n", "refs/heads/feature/a/b", True),
        ("on:\n  push: {branches: ['release-*']}\n", "refs/heads/release-1.0", True),
        ("on:\n  push: {branches: ['release-*']}\n", "refs/heads/release/1.0", False),
        ("on:\n  push: {tags: ['v[12].[0-9]+.[0-9]+']}\n", "refs/tags/v1.10.2", True),
        ("on:\n  push: {tags: ['v[12].[0-9]+.[0-9]+']}\n", "refs/tags/v3.0.0", False),
        ("on:\n  push: {tags: ['v1.0-rc?']}\n", "refs/tags/v1.0-r", True),
        ("on:\n  push: {tags: ['v1.0-rc?']}\n", "refs/tags/v1.0-rc1", False),
        ("on:\n  push: {branches: ['**', '!main']}\n", "refs/heads/main", False),
        ("on:\n  push: {branches: ['**', '!main']}\n", "refs/heads/dev", True),
        ("on:\n  push: {branches: ['**', '!dev/**', dev/keep]}\n", "refs/heads/dev/keep", True),
        ("on:\n  push: {branches: ['**', '!dev/**', dev/keep]}\n", "refs/heads/dev/x", False),
        ("on:\n  push: {branches: ['a\\*b']}\n", "refs/heads/a*b", True),
        ("on:\n  push: {branches: ['a\\*b']}\n", "refs/heads/axb", False),
    ],
)
def test_push_triggers(on: str, ref: str, expected: bool) -> None:
    assert wanted(spec(on), ref) is expected  # type: ignore[arg-type]


def test_only_negative_branch_patterns_are_a_spec_error() -> None:
    from conveyor.errors import SpecError

    # GitHub refuses them too: `!` takes away from what an earlier pattern matched
    with pytest.raises(SpecError, match=r"only negative patterns.*'\*\*'"):
        spec("on:\n  push: {branches: ['!main']}\n")


def test_a_misspelt_trigger_key_is_a_spec_error() -> None:
    from conveyor.errors import SpecError

    with pytest.raises(SpecError, match=r"unknown key 'branch' .*did you mean 'branches'"):
        spec("on:\n  push: {branch: [main]}\n")


def test_ref_updates_parse_like_git_hands_them() -> None:
    text = f"{'0' * 40} {'a' * 40} refs/heads/main\n{'b' * 40} {'c' * 40} refs/tags/v1"
    updates = parse_updates(text + "\ngarbage\n")
    assert [(u.ref, u.new[:1]) for u in updates] == [
        ("refs/heads/main", "a"),
        ("refs/tags/v1", "c"),
    ]


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("out/a.txt", True),
        ("a", True),
        ("../x", False),
        ("/etc/passwd", False),
        ("out/../../x", False),
        (".git/config", False),
        ("sub/.git/hooks/x", False),
        (".", False),
    ],
)
def test_result_paths_stay_inside_the_tree(path: str, ok: bool) -> None:
    assert _safe(path) is ok


def test_pointer_names_digest_size_and_how_to_fetch() -> None:
    text = pointer_text("r1", ResultFile("big.bin", "d" * 64, 5_000_000))
    assert text.splitlines()[:3] == ["conveyor-pointer v1", f"digest {'d' * 64}", "size 5000000"]
    assert "conveyor fetch r1" in text


def test_masking_longest_secret_first(tmp_path: Path) -> None:
    assert mask("a=hunter2 b=hunter2-long", ["hunter2", "hunter2-long"]) == f"a={MASK} b={MASK}"
    assert mask("ab", ["ab"]) == "ab", "values shorter than 3 characters are not masked"
    log = tmp_path / "x.log"
    log.write_text("token=s3cret\n")
    mask_file(log, Masker(["s3cret"]))
    assert log.read_text() == f"token={MASK}\n"


def test_tokens_from_bearer_and_basic_headers() -> None:
    basic = base64.b64encode(b"anyone:cvy_tok").decode()
    assert token_of("Bearer cvy_tok") == "cvy_tok"
    assert token_of(f"Basic {basic}") == "cvy_tok"
    assert token_of("Basic !!!") is None
    assert token_of("Digest x") is None
    assert token_of(None) is None
    assert len(token_digest("cvy_tok")) == 64 and token_digest("cvy_tok") != "cvy_tok"


def test_roles_are_ordered() -> None:
    assert role_at_least("lead", "member") and role_at_least("member", "member")
    assert not role_at_least("viewer", "member") and not role_at_least(None, "viewer")


def test_the_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    first = Keyring.load(path)
    assert path.stat().st_mode & 0o777 == 0o600
    token = first.encrypt("value")
    assert b"value" not in token
    assert Keyring.load(path).decrypt(token) == "value"


@pytest.mark.parametrize("curl", [True, False])
def test_hooks_with_and_without_curl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, curl: bool
) -> None:
    import shutil
    import subprocess

    from conveyor.server import gitrepo

    if not curl:
        monkeypatch.setattr(shutil, "which", lambda _name: None)
    gitrepo.install_hooks(tmp_path)
    hooks = tmp_path / "hooks"
    assert ("curl" in (hooks / "post-receive").read_text()) is curl
    refused = subprocess.run(
        [hooks / "pre-receive"],
        input=f"{'0' * 40} {'a' * 40} refs/conveyor/x\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert refused.returncode == 1 and "belongs to the server" in refused.stdout
    allowed = subprocess.run(
        [hooks / "pre-receive"],
        input=f"{'0' * 40} {'a' * 40} refs/heads/main\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert allowed.returncode == 0
    unreachable = subprocess.run(
        [hooks / "post-receive"],
        input="x y refs/heads/main\n",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CONVEYOR_HOOK_URL": "http://127.0.0.1:9/x"},
        check=False,
    )
    assert unreachable.returncode == 0
    assert "the push landed but no run was queued" in unreachable.stdout


def test_the_server_migrations_build_the_declared_tables(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from conveyor.server.db import migrate, tables
    from conveyor.server.db.database import open_database

    versions = sorted((migrate.MIGRATIONS / "versions").glob("s*.py"))
    assert versions[-1].name.startswith(migrate.HEAD + "_")
    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    inspector = sa.inspect(db.engine)
    for table in tables.metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == set(table.columns.keys()), table.name
    with db.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD
    db.close()
    open_database(f"sqlite:///{tmp_path / 'server.db'}").close()  # again: a no-op


def test_plain_postgresql_urls_use_psycopg(tmp_path: Path) -> None:
    from conveyor.server.config import ServerConfig

    config = ServerConfig(data=tmp_path, database="postgresql://u@h:5432/db")
    assert config.database_url == "postgresql+psycopg://u@h:5432/db"
    assert ServerConfig(data=tmp_path).database_url == f"sqlite:///{tmp_path}/server.db"
    assert ServerConfig(data=tmp_path, host="0.0.0.0", port=9).hook_url == (
        "http://127.0.0.1:9/internal/post-receive"
    )


def test_craft_access_tokens_expire_follow_the_role_and_go_with_their_api_token(
    tmp_path: Path,
) -> None:
    from conveyor.server.db.crafttokens import Holder
    from conveyor.server.db.database import open_database

    db = open_database(f"sqlite:///{tmp_path / 'server.db'}")
    db.accounts.add_project("demo")
    _, api_token = db.accounts.add_user("ann")
    db.accounts.grant("demo", "ann", "member")
    db.craft_tokens.store("access-1", api_token, "demo", expires=2000.0)
    assert db.craft_tokens.holder("access-1", now=1999.0) == Holder("ann", "member")
    assert db.craft_tokens.holder("access-1", now=2000.0) is None  # expired
    assert db.craft_tokens.holder("never-issued", now=0.0) is None
    db.accounts.grant("demo", "ann", "viewer")
    assert db.craft_tokens.holder("access-1", now=0.0) == Holder("ann", "viewer")
    db.accounts.revoke("demo", "ann")
    assert db.craft_tokens.holder("access-1", now=0.0) == Holder("ann", None)
    assert db.accounts.revoke_tokens("ann") == 1
    assert db.craft_tokens.holder("access-1", now=0.0) is None
    db.close()
