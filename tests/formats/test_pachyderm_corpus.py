"""Pachyderm pipeline specs: real ones read unchanged, bad ones refused in one sentence,
and accept/refuse compared with Pachyderm's own protobuf reader (python_pachyderm's
``parse_dict_pipeline_spec``, a dev dependency) wherever that reader has an opinion.

``pachyderm/valid/``: specs from Pachyderm's repositories and docs (README.md there says
where each came from): Conveyor and the oracle both accept every document.
``pachyderm/invalid/``: each file is refused with exactly ``<name>.error.txt``; the
oracle's verdict is recorded in ``oracle.json``: ``refuses`` (both refuse), ``accepts``
(a deliberate difference, each explained in README.md: the oracle checks field names and
types only) or ``no-object`` (the file is not JSON a reader can hand the oracle).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.errors import SpecError
from conveyor.spec.pachyderm import load_specs

CORPUS = Path(__file__).parent / "pachyderm"
VALID = sorted(p for p in (CORPUS / "valid").iterdir() if p.suffix in (".json", ".yaml"))
INVALID = sorted(
    p
    for p in (CORPUS / "invalid").iterdir()
    if p.suffix in (".json", ".yaml") and p.name != "oracle.json"
)
VERDICTS: dict[str, str] = json.loads((CORPUS / "invalid" / "oracle.json").read_text())


def _documents(path: Path) -> list[Any] | None:
    """The file's documents as plain data, read by the stdlib/PyYAML (not by Conveyor)."""
    text = path.read_text()
    try:
        if path.suffix == ".yaml":
            return list(yaml.safe_load_all(text))
        decoder, at, docs = json.JSONDecoder(), 0, []
        while text[at:].strip():
            at += len(text[at:]) - len(text[at:].lstrip())
            doc, at = decoder.raw_decode(text, at)
            docs.append(doc)
        return docs
    except (ValueError, yaml.YAMLError):
        return None


def _oracle(path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protobuf 3.20's own deprecation warnings
        util = pytest.importorskip("python_pachyderm.util")
        from google.protobuf.json_format import ParseError

        documents = _documents(path)
        if documents is None:
            return "no-object"
        try:
            for document in documents:
                util.parse_dict_pipeline_spec(document)
        except ParseError:
            return "refuses"
    return "accepts"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_a_real_spec_is_read_and_the_oracle_agrees(path: Path) -> None:
    specs = load_specs(path, f"valid/{path.name}")
    assert len(specs.pipelines) == len(_documents(path) or ())
    assert all(p.transform.cmd and p.input for p in specs.pipelines)
    assert _oracle(path) == "accepts"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_a_bad_spec_is_refused_in_one_sentence_with_its_position(path: Path) -> None:
    expected = path.with_name(path.stem + ".error.txt").read_text().strip()
    with pytest.raises(SpecError) as caught:
        load_specs(path, f"invalid/{path.name}")
    assert str(caught.value) == expected
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_the_oracle_verdict_on_a_bad_spec_is_the_recorded_one(path: Path) -> None:
    assert _oracle(path) == VERDICTS[path.name]


def test_every_bad_spec_has_a_recorded_verdict() -> None:
    assert sorted(VERDICTS) == sorted(p.name for p in INVALID)


def test_an_ignored_field_is_a_warning_naming_it() -> None:
    specs = load_specs(CORPUS / "valid" / "opencv-edges.pipeline.json", "edges.json")
    assert specs.warnings == (
        "edges.json:12:3: autoscaling: Conveyor starts a pipeline's steps when a job runs "
        "and keeps nothing idle; it ignores autoscaling",
    )


def test_every_honoured_field_reaches_the_model() -> None:
    (spec,) = load_specs(CORPUS / "valid" / "every-honoured-field.yaml").pipelines
    assert (spec.name, spec.project, spec.output_branch, spec.salt) == (
        "train",
        "research",
        "results",
        "v2",
    )
    assert (spec.parallelism, spec.datum_tries, spec.job_timeout, spec.datum_timeout) == (
        4,
        5,
        3600.0,
        600.5,
    )
    assert spec.reprocess_spec == "every_job"
    assert spec.transform.accept_return_code == (0, 3)
    assert spec.transform.err_cmd == ("sh",)
    assert spec.transform.env == (("MODE", "full"),)
    assert [s.env_var for s in spec.transform.secrets] == ["TOKEN", None]
    assert spec.resource_limits is not None and spec.resource_limits.gpu_number == 1
    assert spec.datum_set_spec is not None and spec.datum_set_spec.size_bytes == 1048576


def test_a_jsonnet_template_is_refused_with_what_to_do(tmp_path: Path) -> None:
    template = tmp_path / "edges.jsonnet"
    template.write_text("function(suffix, src)\n{ pipeline: { name: 'edges-' + suffix } }\n")
    with pytest.raises(SpecError, match=r"edges\.jsonnet: a Jsonnet template, not a spec"):
        load_specs(template, "edges.jsonnet")


def test_a_refused_field_left_null_is_unset_as_protobuf_reads_it() -> None:
    from conveyor.spec.pachyderm import parse_specs

    text = (
        '{"pipeline": {"name": "p"}, "transform": {"cmd": ["sh"]}, "egress": null, '
        '"input": {"pfs": {"repo": "r", "glob": "/*", "trigger": null}}}'
    )
    (spec,) = parse_specs(text, "spec.json", is_json=True).pipelines
    assert spec.name == "p"
