"""Silent surprises (issue item 12): each is now a clear message or a refusal."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Repo

pytestmark = pytest.mark.integration

GLOB_INPUT = """\
name: globs
jobs:
  use:
    steps:
      - id: count
        run: mkdir -p out && cat data/*.csv 2>/dev/null | wc -l > out/n.txt
        inputs: [data/*.csv]
        outputs: [out/n.txt]
"""


def test_an_input_glob_that_matches_nothing_fails_the_step(repo: Repo) -> None:
    repo.pipeline(GLOB_INPUT)
    repo.write("data/readme.txt", "no csv here\n")
    repo.commit()
    result = repo.run("run")
    assert result.code != 0
    assert "data/*.csv matches no file" in result.out + result.err, result.out + result.err
    assert "optional: true" in result.out + result.err
    assert not (repo.path / "out/n.txt").exists()


def test_an_optional_input_glob_may_match_nothing(repo: Repo) -> None:
    repo.pipeline(GLOB_INPUT.replace("[data/*.csv]", "[{path: data/*.csv, optional: true}]"))
    repo.write("data/readme.txt", "no csv here\n")
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    assert (repo.path / "out/n.txt").read_text().strip() == "0"
    # once a file matches, it is part of the key: the step runs again
    repo.write("data/a.csv", "1\n2\n")
    assert repo.run("run").code == 0
    assert repo.steps()["use.count"]["cached"] is False
    assert (repo.path / "out/n.txt").read_text().strip() == "2"


def test_an_optional_input_is_shown_in_the_plan(repo: Repo) -> None:
    repo.pipeline(GLOB_INPUT.replace("[data/*.csv]", "[{path: data/*.csv, optional: true}]"))
    repo.commit()
    plan = repo.run("plan", "--json")
    assert plan.code == 0, plan.err
    (step,) = plan.json()["steps"]
    assert step["inputs"] == ["data/*.csv"]
    assert step["optional_inputs"] == ["data/*.csv"]


OVERLAP = """\
name: overlap
jobs:
  a:
    steps:
      - id: dir
        run: mkdir -p o && echo x > o/x
        outputs: [o]
  b:
    steps:
      - id: file
        run: mkdir -p o && echo y > o/y
        outputs: [o/y]
"""


def test_overlapping_outputs_of_two_steps_are_refused(repo: Repo) -> None:
    repo.pipeline(OVERLAP)
    repo.commit()
    result = repo.run("run")
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert "conveyor.yml:12" in result.err, result.err
    assert "o/y" in result.err and "a.dir" in result.err and "b.file" in result.err


EDITED = """\
name: handmade
jobs:
  make:
    steps:
      - id: write
        run: mkdir -p out && cp data/in.txt out/result.txt
        inputs: [data/in.txt]
        outputs: [out/result.txt]
"""


def test_a_hand_edited_output_is_kept_before_a_cache_restore(repo: Repo) -> None:
    repo.pipeline(EDITED)
    repo.write("data/in.txt", "made by the step\n")
    repo.commit()
    assert repo.run("run").code == 0
    (repo.path / "out/result.txt").write_text("edited by hand\n")
    result = repo.run("run")
    assert result.code == 0, result.out + result.err
    assert repo.steps()["make.write"]["cached"] is True
    assert (repo.path / "out/result.txt").read_text() == "made by the step\n"
    said = result.out + result.err
    assert "out/result.txt" in said and "edited" in said, said
    kept = [p for p in (repo.path / ".conveyor/kept").rglob("*") if p.is_file()]
    assert [p.read_text() for p in kept] == ["edited by hand\n"], kept
    assert str(kept[0].relative_to(repo.path)) in said


def test_an_edit_that_cannot_be_kept_is_not_overwritten(repo: Repo) -> None:
    repo.pipeline(EDITED)
    repo.write("data/in.txt", "made by the step\n")
    repo.commit()
    assert repo.run("run").code == 0
    (repo.path / "out/result.txt").write_text("edited by hand\n")
    (repo.path / ".conveyor/kept").write_text("not a directory\n")
    result = repo.run("run")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "cannot keep a copy" in result.out + result.err, result.out + result.err
    assert (repo.path / "out/result.txt").read_text() == "edited by hand\n"


def test_a_hand_edited_output_is_kept_before_the_step_runs_again(repo: Repo) -> None:
    repo.pipeline(EDITED)
    repo.write("data/in.txt", "one\n")
    repo.commit()
    assert repo.run("run").code == 0
    (repo.path / "out/result.txt").write_text("edited by hand\n")
    repo.write("data/in.txt", "two\n")
    result = repo.run("run")
    assert result.code == 0
    assert repo.steps()["make.write"]["cached"] is False
    assert (repo.path / "out/result.txt").read_text() == "two\n"
    assert "out/result.txt was edited" in result.err
    kept = [p for p in (repo.path / ".conveyor/kept").rglob("*") if p.is_file()]
    assert [p.read_text() for p in kept] == ["edited by hand\n"]
    events = repo.run("show", "--json").json()
    assert events["status"] == "succeeded"


def test_a_file_edited_inside_a_directory_output_is_kept(repo: Repo) -> None:
    repo.pipeline(DIRECTORIES)
    repo.commit()
    assert repo.run("run").code == 0
    (repo.path / "out/d/sub/two.txt").write_text("mine\n")
    result = repo.run("run")
    assert result.code == 0
    assert "out/d/sub/two.txt was edited" in result.err, result.err
    (kept,) = [p for p in (repo.path / ".conveyor/kept").rglob("*") if p.is_file()]
    assert kept.read_text() == "mine\n"
    assert (repo.path / "out/d/sub/two.txt").read_text() == "2\n"


def test_an_output_unchanged_since_its_run_is_restored_silently(repo: Repo) -> None:
    repo.pipeline(EDITED)
    repo.write("data/in.txt", "one\n")
    repo.commit()
    assert repo.run("run").code == 0
    repo.write("data/in.txt", "two\n")
    assert repo.run("run").code == 0
    repo.write("data/in.txt", "one\n")  # back to the first run's input: a cache restore
    result = repo.run("run")
    assert result.code == 0
    assert repo.steps()["make.write"]["cached"] is True
    assert (repo.path / "out/result.txt").read_text() == "one\n"
    assert "edited" not in result.out + result.err
    assert not (repo.path / ".conveyor/kept").exists()


def test_what_a_failed_attempt_left_is_not_taken_for_an_edit(repo: Repo) -> None:
    repo.pipeline(
        EDITED.replace(
            "cp data/in.txt out/result.txt",
            "cp data/in.txt out/result.txt && grep -qv bad data/in.txt",
        )
    )
    repo.write("data/in.txt", "good\n")
    repo.commit()
    assert repo.run("run").code == 0
    repo.write("data/in.txt", "bad\n")
    assert repo.run("run").code == 1  # the step wrote its output, then failed
    repo.write("data/in.txt", "good again\n")
    result = repo.run("run")
    assert result.code == 0
    assert "edited" not in result.err
    assert not (repo.path / ".conveyor/kept").exists()


DIRECTORIES = """\
name: dirs
jobs:
  make:
    steps:
      - id: tree
        run: mkdir -p out/d/sub && echo 1 > out/d/one.txt && echo 2 > out/d/sub/two.txt
        outputs: [out/d]
  read:
    steps:
      - id: all
        run: cat out/d/one.txt out/d/sub/two.txt > out/both.txt
        inputs: [out/d]
        outputs: [out/both.txt]
"""


def test_lineage_of_a_file_inside_a_directory_output(repo: Repo) -> None:
    repo.pipeline(DIRECTORIES)
    repo.commit()
    assert repo.run("run").code == 0
    result = repo.run("lineage", "out/d/sub/two.txt", "--json")
    assert result.code == 0, result.out + result.err
    data = result.json()
    (producer,) = data["produced_by"]
    assert producer["step"] == "make.tree"
    assert producer["path"] == "out/d"
    assert [c["step"] for c in data["consumed_by"]] == ["read.all"]
    assert data["consumed_by"][0]["path"] == "out/d/sub/two.txt"
    text = repo.run("lineage", "out/d/sub/two.txt").out
    assert "produced by make.tree (in its output out/d)" in text, text
    (repo.path / "out/d/sub/two.txt").unlink()  # gone from the workspace: still traced
    gone = repo.run("lineage", "out/d/sub/two.txt", "--json")
    assert gone.code == 0, gone.err
    assert gone.json()["digest"] == data["digest"]


def test_read_by_for_a_directory_names_the_steps_that_read_files_inside(repo: Repo) -> None:
    repo.pipeline(DIRECTORIES)
    repo.commit()
    assert repo.run("run").code == 0
    result = repo.run("lineage", "out/d", "--json")
    assert result.code == 0, result.out + result.err
    data = result.json()
    assert [p["step"] for p in data["produced_by"]] == ["make.tree"]
    readers = {(c["step"], c["path"]) for c in data["consumed_by"]}
    assert readers == {("read.all", "out/d/one.txt"), ("read.all", "out/d/sub/two.txt")}
