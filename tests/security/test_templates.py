"""Template values in shell commands arrive as data, never as shell text.

Each attack runs a real step through the CLI: the value is written to a file by the
step and compared with what was given, and no ``pwned`` file (nor any other side
effect of the value) appears. Values come from every source: params, matrix, datums,
action inputs and step outputs; ``| raw`` is the explicit way to paste shell text.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conveyor.plan.compile import compile_plan
from conveyor.spec.formats import parse_text
from tests.integration.conftest import Repo, repo  # noqa: F401 (a fixture)

HOSTILE = [
    "$(touch pwned)",
    "it's",
    '"; touch pwned; echo "',
    "`touch pwned`",
    "a\\$b ${HOME} ' \" \\",
    "line one\nline two",
    "",
    "-n",
]

PARAM_PIPELINE = """\
params:
  msg: {type: str, default: hello}
jobs:
  a:
    steps:
      - run: printf '%s' ${{ params.msg }} > plain.txt
          && printf '%s' "<${{ params.msg }}>" > double.txt
          && printf '%s' '<${{ params.msg }}>' > single.txt
          && printf '%s' "$(printf '%s' ${{ params.msg }})" > nested.txt
        outputs: [plain.txt, double.txt, single.txt, nested.txt]
"""


@pytest.mark.integration
@pytest.mark.parametrize("value", HOSTILE)
def test_a_param_arrives_literally_unquoted_and_inside_quotes(repo: Repo, value: str) -> None:  # noqa: F811
    repo.pipeline(PARAM_PIPELINE)
    repo.commit()
    result = repo.run("run", "-p", f"msg={value}")
    assert result.code == 0, result.err
    assert (repo.path / "plain.txt").read_text() == value
    assert (repo.path / "double.txt").read_text() == f"<{value}>"
    assert (repo.path / "single.txt").read_text() == f"<{value}>"
    assert (repo.path / "nested.txt").read_text() == value.rstrip("\n")
    assert not (repo.path / "pwned").exists()


@pytest.mark.integration
def test_a_here_document_gets_the_value_literally(repo: Repo) -> None:  # noqa: F811
    repo.pipeline(
        """\
        params:
          msg: {type: str, default: hello}
        jobs:
          a:
            steps:
              - run: |
                  cat > heredoc.txt <<EOF
                  <${{ params.msg }}>
                  EOF
                  cat > quoted.txt <<'EOF'
                  <${{ params.msg }}>
                  EOF
                outputs: [heredoc.txt, quoted.txt]
        """
    )
    repo.commit()
    result = repo.run("run", "-p", "msg=$(touch pwned) `touch pwned` it's \\")
    assert result.code == 0, result.err
    expected = "<$(touch pwned) `touch pwned` it's \\>\n"
    assert (repo.path / "heredoc.txt").read_text() == expected
    assert (repo.path / "quoted.txt").read_text() == expected
    assert not (repo.path / "pwned").exists()
    # a line break could end the here-document early: refused, with the position
    refused = repo.run("run", "-p", "msg=x\nEOF\ntouch pwned")
    assert refused.code == 2 and "conveyor.yml:6:" in refused.err, refused.err
    assert "here-document" in refused.err and "Traceback" not in refused.err
    assert not (repo.path / "pwned").exists()


@pytest.mark.integration
def test_raw_pastes_shell_text_on_purpose(repo: Repo) -> None:  # noqa: F811
    repo.pipeline(
        """\
        params:
          cmd: {type: str, default: "echo one two"}
        jobs:
          a:
            steps:
              - run: ${{ params.cmd | raw }} > raw.txt
                outputs: [raw.txt]
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert (repo.path / "raw.txt").read_text() == "one two\n"


