"""Scenarios run by the real, unmodified ``craft-ai-sdk`` (in its own environment):
``python driver.py SCENARIO SETTINGS_JSON``; the last stdout line is the JSON of what the
client saw. Nothing here knows Conveyor: only the SDK's public calls."""

import json
import sys
import time
from pathlib import Path

from craft_ai_sdk import CraftAiSdk, Input, InputSource, Output, SdkException

FUNCTION = """\
import json


def main(word, count, flag, meta, items, doc):
    print("hello from the function:", word)
    with open(doc["path"], encoding="utf-8") as f:
        text = f.read()
    with open("report.txt", "w", encoding="utf-8") as f:
        f.write(text.upper())
    return {
        "twice": word * 2,
        "total": count + len(items),
        "negated": not flag,
        "echo": meta,
        "report": {"path": "report.txt"},
    }
"""
METRIC = """\
from craft_ai_sdk import CraftAiSdk


def main(value):
    sdk = CraftAiSdk()
    sdk.record_metric_value("accuracy", value)
    print("recorded", value)
    return {}
"""
ADDER = """\
def main(a, b):
    print("adding", a, b)
    return {"total": a + b}
"""
UPPER = """\
def main(doc, times):
    with open(doc["path"], encoding="utf-8") as f:
        text = f.read().upper() * times
    with open("upper.txt", "w", encoding="utf-8") as f:
        f.write(text)
    return {"upper": {"path": "upper.txt"}, "size": len(text)}
"""
FAILING = """\
def main():
    raise RuntimeError("the function broke on purpose")
"""


def sdk(settings):
    url = settings["url"]
    return CraftAiSdk(sdk_token=settings["token"], environment_url=url, control_url=url)


def error(call):
    try:
        call()
    except SdkException as exc:
        return {"status": exc.status_code, "name": exc.name, "message": exc.message}
    return None


def folder(tmp, name, code, requirements=""):
    where = Path(tmp) / name
    where.mkdir(parents=True, exist_ok=True)
    (where / "fn.py").write_text(code, encoding="utf-8")
    (where / "requirements.txt").write_text(requirements, encoding="utf-8")
    return str(where)


TYPED_INPUTS = [
    Input("word", "string"),
    Input("count", "number"),
    Input("flag", "boolean"),
    Input("meta", "json"),
    Input("items", "array", is_required=False, default_value=[1, 2]),
    Input("doc", "file"),
]
TYPED_OUTPUTS = [
    Output("twice", "string"),
    Output("total", "number"),
    Output("negated", "boolean"),
    Output("echo", "json"),
    Output("report", "file"),
]


def typed(settings):
    client = sdk(settings)
    seen = {}
    local = folder(settings["tmp"], "typed", FUNCTION)
    config = {"local_folder": local, "requirements_path": "requirements.txt"}
    if settings.get("steps"):  # 0.72.1: a step, then a pipeline of it
        step = client.create_step(
            "typed-step",
            function_path="fn.py",
            function_name="main",
            container_config=config,
            inputs=TYPED_INPUTS,
            outputs=TYPED_OUTPUTS,
        )
        seen["step"] = step["parameters"]["step_name"]
        seen["steps"] = [s["step_name"] for s in client.list_steps()]
        pipeline = client.create_pipeline("typed", step_name="typed-step")
    else:
        pipeline = client.create_pipeline(
            "typed",
            function_path="fn.py",
            function_name="main",
            container_config=config,
            inputs=TYPED_INPUTS,
            outputs=TYPED_OUTPUTS,
        )
    seen["created"] = pipeline["creation_info"]["status"]
    seen["inputs"] = [(i["name"], i["data_type"]) for i in pipeline["parameters"]["inputs"]]
    seen["listed"] = [p["pipeline_name"] for p in client.list_pipelines()]
    doc = Path(settings["tmp"]) / "doc.txt"
    doc.write_text("file input\n", encoding="utf-8")
    inputs = {"word": "ab", "count": 2.5, "flag": True, "meta": {"k": [1]}, "doc": str(doc)}
    result = client.run_pipeline("typed", inputs=inputs)
    outputs = result["outputs"]
    outputs["report"] = outputs["report"].decode()
    seen["outputs"] = outputs
    execution_id = result["execution_id"]
    execution = client.get_pipeline_execution(execution_id)
    seen["status"] = execution["status"]
    seen["execution_inputs"] = {
        i["pipeline_input_name"]: i["value"].decode()
        if isinstance(i["value"], bytes)
        else i["value"]
        for i in execution["inputs"]
    }
    seen["input_doc"] = client.get_pipeline_execution_input(execution_id, "doc")["value"].decode()
    seen["output_total"] = client.get_pipeline_execution_output(execution_id, "total")["value"]
    seen["executions"] = [e["execution_id"] for e in client.list_pipeline_executions("typed")]
    logs = client.get_pipeline_execution_logs(execution_id)
    seen["logs"] = [line["message"] for line in logs]
    seen["last_execution"] = client.get_pipeline("typed")["creation_info"]["last_execution_id"]
    seen["execution_id"] = execution_id
    seen["bad_type"] = error(lambda: client.run_pipeline("typed", inputs={**inputs, "count": "x"}))
    seen["missing"] = error(lambda: client.run_pipeline("typed", inputs={"word": "a"}))
    seen["data_store"] = error(client.list_data_store_objects)
    seen["deployment"] = error(lambda: client.get_deployment("some-endpoint"))
    seen["env_vars"] = error(client.list_environment_variables)
    seen["vector"] = error(client.get_vector_database_credentials)
    seen["deleted_execution"] = client.delete_pipeline_execution(execution_id)
    seen["gone_execution"] = error(lambda: client.get_pipeline_execution(execution_id))
    seen["deleted"] = client.delete_pipeline("typed")
    seen["gone"] = error(lambda: client.get_pipeline("typed"))
    if settings.get("steps"):
        seen["deleted_step"] = client.delete_step("typed-step")
    return seen


