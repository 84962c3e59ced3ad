"""Step invocations as tasks of a Dask cluster (``dask.distributed``)."""

from conveyor.executors.dask.executor import DaskExecutor

__all__ = ["DaskExecutor"]