@pytest.mark.integration
def test_a_datum_file_name_arrives_literally(repo: Repo) -> None:  # noqa: F811
    name = "a$(touch pwned).txt"
    repo.write(f"data/{name}", "content\n")
    repo.pipeline(
        """\
        jobs:
          a:
            steps:
              - datums: data/*.txt
                run: mkdir -p out && cat ${{ datum.path }} > out/${{ datum.stem }}.copy
                  && printf '%s' "${{ datum.name }}" > out/${{ datum.stem }}.name
                outputs:
                  - out/${{ datum.stem }}.copy
                  - out/${{ datum.stem }}.name
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert (repo.path / "out" / "a$(touch pwned).copy").read_text() == "content\n"
    assert (repo.path / "out" / "a$(touch pwned).name").read_text() == name
    assert not (repo.path / "pwned").exists()
    assert not (repo.path / "out" / "pwned").exists()


@pytest.mark.integration
def test_a_matrix_value_arrives_literally(repo: Repo) -> None:  # noqa: F811
    repo.write("x", "keep me\n")
    repo.pipeline(
        """\
        jobs:
          a:
            matrix:
              v: [";rm -rf x", "$(touch pwned)"]
            steps:
              - run: printf '%s\\n' ${{ matrix.v }} >> values.txt
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert sorted((repo.path / "values.txt").read_text().splitlines()) == sorted(
        [";rm -rf x", "$(touch pwned)"]
    )
    assert (repo.path / "x").read_text() == "keep me\n"
    assert not (repo.path / "pwned").exists()


ACTION = """\
name: Say
inputs:
  word: {type: string, required: true}
  tag: {type: string, required: true}
runs:
  command: 'printf "%s" "$INPUT_WORD" > "said-$INPUT_TAG.txt"'
"""


@pytest.mark.integration
def test_an_action_input_and_a_step_output_arrive_literally(repo: Repo) -> None:  # noqa: F811
    repo.write("actions/say/action.yml", ACTION)
    repo.write(
        "actions/emit/action.yml",
        """\
        name: Emit
        outputs:
          said: {description: a hostile output}
        runs:
          command: echo '::said::"$(touch pwned); it'"'"'s"'
        """,
    )
    repo.pipeline(
        """\
        jobs:
          a:
            steps:
              - id: first
                uses: ./actions/say
                with: {word: "$(touch pwned)", tag: "1"}
                outputs: [said-1.txt]
              - id: emit
                uses: ./actions/emit
              - id: second
                uses: ./actions/say
                with:
                  word: ${{ steps.emit.outputs.said }}
                  tag: "2"
                outputs: [said-2.txt]
        """
    )
    repo.commit()
    result = repo.run("run")
    assert result.code == 0, result.err
    assert (repo.path / "said-1.txt").read_text() == "$(touch pwned)"
    assert (repo.path / "said-2.txt").read_text() == "$(touch pwned); it's"
    assert not (repo.path / "pwned").exists()


def test_the_plan_shows_quoted_commands_and_keeps_plain_values_plain() -> None:
    spec = parse_text(
        "params:\n  n: 3\n  msg: it's\n"
        "jobs:\n  a:\n    steps:\n"
        '      - run: echo ${{ params.n }} ${{ params.msg }} "${{ params.msg }}"\n',
        "conveyor.yml",
    )
    (step,) = compile_plan(spec).steps
    assert step.command == "echo 3 'it'\"'\"'s' \"it's\""


def test_drone_commands_are_rendered_the_same_way() -> None:
    spec = parse_text(
        "kind: pipeline\nname: a\nsteps:\n  - name: s\n    commands:\n"
        "      - echo ${{ 'a;b' }} \"${{ '$x' }}\"\n",
        ".drone.yml",
        "drone",
    )
    (step,) = compile_plan(spec).steps
    assert step.command.endswith("echo 'a;b' \"\\$x\"")


CONTEXTS = {
    "printf '%s' ${{ params.v }}": "{v}",
    "printf '%s' \"<${{ params.v }}>\"": "<{v}>",
    "printf '%s' '<${{ params.v }}>'": "<{v}>",
    "printf '%s' \"$(printf '%s' ${{ params.v }})\"": "{trimmed}",
    "printf '%s' \"$(printf '%s' \"${{ params.v }}\")\"": "{trimmed}",
    "x=`printf '%s' ${{ params.v }}`; printf '%s' \"$x\"": "{trimmed}",
    "printf '%s' \"`printf '%s' '${{ params.v }}'`\"": "{trimmed}",
    "printf '%s' ok # ${{ params.v }}": "ok",
    "cat <<EOF\n<${{ params.v }}>\nEOF": "<{v}>\n",
    "cat <<'EOF'\n<${{ params.v }}>\nEOF": "<{v}>\n",
    'cat <<-"END"\n\t<${{ params.v }}>\n\tEND': "<{v}>\n",
}


@settings(max_examples=40, deadline=None)
@given(
    value=st.text(
        st.sampled_from(list("'\"\\$`(){}; \n\t#<>|&*?~!-EOFND"))
        | st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")
    )
)
def test_any_value_prints_literally_in_every_quoting_context(value: str) -> None:
    from conveyor.plan.template import TemplateError, render_shell

    for template, expected in CONTEXTS.items():
        try:
            command = render_shell(template, {"params": {"v": value}}, set())
        except TemplateError:
            assert "\n" in value and ("EOF" in template or "END" in template), template
            continue
        with tempfile.TemporaryDirectory() as scratch:
            done = subprocess.run(
                ["/bin/sh", "-e", "-c", command], cwd=scratch, capture_output=True, timeout=30
            )
            assert os.listdir(scratch) == [], (template, value)
        want = expected.format(v=value, trimmed=value.rstrip("\n"))
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.decode() == want, (template, command)


@pytest.mark.parametrize(
    "run",
    [
        "echo \\${{ params.v }}",
        'echo "\\${{ params.v }}"',
        'echo "$${{ params.v }}"',
        "echo $${{ params.v }}",
        "cat <<EOF\n$${{ params.v }}\nEOF",
        "cat <<EOF\n${{ params.v }}\nEOF",
        "cat <<${{ params.v }}\nx\n(touch pwned)",
        "cat <<- ${{ params.v }}\nx\n(touch pwned)",
    ],
)
def test_a_value_that_shell_syntax_would_swallow_is_refused(run: str) -> None:
    from conveyor.errors import SpecError

    data = {"params": {"v": {"type": "str", "default": "(touch pwned)"}}, "jobs": {}}
    data["jobs"] = {"a": {"steps": [{"run": run}]}}
    if run.endswith("${{ params.v }}\nEOF"):
        data["params"]["v"]["default"] = "EOF"
    spec = parse_text(json.dumps(data), "conveyor.yml")
    with pytest.raises(SpecError) as info:
        compile_plan(spec)
    assert str(info.value).startswith("conveyor.yml:1:"), str(info.value)
    assert any(
        reason in str(info.value)
        for reason in ("cannot follow", "ends the here-document", "cannot name the end")
    )


@settings(max_examples=150, deadline=None)
@example(value="EOF", template="echo x; cat <<EOF\n${{ params.v }}\nEOF\necho ${{ params.v }}")
@example(value="it's", template='echo ${{ params.v }}; echo "${{ params.v }}"')
@given(
    value=st.lists(st.sampled_from([*"'\"\\$`(){}; \n\t#<>|&x", "EOF", "\nEOF\n"])).map("".join),
    template=st.sampled_from(
        [
            *CONTEXTS,
            "echo \\${{ params.v }}",
            'echo "$${{ params.v }}"',
            "echo $'${{ params.v }}'",
            "echo ${{ params.v }} # ${{ params.v }}",
            'echo `echo "${{ params.v }}"` ${{ params.v | raw }}',
            "cat <<${{ params.v }}\nx",
            "echo ${{ params.v }}; cat <<EOF\n${{ params.v }}\nEOF\necho ${{ params.v }}",
        ]
    ),
)
def test_places_scanned_once_quote_as_a_scan_with_the_values(value: str, template: str) -> None:
    """A text's quoting places are scanned once and reused for every value (a matrix's
    thousand commands): the same command, or the same refusal, as scanning the text with
    its values each time."""
    from conveyor.plan import template as module

    def rendered() -> tuple[str, set[str]] | str:
        used: set[str] = set()
        try:
            return module.render_shell(template, {"params": {"v": value}}, used), used
        except module.TemplateError as exc:
            return f"refused: {exc}"

    reused = rendered()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(module, "_places", lambda text: None)
        scanned = rendered()
    assert reused == scanned
