"""Previews of a run's output files on its page: what kind a file is by its name, and
bounded renderings of its first bytes (a table, pretty JSON, safe Markdown, a JUnit
pass/fail table). Everything here reads a file's content as data: nothing from it is
ever markup of the page except Markdown rendered with raw HTML off."""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass, field

READ_LIMIT = 1 << 20  # bytes of a file read for its preview
XML_LIMIT = 8 << 20  # a JUnit report is parsed whole, up to this size
TEXT_SHOWN = 64 << 10  # bytes of a text file shown
ROWS = 100  # rows of a CSV/TSV shown
COLUMNS = 50
CELL = 200  # characters of a cell shown
JSON_SHOWN = 256 << 10  # characters of pretty JSON shown
CASES = 2000  # JUnit test cases shown

# served with their own type, only from the sandboxed route
IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
HTML = "text/html; charset=utf-8"
_KINDS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xml": "xml",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ipynb": "notebook",
}
_TEXT = {".txt", ".log", ".yml", ".yaml", ".toml", ".ini", ".cfg", ".py", ".sh", ".out", ".err"}


def kind_of(path: str) -> str | None:
    """image, csv, tsv, json, markdown, html, xml (JUnit when it parses as one), parquet,
    notebook, text, or None (no preview: a download only)."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in IMAGES:
        return "image"
    if suffix in _TEXT:
        return "text"
    return _KINDS.get(suffix)


def raw_type(path: str) -> str | None:
    """The real media type a file is served with from the sandboxed route (images, HTML
    reports and notebooks rendered as HTML only; None: that route refuses it)."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in IMAGES:
        return IMAGES[suffix]
    return HTML if _KINDS.get(suffix) in ("html", "notebook") else None


def text_of(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    more: bool  # rows (or columns) beyond those shown
    error: str | None = None


def table(data: bytes, delimiter: str, truncated: bool) -> Table:
    """The header and first ``ROWS`` rows of a CSV/TSV read from its first bytes."""
    text = text_of(data)
    if truncated:  # the last line may be cut in the middle
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    found: list[list[str]] = []
    more = truncated
    try:
        for row in reader:
            if len(found) > ROWS:
                more = True
                break
            if len(row) > COLUMNS:
                more = True
            found.append([_cell(c) for c in row[:COLUMNS]])
    except csv.Error as exc:
        note = f"not read past line {reader.line_num}: {exc}"
        return Table(found[0] if found else [], found[1:], more, note)
    if not found:
        return Table([], [], more)
    return Table(found[0], found[1:], more)


def _cell(value: str) -> str:
    return value if len(value) <= CELL else value[: CELL - 1] + "…"


def pretty_json(data: bytes, truncated: bool) -> tuple[str, str | None]:
    """The JSON indented (cut at ``JSON_SHOWN`` characters), or its first bytes as text
    with the reason it is not."""
    if truncated:
        note = f"larger than {READ_LIMIT >> 10} KiB: its beginning as text"
        return text_of(data[:JSON_SHOWN]), note
    try:
        shown = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError) as exc:
        return text_of(data[:JSON_SHOWN]), f"not valid JSON ({str(exc)[:200]}): as text"
    if len(shown) > JSON_SHOWN:
        return shown[:JSON_SHOWN], f"the first {JSON_SHOWN >> 10} KiB of it"
    return shown, None


def markdown_html(text: str) -> str:
    """Markdown as HTML with raw HTML off (it is shown escaped) and markdown-it's own
    link check (no ``javascript:``); images load only from this site (the page's CSP)."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).render(text))


@dataclass
class Case:
    suite: str
    name: str
    classname: str
    time: str
    outcome: str  # passed, failed, error, skipped
    message: str


@dataclass
class Junit:
    cases: list[Case] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    more: bool = False


def junit(data: bytes) -> Junit | None:
    """The test cases of a JUnit XML report, or None when the file is not one. No DTD,
    no entity is ever expanded (defusedxml refuses them: a billion laughs is refused,
    not parsed)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(data, forbid_dtd=True)
    except (DefusedXmlException, ParseError, ValueError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if root.tag not in ("testsuite", "testsuites"):
        return None
    report = Junit(counts={"passed": 0, "failed": 0, "error": 0, "skipped": 0})
    for suite in suites:
        for case in suite.findall("testcase"):
            outcome, message = "passed", ""
            for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
                found = case.find(tag)
                if found is not None:
                    outcome, message = name, found.get("message") or (found.text or "")
                    break
            report.counts[outcome] += 1
            if len(report.cases) >= CASES:
                report.more = True
                continue
            report.cases.append(
                Case(
                    suite.get("name", ""),
                    case.get("name", ""),
                    case.get("classname", ""),
                    case.get("time", ""),
                    outcome,
                    message[:CELL],
                )
            )
    return report
