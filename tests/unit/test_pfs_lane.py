"""The host side of a datum lane's channel, without processes: the shim's frames read
into the datum's log, a cut or foreign stream ends the datum (never a hang or a guess),
and a lane's directory emptied even of what a datum closed to everyone."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from conveyor.executors.pfs_lane import _empty, _frames


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
