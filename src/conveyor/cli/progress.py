"""Reporters for ``conveyor run``: a live view on a terminal, prefixed lines otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from conveyor.domain.states import RunStatus, StepStatus
from conveyor.metadata.records import RunRecord, StepRunRecord

if TYPE_CHECKING:  # the plan's modules are not needed to print progress
    from conveyor.plan.model import ExecutionPlan

_TAIL_LINES = 15
_MARK = {
    "ran": "✓",
    "cached": "⊙",
    StepStatus.FAILED: "✗",
    StepStatus.SKIPPED: "-",
    StepStatus.CANCELLED: "■",
}


def _mark(record: StepRunRecord) -> str:
    if record.status == StepStatus.SUCCEEDED:
        return _MARK["cached"] if record.cached else _MARK["ran"]
    return _MARK.get(record.status, "?")


def _duration(record: StepRunRecord) -> str:
    if record.started_at is None or record.ended_at is None:
        return ""
    return f"{record.ended_at - record.started_at:.2f}s"


def describe(record: StepRunRecord) -> str:
    if record.status == StepStatus.SUCCEEDED:
        return "cached" if record.cached else _duration(record)
    if record.status == StepStatus.FAILED:
        return f"failed: {record.error or ''} ({_duration(record)})".replace(" ()", "")
    return f"{record.status}: {record.error or ''}".rstrip(": ")


def log_tail(path: str | None, lines: int = _TAIL_LINES) -> list[str]:
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


class Counts:
    def __init__(self) -> None:
        self.ran = self.cached = self.failed = self.skipped = self.cancelled = 0

    def add(self, record: StepRunRecord) -> None:
        if record.status == StepStatus.SUCCEEDED:
            if record.cached:
                self.cached += 1
            else:
                self.ran += 1
        elif record.status == StepStatus.FAILED:
            self.failed += 1
        elif record.status == StepStatus.SKIPPED:
            self.skipped += 1
        else:
            self.cancelled += 1

    @property
    def done(self) -> int:
        return self.ran + self.cached + self.failed + self.skipped + self.cancelled

    def summary(self) -> str:
        parts = [f"{self.ran} ran", f"{self.cached} cached", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return ", ".join(parts)


def _header(run: RunRecord, plan: ExecutionPlan) -> str:
    commit = (run.commit or "no commit")[:12] + (" (uncommitted changes)" if run.dirty else "")
    return f"run {run.id} · {plan.pipeline} · {commit} · {len(plan.steps)} steps · {run.executor}"


def _footer(run: RunRecord, status: RunStatus, counts: Counts, started: float) -> str:
    elapsed = time.monotonic() - started
    verb = {"succeeded": "succeeded", "failed": "FAILED", "cancelled": "was cancelled"}.get(
        str(status), str(status)
    )
    why = f": {run.error}" if run.error else ""  # e.g. an executor that broke mid-run
    return f"run {run.id} {verb} in {elapsed:.2f}s: {counts.summary()}{why}"


class PlainReporter:
    """One line per event, for logs and pipes; a failed step's log tail follows it."""

    def __init__(self, stream: IO[str] | None = None, quiet_cached: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.counts = Counts()
        self.started = time.monotonic()
        self.quiet_cached = quiet_cached

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")

    def run_started(self, run: RunRecord, plan: ExecutionPlan) -> None:
        self.started = time.monotonic()
        self._print(_header(run, plan))

    def step_started(self, step_id: str, attempt: int) -> None:
        retry = f" (attempt {attempt})" if attempt > 1 else ""
        self._print(f"▶ {step_id}{retry}")

    def step_finished(self, record: StepRunRecord) -> None:
        self.counts.add(record)
        if record.cached and self.quiet_cached:
            return
        self._print(f"{_mark(record)} {record.step_id}  {describe(record)}")
        if record.status == StepStatus.FAILED:
            for line in log_tail(record.log_path):
                self._print(f"  {record.step_id} │ {line}")
            if record.log_path:
                self._print(f"  full log: conveyor logs {record.run_id} {record.step_id}")

    def run_finished(self, run: RunRecord, status: RunStatus) -> None:
        self._print(_footer(run, status, self.counts, self.started))
        self.stream.flush()


class LiveReporter(PlainReporter):
    """A rich live view: finished steps scroll above, running steps and counts below."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console

        self.console = Console(file=self.stream, highlight=False)
        self.running: dict[str, float] = {}
        self.total = 0
        self._live: Any = None

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False)

    def run_started(self, run: RunRecord, plan: ExecutionPlan) -> None:
        from rich.live import Live

        self.total = len(plan.steps)
        super().run_started(run, plan)
        self._live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=8, transient=True
        )
        self._live.start()

    def step_started(self, step_id: str, attempt: int) -> None:
        self.running[step_id] = time.monotonic()

    def step_finished(self, record: StepRunRecord) -> None:
        self.running.pop(record.step_id, None)
        super().step_finished(record)

    def run_finished(self, run: RunRecord, status: RunStatus) -> None:
        if self._live is not None:
            self._live.stop()
        super().run_finished(run, status)

    def _render(self) -> Any:
        from rich.markup import escape
        from rich.table import Table

        now = time.monotonic()
        table = Table.grid(padding=(0, 2))
        c = self.counts
        table.add_row(
            f"[bold]{c.done}/{self.total}[/] done · {c.ran} ran · {c.cached} cached · "
            f"[red]{c.failed} failed[/] · {len(self.running)} running · "
            f"{now - self.started:.1f}s"
        )
        shown = sorted(self.running.items(), key=lambda kv: kv[1])[:10]
        for step_id, since in shown:
            table.add_row(f"  [cyan]●[/] {escape(step_id)}  {now - since:.1f}s")
        if len(self.running) > len(shown):
            table.add_row(f"  … and {len(self.running) - len(shown)} more")
        return table


def make_reporter(json_output: bool) -> PlainReporter:
    stream = sys.stderr if json_output else sys.stdout
    if stream.isatty():
        return LiveReporter(stream)
    return PlainReporter(stream)


def relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
