"""The public DataTorch actions and the pipelines of their READMEs (``datatorch_actions/``,
sources in its README): each pipeline loads as ``conveyor validate`` loads it, its
actions found in ``actions/`` (``[actions] paths``). Those that do not validate yet wait
in ``PENDING`` with the reason: a strict xfail, so an entry leaves when its feature lands.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.domain.conditions import TriggerContext, pipeline_values
from conveyor.errors import SpecError
from conveyor.plan.compile import compile_plan
from conveyor.spec.actions import ActionRef, ResolvedAction, local_resolver
from conveyor.spec.formats import load_file

CORPUS = Path(__file__).parent / "datatorch_actions"
PIPELINES = sorted(p.name for p in (CORPUS / "pipelines").iterdir())
# the annotator button's event (events/README.md says where its shape comes from)
EVENT = json.loads((CORPUS / "events" / "annotator-button.json").read_text(encoding="utf-8"))
TRIGGER = TriggerContext(EVENT, pipeline_values("pipelines/x.yaml", EVENT["projectId"]))
PARAMS = {"dextr-2.yaml": {"path": "/tmp/street-042.jpg"}, "dextr2-2.yaml": {"path": "/x.jpg"}}
PENDING: dict[str, str] = {
    "blank-template-1.yaml": "names datatorch/download-youtube, which is not public",
    "kr-test-1.yaml": "names aoxolotl/objdet_action, which is not public",
    "segformer-1.yaml": "names aoxolotl/segformer_action, which is not public",
}


def test_every_public_action_and_readme_pipeline_is_listed_with_its_source() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    actions = sorted(p.name for p in (CORPUS / "actions" / "datatorch").iterdir())
    assert len(actions) >= 9
    assert [a for a in actions if f"| {a} | datatorch-actions/{a} |" not in readme] == []
    assert [p for p in PIPELINES if p.removesuffix(".yaml") not in readme] == []
    assert set(PENDING) <= set(PIPELINES)


def _resolver() -> Callable[[ActionRef], ResolvedAction]:
    """The corpus's actions; an action with a requirements.txt names the interpreter of
    its environment (the SDK builds it before a run; validating needs only its path)."""
    local = local_resolver(CORPUS, [CORPUS / "actions"])

    def resolve(ref: ActionRef) -> ResolvedAction:
        return dataclasses.replace(local(ref), environment=lambda r: f"envs/{r.parent.name}/python")

    return resolve


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n, marks=pytest.mark.xfail(strict=True, reason=PENDING[n]) if n in PENDING else ()
        )
        for n in PIPELINES
    ],
)
def test_readme_pipeline_validates(name: str) -> None:
    resolver = _resolver()
    spec = load_file(CORPUS / "pipelines" / name, f"pipelines/{name}", resolver)
    plan = compile_plan(spec, PARAMS.get(name, {}), trigger=TRIGGER)
    assert plan.steps


def _inputs(name: str, trigger: TriggerContext) -> dict[str, dict[str, object]]:
    resolver = _resolver()
    spec = load_file(CORPUS / "pipelines" / name, f"pipelines/{name}", resolver)
    plan = compile_plan(spec, PARAMS.get(name, {}), trigger=trigger)
    return {s.id: dict(s.action_inputs) for s in plan.steps}


def test_the_event_payload_fills_the_inputs_with_its_types() -> None:
    inputs = _inputs("dextr-1.yaml", TRIGGER)
    assert inputs["predict.download-file"]["fileId"] == EVENT["fileId"]
    assert inputs["predict.download-file"]["name"] == EVENT["fileName"]
    predict = inputs["predict.predict-segmentation"]
    assert predict["points"] == EVENT["flowData"]["points"]  # a list, as DataTorch has it
    assert predict["annotationId"] == EVENT["annotationId"]
    # the README's ``variable.path``: the path the download step prints
    assert predict["imagePath"] == "${{ steps.download-file.outputs.path }}"


def test_pipeline_project_id_fills_an_action_default() -> None:
    inputs = _inputs("import-coco-1.yaml", TRIGGER)
    assert inputs["add.import-coco-file"]["project"] == EVENT["projectId"]


def test_a_field_the_payload_lacks_is_one_sentence_with_file_and_line() -> None:
    lacking = TriggerContext({k: v for k, v in EVENT.items() if k != "flowData"})
    with pytest.raises(SpecError) as caught:
        _inputs("dextr-1.yaml", lacking)
    message = str(caught.value)
    assert "pipelines/dextr-1.yaml:" in message and "event.flowData is not defined" in message
    assert "\n" not in message


def test_a_run_without_payload_says_how_to_give_one() -> None:
    with pytest.raises(SpecError, match=r"dextr-1.yaml:\d+.*--payload FILE.json"):
        _inputs("dextr-1.yaml", TriggerContext())
