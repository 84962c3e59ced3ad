"""What every command shares: the invocation context, JSON output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


class Context:
    def __init__(self, directory: Path, pipeline_file: Path | None) -> None:
        self.directory = directory
        self.pipeline_file = pipeline_file

    def project(self) -> Any:
        from conveyor.sdk.project import Project

        return Project.discover(self.directory, self.pipeline_file)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
