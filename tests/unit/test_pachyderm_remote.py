"""The driver of datums on a batch executor (``RemoteDatums``), against a stand-in
executor that answers each try from a script: what each step is given, tries, a try
that cannot help, err_cmd, timeouts by cancel, outputs stored as the datum's tree."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from conveyor.executors.base import UNBOUNDED, Capacity, Completion, Handle, Invocation, Recovered
from conveyor.executors.pfs_sandbox import NO_BWRAP
from conveyor.plan.pachyderm_datums import Datum, DatumInput
from conveyor.sdk.pachyderm_datum import DatumWork
from conveyor.sdk.pachyderm_remote import RemoteDatums, step_resources
from conveyor.spec.pachyderm_model import PachydermPipeline, PfsInput, Resources, Transform
from conveyor.store.cas import ContentStore, TreeEntry


class Scripted:
    """Ends try N of a datum with ``codes[N-1]`` (None: never ends until cancelled);
    a try that ends 0 writes ``out.txt`` into its ``pfs/out``."""

    name = "scripted"
    default_parallelism = 2

    def __init__(self, codes: list[int | None], retryable: bool = True) -> None:
        self.codes = codes
        self.retryable = retryable
        self.seen: list[Invocation] = []
        self.live: dict[str, Invocation] = {}
        self.cancelled: list[str] = []

    def submit(self, invocation: Invocation) -> Handle:
        self.seen.append(invocation)
        self.live[invocation.key] = invocation
        return Handle(invocation.key, invocation.key)

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        done = []
        for handle in handles:
            inv = self.live[handle.key]
            if handle.key in self.cancelled:
                done.append(Completion(handle.key, "cancelled", None, "cancelled"))
                continue
            code = self.codes[len([s for s in self.seen if s.key <= handle.key]) - 1]
            if code is None:
                continue
            inv.log_path.write_text(f"ran {handle.key}\n")
            if code == 0:
                (inv.workdir / "pfs" / "out" / "out.txt").write_text("made\n")
            done.append(Completion(handle.key, "exited", code, retryable=self.retryable))
        for c in done:
            del self.live[c.key]
        return done

    def cancel(self, handles: Sequence[Handle]) -> None:
        self.cancelled += [h.key for h in handles]

    def close(self) -> None:
        pass

    def recover(self, handles: Sequence[Handle]) -> list[Recovered]:
        return []

    def started(self, handles: Sequence[Handle]) -> list[str]:
        return [h.key for h in handles]

    def capacity(self) -> Capacity:
        return UNBOUNDED


def _job(
    tmp_path: Path, executor: Scripted, deadline: float | None = None, **spec_extra: object
) -> DatumWork:
    store = ContentStore(tmp_path / "store")
    digest = store.put_bytes(b"apple\n")
    files = {("images", "images"): {"a.txt": TreeEntry("a.txt", digest, 6)}}
    datum = Datum((DatumInput("images", "images", "/a.txt", (("/a.txt", digest),)),))
    transform = Transform(cmd=("python3", "-c", "x"), err_cmd=spec_extra.pop("err_cmd", ()))  # type: ignore[arg-type]
    spec = PachydermPipeline("p", transform, PfsInput("images", "images", "/*"), **spec_extra)  # type: ignore[arg-type]
    item = DatumWork(datum, "key", {"state": "pending", "tries": 0})
    remote = RemoteDatums(
        executor, store, spec, "job1", files, tmp_path / "scratch", tmp_path / "logs", deadline
    )
    ended: list[DatumWork] = []
    remote.run([item], 2, ended.append)
    assert ended == [item]
    return item


def test_a_datum_is_a_step_with_its_files_staged_and_its_outputs_stored(
    tmp_path: Path,
) -> None:
    executor = Scripted([0])
    item = _job(tmp_path, executor)
    assert item.row["state"] == "success" and item.row["tries"] == 1
    (step,) = executor.seen
    assert step.inputs == ("pfs/images/a.txt",) and step.outputs == ("pfs/out",)
    assert step.env == {} and "bwrap" in step.command
    assert item.tree is not None and item.row["tree"] == item.tree
    assert not (tmp_path / "scratch").exists()  # every try's directory is gone


def test_a_failing_datum_is_tried_datum_tries_times(tmp_path: Path) -> None:
    executor = Scripted([1, 1, 0])
    item = _job(tmp_path, executor, datum_tries=3)
    assert item.row["state"] == "success" and item.row["tries"] == 3
    log = Path(item.row["log"]).read_text()
    assert "--- try 3 of 3" in log and log.count("--- exit code 1") == 2


def test_no_further_try_when_another_would_end_the_same_way(tmp_path: Path) -> None:
    cases: list[tuple[list[int | None], bool]] = [([NO_BWRAP, 0], True), ([1, 0], False)]
    for codes, retryable in cases:
        executor = Scripted(codes, retryable)
        item = _job(tmp_path / str(codes[0]), executor, datum_tries=3)
        assert item.row["state"] == "failed" and len(executor.seen) == 1


def test_err_cmd_after_the_last_try_recovers_the_datum(tmp_path: Path) -> None:
    executor = Scripted([1, 1, 0])
    item = _job(tmp_path, executor, datum_tries=2, err_cmd=("true",))
    assert item.row["state"] == "recovered" and item.tree is None
    assert executor.seen[-1].key.endswith("/err")


def test_a_try_past_its_datum_timeout_is_cancelled(tmp_path: Path) -> None:
    executor = Scripted([None, None])
    item = _job(tmp_path, executor, datum_tries=2, datum_timeout=0.01)
    assert item.row["state"] == "failed" and len(executor.cancelled) == 2
    assert Path(item.row["log"]).read_text().count("--- timed out after 0.01 s") == 2


def test_a_job_past_its_timeout_submits_nothing(tmp_path: Path) -> None:
    executor = Scripted([0])
    item = _job(tmp_path, executor, deadline=0.0)
    assert item.row["state"] == "failed" and executor.seen == []
    assert "the job's timeout has passed" in Path(item.row["log"]).read_text()


def test_resource_requests_become_the_steps_resources() -> None:
    transform = Transform(cmd=("true",))
    inputs = PfsInput("images", "images", "/*")
    asked = Resources(cpu=2, memory="2Gi", disk="500M", gpu_number=1)
    got = step_resources(PachydermPipeline("p", transform, inputs, resource_requests=asked))
    assert (got.cpus, got.memory_mb, got.gpus, got.disk_mb) == (2.0, 2048, 1, 477)
    none = step_resources(PachydermPipeline("p", transform, inputs))
    assert (none.cpus, none.memory_mb, none.gpus) == (1.0, None, 0)


def test_resource_limits_fill_the_requests_they_leave_out() -> None:
    transform = Transform(cmd=("true",))
    inputs = PfsInput("images", "images", "/*")
    asked = Resources(memory="1Gi")
    cap = Resources(cpu=3, memory="4Gi", gpu_number=2)
    got = step_resources(
        PachydermPipeline("p", transform, inputs, resource_requests=asked, resource_limits=cap)
    )
    assert (got.cpus, got.memory_mb, got.gpus, got.disk_mb) == (3.0, 1024, 2, None)
    only = step_resources(PachydermPipeline("p", transform, inputs, resource_limits=cap))
    assert (only.cpus, only.memory_mb, only.gpus) == (3.0, 4096, 2)


class OnePerPoll(Scripted):
    """Ends one try per poll (its first handle); counts the passes over the tries."""

    def __init__(self) -> None:
        super().__init__([])
        self.asked_started = 0
        self.polled: list[int] = []

    def poll(self, handles: Sequence[Handle], timeout: float) -> list[Completion]:
        assert sorted(h.key for h in handles) == sorted(self.live)  # exactly the live tries
        self.polled.append(len(handles))
        if not handles:
            return []
        key = handles[0].key
        inv = self.live.pop(key)
        inv.log_path.write_text("ran\n")
        (inv.workdir / "pfs" / "out" / "out.txt").write_text(f"{key}\n")
        return [Completion(key, "exited", 0)]

    def started(self, handles: Sequence[Handle]) -> list[str]:
        self.asked_started += 1
        return super().started(handles)


def test_without_timeouts_no_pass_over_the_tries_follows_each_completion(
    tmp_path: Path,
) -> None:
    store = ContentStore(tmp_path / "store")
    digest = store.put_bytes(b"apple\n")
    names = [f"{i:03}.txt" for i in range(60)]
    files = {("images", "images"): {n: TreeEntry(n, digest, 6) for n in names}}
    work = [
        DatumWork(
            Datum((DatumInput("images", "images", f"/{n}", ((f"/{n}", digest),)),)),
            f"key{n}",
            {"state": "pending", "tries": 0},
        )
        for n in names
    ]
    spec = PachydermPipeline("p", Transform(cmd=("true",)), PfsInput("images", "images", "/*"))
    executor = OnePerPoll()
    remote = RemoteDatums(
        executor, store, spec, "job1", files, tmp_path / "scratch", tmp_path / "logs", None
    )
    ended: list[DatumWork] = []
    remote.run(work, 60, ended.append)
    assert len(ended) == 60 and all(w.row["state"] == "success" for w in work)
    assert executor.asked_started == 0  # no timeout to measure: never asked
    assert executor.polled == list(range(60, 0, -1))
