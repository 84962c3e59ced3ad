"""Short image names expand as docker and Drone expand them before the runtime sees them."""

from __future__ import annotations

import pytest

from conveyor.execute.containers import qualified_image


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("golang", "docker.io/library/golang:latest"),
        ("golang:1.21", "docker.io/library/golang:1.21"),
        ("plugins/slack", "docker.io/plugins/slack:latest"),
        ("plugins/docker:linux-amd64", "docker.io/plugins/docker:linux-amd64"),
        ("quay.io/dotmesh/dotscience-slack", "quay.io/dotmesh/dotscience-slack:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("registry:5000/org/app", "registry:5000/org/app:latest"),
        (
            "mcr.microsoft.com/azure-storage/azurite",
            "mcr.microsoft.com/azure-storage/azurite:latest",
        ),
        ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
        ("docker.io/library/python:3.11-slim", "docker.io/library/python:3.11-slim"),
    ],
)
def test_short_names_expand_like_docker(short: str, full: str) -> None:
    assert qualified_image(short) == full
