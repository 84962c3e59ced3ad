"""Web page speed: a run page of a big finished run, its live fragment and the runs list.

    python bench/bench_web.py [--steps 1000] [--repeat 5]

Starts a real ``conveyor server`` (SQLite, one in-process worker) on 127.0.0.1 in a
temporary directory, runs a pipeline of ``--steps`` steps (chains of five) to its end,
then times the pages as a signed-in viewer (median of ``--repeat``). The reference,
measured in the same run, is ``GET /api/v1/projects/demo/runs/RUN``: the same run with
its step runs as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.server_support import git, make_server  # noqa: E402
from tests.integration.web_support import web_client  # noqa: E402


def pipeline(steps: int) -> str:
    lines = ["jobs:", "  a:", "    steps:"]
    for i in range(steps):
        lines += [f"      - id: s{i}", f"        run: echo {i}"]
        if i % 5:
            lines.append(f"        needs: [s{i - 1}]")
    return "\n".join(lines) + "\n"


def timed(get: object, url: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        answer = get(url)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:300]
        size = len(answer.content)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = make_server(Path(tmp), None)
        work = Path(tmp) / "work"
        work.mkdir()
        git(work, "init", "-q", "-b", "main")
        (work / "conveyor.yml").write_text(pipeline(args.steps))
        git(work, "add", "-A")
        git(work, "-c", "user.name=B", "-c", "user.email=b@e", "commit", "-qm", "bench")
        git(work, "push", "-q", str(server.data / "projects/demo/repo.git"), "main")
        server.start(workers=1)
        try:
            with server.api("member") as api:
                run_id = api.post("/runs", json={"ref": "main"}).json()["id"]
            started = time.perf_counter()
            status = server.wait_run(run_id, timeout=1800)["status"]
            print(f"run of {args.steps} steps: {status} in {time.perf_counter() - started:.1f} s")
            with server.api("viewer") as api, web_client(server, "viewer") as page:
                rows = [
                    ("run page", *timed(page.get, f"/ui/p/demo/runs/{run_id}", args.repeat)),
                    (
                        "live fragment",
                        *timed(page.get, f"/ui/p/demo/runs/{run_id}/live", args.repeat),
                    ),
                    ("runs list", *timed(page.get, "/ui/p/demo", args.repeat)),
                    (
                        "step page",
                        *timed(page.get, f"/ui/p/demo/runs/{run_id}/steps/a.s0", args.repeat),
                    ),
                ]
                reference = timed(api.get, f"/runs/{run_id}", args.repeat)
        finally:
            server.stop()
    print(f"reference: GET run JSON {reference[0] * 1000:.0f} ms ({reference[1]} bytes)")
    for name, seconds, size in rows:
        ratio = seconds / reference[0]
        print(f"{name:14} {seconds * 1000:7.0f} ms  {size:8} bytes  {ratio:5.1f}x the JSON")


if __name__ == "__main__":
    main()
