"""The facts a run's conditions are checked against (Drone's ``trigger``/``when``/``platform``).

Locally: HEAD's branch (or, for ``--event tag``, the tag on HEAD), the event the caller
acts as (``push`` by default), the ``origin`` remote's ``owner/name`` and this host's
os and architecture. On a server: the queued run's ref and what triggered it.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.domain.conditions import RunFacts
from conveyor.errors import UsageError
from conveyor.vcs.git import head_names

EVENTS = ("push", "tag", "cron", "custom", "pull_request", "promote", "rollback")
"""Drone's events; ``conveyor run --event E`` acts as one of them."""

_SERVER_EVENTS = {"push": "push", "tag": "tag", "schedule": "cron", "manual": "custom"}


def local_facts(
    root: Path, event: str | None = None, *, needed: bool = True, cron: str = "", target: str = ""
) -> RunFacts:
    """``needed``: whether any step has conditions (git is asked only then); ``cron``: the
    cron job's name (``--event cron``); ``target``: where a promote or rollback deploys."""
    event = event or "push"
    if event not in EVENTS:
        raise UsageError(f"--event {event!r} is not an event; use one of {', '.join(EVENTS)}")
    if cron and event != "cron":
        raise UsageError("--cron names the cron job of `--event cron`")
    if target and event not in ("promote", "rollback"):
        raise UsageError("--target names where `--event promote` or `rollback` deploys")
    if not needed:
        return RunFacts(event=event, cron=cron, target=target)
    names = head_names(root)
    branch, ref = names.branch or "", f"refs/heads/{names.branch}" if names.branch else ""
    if event == "tag":
        if not names.tags:
            raise UsageError("--event tag needs a tag on HEAD's commit (git tag NAME)")
        branch, ref = "", f"refs/tags/{names.tags[0]}"
    import platform  # only a run with conditions reads the host's os and architecture

    return RunFacts(
        event=event,
        branch=branch,
        ref=ref,
        repo=names.origin or root.name,
        cron=cron,
        target=target,
        os=platform.system().lower(),
        arch=platform.machine(),
    )


def server_facts(ref: str, trigger: str, repo: str) -> RunFacts:
    """A queued run's facts: a tag ref is a ``tag`` event whatever queued it (a webhook,
    a push); a schedule is ``cron``, a manual run ``custom``."""
    event = "tag" if ref.startswith("refs/tags/") else _SERVER_EVENTS.get(trigger, "push")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    import platform

    return RunFacts(
        event=event,
        branch=branch,
        ref=ref,
        repo=repo,
        os=platform.system().lower(),
        arch=platform.machine(),
    )


def server_payload(ref: str, commit: str, trigger: str, who: str, project: str) -> dict[str, str]:
    """``${{ event.* }}`` of a queued run: what its trigger (a push, a tag, a schedule,
    a manual run, a webhook) tells about it. The forge's own body is not kept."""
    facts = server_facts(ref, trigger, project)
    payload = {"trigger": trigger, "event": facts.event, "ref": ref, "commit": commit}
    if facts.branch:
        payload["branch"] = facts.branch
    if ref.startswith("refs/tags/"):
        payload["tag"] = ref.removeprefix("refs/tags/")
    return {**payload, "who": who, "projectId": project}
