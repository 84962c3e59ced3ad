"""Dotscience ``.dotscience.yml`` and the Drone ``.drone.yml`` subset it mirrors.

Each YAML document (``kind: pipeline``) becomes a job; its steps become the job's steps
(in order, or as a graph when a step names ``depends_on``). What maps to what is in
``docs/formats.md``; keys Conveyor does not support are refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from conveyor.spec.drone_conditions import Conditions, platform_when, read_conditions
from conveyor.spec.drone_documents import (
    DRONE_08,
    DRONE_TYPES,
    drop_ignored,
    pipeline_documents,
)
from conveyor.spec.drone_volumes import pipeline_volumes, step_volumes
from conveyor.spec.load import validate
from conveyor.spec.model import NAME_PATTERN, PipelineSpec
from conveyor.spec.translate import (
    Translation,
    check_keys,
    env_value,
    expect_list,
    expect_mapping,
    expect_text,
    slug,
)
from conveyor.spec.yamlsource import Loc, SourceMap, describe

STATUS_VARIABLES = ("DRONE_BUILD_STATUS", "DRONE_STAGE_STATUS")
"""Set to ``success`` or ``failure`` for every step: what Drone notification plugins read."""
DOTSCIENCE_STATUS = "PLUGIN_STATUS=ok/error"
"""Dotscience's plugins read the workload status as ``PLUGIN_STATUS``: ``ok`` or ``error``."""

_PIPELINE_KEYS = {
    "kind",
    "type",
    "name",
    "steps",
    "after",
    "depends_on",
    "environment",
    "trigger",
    "platform",
    "volumes",
    "services",
    "concurrency",
}
_STEP_KEYS = {
    "name",
    "image",
    "pull",
    "commands",
    "environment",
    "settings",
    "runPolicy",
    "when",
    "depends_on",
    "failure",
    "volumes",
    "privileged",
    "detach",
}
_SERVICE_KEYS = {"name", "image", "pull", "commands", "environment"}
_NO_CONTAINERS = "Conveyor does not run services or containers with special options"
_REFUSED_PIPELINE = {
    "os": "os is not supported",
    "arch": "arch is not supported",
}
_REFUSED_STEP = {
    "services": "services belong to the pipeline, beside `steps:`",
    "entrypoint": "entrypoint is not supported; use commands",
    "command": "command is not supported; use commands",
    "network_mode": f"network_mode is not supported ({_NO_CONTAINERS})",
    "user": f"user is not supported ({_NO_CONTAINERS})",
    "shell": "shell is not supported; commands run with `sh -e`",
    "working_dir": "working_dir is not supported; steps run in the project directory",
    "devices": f"devices is not supported ({_NO_CONTAINERS})",
    "dns": f"dns is not supported ({_NO_CONTAINERS})",
    "dns_search": f"dns_search is not supported ({_NO_CONTAINERS})",
    "extra_hosts": f"extra_hosts is not supported ({_NO_CONTAINERS})",
    "resources": "resources is not supported here; convert to conveyor.yml to set them",
    "group": "group is not supported; use depends_on",
}
_REFUSED_SERVICE = {
    "entrypoint": "entrypoint is not supported; use commands",
    "command": "command is not supported; use commands",
    "privileged": f"privileged is not supported for services ({_NO_CONTAINERS})",
    "volumes": "volumes are not supported for services",
    "depends_on": "depends_on is not supported for services; they start before the steps",
}
_POLICIES = {
    "on-success": "success()",
    "on_success": "success()",
    "on-failure": "failure()",
    "on_failure": "failure()",
    "always": "always()",
}


def translate(
    documents: Sequence[tuple[Any, SourceMap]], display: str, fmt: str, *_: object
) -> PipelineSpec:
    """The translator :mod:`conveyor.spec.formats` calls (no actions: no resolver)."""
    return parse_drone(documents, display, fmt)


