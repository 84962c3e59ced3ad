"""The CI settings' paths and the links of a pushed tree (``server/pachyderm_ci``): a path
is inside the repository or refused, a link whose target leaves the tree is caught
(``tarfile``'s own filter checks it again when the tree is extracted)."""

from __future__ import annotations

import tarfile

import pytest

from conveyor.errors import UsageError
from conveyor.server.pachyderm_ci import _escapes, check_path, check_settings


@pytest.mark.parametrize(
    "path", ["edges.json", "specs/montage.yaml", "./image", "a b/c.json", "image/"]
)
def test_paths_inside_the_repository_pass(path: str) -> None:
    assert not check_path(path, "the spec file").startswith(("/", ".."))


@pytest.mark.parametrize(
    "path",
    [
        "", "/etc/passwd", "../x.json", "a/../../x", "a/..", "-rf", ":(glob)*", "a\nb",
        "a\\..\\b", ".git/config", "x" * 256, "a\x00b",
    ],
)  # fmt: skip
def test_paths_out_of_the_repository_are_refused(path: str) -> None:
    with pytest.raises(UsageError, match="not a path inside the repository"):
        check_path(path, "the spec file")


def test_the_settings_are_checked_whole() -> None:
    check_settings(["a.json"], "image", "127.0.0.1:5000")
    check_settings(None, None, None)
    with pytest.raises(UsageError, match="at most 32"):
        check_settings([f"{n}.json" for n in range(33)], None, None)
    with pytest.raises(UsageError, match="HOST"):
        check_settings(None, None, "127.0.0.1:5000 --tls-verify=false")


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    ("name", "target", "escapes"),
    [
        ("link", "/etc/passwd", True),
        ("link", "../x", True),
        ("a/link", "../x", False),
        ("a/link", "../../x", True),
        ("a/link", "b/../../../x", True),
        ("a/link", "./b/c", False),
        ("link", "a/./b", False),
    ],
)
def test_links_out_of_the_tree_are_seen(name: str, target: str, escapes: bool) -> None:
    assert _escapes(_link(name, target)) is escapes


@pytest.mark.parametrize(
    "before",
    [
        "--output=/tmp/x",  # git diff would read it as an option
        "HEAD~1",
        "A" * 40,  # not how git writes an id
        "a" * 39,
        ["a" * 40],
        None,
        "a" * 40 + "\n",
    ],
)
def test_a_webhooks_before_is_a_commit_id_or_nothing(before: object) -> None:
    from conveyor.server.webhooks import _commit_id

    assert _commit_id(before) == ""  # every path counts as changed


def test_a_webhooks_before_commit_id_is_kept() -> None:
    from conveyor.server.webhooks import _commit_id

    assert _commit_id("0123456789abcdef" * 2 + "01234567") == "0123456789abcdef" * 2 + "01234567"
