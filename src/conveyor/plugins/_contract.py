"""What every built-in plugin shares: reading settings, the run's facts, posting JSON."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TIMEOUT = 30.0


class PluginError(Exception):
    """The service refused the request or could not be reached (exit code 1)."""

    exit_code = 1


class SettingError(PluginError):
    """A setting is missing or wrong (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Settings:
    """``PLUGIN_*`` variables, read by setting name (``webhook`` -> ``PLUGIN_WEBHOOK``)."""

    plugin: str
    environ: Mapping[str, str]

    def get(self, name: str, *fallbacks: str) -> str | None:
        """The setting, else the first of ``fallbacks`` (plain variable names) that is set."""
        value = self.environ.get(f"PLUGIN_{name.upper()}")
        if value:
            return value
        return next((self.environ[f] for f in fallbacks if self.environ.get(f)), None)

    def require(self, name: str, *fallbacks: str) -> str:
        value = self.get(name, *fallbacks)
        if value is None:
            also = f" (or {' / '.join(fallbacks)})" if fallbacks else ""
            raise SettingError(
                f"the setting {name} is missing: set it under the step's settings "
                f"(PLUGIN_{name.upper()}){also}"
            )
        return value

    def json_object(self, name: str) -> dict[str, Any] | None:
        """A nested setting (passed as JSON); None when unset."""
        text = self.get(name)
        if text is None:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingError(f"the setting {name} is not a mapping: {text[:60]!r}") from exc
        if not isinstance(value, dict):
            raise SettingError(f"the setting {name} is not a mapping: {text[:60]!r}")
        return value

    def timeout(self) -> float:
        text = self.get("timeout")
        try:
            return float(text) if text else _TIMEOUT
        except ValueError as exc:
            raise SettingError(f"the setting timeout is not a number of seconds: {text!r}") from exc


@dataclass(frozen=True)
class RunFacts:
    """What Conveyor tells every step about the run."""

    run_id: str
    pipeline: str
    status: str
    """``success`` or ``failure``: the run so far, as a notification step sees it."""
    duration: float | None
    commit: str
    step: str

    @staticmethod
    def from_environ(environ: Mapping[str, str], now: float | None = None) -> RunFacts:
        status = environ.get("DRONE_BUILD_STATUS") or environ.get("CONVEYOR_RUN_STATUS", "")
        started = environ.get("CONVEYOR_RUN_STARTED") or environ.get("DRONE_BUILD_STARTED")
        duration = None
        if started:
            try:
                duration = max(0.0, (now or time.time()) - float(started))
            except ValueError:
                duration = None
        return RunFacts(
            run_id=environ.get("CONVEYOR_RUN_ID", ""),
            pipeline=environ.get("CONVEYOR_PIPELINE", ""),
            status=status or "unknown",
            duration=duration,
            commit=environ.get("CONVEYOR_COMMIT") or environ.get("DRONE_COMMIT_SHA", ""),
            step=environ.get("CONVEYOR_STEP_ID", ""),
        )

    def placeholders(self, link: str) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "duration": format_duration(self.duration),
            "commit": self.commit,
            "short_commit": self.commit[:12],
            "step": self.step,
            "link": link,
        }


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fill(template: str, values: Mapping[str, str]) -> str:
    """``{name}`` placeholders replaced; unknown names and other braces left alone."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def post_json(
    url: str,
    body: object,
    headers: Mapping[str, str] | None = None,
    timeout: float = _TIMEOUT,
    method: str = "POST",
) -> tuple[int, str]:
    """Send ``body`` as JSON; the status and text of a 2xx answer, else PluginError."""
    if not url.startswith(("http://", "https://")):
        raise SettingError(f"{url!r} is not an http:// or https:// URL")
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "conveyor-plugin")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        raise PluginError(
            f"{_site(url)} answered {exc.code} {exc.reason}" + (f": {text}" if text else "")
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PluginError(f"cannot reach {_site(url)}: {reason}") from exc


def _site(url: str) -> str:
    """The URL without its path: webhook paths are secrets."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def main(name: str, body: Callable[[Settings, RunFacts], str]) -> None:
    """Run a plugin: print its one-line result, or one line of error and exit non-zero."""
    environ = dict(os.environ)
    try:
        message = body(Settings(name, environ), RunFacts.from_environ(environ))
    except PluginError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    print(f"{name}: {message}")
