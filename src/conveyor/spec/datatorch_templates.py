"""The template namespaces DataTorch 0.8.0 renders in an action's manifest (its
``Variables``): ``action.*``, ``step.*``, ``machine.*``, ``python.*``, ``directory.*``,
``runner.*`` (``agent.*`` its old name).

In a command or script arguments (shell text) a reference becomes a variable expansion,
``${DATATORCH_ACTION_NAME}`` with the value in the step's environment, or for a fact of
the machine that runs the step a command substitution (``$(uname -s)``): a value is
never shell text. In an input's default it becomes the value itself (facts of the
machine that loads the pipeline). ``${{ input.* }}`` in shell text is refused, as
DataTorch refuses it.
"""

from __future__ import annotations

import platform
import re
import tempfile
from collections.abc import Mapping
from dataclasses import replace

from conveyor.spec.actions import ActionManifest

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_REFERENCE = re.compile(r"^(?P<space>[a-z]+)\.(?P<key>[a-z_]+)$")
_PYTHON = 'python3 -c "import platform; print(platform.python_{}())"'
_HOST = {
    "machine.name": ("$(uname -n)", platform.node),
    "machine.os": ("$(uname -s)", platform.system),
    "machine.version": ("$(uname -v)", platform.version),
    "python.version": (f"$({_PYTHON.format('version')})", platform.python_version),
    "python.implementation": (
        f"$({_PYTHON.format('implementation')})",
        platform.python_implementation,
    ),
}
_HOST["directory.temp"] = ("${TMPDIR:-/tmp}", tempfile.gettempdir)
_TRIGGER = re.compile(r"^(event|pipeline)(\.[A-Za-z_][\w-]*)+$")
_ALIASES = {"agent.id": "runner.id", "agent.directory": "runner.directory"}
_ALIASES.update({"directory.agent": "runner.directory", "directory.runner": "runner.directory"})


def _variable(name: str) -> str:
    return "DATATORCH_" + name.replace(".", "_").upper()


def command_text(text: str, values: Mapping[str, str], env: dict[str, str]) -> str:
    """Shell text with each reference expanded at run time; ``env`` gains the values
    the expansions read. ``ValueError`` names a reference that has no meaning here."""

    def expand(match: re.Match[str]) -> str:
        name = _name(match.group(1))
        if name.split(".")[0] in ("input", "inputs", "variable"):
            raise ValueError(
                f"${{{{ {match.group(1)} }}}} in a command: DataTorch refuses inputs in shell "
                'text (injection); read "$INPUT_NAME" instead'
            )
        if name in _HOST:
            return _HOST[name][0]
        if name not in values:
            raise ValueError(_unknown(match.group(1), values))
        env[_variable(name)] = values[name]
        return "${" + _variable(name) + "}"

    return _EXPRESSION.sub(expand, text)


def value_text(text: str, values: Mapping[str, str]) -> str:
    """A default with each reference replaced by its value (host facts of this machine)."""

    def value(match: re.Match[str]) -> str:
        if is_trigger_reference(match.group(1)):  # known when the run starts: kept
            return match.group(0)
        name = _name(match.group(1))
        if name in _HOST:
            return str(_HOST[name][1]())
        if name not in values:
            raise ValueError(_unknown(match.group(1), values))
        return values[name]

    return _EXPRESSION.sub(value, text)


def is_trigger_reference(expression: str) -> bool:
    """``event.*`` (the trigger's payload) or ``pipeline.*``: DataTorch's server fills
    them in before a step runs; here the plan does, from the run's trigger."""
    return _TRIGGER.match(expression.strip()) is not None


def _name(expression: str) -> str:
    match = _REFERENCE.match(expression.strip())
    if not match:
        raise ValueError(
            f"${{{{ {expression} }}}} is not a plain reference (namespace.key); "
            "DataTorch's template logic is not run here"
        )
    name = f"{match.group('space')}.{match.group('key')}"
    return _ALIASES.get(name, name)


def _unknown(expression: str, values: Mapping[str, str]) -> str:
    known = ", ".join(sorted({*values, *_HOST}))
    return f"${{{{ {expression} }}}} is not a value DataTorch provides here (known: {known})"


def render_manifest(
    manifest: ActionManifest,
    tag: str | None,
    directory: str,
    step: tuple[str, str],
    env: dict[str, str],
) -> ActionManifest:
    """The manifest with the namespaces rendered in its command, a script's arguments and
    string defaults; ``step`` is (name, id), ``directory`` the action's as steps see it,
    ``env`` gains the values the command reads. ``ValueError`` says what is refused."""
    values = {
        "action.name": manifest.name,
        "action.directory": directory,
        "action.version": tag or "latest",
        "action.tag": tag or "latest",
        "action.description": manifest.description or "",
        "step.name": step[0],
        "step.id": step[1],
        "runner.id": "",
        "runner.directory": ".conveyor",
        "directory.actions": ".conveyor/cache/actions",
    }
    runs = manifest.runs
    command = runs.command and command_text(runs.command, values, env)
    arguments = runs.arguments and command_text(runs.arguments, values, env)
    inputs = {
        key: declared
        if not isinstance(declared.default, str)
        else replace(declared, default=value_text(declared.default, values))
        for key, declared in manifest.inputs.items()
    }
    runs = replace(runs, command=command, arguments=arguments)
    return replace(manifest, runs=runs, inputs=inputs)
