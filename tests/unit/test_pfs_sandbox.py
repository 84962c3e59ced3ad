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


def test_an_image_datum_mounts_pfs_read_only_and_passes_variables_by_name(
    tmp_path: Path,
) -> None:
    from conveyor.executors.pfs_sandbox import container_argv

    argv = container_argv(
        ("podman",),
        "podman",
        "sha256:ab",
        tmp_path,
        ["sh"],
        None,
        ["images", "PACH_JOB_ID"],
        "conveyor-pach-x",
    )
    cut = argv.index("sha256:ab")
    options = argv[:cut]
    assert argv[cut + 1 :] == ["sh"]
    assert options[:3] == ["podman", "run", "--rm"]
    volumes = [options[i + 1] for i, a in enumerate(options) if a == "-v"]
    assert volumes == [f"{tmp_path}:/pfs:ro", f"{tmp_path / 'out'}:/pfs/out"]
    assert [options[i + 1] for i, a in enumerate(options) if a == "-e"] == [
        "PACH_JOB_ID",
        "images",
    ]  # names only: values stay off the command line
    assert options[options.index("--network") + 1] == "none"
    assert "-w" not in options  # the image's own working directory
    assert not [a for a in options if a.startswith(("--memory", "--cpus"))]  # no limits


def test_an_image_datums_limits_are_the_containers_options_before_the_image(
    tmp_path: Path,
) -> None:
    from conveyor.executors.pfs_sandbox import container_argv

    argv = container_argv(
        ("podman",), "podman", "sha256:ab", tmp_path, ["--memory=1"], None, [], "n",
        memory=64 * 2**20, cpus=0.5,
    )  # fmt: skip
    options = argv[: argv.index("sha256:ab")]
    assert "--memory=67108864" in options and "--memory-swap=67108864" in options
    assert "--cpus=0.5" in options
    assert argv[-1] == "--memory=1"  # the command's own argument stays the command's
