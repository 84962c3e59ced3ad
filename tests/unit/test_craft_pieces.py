"""The Craft AI API's pure parts: access tokens, the SDK's form bodies and typed
inputs, the code folder's reader, and the long-poll's rate of status reads."""

from __future__ import annotations

import asyncio
import io
import tarfile
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.domain.states import RunStatus
from conveyor.server.craft import api, executions
from conveyor.server.craft.errors import CraftError
from conveyor.server.craft.forms import check_value, io_list, unflatten
from conveyor.server.craft.tokens import TTL, Claims, mint, verify
from conveyor.server.craft.upload import unpack

KEY = b"k" * 32


def test_a_token_carries_its_claims_until_it_expires() -> None:
    token = mint(KEY, "ann", "demo", "member", now=1000)
    assert verify(KEY, token, now=1000 + TTL - 1) == Claims("ann", "demo", "member", 1000 + TTL)
    assert "expired" in str(verify(KEY, token, now=1000 + TTL))
    assert "signature" in str(verify(b"x" * 32, token, now=1000))
    assert "not a token" in str(verify(KEY, "x" * 5000))


def test_the_sdks_form_keys_come_back_as_nested_data() -> None:
    fields = [
        ("pipeline_name", "p"),
        ("inputs[0][name]", "a"),
        ("inputs[0][data_type]", "number"),
        ("inputs[0][default_value]", "3"),
        ("inputs[1][name]", "b"),
        ("inputs[1][data_type]", "array"),
        ("inputs[1][default_value][0]", "1"),
        ("inputs[1][default_value][1]", "x"),
        ("container_config[requirements_path]", "requirements.txt"),
    ]
    data = unflatten(fields)
    assert data["container_config"] == {"requirements_path": "requirements.txt"}
    assert io_list(data["inputs"], "inputs", inputs=True) == [
        {"name": "a", "data_type": "number", "is_required": False, "default_value": 3},
        {"name": "b", "data_type": "array", "is_required": False, "default_value": [1, "x"]},
    ]
    with pytest.raises(CraftError, match="not a field"):
        unflatten([("a]b", "x")])
    with pytest.raises(CraftError, match="more than 1000"):
        unflatten([("a[5000]", "x")])


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "x", 1),
        ("number", 2.5, True),
        ("boolean", False, "false"),
        ("array", [1], {"a": 1}),
    ],
)
def test_typed_values_are_checked(kind: str, good: Any, bad: Any) -> None:
    assert check_value("v", kind, good) == good
    with pytest.raises(CraftError, match=f"expects a {kind}"):
        check_value("v", kind, bad)


def test_a_code_folder_keeps_its_files_and_executable_bits() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, mode in (("src/fn.py", 0o644), ("run.sh", 0o755)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 2, mode
            tar.addfile(info, io.BytesIO(b"ok"))
        folder = tarfile.TarInfo("src")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    files = {f.path: f.executable for f in unpack(out.getvalue())}
    assert files == {"src/fn.py": False, "run.sh": True}


class _Queue:
    def __init__(self, run: Any) -> None:
        self.run = run
        self.reads = 0

    def get(self, _run_id: str) -> Any:
        self.reads += 1
        return self.run


class _Request:
    def __init__(self, state: Any) -> None:
        self.app = SimpleNamespace(state=SimpleNamespace(server=state))
        self.url = "http://h/craft/demo/api/v1/executions/r1/outputs?wait_for_completion=true"

    async def is_disconnected(self) -> bool:
        return False


def test_a_waiting_client_costs_one_status_read_per_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = SimpleNamespace(id="r1", status=RunStatus.RUNNING, project="demo")
    queue = _Queue(run)
    state = SimpleNamespace(db=SimpleNamespace(queue=queue))
    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(executions, "get", lambda *_: run)
    monkeypatch.setattr(api.asyncio, "sleep", pause)
    access = SimpleNamespace(project="demo")
    answer = asyncio.run(
        api.execution_outputs(_Request(state), access, "r1", wait_for_completion=True)  # type: ignore[arg-type]
    )
    assert answer.status_code == 307
    assert answer.headers["location"].endswith("wait_for_completion=true")
    assert pauses == [api.POLL] * int(api.HOLD / api.POLL)
    assert queue.reads == len(pauses)  # one read after each one-second pause, no more


def test_two_access_tokens_minted_in_one_second_differ() -> None:
    # each is stored by its digest: the same text twice would collide
    assert mint(KEY, "ann", "demo", "member", now=1000) != mint(
        KEY, "ann", "demo", "member", now=1000
    )
