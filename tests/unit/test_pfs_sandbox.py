"""The bubblewrap command line of a datum: an empty root with the system read-only,
the datum's files read-only at /pfs, only /pfs/out writable, the command after --."""

from __future__ import annotations

from pathlib import Path

from conveyor.executors.pfs_sandbox import build_argv


def test_a_datum_sees_the_system_and_its_pfs_only(tmp_path: Path) -> None:
    argv = build_argv("bwrap", tmp_path, ["sh", "-c", "--ro-bind / /"], None)
    cut = argv.index("--")
    options, command = argv[:cut], argv[cut + 1 :]
    assert command == ["sh", "-c", "--ro-bind / /"]
    assert options[1:3] == ["--tmpfs", "/"]
    binds = [options[i + 1 : i + 3] for i, a in enumerate(options) if a == "--bind"]
    assert binds == [[str(tmp_path / "out"), "/pfs/out"]]
    ro = [options[i + 1 : i + 3] for i, a in enumerate(options) if a == "--ro-bind"]
    assert [str(tmp_path), "/pfs"] in ro
    assert all(src == dest for src, dest in ro if dest != "/pfs")  # system dirs only
    assert not any(dest == "/" for _, dest in ro)
    assert "--remount-ro" in options and "--share-net" not in options
    assert options[options.index("--uid") + 1] == "65534"
    assert options[options.index("--chdir") + 1] == "/pfs"


def test_the_working_dir_of_the_spec_is_kept(tmp_path: Path) -> None:
    argv = build_argv("bwrap", tmp_path, ["true"], "/pfs/images")
    assert argv[argv.index("--chdir") + 1] == "/pfs/images"
