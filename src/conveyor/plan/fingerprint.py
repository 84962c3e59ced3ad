"""The step cache key: a digest over everything that can change a step's outputs.

Parts: the resolved command, the declared environment variables, the parameters the
step refers to, the content digest of every declared input file, the declared outputs,
and the digest of the tool-visible environment (Python version, lock files); an HMAC of
each secret the step reads (never the value); the container image when the step names
one; for an action step its ref, commit, resolved input values and output names. A step
that declares no inputs is keyed on the output digests of the steps it depends on
instead. The parts are kept next to the key so ``conveyor why`` can name the one that
changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import blake3

from conveyor.plan.model import StepPlan

# 2: the declared outputs and the secrets' HMACs joined the key
FINGERPRINT_VERSION = 2
PART_NAMES = (
    "command",
    "env",
    "params",
    "inputs",
    "outputs",
    "upstream",
    "environment",
    "executor",
)


def fingerprint_parts(
    command: str,
    env: Mapping[str, str],
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    upstream: Mapping[str, Mapping[str, str]],
    environment: str,
    container: str | None = None,
    executor_key: str = "",
    image: str | None = None,
    action: Mapping[str, Any] | None = None,
    outputs: Sequence[str] = (),
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    run_status: str | None = None,
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "command": command,
        "env": dict(sorted(env.items())),
        "params": dict(sorted(params.items())),
        "inputs": dict(sorted(inputs.items())),
        # what a step makes: a hit must hand back each of them (their order is no matter)
        "outputs": sorted(set(outputs)),
        "upstream": {k: dict(sorted(v.items())) for k, v in sorted(upstream.items())},
        "environment": environment,
        "executor": executor_key,
    }
    if container is not None:  # where an image step ran: the image ID, host or plugin
        parts["container"] = container
    if image is not None:  # only image steps carry it: other keys stay as they were
        parts["image"] = image
    if action is not None:  # action steps: the ref, its commit and the resolved inputs
        parts["action"] = dict(action)
    if secrets:  # variable -> {secret name, HMAC of its value}: a new value is a new key
        parts["secrets"] = {k: dict(v) for k, v in sorted(secrets.items())}
    if run_status is not None:  # a step that can see the run status so far
        parts["run_status"] = run_status
    if metrics:  # which outputs are read as metrics (kept in the record for `metrics show`)
        parts["metrics"] = sorted(set(metrics))
    return parts


def step_parts(
    step: StepPlan,
    *,
    inputs: Mapping[str, str],
    upstream: Mapping[str, Mapping[str, str]],
    environment: str,
    command: str | None = None,
    container: str | None = None,
    action: Mapping[str, Any] | None = None,
    secret_values: Mapping[str, str] | None = None,
    secret_key: bytes = b"",
    failed_so_far: bool = False,
) -> dict[str, Any]:
    """The parts of a planned step: the plan's fields plus what is known only at launch
    (input digests, upstream outputs, where an image runs, secret values, and the run
    status so far for a step that may run either way or reads it by ``status-env``)."""
    if action is not None:
        action = {**action, "outputs": sorted(step.action_outputs)}
    values = secret_values or {}
    return fingerprint_parts(
        command=step.command if command is None else command,
        env=dict(step.env),
        params=dict(step.params),
        inputs=inputs,
        upstream=upstream,
        environment=environment,
        container=container,
        image=step.image,
        action=action,
        outputs=step.outputs,
        metrics=step.metrics,
        run_status=(
            ("failure" if failed_so_far else "success")
            if step.policy == "always" or step.status_env
            else None
        ),
        secrets={
            variable: {"secret": name, "hmac": secret_hmac(secret_key, values.get(name, ""))}
            for variable, name in step.secrets
        },
    )


def secret_hmac(key: bytes, value: str) -> str:
    """Keys the cache on a secret's value without storing it: a keyed digest, so a short
    or guessable secret cannot be recovered from the records by trying values offline."""
    import hashlib  # only a step given secrets needs these: lean start-up
    import hmac

    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
"""One encoder for every fingerprint: ``json.dumps`` with options builds one per call."""


def _canonical_chunks() -> Callable[[Any, int], Sequence[str]] | None:
    """``_CANONICAL``'s C encoder, made once (its ``encode`` makes one per call, and a
    no-op run keys every step): the same text, ``_CANONICAL``'s settings without the
    circular-reference check (parts are made here, never cyclic). None without the C
    accelerator."""
    from json import encoder

    make: Callable[..., Any] | None = getattr(encoder, "c_make_encoder", None)  # untyped
    if make is None:
        return None
    chunks: Callable[[Any, int], Sequence[str]] = make(
        None, str, encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )
    return chunks


_CHUNKS = _canonical_chunks()


def fingerprint(parts: Mapping[str, Any]) -> str:
    return keyed(parts)[0]


def keyed(parts: Mapping[str, Any]) -> tuple[str, str]:
    """The fingerprint and the canonical JSON text it digests (the records keep that text
    as the step run's parts instead of encoding them again)."""
    canonical = "".join(_CHUNKS(parts, 0)) if _CHUNKS is not None else _CANONICAL.encode(parts)
    return blake3.blake3(canonical.encode()).hexdigest(), canonical


def explain_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Human sentences naming what differs between two sets of parts."""
    changes: list[str] = []
    if before.get("version") != after.get("version"):
        changes.append("Conveyor's fingerprint format changed")
    if before.get("command") != after.get("command"):
        changes.append("the command changed")
    changes += _dict_changes("environment variable", before.get("env", {}), after.get("env", {}))
    changes += _dict_changes("parameter", before.get("params", {}), after.get("params", {}))
    changes += _dict_changes(
        "input", before.get("inputs", {}), after.get("inputs", {}), digests=True
    )
    changes += _list_changes("output", before.get("outputs", []), after.get("outputs", []))
    changes += _list_changes("metrics file", before.get("metrics", []), after.get("metrics", []))
    changes += _secret_changes(before.get("secrets", {}), after.get("secrets", {}))
    up_before, up_after = before.get("upstream", {}), after.get("upstream", {})
    for step in sorted(set(up_before) | set(up_after)):
        for change in _dict_changes(
            "output", up_before.get(step, {}), up_after.get(step, {}), digests=True
        ):
            changes.append(f"{change} of upstream step {step}")
    if before.get("environment") != after.get("environment"):
        changes.append("the tool environment changed (Python version or lock file)")
    old_action, new_action = before.get("action") or {}, after.get("action") or {}
    for key in ("ref", "commit"):
        if old_action.get(key) != new_action.get(key):
            changes.append(f"the action {key} changed")
    changes += _dict_changes(
        "action input", old_action.get("inputs", {}), new_action.get("inputs", {})
    )
    changes += _list_changes(
        "action output", old_action.get("outputs", []), new_action.get("outputs", [])
    )
    if before.get("image") != after.get("image"):
        changes.append(f"the image changed ({before.get('image')} -> {after.get('image')})")
    if before.get("container") != after.get("container"):
        changes.append(
            f"where the image runs changed ({before.get('container')} -> {after.get('container')})"
        )
    if before.get("run_status") != after.get("run_status"):
        changes.append(
            f"the run status so far changed ({before.get('run_status')} -> "
            f"{after.get('run_status')})"
        )
    if before.get("executor") != after.get("executor"):
        changes.append("the executor settings changed")
    return changes


def _dict_changes(
    noun: str, before: Mapping[str, Any], after: Mapping[str, Any], digests: bool = False
) -> list[str]:
    out = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            out.append(f"{noun} {key} was added")
        elif key not in after:
            out.append(f"{noun} {key} was removed")
        elif before[key] != after[key]:
            if digests:
                out.append(
                    f"{noun} {key} changed ({str(before[key])[:12]} -> {str(after[key])[:12]})"
                )
            else:
                out.append(f"{noun} {key} changed ({before[key]!r} -> {after[key]!r})")
    return out


def _list_changes(noun: str, before: Sequence[str], after: Sequence[str]) -> list[str]:
    added = [f"{noun} {p} was added" for p in sorted(set(after) - set(before))]
    return added + [f"{noun} {p} was removed" for p in sorted(set(before) - set(after))]


def _secret_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Names only: neither a value nor its HMAC is shown."""
    out = []
    for variable in sorted(set(before) | set(after)):
        old, new = before.get(variable), after.get(variable)
        if old is None and new is not None:
            out.append(f"variable {variable} now takes the secret {new['secret']}")
        elif new is None and old is not None:
            out.append(f"variable {variable} no longer takes the secret {old['secret']}")
        elif old is None or new is None:
            continue
        elif old["secret"] != new["secret"]:
            out.append(
                f"variable {variable} takes the secret {new['secret']} (was {old['secret']})"
            )
        elif old["hmac"] != new["hmac"]:
            out.append(f"secret {new['secret']} changed")
    return out
