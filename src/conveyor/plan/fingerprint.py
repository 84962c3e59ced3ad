"""The step cache key: a digest over everything that can change a step's outputs.

Parts: the resolved command, the declared environment variables, the parameters the
step refers to, the content digest of every declared input file, and the digest of the
tool-visible environment (Python version, lock files); the container image when the
step names one; for an action step its ref, commit and resolved input values. A step
that declares no inputs is keyed on the output digests of the steps it depends on
instead. The parts are kept next to the key so ``conveyor why`` can name the one that
changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import blake3

FINGERPRINT_VERSION = 1
PART_NAMES = ("command", "env", "params", "inputs", "upstream", "environment", "executor")


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
) -> dict[str, Any]:
    parts: dict[str, Any] = {
        "version": FINGERPRINT_VERSION,
        "command": command,
        "env": dict(sorted(env.items())),
        "params": dict(sorted(params.items())),
        "inputs": dict(sorted(inputs.items())),
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
    return parts


def fingerprint(parts: Mapping[str, Any]) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return blake3.blake3(canonical.encode()).hexdigest()


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
    if before.get("image") != after.get("image"):
        changes.append(f"the image changed ({before.get('image')} -> {after.get('image')})")
    if before.get("container") != after.get("container"):
        changes.append(
            f"where the image runs changed ({before.get('container')} -> {after.get('container')})"
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
