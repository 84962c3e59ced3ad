"""The Spark executor: step invocations as Spark tasks (pyspark is imported on first use).

executor.py  the contract: submit, poll, cancel, close, recover; one Spark job per batch
book.py      the driver's table of invocations and their completions
channel.py   the driver's end of the tasks' connections (files, logs, cancel)
worker.py    the task itself, shipped to the workers by value (standard library only)
wire.py      the task's framing on the socket to the driver (shipped with worker.py)
forked.py    python: steps in a fork of the task's interpreter (shipped with worker.py)
engine.py    the SparkContext behind narrow types
settings.py  the [executors.spark] table and the master probe
"""

from conveyor.executors.spark.executor import SparkExecutor

__all__ = ["SparkExecutor"]
