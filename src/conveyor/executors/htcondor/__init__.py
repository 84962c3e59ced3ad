"""The HTCondor executor: steps as jobs of a real pool, files moved through the schedd.

Importing this package does not import the HTCondor bindings; the first ``poll`` does.
"""

from conveyor.executors.htcondor.executor import HTCondorExecutor

__all__ = ["HTCondorExecutor"]
