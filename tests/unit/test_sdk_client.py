"""The SDK's facade over a hand-made backend: lookups, loading outputs, waiting (with
its progress, timeout and interrupt), the Jupyter display, and argument checks."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor.errors import ConveyorError, NotFoundError, UsageError
from conveyor.sdk.backend import StartRequest
from conveyor.sdk.client import Client, WaitTimeout
from conveyor.sdk.notebook import Progress, dag_svg, layers

CSV = b"a,b\n1,2\n3,4\n"


def _step(step_id: str, status: str = "succeeded", *outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": step_id,
        "job": step_id.split(".", maxsplit=1)[0],
        "status": status,
        "cached": False,
        "duration": 0.5,
        "log": "x",
        "outputs": list(outputs),
    }


def _output(path: str, kind: str = "file", size: int = 12) -> dict[str, Any]:
    return {"path": path, "digest": "ab" * 32, "kind": kind, "size": size}


class FakeBackend:
    """Answers from a script of run states; records what the facade asked."""

    where = "fake"

    def __init__(self, states: list[str], files: Mapping[str, bytes] | None = None) -> None:
        self.states = states
        self.files = dict(files or {"out/t.csv": CSV})
        self.calls: list[tuple[str, Any]] = []

    def _run(self) -> dict[str, Any]:
        status = self.states[0]
        steps = [
            _step("prep.make", "succeeded", _output("out/t.csv")),
            _step("prep.show", "running" if status == "running" else status, _output("out/p.png")),
            _step("train.make", status),
        ]
        return {"id": "r1", "status": status, "pipeline": "p", "params": {}, "steps": steps}

    def list_runs(self, limit: int) -> list[dict[str, Any]]:
        return [{k: v for k, v in self._run().items() if k != "steps"}]

    def get_run(self, ref: str) -> dict[str, Any]:
        self.calls.append(("get", ref))
        return self._run()

    def start(self, request: StartRequest) -> str:
        self.calls.append(("start", request))
        return "r1"

    def planned_steps(self, run_id: str) -> int | None:
        return 3

    def ended(self, run_id: str, timeout: float) -> bool:
        if len(self.states) > 1:
            self.states.pop(0)
        return self.states[0] not in ("queued", "running")

    def cancel(self, run_id: str) -> None:
        self.calls.append(("cancel", run_id))

    def log(self, run_id: str, step_id: str, tail: int | None) -> Iterator[str]:
        yield from ["one\ntwo\n"][:1] if tail is None else ["two\n"]

    def output_bytes(self, run_id: str, output: Mapping[str, Any]) -> bytes:
        return self.files[output["path"]]

    def output_path(self, run_id: str, output: Mapping[str, Any]) -> Path:
        raise AssertionError("not used")

    def fetch(self, run_id: str, destination: Path) -> int:
        return 0

    def lineage(self, target: str) -> dict[str, Any]:
        return {}

    def upstream(self, run_id: str) -> dict[str, list[str]]:
        return {"prep.show": ["prep.make"], "train.make": ["prep.show"]}

    def close(self) -> None:
        pass


def test_steps_are_found_by_id_or_by_a_name_that_picks_one() -> None:
    run = Client.over(FakeBackend(["succeeded"])).get_run("r1")
    assert run.step("prep.make").id == "prep.make"
    assert run.step("show").id == "prep.show"
    assert run.step("train").id == "train.make"
    with pytest.raises(NotFoundError, match="'make' names several steps"):
        run.step("make")
    with pytest.raises(NotFoundError, match="has no step 'nope'"):
        run.step("nope")
    assert run.output("./out/t.csv").step.id == "prep.make"


def test_parameters_as_a_mapping_and_keywords_reach_the_backend() -> None:
    backend = FakeBackend(["succeeded"])
    run = Client.over(backend).run({"lr": 0.1}, depth=3, ref="main", wait=False)
    assert run.id == "r1"
    request = backend.calls[0][1]
    assert request == StartRequest({"lr": 0.1, "depth": 3}, "main", (), False)


def test_outputs_load_by_kind_and_refuse_what_they_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = FakeBackend(["succeeded"], {"out/t.csv": CSV, "out/p.png": b"\x89PNG"})
    run = Client.over(backend).get_run("r1")
    table = run.output("out/t.csv")
    assert table.to_pandas()["b"].tolist() == [2, 4]
    assert table.load()["a"].tolist() == [1, 3]
    image = run.output("out/p.png")
    assert image._repr_png_() == b"\x89PNG" and table._repr_png_() is None
    with pytest.raises(UsageError, match=r"reads CSV or Parquet outputs; out/p\.png is neither"):
        image.to_pandas()
    monkeypatch.setitem(sys.modules, "pandas", None)  # not installed
    with pytest.raises(UsageError, match="to_pandas needs pandas: pip install pandas"):
        table.to_pandas()


def test_wait_follows_the_run_until_it_ends() -> None:
    backend = FakeBackend(["running", "running", "succeeded"])
    run = Client.over(backend).run()
    assert run.status == "succeeded"
    assert ("cancel", "r1") not in backend.calls


def test_wait_gives_up_after_its_timeout_with_an_error_of_the_root() -> None:
    run = Client.over(FakeBackend(["running"])).get_run("r1")
    with pytest.raises(WaitTimeout, match="run r1 is still running after 0 s") as error:
        run.wait(timeout=0)
    assert isinstance(error.value, ConveyorError)


def test_an_interrupt_while_waiting_cancels_the_run() -> None:
    backend = FakeBackend(["running"])

    def interrupted(run_id: str, timeout: float) -> bool:
        raise KeyboardInterrupt

    backend.ended = interrupted  # type: ignore[method-assign]
    run = Client.over(backend).get_run("r1")
    with pytest.raises(KeyboardInterrupt):
        run.wait()
    assert ("cancel", "r1") in backend.calls


def test_logs_of_a_step_and_of_every_step() -> None:
    run = Client.over(FakeBackend(["succeeded"])).get_run("r1")
    assert run.step("show").logs() == "one\ntwo\n"
    assert run.logs("show", tail=1) == "two\n"
    assert run.logs().splitlines()[:2] == ["prep.make │ one", "prep.make │ two"]


def test_the_display_escapes_names_and_draws_the_dag() -> None:
    backend = FakeBackend(["failed"])
    run = Client.over(backend).get_run("r1")
    run.data["steps"][0]["id"] = "<script>alert(1)</script>"
    run.data["params"] = {"x": "<b>"}
    html = run._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert html.count("<tr>") == 4 and "<svg" in html
    assert "failed" in repr(run) and "prep.show" in repr(run)
    runs = Client.over(backend).runs()
    assert "r1" in runs._repr_html_() and "r1" in repr(runs)


def test_the_dag_puts_each_step_after_what_it_read() -> None:
    names = ["a", "b", "c", "d"]
    upstream = {"b": ["a"], "c": ["a", "b"], "d": ["d", "zz"]}
    assert layers(names, upstream) == {"a": 0, "b": 1, "c": 2, "d": 0}
    svg = dag_svg([{"id": n, "status": "succeeded"} for n in names], upstream)
    assert svg.count("<rect") == 4 and svg.count("<line") == 3


def test_progress_on_a_terminal_is_one_rewritten_line() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    bar = Progress(stream=stream)
    run = FakeBackend(["running"])._run()
    bar.update(run, 3)
    bar.close({**run, "status": "succeeded"})
    text = stream.getvalue()
    assert "[########................] 1/3 steps  prep.show, train.make" in text
    assert text.rstrip(" \n").endswith("\rrun r1 succeeded") and text.count("\n") == 1
    quiet = io.StringIO()  # a pipe: nothing (scripts read the result)
    Progress(stream=quiet).update(run, 3)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"token": "t"}, "token= and project= are for a server"),
        ({"url": "ftp://x", "token": "t", "project": "p"}, "must start with http"),
        ({"url": "http://x", "token": "t"}, "name the server's project"),
        ({"url": "http://x", "project": "p"}, "give token= or set CONVEYOR_TOKEN"),
        ({"url": "http://x", "token": "t", "project": "p", "path": "."}, "path= is for"),
    ],
)
def test_bad_client_arguments_are_one_clear_sentence(
    kwargs: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVEYOR_TOKEN", raising=False)
    with pytest.raises(UsageError, match=message):
        conveyor.Client(**kwargs)


def test_a_server_client_imports_no_httpx_until_it_talks() -> None:
    client = conveyor.Client("http://127.0.0.1:9", token="t", project="p")
    assert "server http://127.0.0.1:9, project p" in repr(client)
    assert client._backend.remote._client is None  # type: ignore[attr-defined]
    client.close()


def test_the_magic_returns_json_as_values_and_lets_text_through(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conveyor.cli import magics

    answers = {"--json": (0, '{"a": 1}\n'), "text": (0, ""), "bad": (1, ""), "odd": (0, "x")}
    asked: list[tuple[list[str], bool]] = []

    def fake(args: list[str], keep: bool = False) -> tuple[int, str]:
        asked.append((args, keep))
        return answers[args[-1]]

    monkeypatch.setattr(magics, "run_command", fake)
    assert magics.conveyor_magic("runs --json") == {"a": 1}
    assert magics.conveyor_magic("show 'text'") is None
    assert asked == [(["runs", "--json"], True), (["show", "text"], False)]
    assert magics.conveyor_magic("bad") is None
    assert magics.conveyor_magic("show 'unclosed") is None
    assert magics.conveyor_magic("--json odd") is None  # not JSON: shown as it is
    captured = capsys.readouterr()
    assert "conveyor: exit code 1" in captured.err
    assert "conveyor: error: cannot split the command line" in captured.err
    assert captured.out == "x"


def test_bytes_a_command_writes_reach_a_text_only_stdout_whole() -> None:
    from conveyor.cli.magics import _TextSink

    target = io.StringIO()  # a kernel's stdout: text, no buffer
    sink = _TextSink(target)
    word = "naïve ✓\n".encode()
    for i in range(len(word)):  # a character split between two writes
        sink.write(word[i : i + 1])
    assert target.getvalue() == "naïve ✓\n"


def test_load_ext_registers_the_line_magic() -> None:
    registered: list[tuple[Any, str, str]] = []

    class Shell:
        def register_magic_function(self, func: Any, magic_kind: str, magic_name: str) -> None:
            registered.append((func, magic_kind, magic_name))

    conveyor.load_ipython_extension(Shell())
    from conveyor.cli.magics import conveyor_magic

    assert registered == [(conveyor_magic, "line", "conveyor")]


def test_progress_in_a_notebook_is_one_live_view_updated_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    shown: list[tuple[str, str]] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(("update", obj))

    def display(obj: Any, display_id: bool = False) -> Handle:
        assert display_id
        shown.append(("display", obj))
        return Handle()

    kernel = types.SimpleNamespace(kernel=object())
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: kernel  # type: ignore[attr-defined]
    display_module = types.ModuleType("IPython.display")
    display_module.display = display  # type: ignore[attr-defined]
    display_module.HTML = str  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    run = Client.over(FakeBackend(["running", "running", "succeeded"])).run()
    assert run.status == "succeeded"
    kinds = [kind for kind, _ in shown]
    assert kinds[0] == "display" and set(kinds[1:]) == {"update"} and len(kinds) >= 2
    assert "1/3 steps" in shown[0][1] and "prep.show" in shown[0][1]
    assert "succeeded" in shown[-1][1] and "steps</div>" not in shown[-1][1]
    assert Progress(enabled=False)._notebook is False