def parse_drone(documents: Sequence[tuple[Any, SourceMap]], display: str, fmt: str) -> PipelineSpec:
    """Documents of a ``.drone.yml`` or ``.dotscience.yml`` -> the internal model."""
    what = "a Dotscience pipeline" if fmt == "dotscience" else "a Drone pipeline"
    result = Translation(display)
    jobs: dict[str, Any] = {}
    names: dict[str, str] = {}  # pipeline name -> job id
    pending: list[tuple[str, list[Any], SourceMap]] = []
    warnings: list[str] = []
    for data, source in pipeline_documents(documents, warnings):
        doc = expect_mapping(data, source, (), f"{what} with `kind: pipeline`")
        if "pipeline" in doc and "kind" not in doc:
            raise source.error(("pipeline",), DRONE_08)
        kind_type = doc.get("type", "docker")
        if kind_type not in DRONE_TYPES:
            known = ", ".join(DRONE_TYPES)
            raise source.error(("type",), f"type: {kind_type!r} is not a Drone type ({known})")
        doc, ignored = drop_ignored(doc, source, kind_type)
        if ignored is not None:
            warnings.append(ignored)
        check_keys(doc, source, (), _PIPELINE_KEYS, _REFUSED_PIPELINE, what)
        if "kind" not in doc:
            raise source.error((), "each document needs `kind: pipeline`")
        name = expect_text(doc.get("name", "default"), source, ("name",))
        job_id = slug(name, f"pipeline-{len(jobs) + 1}")
        if name in names or job_id in jobs:
            raise source.error(("name",), f"two pipelines are named {name!r}")
        names[name] = job_id
        result.mark(("jobs", job_id), source, ("name",) if "name" in doc else ("steps",))
        trigger = (
            read_conditions(doc["trigger"], source, ("trigger",), "trigger")
            if "trigger" in doc
            else Conditions()
        )
        volumes = pipeline_volumes(doc.get("volumes", []), source, ("volumes",))
        jobs[job_id] = _job(doc, source, result, job_id, what, (trigger, volumes))
        warnings.extend(trigger.warnings)  # the trigger's and its steps' `when`
        when = dict(trigger.when)
        if "platform" in doc:
            when.update(platform_when(doc["platform"], source, ("platform",)))
        if when:
            jobs[job_id]["when"] = when
            result.mark(
                ("jobs", job_id, "when"),
                source,
                ("trigger",) if "trigger" in doc else ("platform",),
            )
        if "depends_on" in doc:
            pending.append(
                (
                    job_id,
                    expect_list(doc["depends_on"], source, ("depends_on",), "pipeline names"),
                    source,
                )
            )
    for job_id, depends, source in pending:
        for i, other in enumerate(depends):
            if other not in names:  # Drone's DAG drops a name that is no pipeline
                known = ", ".join(sorted(names))
                warnings.append(
                    f"{source.position(('depends_on', i))}: depends_on names {other!r}, which "
                    f"is not a pipeline in this file (pipelines: {known}); ignored, as Drone "
                    "ignores it"
                )
                continue
            jobs[job_id]["needs"].append(names[other])
    if len(jobs) == 1:
        title = next(iter(names))
    else:
        title = display.rsplit("/", 1)[-1].lstrip(".").split(".", 1)[0] or "pipeline"
    # Drone starts every pipeline on every push and tag, then its `trigger` decides: a
    # server queues both, and the steps' conditions (the job's `when`) do the rest
    every_ref = {"push": {"branches": ["**"], "tags": ["**"]}}
    spec = validate({"name": title, "on": every_ref, "jobs": jobs}, result.out, fmt)
    return spec.with_warnings(tuple(warnings)) if warnings else spec


