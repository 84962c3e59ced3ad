"""A DataTorch pipeline shaped like the dextr README's (an annotator button's event in
``${{ event.* }}``, the download step's path in ``${{ variable.path }}``, the project in
``${{ pipeline.projectId }}``), run by ``conveyor run --payload`` with the event of
``tests/formats/datatorch_actions/events/annotator-button.json``. Its actions are local
and offline: one prints the path a download would write, one writes what it was given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

EVENT = Path(__file__).parents[1] / "formats" / "datatorch_actions" / "events"

PIPELINE = """\
name: DEXTR

triggers:
  annotatorButton:
    name: "DEXTR"
    icon: brain
    flow: 4-points

jobs:
  predict:
    steps:
      - name: Download File
        action: ./actions/download
        inputs:
          fileId: ${{ event.fileId }}
          name: ${{ event.fileName }}

      - name: Predict Segmentation
        action: ./actions/predict
        inputs:
          imagePath: ${{ variable.path }}
          points: ${{ event.flowData.points }}
          annotationId: ${{ event.annotationId }}
"""

DOWNLOAD = """\
name: Download File
inputs:
  fileId: {type: string, required: true}
  name: {type: string, default: ''}
runs:
  using: cmd
  command: echo "::path::\\"/tmp/download-file/$INPUT_FILEID-$INPUT_NAME\\""
"""

PREDICT = """\
name: Predict
inputs:
  imagePath: {type: string, required: true}
  points: {type: array, required: true}
  annotationId: {type: string}
  project: {type: string, default: "${{ pipeline.projectId }}"}
runs:
  using: cmd
  command: printf '%s\\n' "$INPUT_IMAGEPATH" "$INPUT_POINTS" "$INPUT_ANNOTATIONID" "$INPUT_PROJECT" > seen.txt
"""


def _project(repo: Repo) -> dict[str, object]:
    repo.write("pipeline.yaml", PIPELINE)
    repo.write("actions/download/action-datatorch.yaml", DOWNLOAD)
    repo.write("actions/predict/action-datatorch.yaml", PREDICT)
    repo.commit()
    event: dict[str, object] = json.loads((EVENT / "annotator-button.json").read_text())
    return event


def test_the_annotator_event_reaches_the_actions(repo: Repo) -> None:
    event = _project(repo)
    payload = str(EVENT / "annotator-button.json")
    result = repo.run("run", "-f", "pipeline.yaml", "--payload", payload)
    assert result.code == 0, result.err + result.out
    image, points, annotation, project = (repo.path / "seen.txt").read_text().splitlines()
    assert image == f"/tmp/download-file/{event['fileId']}-{event['fileName']}"
    assert json.loads(points) == event["flowData"]["points"]  # type: ignore[index]
    assert annotation == event["annotationId"]
    assert project == repo.path.name  # a local run's project is its directory


def test_another_event_is_another_run_not_a_cache_hit(repo: Repo, tmp_path: Path) -> None:
    event = _project(repo)
    first = str(EVENT / "annotator-button.json")
    assert repo.run("run", "-f", "pipeline.yaml", "--payload", first).code == 0
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**event, "annotationId": "another"}))
    assert repo.run("run", "-f", "pipeline.yaml", "--payload", str(other)).code == 0
    assert (repo.path / "seen.txt").read_text().splitlines()[2] == "another"


def test_a_field_the_event_lacks_is_named_with_its_line(repo: Repo, tmp_path: Path) -> None:
    event = _project(repo)
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps({k: v for k, v in event.items() if k != "flowData"}))
    result = repo.run("run", "-f", "pipeline.yaml", "--payload", str(lacking))
    assert result.code == 2
    assert "pipeline.yaml:22:" in result.err and "event.flowData is not defined" in result.err
    assert "Traceback" not in result.err


def test_without_a_payload_the_run_says_how_to_give_one(repo: Repo) -> None:
    _project(repo)
    result = repo.run("run", "-f", "pipeline.yaml")
    assert result.code == 2
    assert "pipeline.yaml:15:" in result.err and "--payload FILE.json" in result.err


def test_a_payload_is_for_a_local_run(repo: Repo) -> None:
    _project(repo)
    payload = str(EVENT / "annotator-button.json")
    result = repo.run("run", "-f", "pipeline.yaml", "--remote", "--payload", payload)
    assert result.code == 2 and "a server's run has its trigger's" in result.err
