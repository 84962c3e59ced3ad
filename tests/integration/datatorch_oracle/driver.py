"""Run by the oracle's interpreter: each job of a DataTorch pipeline through
``datatorch.runner.pipelines.Job`` (``datatorch pipeline run``'s own code), with trigger
inputs, results written as JSON."""

import asyncio
import json
import sys

from datatorch.runner.pipelines import Job, Pipeline


def main() -> None:
    path, trigger, target = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    pipeline = Pipeline.from_yaml(path)
    results = {}
    for name, config in pipeline.config["jobs"].items():
        config["name"] = name
        try:
            results[name] = {"outputs": asyncio.run(Job(config, trigger).run())}
        except Exception as exc:  # the job's failure is the answer
            results[name] = {"error": type(exc).__name__, "message": str(exc)}
    with open(target, "w") as handle:
        json.dump(results, handle)


main()