def _job(
    doc: dict[str, Any],
    source: SourceMap,
    result: Translation,
    job_id: str,
    what: str,
    context: tuple[Conditions, dict[str, str | None]],
) -> dict[str, Any]:
    steps_data = [
        ("steps", s) for s in expect_list(doc.get("steps", []), source, ("steps",), "steps")
    ]
    after = [("after", s) for s in expect_list(doc.get("after", []), source, ("after",), "steps")]
    if not steps_data and not after:
        raise source.error(
            (),
            f"{what} needs `steps:`"
            + (" or `after:`" if "after" in doc or what.startswith("a Dot") else ""),
        )
    items = [*steps_data, *after]
    ids: dict[str, str] = {}
    for index, (key, step) in enumerate(items):
        offset = index if key == "steps" else index - len(steps_data)
        loc: Loc = (key, offset)
        step = expect_mapping(step, source, loc, "a step")
        name = expect_text(step.get("name"), source, (*loc, "name")) if "name" in step else None
        if name is None:
            raise source.error(loc, f"{describe(loc)} needs a `name`")
        sid = slug(name, f"step-{index + 1}")
        if name in ids or sid in ids.values():
            raise source.error(
                (*loc, "name"), f"two steps of pipeline {job_id!r} are named {name!r}"
            )
        ids[name] = sid
    graph = any(isinstance(s, dict) and "depends_on" in s for _, s in items)
    env = _environment(doc.get("environment", {}), source, ("environment",))
    job: dict[str, Any] = {"needs": [], "env": env[0], "steps": []}
    if env[1]:
        raise source.error(
            ("environment",), "pipeline environment cannot use from_secret; set it on the step"
        )
    detached = {str(s["name"]) for _, s in items if s.get("detach") is True}
    main_ids = [ids[s["name"]] for _, s in steps_data if s["name"] not in detached]
    services = _services(doc, items, source, result, job_id)
    if services:
        job["services"] = services
    if "concurrency" in doc:
        job["concurrency"] = _concurrency(doc["concurrency"], source)
        result.mark(("jobs", job_id, "concurrency"), source, ("concurrency",))
    index = -1
    for offset_all, (key, step) in enumerate(items):
        offset = offset_all if key == "steps" else offset_all - len(steps_data)
        if step.get("detach") is True:
            continue  # a service of the run (above)
        index += 1
        native: Loc = ("jobs", job_id, "steps", index)
        live = {n: i for n, i in ids.items() if n not in detached}
        converted = _step(step, source, (key, offset), result, native, live, context, detached)
        dotscience = what.startswith("a Dotscience")
        if dotscience and "PLUGIN_STATUS" not in converted.get("env", {}):
            converted["status-env"].append(DOTSCIENCE_STATUS)
        if dotscience and "PLUGIN_DOTSCIENCE_STATUS" not in converted.get("env", {}):
            converted["status-env"].append("PLUGIN_DOTSCIENCE_STATUS")
        # Drone's variables and ${VAR} substitution, at launch (Dotscience adds its task id)
        converted["ci"] = "dotscience" if dotscience else "drone"
        if graph and "depends_on" not in step:
            # graph mode: a step without depends_on starts at once; `after` steps
            # still wait for every step of `steps:`
            converted["needs"] = main_ids if key == "after" else []
        job["steps"].append(converted)
    return job


