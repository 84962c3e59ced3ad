"""A name checked by a pattern ``^...$`` with ``re.match`` also passes with a newline at
its end (``$`` matches before a final newline): a project ``demo\\n``, a secret whose
name ends a line, an HTCondor submit command name that breaks the description's line.
Every checker refuses that newline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.errors import ConveyorError
from conveyor.executors.htcondor.description import job_options, split_env
from conveyor.server.config import check_project_name, check_user_name
from conveyor.server.craft.definitions import check_name as check_craft_name
from conveyor.server.db.vault import check_name as check_secret_name
from conveyor.server.deployments.model import check_name as check_deployment_name
from conveyor.store.objects import digest_key

CHECKERS: dict[str, Callable[[str], object]] = {
    "project": check_project_name,
    "user": check_user_name,
    "secret": check_secret_name,
    "deployment": check_deployment_name,
    "craft pipeline": check_craft_name,
    "blob digest": lambda d: digest_key("prefix", d),
    "submit command": lambda n: job_options({f"htcondor.{n}": "1"}),
    "environment variable": lambda n: split_env({n: "1"}),
}
GOOD = {
    "project": "demo",
    "user": "ada",
    "secret": "TOKEN",
    "deployment": "score",
    "craft pipeline": "score",
    "blob digest": "a" * 64,
    "submit command": "request_gpus",
    "environment variable": "SEED",
}


@pytest.mark.parametrize("what", sorted(CHECKERS))
def test_a_good_name_passes_and_the_same_with_a_final_newline_does_not(what: str) -> None:
    CHECKERS[what](GOOD[what])
    with pytest.raises(ConveyorError):
        CHECKERS[what](GOOD[what] + "\n")