def failing(settings):
    client = sdk(settings)
    local = folder(settings["tmp"], "failing", FAILING)
    client.create_pipeline(
        "failing",
        function_path="fn.py",
        function_name="main",
        container_config={"local_folder": local, "requirements_path": "requirements.txt"},
    )
    seen = {"run": error(lambda: client.run_pipeline("failing"))}
    started = client.run_pipeline("failing", wait_for_completion=False)
    seen["started"] = sorted(started)
    return seen


def metric(settings):
    """Two pipelines with the same requirements, each run once."""
    client = sdk(settings)
    seen = {}
    for name in ("metric", "metric-again"):
        local = folder(settings["tmp"], name, METRIC, settings["requirements"])
        client.create_pipeline(
            name,
            function_path="fn.py",
            function_name="main",
            container_config={"local_folder": local, "requirements_path": "requirements.txt"},
            inputs=[Input("value", "number")],
        )
        seen[name] = client.run_pipeline(name, inputs={"value": 0.75})["execution_id"]
    seen["metrics"] = client.get_metrics(name="accuracy")
    seen["by_pipeline"] = client.get_metrics(pipeline_name="metric-again")
    seen["list_metrics"] = error(client.get_list_metrics)
    return seen


def viewer(settings):
    client = sdk(settings)
    local = folder(settings["tmp"], "viewer", FAILING)
    return {
        "create": error(
            lambda: client.create_pipeline(
                "nope",
                function_path="fn.py",
                function_name="main",
                container_config={"local_folder": local, "requirements_path": "requirements.txt"},
            )
        ),
        "list": client.list_pipelines(),
    }


