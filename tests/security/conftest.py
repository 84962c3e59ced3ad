"""The integration fixtures the attack tests share (real git repositories, the real CLI)."""

from tests.integration.conftest import repo  # noqa: F401 (a fixture, used by name)
