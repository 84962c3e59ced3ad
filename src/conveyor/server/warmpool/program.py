"""The program of a warm worker: stdlib only, run as ``python -B -c PROGRAM TARGET``
inside the sandbox, in the deployment's checkout.

It imports ``module:function`` once, says ``{"ready": true}`` (or why not), then
serves one JSON line per call on stdin: ``{"inputs": {...}, "files": {NAME: BASE64}}``
-> ``{"ok": true, "result": ..., "logs": "..."}`` or ``{"ok": false, "error": "...",
"logs": "..."}``. A file input is written to a fresh directory of the worker's own
``/tmp`` (private to its sandbox), named after the input, passed as its path, and
removed when the call ends. ``"outputs": [PATH...]``: files the function writes in the
checkout; each is removed before the call (never a previous call's) and read after it
(at most ``"max_output"`` bytes in all), answered as ``"files": {PATH: BASE64}``.
Answers go to a private copy of the original stdout; the function's own prints (and
anything written to file descriptor 1) go to its log, never into the protocol.
"""

from __future__ import annotations

PROGRAM = r"""
import base64, contextlib, functools, importlib, io, json, os, shutil, sys, tempfile, traceback
out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.path.insert(0, os.getcwd())
def say(value):
    out.write(json.dumps(value, default=str) + "\n")
    out.flush()
try:
    m, f = sys.argv[1].split(":")
    fn = functools.reduce(getattr, f.split("."), importlib.import_module(m))
except BaseException as exc:
    say({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
    raise SystemExit(3)
say({"ready": True})
for line in sys.stdin:
    call = json.loads(line)
    logs = io.StringIO()
    folder = None
    try:
        arguments = dict(call["inputs"])
        if call.get("files"):
            folder = tempfile.mkdtemp(prefix="call-")
            for name, data in call["files"].items():
                path = arguments[name] = os.path.join(folder, os.path.basename(name))
                with open(path, "wb") as handle:
                    handle.write(base64.b64decode(data))
        wanted = {}
        for rel in call.get("outputs") or ():
            where = os.path.realpath(rel)
            if not where.startswith(os.getcwd() + os.sep):
                raise ValueError(f"the output file {rel} is outside the checkout")
            wanted[rel] = where
            if os.path.isfile(where):
                os.remove(where)
        with contextlib.redirect_stdout(logs):
            value = fn(**arguments)
        json.dumps(value)
        made, left = {}, call.get("max_output", 0)
        for rel, where in wanted.items():
            if not os.path.isfile(where) or os.path.realpath(rel) != where:
                raise FileNotFoundError(f"the function wrote no file {rel}")
            with open(where, "rb") as handle:
                data = handle.read(left + 1)
            left -= len(data)
            if left < 0:
                raise ValueError(f"the output files are larger than {call['max_output']} bytes")
            made[rel] = base64.b64encode(data).decode()
        say({"ok": True, "result": value, "files": made, "logs": logs.getvalue()[-65536:]})
    except BaseException as exc:
        text = (logs.getvalue() + traceback.format_exc(limit=5))[-65536:]
        say({"ok": False, "error": f"{type(exc).__name__}: {exc}", "logs": text})
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
"""