def deploy(settings):
    """An endpoint deployment of a pipeline, called with its token and with the SDK
    token, its token rotated, disabled, a periodic one beside it, and the pipeline
    deleted without and with force."""
    client = sdk(settings)
    seen = {}
    local = folder(settings["tmp"], "adder", ADDER)
    client.create_pipeline(
        "adder",
        function_path="fn.py",
        function_name="main",
        container_config={"local_folder": local, "requirements_path": "requirements.txt"},
        inputs=[Input("a", "number"), Input("b", "number")],
        outputs=[Output("total", "number")],
    )
    made = client.create_deployment("adder", "adder-ep", execution_rule="endpoint")
    token = made["endpoint_token"]
    keys = ("name", "execution_rule", "mode", "status", "is_enabled", "endpoint_url_path")
    seen["created"] = {k: made[k] for k in keys}
    seen["pipeline"] = made["pipeline"]["name"]
    seen["low_latency"] = error(
        lambda: client.create_deployment(
            "adder", "fast", execution_rule="endpoint", mode="low_latency"
        )
    )
    seen["listed"] = [
        [d["name"], d["pipeline_name"], d["execution_rule"]] for d in client.list_deployments()
    ]
    seen["outputs"] = client.trigger_endpoint("adder-ep", token, inputs={"a": 2, "b": 3})["outputs"]
    later = client.trigger_endpoint(
        "adder-ep", token, inputs={"a": 1, "b": 1}, wait_for_completion=False
    )
    seen["later"] = client.retrieve_endpoint_results("adder-ep", later["execution_id"], token)
    seen["by_api"] = client.trigger_endpoint("adder-ep", inputs={"a": 5, "b": 5})
    execution = client.get_pipeline_execution(later["execution_id"])
    seen["execution"] = [execution["pipeline_name"], execution["deployment_name"]]
    seen["bad_input"] = error(
        lambda: client.trigger_endpoint("adder-ep", token, inputs={"a": "x", "b": 1})
    )
    seen["unknown_input"] = error(
        lambda: client.trigger_endpoint("adder-ep", token, inputs={"a": 1, "b": 1, "c": 1})
    )
    seen["last"] = client.get_deployment("adder-ep")["last_execution_id"]
    seen["logs"] = [line["message"] for line in client.get_deployment_logs("adder-ep")]
    new = client.generate_new_endpoint_token("adder-ep")["endpoint_token"]
    seen["old_token"] = error(
        lambda: client.trigger_endpoint("adder-ep", token, inputs={"a": 1, "b": 2})
    )
    seen["new_token"] = client.trigger_endpoint("adder-ep", new, inputs={"a": 1, "b": 2})
    disabled = client.update_deployment("adder-ep", is_enabled=False)
    seen["disabled"] = [disabled["is_enabled"], disabled["status"]]
    seen["when_disabled"] = error(
        lambda: client.trigger_endpoint("adder-ep", new, inputs={"a": 1, "b": 2})
    )
    seen["enabled"] = client.update_deployment("adder-ep", is_enabled=True)["status"]
    periodic = client.create_deployment(
        "adder",
        "adder-cron",
        execution_rule="periodic",
        schedule="* * * * * */3",  # every 3 seconds (a sixth field: Conveyor's croniter)
        inputs_mapping=[
            InputSource(pipeline_input_name="a", constant_value=1),
            InputSource(pipeline_input_name="b", constant_value=2),
        ],
    )
    seen["periodic"] = [periodic["execution_rule"], periodic["schedule"]]
    seen["periodic_inputs"] = [
        [m["pipeline_input_name"], m["constant_value"]] for m in periodic["inputs_mapping"]
    ]
    for _ in range(120):  # the schedule clock starts an execution within seconds
        last = client.get_deployment("adder-cron")["last_execution_id"]
        if last:
            seen["scheduled"] = client.retrieve_pipeline_execution_outputs(last)["outputs"]
            break
        time.sleep(0.5)
    seen["cron_disabled"] = client.update_deployment("adder-cron", is_enabled=False)["status"]
    seen["refused"] = error(lambda: client.delete_pipeline("adder"))
    seen["deleted_deployment"] = client.delete_deployment("adder-cron")
    seen["forced"] = client.delete_pipeline("adder", force_deployments_deletion=True)
    seen["files"] = deploy_files(client, settings)
    seen["gone"] = error(lambda: client.get_deployment("adder-ep"))
    seen["listed_after"] = client.list_deployments()
    return seen


def deploy_files(client, settings):
    """A file input sent as a part (with a JSON parameter beside it), a file output
    downloaded from its URL with the endpoint token."""
    local = folder(settings["tmp"], "upper", UPPER)
    client.create_pipeline(
        "upper",
        function_path="fn.py",
        function_name="main",
        container_config={"local_folder": local, "requirements_path": "requirements.txt"},
        inputs=[Input("doc", "file"), Input("times", "number")],
        outputs=[Output("upper", "file"), Output("size", "number")],
    )
    token = client.create_deployment("upper", "upper-ep", execution_rule="endpoint")[
        "endpoint_token"
    ]
    doc = Path(settings["tmp"]) / "doc.txt"
    doc.write_text("ab\n", encoding="utf-8")
    with open(doc, "rb") as handle:
        called = client.trigger_endpoint("upper-ep", token, inputs={"doc": handle, "times": 2})
    outputs = called["outputs"]
    client.delete_pipeline("upper", force_deployments_deletion=True)
    return {"upper": outputs["upper"].decode(), "size": outputs["size"]}


def pause(settings, phase, what=""):
    """Tell the test this phase is done (``PHASE.ready``) and wait for its ``PHASE.go``."""
    tmp = Path(settings["tmp"])
    (tmp / f"{phase}.ready").write_text(what, encoding="utf-8")
    deadline = time.monotonic() + 120
    while not (tmp / f"{phase}.go").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test never let {phase} go on")
        time.sleep(0.05)


def tokens(settings):
    """One client across a server restart, then the deletion of its SDK token. The
    access token is read from the client (its one private attribute read here) only to
    see that the client kept the same one."""
    client = sdk(settings)
    seen = {"me": client.who_am_i()["name"]}
    first = client._access_token
    pause(settings, "issued", first)
    seen["after_restart"] = client.who_am_i()["name"]
    seen["same_token"] = client._access_token == first
    pause(settings, "restarted")
    seen["revoked"] = error(client.who_am_i)
    seen["refresh"] = error(client.who_am_i)  # the SDK asks for a new one: refused too
    return seen


if __name__ == "__main__":
    scenario, given = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()[scenario](given), default=str))
