"""Smoke test of the HTCondor pool started by scripts/engines/htcondor.sh.

Run on the host after `eval "$(scripts/engines/htcondor.sh env)"`:

    python scripts/engines/check_htcondor.py

Submits one job in spool mode from a private scratch directory (nothing shared with
the pool), waits for it, retrieves its output and checks out.txt and ExitCode 3.
Then a transferred script with an input file and an output subdirectory, and a job
the pool cannot run, which is held with a readable hold reason.
Exits non-zero on any failure. This is the submission recipe the project should use.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

import htcondor2 as htcondor

# JobStatus values in the job ad.
IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5


def wait_for(schedd: htcondor.Schedd, cluster: int, timeout: float = 60.0) -> dict:
    """Poll the queue until the job is completed or held; return its ad as a dict."""
    deadline = time.monotonic() + timeout
    projection = ["JobStatus", "ExitCode", "ExitBySignal", "HoldReason", "HoldReasonCode", "Iwd"]
    while True:
        ads = schedd.query(constraint=f"ClusterId == {cluster}", projection=projection)
        if ads:
            ad = {k: ads[0].get(k) for k in projection}
            # Held with code 16 = "Spooling input data files": normal until spool() ends.
            held = ad["JobStatus"] == HELD and ad["HoldReasonCode"] != 16
            if ad["JobStatus"] == COMPLETED or held:
                return ad
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster {cluster} not done after {timeout}s: {ads}")
        time.sleep(0.2)


def submit_spooled(schedd: htcondor.Schedd, scratch: str, description: dict) -> int:
    """Submit one job with its input spooled to the schedd; return the cluster id."""
    desc = {
        # Input and output travel through the schedd's spool: no shared filesystem.
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "initialdir": scratch,
        "output": "stdout.txt",
        "error": "stderr.txt",
        "log": "job.log",
        "request_cpus": "1",
        "request_memory": "64MB",
        "request_disk": "10MB",
        **description,
    }
    result = schedd.submit(htcondor.Submit(desc), count=1, spool=True)
    schedd.spool(result)  # uploads the input files; the job is idle until then
    return result.cluster()


def _read(path: str) -> str | None:
    """A file's text, or None when the job left none."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def main() -> int:
    t0 = time.monotonic()
    schedd = htcondor.Schedd()
    # Default /var/tmp: not shared with the chroot, so this proves spool mode needs no shared FS.
    default = "/var/tmp" if os.path.isdir("/var/tmp") else None
    base = os.environ.get("CONVEYOR_CHECK_SCRATCH") or default
    scratch = tempfile.mkdtemp(prefix="condor-check-", dir=base)
    ok = True
    try:
        # 1. A job that writes a file and exits 3.
        t1 = time.monotonic()
        cluster = submit_spooled(
            schedd,
            scratch,
            {
                "executable": "/bin/sh",
                "transfer_executable": "False",  # /bin/sh of the execute machine
                "arguments": "\"-c 'echo hi > out.txt; exit 3'\"",
            },
        )
        ad = wait_for(schedd, cluster)
        t_done = time.monotonic() - t1
        # Output stays in the spool (LeaveJobInQueue) until retrieved.
        schedd.retrieve(f"ClusterId == {cluster}")
        schedd.act(htcondor.JobAction.Remove, f"ClusterId == {cluster}")
        out = _read(os.path.join(scratch, "out.txt"))
        print(
            f"job {cluster}: status={ad['JobStatus']} ExitCode={ad['ExitCode']} "
            f"out.txt={out!r} files={sorted(os.listdir(scratch))} "
            f"done in {t_done:.1f}s (with retrieve {time.monotonic() - t1:.1f}s)"
        )
        if ad["JobStatus"] != COMPLETED or ad["ExitCode"] != 3 or out != "hi\n":
            print(f"FAIL: unexpected result {ad}", file=sys.stderr)
            ok = False

        # 2. A transferred script and input file; a subdirectory comes back only when
        #    listed in transfer_output_files.
        t1 = time.monotonic()
        with open(os.path.join(scratch, "in.txt"), "w") as f:
            f.write("datum-42\n")
        with open(os.path.join(scratch, "step.sh"), "w") as f:
            f.write("#!/bin/sh\nmkdir -p results\ntr a-z A-Z < in.txt > results/upper.txt\n")
        os.chmod(os.path.join(scratch, "step.sh"), 0o755)
        cluster = submit_spooled(
            schedd,
            scratch,
            {
                # Transferred (spooled) with the job. Absolute: a relative executable
                # is resolved against the process's cwd, not initialdir.
                "executable": os.path.join(scratch, "step.sh"),
                "transfer_input_files": "in.txt",
                "transfer_output_files": "results",
                "output": "step.out",
                "error": "step.err",
            },
        )
        ad = wait_for(schedd, cluster)
        schedd.retrieve(f"ClusterId == {cluster}")
        schedd.act(htcondor.JobAction.Remove, f"ClusterId == {cluster}")
        upper = os.path.join(scratch, "results", "upper.txt")
        got = _read(upper)
        print(
            f"job {cluster}: status={ad['JobStatus']} ExitCode={ad['ExitCode']} "
            f"results/upper.txt={got!r} in {time.monotonic() - t1:.1f}s"
        )
        if ad["JobStatus"] != COMPLETED or ad["ExitCode"] != 0 or got != "DATUM-42\n":
            print(f"FAIL: unexpected result {ad}", file=sys.stderr)
            ok = False

        # 3. A job that cannot start (missing executable): it is held, with a reason.
        t1 = time.monotonic()
        cluster = submit_spooled(
            schedd,
            scratch,
            {"executable": "/no/such/program", "transfer_executable": "False"},
        )
        ad = wait_for(schedd, cluster)
        schedd.act(htcondor.JobAction.Remove, f"ClusterId == {cluster}")
        print(
            f"job {cluster}: status={ad['JobStatus']} HoldReasonCode={ad['HoldReasonCode']} "
            f"HoldReason={ad['HoldReason']!r} in {time.monotonic() - t1:.1f}s"
        )
        if ad["JobStatus"] != HELD or not ad["HoldReason"]:
            print(f"FAIL: expected a held job, got {ad}", file=sys.stderr)
            ok = False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'OK' if ok else 'FAILED'} in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
