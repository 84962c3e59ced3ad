"""The trigger's event payload (``conveyor run --payload FILE.json``) is data: bounded
in size and nesting, a JSON object only, never evaluated, and quoted where it reaches a
shell command, like every other template value."""

from __future__ import annotations

import json

import pytest

from conveyor.domain.conditions import TriggerContext
from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import parse_text
from conveyor.spec.payload import MAX_BYTES, PayloadError, parse_payload
from tests.integration.conftest import Repo, repo  # noqa: F401 (a fixture)
from tests.security.test_templates import HOSTILE

REFUSED = {
    "too large": b'{"a": "' + b"x" * MAX_BYTES + b'"}',
    "too deep": b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}",
    "deeper than Python's stack": b"[" * 200_000 + b"]" * 200_000,
    "not an object": b'["fileId"]',
    "NaN": b'{"a": NaN}',
    "not UTF-8": b'{"a": "\xff"}',
    "not JSON": b"fileId: 3",
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=REFUSED.keys())
def test_a_payload_that_is_not_a_small_json_object_is_one_sentence(data: bytes) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(data, "event.json")
    message = str(caught.value)
    assert message.startswith("event.json: ") and "\n" not in message and len(message) < 300


def test_template_text_in_a_payload_is_never_evaluated() -> None:
    spec = parse_text(
        "params:\n  secret: {type: str, default: s3cr3t}\n"
        "jobs:\n  a:\n    steps:\n      - run: echo ${{ event.name }}\n",
        "conveyor.yml",
    )
    for value in ("${{ params.secret }}", "{{ 7 * 7 }}", "{{ ''.__class__ }}"):
        plan = compile_plan(spec, trigger=TriggerContext({"name": value}))
        command = plan.steps[0].command
        assert "s3cr3t" not in command and "49" not in command, command


@pytest.mark.integration
def test_a_hostile_payload_arrives_literally(repo: Repo) -> None:  # noqa: F811
    repo.pipeline(
        """\
        jobs:
          a:
            steps:
              - run: printf '%s' ${{ event.msg }} > plain.txt
                  && printf '%s' "<${{ event.msg }}>" > double.txt
                outputs: [plain.txt, double.txt]
        """
    )
    repo.commit()
    for value in HOSTILE[:4]:
        payload = repo.path.parent / "payload.json"
        payload.write_text(json.dumps({"msg": value}))
        result = repo.run("run", "--payload", str(payload))
        assert result.code == 0, result.err
        assert (repo.path / "plain.txt").read_text() == value
        assert (repo.path / "double.txt").read_text() == f"<{value}>"
        assert not (repo.path / "pwned").exists()


@pytest.mark.integration
def test_an_oversized_payload_file_is_refused_before_the_run(repo: Repo) -> None:  # noqa: F811
    repo.pipeline("jobs:\n  a:\n    steps:\n      - run: echo ${{ event.msg }}\n")
    repo.commit()
    payload = repo.path.parent / "big.json"
    payload.write_bytes(b'{"msg": "' + b"x" * (2 * MAX_BYTES) + b'"}')
    result = repo.run("run", "--payload", str(payload))
    assert result.code == 2 and "at most" in result.err and "Traceback" not in result.err
    listed = repo.run("runs", "--json")
    assert listed.code == 0 and json.loads(listed.out) == []  # no run was recorded
