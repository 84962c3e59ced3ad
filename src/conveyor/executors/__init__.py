"""Backends that run step invocations: one narrow contract, several implementations."""

from conveyor.executors.base import Completion, Executor, Handle, Invocation
from conveyor.executors.registry import load_executor

__all__ = ["Completion", "Executor", "Handle", "Invocation", "load_executor"]
