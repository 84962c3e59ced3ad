"""Previews of output files: kinds by name, and bounded, escaped-later renderings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from conveyor.server.masking import Masker
from conveyor.server.web import files, preview


def test_kinds_and_raw_types_by_name() -> None:
    assert preview.kind_of("out/plot.PNG") == "image"
    assert preview.kind_of("a.svg") == "image"
    assert preview.kind_of("t.tsv") == "tsv"
    assert preview.kind_of("report.html") == "html"
    assert preview.kind_of("model.bin") is None
    assert preview.raw_type("plot.webp") == "image/webp"
    assert preview.raw_type("r.htm") == preview.HTML
    assert preview.raw_type("data.csv") is None  # never served with a type of its own


def test_a_csv_table_stops_at_its_rows_and_cuts_long_cells() -> None:
    lines = ["a,b"] + [f"{i},{'x' * 500}" for i in range(300)]
    found = preview.table("\n".join(lines).encode(), ",", False)
    assert found.header == ["a", "b"]
    assert len(found.rows) == preview.ROWS and found.more
    assert found.rows[0][0] == "0" and len(found.rows[0][1]) == preview.CELL


def test_a_cut_csv_drops_its_partial_last_line() -> None:
    found = preview.table(b"a\tb\n1\t2\n3\t4", "\t", True)
    assert found.rows == [["1", "2"]] and found.more


def test_a_tsv_with_too_many_columns_is_cut() -> None:
    found = preview.table(("\t".join("c" * 1 for _ in range(80)) + "\n").encode(), "\t", False)
    assert len(found.header) == preview.COLUMNS and found.more


def test_json_is_pretty_printed_or_shown_as_text() -> None:
    text, note = preview.pretty_json(b'{"b": [1, 2], "a": "<x>"}', False)
    assert text.startswith('{\n  "b": [') and note is None
    text, note = preview.pretty_json(b"{nope", False)
    assert text == "{nope" and note and "not valid JSON" in note
    deep = b"[" * 100_000 + b"]" * 100_000
    text, note = preview.pretty_json(deep, False)
    assert note and len(text) <= preview.JSON_SHOWN
    text, note = preview.pretty_json(b"[" + b"1," * 10, True)
    assert note and "as text" in note


def test_markdown_keeps_raw_html_as_text_and_refuses_script_links() -> None:
    html = preview.markdown_html("# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2))")
    assert "<h1>Title</h1>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html


JUNIT = b"""<?xml version="1.0"?>
<testsuites><testsuite name="unit">
  <testcase classname="t.a" name="ok" time="0.1"/>
  <testcase classname="t.a" name="bad"><failure message="1 != 2">trace</failure></testcase>
  <testcase name="gone"><skipped/></testcase>
  <testcase name="boom"><error>oops</error></testcase>
</testsuite></testsuites>"""


def test_junit_cases_with_their_outcomes() -> None:
    report = preview.junit(JUNIT)
    assert report is not None
    assert report.counts == {"passed": 1, "failed": 1, "error": 1, "skipped": 1}
    assert [(c.name, c.outcome, c.message) for c in report.cases] == [
        ("ok", "passed", ""),
        ("bad", "failed", "1 != 2"),
        ("gone", "skipped", ""),
        ("boom", "error", "oops"),
    ]


def test_xml_that_is_not_junit_is_none() -> None:
    assert preview.junit(b"<config><a/></config>") is None
    assert preview.junit(b"<not xml") is None


def test_a_tree_nests_files_by_directory() -> None:
    found = [
        {"path": "b.txt", "digest": "1", "size": 1, "step": "s"},
        {"path": "out/x/y.csv", "digest": "2", "size": 2, "step": "s"},
        {"path": "out/a.png", "digest": "3", "size": 3, "step": "s"},
    ]
    root = files.tree(found)
    assert [f["name"] for f in root.files] == ["b.txt"]
    out = root.folders["out"]
    assert out.path == "out/" and out.count == 2
    assert [f["name"] for f in out.files] == ["a.png"]
    assert out.folders["x"].files[0]["path"] == "out/x/y.csv"


def test_a_files_head_is_bounded_and_masked(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"x" * 100)
    head = files.read_head(plain, Masker([]), 10)
    assert head.data == b"x" * 10 and head.truncated and not head.masked
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"a" * 8 + b"hunter2-value-99" + b"b" * 50)
    head = files.read_head(secret, Masker(["hunter2-value-99"]), 12)
    assert b"hunter2" not in head.data and head.masked and head.truncated
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\0\xff" + b"hunter2-value-99")
    assert files.read_head(binary, Masker(["hunter2-value-99"]), 100).withheld


def test_compare_lists_differing_parameters_and_changed_outputs() -> None:
    a = SimpleNamespace(id="a", params={"lr": 0.1, "epochs": 3})
    b = SimpleNamespace(id="b", params={"lr": 0.2, "epochs": 3, "seed": 1})
    outputs = [
        [{"path": "m.bin", "digest": "d1"}, {"path": "same.txt", "digest": "s"}],
        [
            {"path": "m.bin", "digest": "d2"},
            {"path": "same.txt", "digest": "s"},
            {"path": "new.txt", "digest": "n"},
        ],
    ]
    found = files.compare([a, b], outputs, ["1s", "2s"])
    assert [(p["name"], p["cells"], p["differs"]) for p in found["params"]] == [
        ("epochs", ["3", "3"], False),
        ("lr", ["0.1", "0.2"], True),
        ("seed", [None, "1"], True),
    ]
    assert found["changed"] == [
        {"path": "m.bin", "digests": ["d1", "d2"]},
        {"path": "new.txt", "digests": [None, "n"]},
    ]
    assert found["same"] == 1