def _step(
    step: dict[str, Any],
    source: SourceMap,
    loc: Loc,
    result: Translation,
    native: Loc,
    ids: dict[str, str],
    context: tuple[Conditions, dict[str, str | None]],
    detached: set[str],
) -> dict[str, Any]:
    """``context``: the pipeline's trigger and temporary volumes; ``detached``: the names
    of the pipeline's detached steps (services)."""
    trigger, volumes = context
    check_keys(step, source, loc, _STEP_KEYS, _REFUSED_STEP, "a step")
    result.mark(native, source, loc)
    out: dict[str, Any] = {"id": ids[step["name"]], "name": str(step["name"])}
    for key in ("id", "name"):
        result.mark((*native, key), source, (*loc, "name"))
    if "image" in step:
        out["image"] = expect_text(step["image"], source, (*loc, "image"))
        result.mark((*native, "image"), source, (*loc, "image"))
    if "pull" in step:
        out["pull"] = _pull(step["pull"], source, (*loc, "pull"))
    commands = expect_list(step.get("commands", []), source, (*loc, "commands"), "shell commands")
    lines = [expect_text(c, source, (*loc, "commands", i)) for i, c in enumerate(commands)]
    if lines:
        out["run"] = "\n".join(lines)
        result.mark((*native, "run"), source, (*loc, "commands"))
    elif "image" not in step:
        raise source.error(loc, f"step {step['name']!r} has neither commands nor an image")
    env, secrets = _environment(step.get("environment", {}), source, (*loc, "environment"))
    settings = expect_mapping(
        step.get("settings", {}), source, (*loc, "settings"), "plugin settings"
    )
    for key, value in settings.items():
        variable = "PLUGIN_" + slug(str(key), "X").replace("-", "_").upper()
        if isinstance(value, dict) and set(value) == {"from_secret"}:
            secrets[variable] = expect_text(
                value["from_secret"], source, (*loc, "settings", key, "from_secret")
            )
        else:
            env[variable] = env_value(value)
    for key, where in (("env", "environment"), ("secrets", "environment")):
        result.mark((*native, key), source, (*loc, where))
    if env:
        out["env"] = env
    if secrets:
        out["secrets"] = secrets
    out["if"] = _policy(step, source, loc, trigger, out)
    if "when" in step:
        result.mark((*native, "when"), source, (*loc, "when"))
    result.mark((*native, "if"), source, (*loc, "runPolicy" if "runPolicy" in step else "when"))
    if "depends_on" in step:
        out["needs"] = _needs(step["depends_on"], source, (*loc, "depends_on"), ids, detached)
        result.mark((*native, "needs"), source, (*loc, "depends_on"))
    if "failure" in step:
        if step["failure"] != "ignore":
            raise source.error(
                (*loc, "failure"),
                f"failure: {step['failure']!r} is not supported; use `failure: ignore`",
            )
        out["continue-on-error"] = True
    if "privileged" in step:
        out["privileged"] = _flag(step["privileged"], source, (*loc, "privileged"))
    if "volumes" in step:
        out["volumes"] = step_volumes(step["volumes"], source, (*loc, "volumes"), volumes)
    out["status-env"] = list(STATUS_VARIABLES)
    out["cache"] = False  # CI steps declare no inputs or outputs: always run them
    return out


def _services(
    doc: dict[str, Any],
    items: list[tuple[str, Any]],
    source: SourceMap,
    result: Translation,
    job_id: str,
) -> list[dict[str, Any]]:
    """The pipeline's ``services`` and its ``detach: true`` steps: long-lived processes
    started before the steps (a detached step starts with them, not at its place)."""
    found: list[tuple[Loc, dict[str, Any]]] = []
    declared = expect_list(doc.get("services", []), source, ("services",), "services")
    for i, item in enumerate(declared):
        loc: Loc = ("services", i)
        service = expect_mapping(item, source, loc, "a service")
        check_keys(service, source, loc, _SERVICE_KEYS, _REFUSED_SERVICE, "a service")
        found.append((loc, service))
    offsets = {"steps": 0, "after": 0}
    for key, step in items:
        loc = (key, offsets[key])
        offsets[key] += 1
        if "detach" in step and _flag(step["detach"], source, (*loc, "detach")):
            check_keys(step, source, loc, _STEP_KEYS, _REFUSED_STEP, "a step")
            found.append((loc, {k: v for k, v in step.items() if k in _SERVICE_KEYS}))
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for index, (loc, service) in enumerate(found):
        if "name" not in service:
            raise source.error(loc, f"{describe(loc)} needs a `name`")
        name = expect_text(service["name"], source, (*loc, "name"))
        if not re.fullmatch(NAME_PATTERN, name) or len(name) > 63:
            raise source.error(
                (*loc, "name"),
                f"service name {name!r} is not a host name steps can reach (letters, digits, "
                "_ and -, at most 63)",
            )
        if name in names:
            raise source.error((*loc, "name"), f"two services are named {name!r}")
        names.add(name)
        native: Loc = ("jobs", job_id, "services", index)
        result.mark(native, source, loc)
        converted: dict[str, Any] = {"name": name}
        if "image" in service:
            converted["image"] = expect_text(service["image"], source, (*loc, "image"))
        if "pull" in service:
            converted["pull"] = _pull(service["pull"], source, (*loc, "pull"))
        commands = expect_list(
            service.get("commands", []), source, (*loc, "commands"), "shell commands"
        )
        lines = [expect_text(c, source, (*loc, "commands", i)) for i, c in enumerate(commands)]
        if lines:
            converted["run"] = "\n".join(lines)
        elif "image" not in service:
            raise source.error(loc, f"service {name!r} has neither commands nor an image")
        env, secrets = _environment(service.get("environment", {}), source, (*loc, "environment"))
        if secrets:
            raise source.error(
                (*loc, "environment"),
                f"service {name!r}: from_secret is not supported for services; give a step "
                "the secret",
            )
        if env:
            converted["env"] = env
        for key in ("name", "image", "run", "env", "pull"):
            result.mark((*native, key), source, loc)
        out.append(converted)
    return out


