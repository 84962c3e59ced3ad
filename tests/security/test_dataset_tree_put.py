"""A directory put over HTTP is a tar stream read as data (``tarstream.read_tar``): links,
hard links, devices, FIFOs, sparse files, absolute paths, '..', duplicate names, too many
files, a cut or compressed stream are each refused in one sentence, and nothing is ever
written outside the scratch directory, whose files are only numbered. Against a real
server: the same refusals commit nothing, viewers cannot put, the body cap holds."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.errors import UsageError
from conveyor.sdk.datasets.put import Source
from conveyor.sdk.datasets.tarstream import read_tar, write_tar
from tests.integration.server_support import Server, make_server


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


HOSTILE = [
    (member("evil", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
    (member("hard", tarfile.LNKTYPE, "../../etc/passwd"), "is a link"),
    (member("dev", tarfile.CHRTYPE), "not a regular file"),
    (member("blk", tarfile.BLKTYPE), "not a regular file"),
    (member("fifo", tarfile.FIFOTYPE), "not a regular file"),
    (member("/etc/cron.d/x"), "is an absolute path"),
    (member("../../outside"), "leaves the dataset"),
    (member("a/../../outside"), "leaves the dataset"),
    (member("a\\..\\..\\x"), "leaves the dataset"),
    (member("./"), "has an empty name"),
    (member("x" * 5000), "at most 4096 bytes"),
]


@pytest.mark.parametrize(("info", "message"), HOSTILE, ids=[m for _, m in HOSTILE])
def test_a_hostile_member_refuses_the_whole_put(
    tmp_path: Path, info: tarfile.TarInfo, message: str
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    body = tar_of((member("ok.txt"), b"fine"), (info, b"payload"))
    with pytest.raises(UsageError, match=message):
        read_tar(io.BytesIO(body), scratch)
    written = sorted(p.name for p in scratch.iterdir())
    assert written in ([], ["0"])  # only numbered files, and only inside scratch
    assert not (tmp_path / "outside").exists()


def test_a_sparse_member_is_refused(tmp_path: Path) -> None:
    body = tar_of((member("s", tarfile.GNUTYPE_SPARSE), b"x" * 10))
    with pytest.raises(UsageError, match="s is a sparse file"):
        read_tar(io.BytesIO(body), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_duplicates_counts_cut_and_compressed_streams_are_refused(tmp_path: Path) -> None:
    twice = tar_of((member("a/b"), b"1"), (member("a/./b"), b"2"))
    (tmp_path / "1").mkdir()
    with pytest.raises(UsageError, match="names /a/b twice"):
        read_tar(io.BytesIO(twice), tmp_path / "1")
    many = tar_of(*[(member(f"f{i}"), b"") for i in range(4)])
    (tmp_path / "2").mkdir()
    with pytest.raises(UsageError, match="at most 3 files"):
        read_tar(io.BytesIO(many), tmp_path / "2", max_files=3)
    whole = tar_of((member("big"), b"y" * 5000))
    (tmp_path / "3").mkdir()
    with pytest.raises(UsageError, match="not a whole tar stream"):
        read_tar(io.BytesIO(whole[:3000]), tmp_path / "3")
    (tmp_path / "4").mkdir()
    with pytest.raises(UsageError, match="not a whole tar stream"):
        read_tar(io.BytesIO(gzip.compress(whole)), tmp_path / "4")
    (tmp_path / "5").mkdir()
    with pytest.raises(UsageError, match="holds no files"):
        read_tar(io.BytesIO(tar_of((member("d", tarfile.DIRTYPE), b""))), tmp_path / "5")


def test_a_declared_size_beyond_the_stream_is_a_cut_stream(tmp_path: Path) -> None:
    """A PAX header may declare any size: reading stops at the body's end."""
    info = member("huge")
    info.pax_headers = {"size": str(10**12)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UsageError, match="not a whole tar stream"):
        read_tar(io.BytesIO(out.getvalue()), tmp_path)


def test_what_the_client_writes_the_server_reads_back(tmp_path: Path) -> None:
    files = {"a.txt": b"a" * 513, "deep/" + "n" * 200 + "/é.bin": b"\0" * 1024, "empty": b""}
    sources = []
    for i, (name, data) in enumerate(files.items()):
        (tmp_path / str(i)).write_bytes(data)
        sources.append(Source(name, str(tmp_path / str(i))))
    (tmp_path / "0").chmod(0o755)
    seen: list[tuple[int, int, int]] = []
    body = b"".join(write_tar(sources, lambda *p: seen.append(p)))
    assert seen[-1] == (3, 3, 513 + 1024)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    found = read_tar(io.BytesIO(body), scratch)
    assert [s.target for s in found] == list(files)
    assert [Path(str(s.file)).read_bytes() for s in found] == list(files.values())
    assert Path(str(found[0].file)).stat().st_mode & 0o100


# -- against a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = make_server(tmp_path_factory.mktemp("tree"), None)
    server.start(workers=0, extra=("--max-dataset-body", "100000"))
    yield server
    server.stop()


@pytest.mark.integration
def test_the_server_refuses_hostile_trees_and_commits_nothing(srv: Server) -> None:
    with srv.api("lead") as lead, srv.api("viewer") as viewer:
        assert lead.post("/datasets", json={"name": "t"}).status_code == 201
        for info, message in HOSTILE[:8]:
            body = tar_of((member("ok.txt"), b"fine"), (info, b"payload"))
            answer = lead.put("/datasets/t/tree", content=body)
            assert answer.status_code == 400, answer.text
            assert message in answer.json()["detail"]
        assert lead.get("/datasets/t").json()["commit"] is None
        good = tar_of((member("a/b.txt"), b"b"), (member("c.txt"), b"c"))
        assert viewer.put("/datasets/t/tree", content=good).status_code == 403
        made = lead.put("/datasets/t/tree", content=good, params={"message": "two"})
        assert made.status_code == 201, made.text
        assert (made.json()["files"], made.json()["message"]) == (2, "two")
        big = tar_of((member("big"), b"z" * 150_000))
        assert lead.put("/datasets/t/tree", content=big).status_code == 413
        chunked = lead.put("/datasets/t/tree", content=iter([big[:60_000], big[60_000:]]))
        assert chunked.status_code == 413
        assert lead.put("/datasets/nope/tree", content=good).status_code == 404
        assert [c["id"] for c in lead.get("/datasets/t/log").json()] == [made.json()["id"]]
    scratch = srv.data / "tmp"
    assert not [p for p in scratch.iterdir() if p.name.startswith("tree-")]


@pytest.mark.integration
def test_an_outsider_cannot_put_a_tree(srv: Server) -> None:
    headers = {"Authorization": f"Bearer {srv.tokens['outsider']}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as outsider:
        answer = outsider.put("/api/v1/projects/demo/datasets/t/tree", content=b"x")
        assert answer.status_code == 403
