"""The integration fixtures the attack tests share (real git repositories, the real CLI)."""

from tests.integration.conftest import repo, server  # noqa: F401 (fixtures, used by name)
