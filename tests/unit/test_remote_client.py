"""The remote client: one httpx.Client per remote, timeouts, retries on idempotent calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from conveyor.errors import NotFoundError, RemoteError
from conveyor.sdk.remote import RemoteClient
from conveyor.sdk.settings import RemoteSettings

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, seen: list[httpx.Request]) -> RemoteClient:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    settings = RemoteSettings("http://server.invalid:8700", "demo")
    transport = httpx.MockTransport(record)
    return RemoteClient(settings, "tok", transport=transport, retry_delays=(0.0, 0.0))


def _run(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "r1", "status": "running", "steps": []})


def test_one_client_with_auth_and_timeouts_serves_every_call() -> None:
    seen: list[httpx.Request] = []
    with _client(_run, seen) as remote:
        first = remote.client
        remote.get_run("r1")
        remote.get_run("r/../x")  # a run id is a path segment, never a path
        assert remote.client is first
        assert first.timeout.connect == 10.0 and first.timeout.read == 60.0
    assert first.is_closed
    assert [r.url.raw_path for r in seen] == [
        b"/api/v1/projects/demo/runs/r1",
        b"/api/v1/projects/demo/runs/r%2F..%2Fx",
    ]
    assert all(r.headers["authorization"] == "Bearer tok" for r in seen)


def test_an_idempotent_call_is_retried_after_a_503_or_a_failed_connection() -> None:
    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "restarting"})

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    answers: list[Handler] = [unavailable, refused, _run]

    def next_answer(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)(request)

    seen: list[httpx.Request] = []
    assert _client(next_answer, seen).get_run("r1")["id"] == "r1"
    assert len(seen) == 3


def test_retries_are_bounded_and_end_in_one_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    seen: list[httpx.Request] = []
    with pytest.raises(RemoteError, match=r"cannot reach http://server.invalid:8700"):
        _client(refuse, seen).list_runs()
    assert len(seen) == 3  # the call and two retries


@pytest.mark.parametrize("failure", ["status", "connection"])
def test_creating_a_run_is_never_retried(failure: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if failure == "connection":
            raise httpx.ReadError("reset", request=request)
        return httpx.Response(503, json={"detail": "busy"})

    seen: list[httpx.Request] = []
    with pytest.raises(RemoteError):
        _client(fail, seen).create_run("main", {})
    assert len(seen) == 1  # a second POST could queue the run twice


def test_client_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []
    remote = _client(lambda r: httpx.Response(404, json={"detail": "no such run"}), seen)
    with pytest.raises(NotFoundError, match="no such run"):
        remote.get_run("nope")
    assert len(seen) == 1


def test_stream_log_sends_tail_and_since_as_query_parameters() -> None:
    seen: list[httpx.Request] = []
    with _client(lambda r: httpx.Response(200, text="last\n"), seen) as remote:
        assert "".join(remote.stream_log("r1", "a.s", tail=5, since=0.0)) == "last\n"
        assert "".join(remote.stream_log("r1", "a.s")) == "last\n"
    assert dict(seen[0].url.params) == {"tail": "5", "since": "1970-01-01T00:00:00+00:00"}
    assert not seen[1].url.params


def test_a_server_is_asked_to_run_a_python_pipeline_only_when_it_finds_that_file(
    tmp_path: Path,
) -> None:
    """``Client(url).run(pipeline)``: the server runs the file it finds, so another file
    is refused before any request; the root's pipeline.py (no YAML file) is not."""
    from conveyor.errors import UsageError
    from conveyor.sdk.backend import StartRequest
    from conveyor.sdk.client_remote import RemoteBackend
    from conveyor.sdk.project import Project

    (tmp_path / "flows.py").write_text("")
    (tmp_path / "pipeline.py").write_text("")
    seen: list[httpx.Request] = []
    backend = RemoteBackend(_client(_run, seen), tmp_path / "cache", Project(tmp_path))
    with pytest.raises(UsageError, match=r"not flows\.py; name it pipeline\.py"):
        backend.start(StartRequest(pipeline_file=(tmp_path / "flows.py").resolve()))
    assert backend._runs_on_server((tmp_path / "pipeline.py").resolve())
    (tmp_path / "conveyor.yml").write_text("jobs: {}\n")
    assert not backend._runs_on_server((tmp_path / "pipeline.py").resolve())
    assert seen == []
