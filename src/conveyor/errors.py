"""One error root for everything Conveyor raises on purpose.

    ConveyorError                 anything the user can act on; the CLI prints its message
    ├── UsageError                bad input: exit code 2
    │   ├── SpecError             a pipeline file is wrong (carries file:line:col)
    │   ├── ParamError            a --param value does not fit the declared type
    │   ├── NotFoundError         a run, step, path or digest that does not exist
    │   └── ProjectError          no pipeline file, not a git repository, bad settings
    ├── StoreError                the content-addressed store refused or is damaged
    ├── MetadataError             the run records cannot be read or written
    ├── ExecutorError             a backend could not be loaded, reached or used
    ├── RemoteError               a Conveyor server could not be reached or refused
    └── ConcurrencyError          another run holds the project lock

Errors from dependencies are translated at the boundary with ``raise ... from exc``;
the domain never prints, the CLI alone maps these to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


class ConveyorError(Exception):
    """Root of every error Conveyor raises on purpose."""

    exit_code = 1


class UsageError(ConveyorError):
    """The user's input is wrong; nothing was changed."""

    exit_code = 2


@dataclass(frozen=True)
class Position:
    """Where in a file something was written (1-based line and column)."""

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


class SpecError(UsageError):
    """A pipeline file is invalid; the message starts with file:line:col."""

    def __init__(self, message: str, position: Position | None = None) -> None:
        self.position = position
        self.detail = message
        super().__init__(f"{position}: {message}" if position else message)


class ParamError(UsageError):
    """A parameter given on the command line does not fit its declaration."""


class NotFoundError(UsageError):
    """A run, step, path or digest that the user named does not exist."""


class ProjectError(UsageError):
    """The project cannot be opened: no pipeline file, no git repository, bad settings."""


class StoreError(ConveyorError):
    """The content-addressed store refused an operation or found damage."""


class MetadataError(ConveyorError):
    """The run records could not be read or written."""


class ExecutorError(ConveyorError):
    """An executor could not be loaded, reached or used."""


class RemoteError(ConveyorError):
    """A Conveyor server could not be reached, or refused the request."""


class ConcurrencyError(ConveyorError):
    """Another run holds the project lock and the caller chose not to wait."""
