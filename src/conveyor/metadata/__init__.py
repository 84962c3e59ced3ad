"""Run records: runs, step runs, artifacts, lineage edges and events."""

from conveyor.metadata.records import (
    CacheEntry,
    EventRecord,
    InputRecord,
    OutputRecord,
    RunRecord,
    StepRunRecord,
)
from conveyor.metadata.repository import MetadataRepository, WriteBatch

__all__ = [
    "CacheEntry",
    "EventRecord",
    "InputRecord",
    "MetadataRepository",
    "OutputRecord",
    "RunRecord",
    "StepRunRecord",
    "WriteBatch",
]