def _concurrency(value: Any, source: SourceMap) -> int:
    """``concurrency: {limit: N}``: at most N runs of the pipeline at once (a server)."""
    loc: Loc = ("concurrency",)
    limit = expect_mapping(value, source, loc, "{limit: N}").get("limit")
    if set(value) != {"limit"} or isinstance(limit, bool) or not isinstance(limit, int):
        raise source.error(loc, "concurrency: {limit: N}, N a whole number of runs")
    if limit < 1:
        raise source.error((*loc, "limit"), f"concurrency limit {limit} is not 1 or more")
    return limit


def _needs(
    value: Any, source: SourceMap, loc: Loc, ids: dict[str, str], detached: set[str]
) -> list[str]:
    needs = []
    for i, name in enumerate(expect_list(value, source, loc, "step names")):
        if name == "clone" and name not in ids:
            continue  # Drone's implicit clone step: the checkout is already here
        if name in detached:
            continue  # a detached step is a service: started before every step
        if name not in ids:
            known = ", ".join(sorted(ids))
            raise source.error(
                (*loc, i),
                f"depends_on names {name!r}, which is not a step of this pipeline (steps: {known})",
            )
        needs.append(ids[name])
    return needs


def _flag(value: Any, source: SourceMap, loc: Loc) -> bool:
    if not isinstance(value, bool):
        raise source.error(loc, f"{describe(loc)}: true or false, not {value!r}")
    return value


def _pull(pull: Any, source: SourceMap, loc: Loc) -> str:
    if pull not in ("always", "never", "if-not-exists", "default"):
        raise source.error(
            loc, f"pull: {pull!r} is not a pull policy (always, never, if-not-exists, default)"
        )
    # Drone's `default`: pull an image that is not here
    return "if-not-exists" if pull == "default" else str(pull)


def _environment(value: Any, source: SourceMap, loc: Loc) -> tuple[dict[str, Any], dict[str, str]]:
    env: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for key, item in expect_mapping(value, source, loc, "environment variables").items():
        if isinstance(item, dict):
            if set(item) != {"from_secret"}:
                raise source.error(
                    (*loc, key), f"{describe((*loc, key))}: a value or {{from_secret: NAME}}"
                )
            secrets[str(key)] = expect_text(item["from_secret"], source, (*loc, key, "from_secret"))
        elif isinstance(item, list):
            raise source.error(
                (*loc, key),
                f"{describe((*loc, key))}: a value or {{from_secret: NAME}}, not a list",
            )
        else:
            env[str(key)] = env_value(item)
    return env, secrets


def _policy(
    step: dict[str, Any], source: SourceMap, loc: Loc, trigger: Conditions, out: dict[str, Any]
) -> str:
    """The step's run policy (``runPolicy`` or ``when.status``, else the pipeline's
    ``trigger.status``); its other ``when`` conditions go into ``out["when"]``."""
    if "runPolicy" in step and "when" in step:
        raise source.error((*loc, "when"), "give either runPolicy or when, not both")
    if "runPolicy" in step:
        policy = step["runPolicy"]
        if policy not in _POLICIES:
            raise source.error(
                (*loc, "runPolicy"),
                f"runPolicy: {policy!r} is not one of on-success, on-failure, always",
            )
        return _POLICIES[policy]
    if "when" not in step:
        return trigger.policy()
    when = read_conditions(step["when"], source, (*loc, "when"), "when")
    trigger.warnings.extend(when.warnings)
    if when.when:
        out["when"] = when.when
    return when.policy(trigger.policy())
