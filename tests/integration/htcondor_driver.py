"""Run a few steps through Conveyor's HTCondor executor and print what came back, as
JSON: run by ``test_htcondor_bindings.py`` with another release of the ``htcondor2``
bindings (its own venv, Conveyor's sources on ``PYTHONPATH``).

usage: python htcondor_driver.py FILESYSTEM PROJECT_DIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conveyor.executors.base import Completion, Invocation
from conveyor.executors.htcondor import HTCondorExecutor


def main() -> None:
    filesystem, project = sys.argv[1], Path(sys.argv[2])
    (project / "data").mkdir(exist_ok=True)
    (project / "data" / "in.txt").write_text("41\n")
    executor = HTCondorExecutor({"filesystem": filesystem})
    steps = {
        "ok": ("mkdir -p out && echo $(( $(cat data/in.txt) + 1 )) > out/answer.txt", 0),
        "fails": ("echo to the log; exit 5", 0),
        "held": ("exit 3", 1),
    }
    hold = {"htcondor.on_exit_hold": "ExitCode == 3"}
    handles = []
    for name, (command, held) in steps.items():
        invocation = Invocation(
            key=f"bindings-{filesystem}/{name}/1",
            command=command,
            env={"CONVEYOR_STEP_ID": name},
            workdir=project,
            log_path=project.parent / "logs" / f"{name}.log",
            inputs=("data/in.txt",),
            outputs=("out/answer.txt",) if name == "ok" else (),
            options=hold if held else {},
        )
        handles.append(executor.submit(invocation))
    done: dict[str, Completion] = {}
    deadline = time.monotonic() + 150
    while len(done) < len(handles) and time.monotonic() < deadline:
        for completion in executor.poll([h for h in handles if h.key not in done], 0.25):
            done[completion.key.split("/")[1]] = completion
    executor.close()
    import htcondor2

    answer = project / "out" / "answer.txt"
    print(
        json.dumps(
            {
                "version": htcondor2.version(),
                "in_place": (project / ".conveyor" / "htcondor").exists(),
                "completions": {
                    name: {"state": c.state, "exit_code": c.exit_code, "message": c.message}
                    for name, c in done.items()
                },
                "answer": answer.read_text() if answer.exists() else None,
                "logs": {
                    name: (project.parent / "logs" / f"{name}.log").read_text() for name in steps
                },
            }
        )
    )


if __name__ == "__main__":
    main()
