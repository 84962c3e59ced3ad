"""The built-in plugins' pieces, without a network: settings, run facts, bodies."""

from __future__ import annotations

import pytest

from conveyor.plugins._contract import (
    RunFacts,
    SettingError,
    Settings,
    fill,
    format_duration,
    post_json,
)
from conveyor.plugins.circleci import project_slug
from conveyor.plugins.slack import run_link
from conveyor.plugins.webhook import body_of, headers_of

ENV = {
    "CONVEYOR_RUN_ID": "abc123",
    "CONVEYOR_PIPELINE": "ci",
    "CONVEYOR_RUN_STATUS": "success",
    "DRONE_BUILD_STATUS": "failure",
    "CONVEYOR_RUN_STARTED": "1000.0",
    "CONVEYOR_COMMIT": "0123456789abcdef0123",
    "CONVEYOR_STEP_ID": "ci.notify",
}


def settings(**values: str) -> Settings:
    return Settings("test", {f"PLUGIN_{k.upper()}": v for k, v in values.items()})


def test_the_drone_status_wins_and_the_duration_counts_from_the_run_start() -> None:
    facts = RunFacts.from_environ(ENV, now=1075.0)
    assert facts.status == "failure"
    assert facts.duration == 75.0
    assert RunFacts.from_environ({"CONVEYOR_RUN_STATUS": "success"}).status == "success"
    assert RunFacts.from_environ({}).duration is None


def test_durations_read_as_people_say_them() -> None:
    assert format_duration(3.21) == "3.2s"
    assert format_duration(75) == "1m 15s"
    assert format_duration(7260) == "2h 01m"
    assert format_duration(None) == "an unknown time"


def test_settings_come_from_plugin_variables_then_fallbacks() -> None:
    found = Settings("t", {"PLUGIN_WEBHOOK": "", "SLACK_WEBHOOK": "http://h/x"})
    assert found.get("webhook", "SLACK_WEBHOOK") == "http://h/x"
    with pytest.raises(SettingError, match=r"the setting token is missing: .*\(PLUGIN_TOKEN\)"):
        settings().require("token")
    with pytest.raises(SettingError, match="is not a mapping"):
        settings(parameters="[1]").json_object("parameters")


def test_placeholders_fill_and_unknown_braces_stay() -> None:
    assert fill("{status} {x} {}", {"status": "success"}) == "success {x} {}"


def test_the_slack_link_is_a_setting_or_the_show_command() -> None:
    facts = RunFacts.from_environ(ENV)
    assert run_link(settings(link="https://ci/{run_id}"), facts) == "https://ci/abc123"
    assert run_link(settings(), facts) == "conveyor show abc123"


def test_circleci_projects_by_slug_or_dotscience_names() -> None:
    assert project_slug(settings(slug="bb/org/repo")) == "bb/org/repo"
    assert project_slug(settings(username="u", project="p")) == "gh/u/p"
    with pytest.raises(SettingError, match="the project is missing"):
        project_slug(settings(username="u"))


def test_webhook_bodies_and_headers() -> None:
    facts = RunFacts.from_environ(ENV, now=1001.0)
    default = body_of(settings(), facts)
    assert isinstance(default, dict)
    assert (default["run_id"], default["status"], default["commit"]) == (
        "abc123",
        "failure",
        ENV["CONVEYOR_COMMIT"],
    )
    assert body_of(settings(body='{"t": "{run_id} {status}"}'), facts) == {"t": "abc123 failure"}
    assert body_of(settings(body="plain {status}"), facts) == "plain failure"
    assert headers_of(settings(headers="A=1,B = two")) == {"A": "1", "B": "two"}
    assert headers_of(settings(headers='{"A": 1}')) == {"A": "1"}
    with pytest.raises(SettingError, match="is not Name=value"):
        headers_of(settings(headers="broken"))


def test_only_http_urls_are_posted_to() -> None:
    with pytest.raises(SettingError, match="is not an http"):
        post_json("ftp://x", {})
