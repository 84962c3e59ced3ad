"""The public DataTorch actions and the pipelines of their READMEs (``datatorch_actions/``,
sources in its README): each pipeline loads as ``conveyor validate`` loads it, its
actions found in ``actions/`` (``[actions] paths``). Those that do not validate yet wait
in ``PENDING`` with the reason: a strict xfail, so an entry leaves when its feature lands.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.plan.compile import compile_plan
from conveyor.spec.actions import local_resolver
from conveyor.spec.formats import load_file

CORPUS = Path(__file__).parent / "datatorch_actions"
PIPELINES = sorted(p.name for p in (CORPUS / "pipelines").iterdir())
EVENT = "${{ event.* }}: the annotator button's event, a namespace of DataTorch's server"
PENDING: dict[str, str] = {
    "blank-template-1.yaml": "names datatorch/download-youtube, which is not public",
    "dextr-1.yaml": EVENT,
    "dextr-2.yaml": EVENT,
    "dextr2-1.yaml": EVENT,
    "dextr2-2.yaml": EVENT,
    "import-coco-1.yaml": "its manifest's default is ${{ pipeline.projectId }}",
    "kr-test-1.yaml": EVENT,
    "segformer-1.yaml": EVENT,
    "tesseract-1.yaml": EVENT,
}


def test_every_public_action_and_readme_pipeline_is_listed_with_its_source() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    actions = sorted(p.name for p in (CORPUS / "actions" / "datatorch").iterdir())
    assert len(actions) >= 9
    assert [a for a in actions if f"| {a} | datatorch-actions/{a} |" not in readme] == []
    assert [p for p in PIPELINES if p.removesuffix(".yaml") not in readme] == []
    assert set(PENDING) <= set(PIPELINES)


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
    resolver = local_resolver(CORPUS, [CORPUS / "actions"])
    plan = compile_plan(load_file(CORPUS / "pipelines" / name, f"pipelines/{name}", resolver))
    assert plan.steps
