"""The host side of a datum lane, without processes: the shim's frames read into the
datum's log, a cut or foreign stream ends the datum (never a hang or a guess), a lane's
directory emptied even of what a datum closed to everyone, and each datum's inputs laid
out from the last one's (only the difference changes, the result is exactly its own)."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest

from conveyor.executors.pfs_lane import Lane, _empty, _frames


def frame(data: bytes) -> bytes:
    return b"D" + struct.pack(">I", len(data)) + data


def end(code: int, clean: bool = True) -> bytes:
    return b"X" + struct.pack(">iB", code, 1 if clean else 0)


def test_output_frames_then_the_end_give_the_log_and_the_exit_code() -> None:
    out = io.BytesIO()
    pipe = io.BytesIO(frame(b"hello ") + frame(b"world\n") + end(3) + frame(b"next datum"))
    assert _frames(pipe, out) == (3, True)
    assert out.getvalue() == b"hello world\n"
    assert pipe.read() == frame(b"next datum")  # the next datum's frames stay unread


def test_an_unclean_end_is_reported() -> None:
    assert _frames(io.BytesIO(end(0, clean=False)), io.BytesIO()) == (0, False)


def test_a_cut_or_foreign_stream_ends_the_datum() -> None:
    for stream in (b"", frame(b"abc")[:-1], b"D\x00", b"Zjunk", end(0)[:-1], frame(b"x")):
        assert _frames(io.BytesIO(stream), io.BytesIO()) is None, stream


def test_a_lane_directory_is_emptied_but_its_out(tmp_path: Path) -> None:
    (tmp_path / "out" / "deep").mkdir(parents=True)
    (tmp_path / "out" / "deep" / "f").write_text("x")
    (tmp_path / "images" / "closed").mkdir(parents=True)
    (tmp_path / "images" / "closed" / "g").write_text("y")
    os.chmod(tmp_path / "images" / "closed", 0)
    os.symlink("/etc", tmp_path / "images" / "link")
    assert _empty(tmp_path, keep="out")
    assert os.listdir(tmp_path) == ["out"]
    assert _empty(tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []
    assert Path("/etc").is_dir()  # a link is removed, never followed


def lane_at(tmp_path: Path) -> Lane:
    lane = Lane(tmp_path, "bwrap", "python3")  # no sandbox is started: only its directory
    (lane.pfs / "out").mkdir(parents=True)
    return lane


def tree(root: Path) -> dict[str, str]:
    """Every file (its text) and directory (``/``) below ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        found[rel] = "/" if path.is_dir() else path.read_text()
    return found


def write(path: Path, value: str) -> None:
    path.write_text(value)


def test_each_datum_finds_exactly_its_own_inputs_whatever_the_last_one_had(
    tmp_path: Path,
) -> None:
    lane = lane_at(tmp_path)
    steps: list[tuple[dict[str, str], list[str]]] = [
        ({"images/data/a": "1", "images/data/b": "2", "labels/x": "3"}, ["images", "labels"]),
        ({"images/data/b": "2", "images/data/c": "4"}, ["images", "empty"]),  # a and labels go
        ({"images/data/b": "changed"}, ["images"]),  # same path, other content
        ({"images/data": "now a file"}, ["images"]),  # a directory becomes a file
        ({"images/data/deep/er/f": "5"}, ["images"]),  # and a directory again
        ({}, []),
    ]
    for files, dirs in steps:
        lane._lay(files, dirs, write)
        want = {"out": "/", **dict.fromkeys(dirs, "/"), **files}
        for rel in files:
            parts = rel.split("/")
            want.update({"/".join(parts[:i]): "/" for i in range(1, len(parts))})
        assert tree(lane.pfs) == want, files


def test_an_unchanged_input_is_not_laid_out_again(tmp_path: Path) -> None:
    lane = lane_at(tmp_path)
    placed: list[str] = []

    def place(path: Path, value: str) -> None:
        placed.append(path.name)
        path.write_text(value)

    lane._lay({"a/x": "1", "a/y": "2"}, ["a"], place)
    lane._lay({"a/x": "1", "a/z": "3"}, ["a"], place)
    assert placed == ["x", "y", "z"]


def test_a_layout_that_failed_midway_is_emptied_before_the_next(tmp_path: Path) -> None:
    lane = lane_at(tmp_path)

    def broken(path: Path, value: str) -> None:
        if value == "bad":
            raise OSError("no room")
        path.write_text(value)

    with pytest.raises(OSError):
        lane._lay({"a/1": "ok", "a/2": "bad"}, ["a"], broken)
    (lane.pfs / "out" / "left").write_text("by the datum")  # out is emptied by prepare
    lane._lay({"b/3": "three"}, ["b"], broken)
    assert tree(lane.pfs) == {"b": "/", "b/3": "three", "out": "/", "out/left": "by the datum"}
