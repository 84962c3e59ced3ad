"""A pipeline file's services are data: a name cannot reach the hosts file, a container
name or an option; a server never runs a service as a process on its own host."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.errors import SpecError
from conveyor.execute.services import ServiceError, start_services
from conveyor.plan.compile import compile_plan
from conveyor.plan.model import ServicePlan
from conveyor.spec.formats import parse_text

STEPS = "kind: pipeline\nsteps:\n  - name: a\n    commands: [echo]\n"


@pytest.mark.parametrize(
    "name",
    [
        '"db\\n10.0.0.1 pypi.org"',  # a second line of the hosts file
        "--privileged",  # an option of podman run
        "'db; rm -rf /'",
        "../../etc",
        "x" * 64,
    ],
)
def test_a_service_name_that_is_not_a_host_name_is_refused(name: str) -> None:
    text = STEPS + f"services:\n  - name: {name}\n    image: postgres\n"
    with pytest.raises(SpecError, match="is not a host name steps can reach"):
        compile_plan(parse_text(text, ".drone.yml", "drone"))


def test_a_native_service_name_is_checked_too() -> None:
    text = "jobs:\n  j:\n    services: [{name: 'a b', run: 'sleep 1'}]\n    steps: [{run: echo}]\n"
    with pytest.raises(SpecError, match="services"):
        compile_plan(parse_text(text, "conveyor.yml", "conveyor"))


def test_a_server_never_runs_a_service_on_its_host(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    services = [ServicePlan("web", "ci", None, f"touch {marker}")]
    with pytest.raises(ServiceError, match="which a server never allows"):
        start_services(services, None, "r1", tmp_path / "logs", tmp_path, {}, host_allowed=False)
    assert not marker.exists()
