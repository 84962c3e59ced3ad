"""Drone's ``services:`` and ``detach: true`` steps -> the plan's services; names that
cannot be host names, two services of one name, keys with no meaning here: one sentence
with the file's position."""

from __future__ import annotations

import pytest

from conveyor.errors import SpecError
from conveyor.execute.services import service_env
from conveyor.plan.compile import compile_plan
from conveyor.plan.model import ExecutionPlan, ServicePlan
from conveyor.spec.formats import parse_text


def plan(text: str) -> ExecutionPlan:
    return compile_plan(parse_text(text, ".drone.yml", "drone"))


def test_services_and_detached_steps_become_the_runs_services() -> None:
    compiled = plan(
        "kind: pipeline\nname: ci\nsteps:\n"
        "  - name: cache\n    image: redis\n    detach: true\n"
        "  - name: ping\n    image: redis\n    depends_on: [cache]\n"
        "    commands: [redis-cli -h cache ping]\n"
        "services:\n  - name: db\n    image: postgres:15\n    pull: always\n"
        "    environment: {POSTGRES_DB: test}\n"
        "  - name: web\n    commands: [python3 -m http.server]\n"
    )
    assert [s.id for s in compiled.steps] == ["ci.ping"]
    assert compiled.steps[0].needs == ()  # the detached step is no step to wait for
    assert compiled.services == (
        ServicePlan("db", "ci", "postgres:15", "", (("POSTGRES_DB", "test"),), "always", "drone"),
        ServicePlan("web", "ci", None, "python3 -m http.server", ci="drone"),
        ServicePlan("cache", "ci", "redis", ci="drone"),
    )
    assert ExecutionPlan.from_json(compiled.to_json()) == compiled


def test_a_plan_without_services_prints_none() -> None:
    compiled = plan("kind: pipeline\nsteps:\n  - name: a\n    commands: [echo]\n")
    assert "services" not in compiled.to_json()


@pytest.mark.parametrize(
    ("services", "message"),
    [
        (
            "  - name: db\n    image: a\n  - name: db\n    image: b\n",
            ".drone.yml:8:5: two services are named 'db'",
        ),
        (
            "  - name: my.db\n    image: a\n",
            ".drone.yml:6:5: service name 'my.db' is not a host name steps can reach",
        ),
        ("  - name: db\n", ".drone.yml:6:5: service 'db' has neither commands nor an image"),
        (
            "  - name: db\n    image: a\n    entrypoint: [x]\n",
            ".drone.yml:8:5: services[0].entrypoint: entrypoint is not supported; use commands",
        ),
        (
            "  - name: db\n    image: a\n    environment: {P: {from_secret: p}}\n",
            ".drone.yml:8:5: service 'db': from_secret is not supported for services",
        ),
    ],
)
def test_bad_services_are_refused_with_their_position(services: str, message: str) -> None:
    text = "kind: pipeline\nsteps:\n  - name: a\n    commands: [echo]\nservices:\n" + services
    with pytest.raises(SpecError) as caught:
        plan(text)
    assert str(caught.value).startswith(message)


def test_two_pipelines_may_not_give_one_service_name() -> None:
    one = "kind: pipeline\nname: {n}\nsteps:\n  - name: a\n    commands: [echo]\n"
    svc = "services:\n  - name: db\n    image: a\n"
    with pytest.raises(SpecError, match="two services of the run are named 'db'"):
        plan(one.format(n="x") + svc + "---\n" + one.format(n="y") + svc)


def test_steps_find_a_service_by_its_name_in_a_pod_and_at_localhost_on_the_host() -> None:
    services = [ServicePlan("my-db", "ci", "postgres")]
    assert service_env(services, None) == {"CONVEYOR_SERVICE_MY_DB": "my-db"}
    assert service_env(services, "localhost") == {"CONVEYOR_SERVICE_MY_DB": "localhost"}
