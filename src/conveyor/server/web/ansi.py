"""ANSI colours of a step log as HTML: the text escaped, SGR colours and bold as
``<span class="...">`` (classes only: the page's CSP forbids inline styles), every other
escape sequence dropped. Fed chunk by chunk: a sequence split between chunks is held
back until the next one."""

from __future__ import annotations

import re

from markupsafe import escape

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_PARTIAL = re.compile(r"\x1b(?:\[[0-9;?]*|\][^\x07\x1b]*)?$")
MAX_HELD = 256  # an unfinished sequence longer than this is text, not a sequence
_COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


class AnsiHtml:
    """A stream converter; ``feed`` returns HTML whose spans are all closed."""

    def __init__(self) -> None:
        self.held = ""
        self.fg: str | None = None
        self.bg: str | None = None
        self.bold = False

    def feed(self, text: str, final: bool = False) -> str:
        text = self.held + text
        self.held = ""
        if not final:
            partial = _PARTIAL.search(text[-MAX_HELD:])
            if partial:
                cut = len(text) - (len(text[-MAX_HELD:]) - partial.start())
                text, self.held = text[:cut], text[cut:]
        out: list[str] = []
        at = 0
        for match in _SGR.finditer(text):
            out.append(self._span(text[at : match.start()]))
            self._apply(match.group(1))
            at = match.end()
        out.append(self._span(text[at:]))
        return "".join(out)

    def _span(self, text: str) -> str:
        text = _OTHER.sub("", text).replace("\x1b", "")
        if not text:
            return ""
        classes = [c for c in (self.fg, self.bg, "ansi-bold" if self.bold else None) if c]
        body = str(escape(text))
        return f'<span class="{" ".join(classes)}">{body}</span>' if classes else body

    def _apply(self, params: str) -> None:
        codes = [int(c) if c.isdigit() else 0 for c in params.split(";")] if params else [0]
        index = 0
        while index < len(codes):
            code = codes[index]
            if code == 0:
                self.fg = self.bg = None
                self.bold = False
            elif code == 1:
                self.bold = True
            elif code == 22:
                self.bold = False
            elif 30 <= code <= 37 or 90 <= code <= 97:
                bright = "-bright" if code >= 90 else ""
                self.fg = f"ansi-{_COLOURS[code % 10]}{bright}"
            elif code == 39:
                self.fg = None
            elif 40 <= code <= 47 or 100 <= code <= 107:
                bright = "-bright" if code >= 100 else ""
                self.bg = f"ansi-bg-{_COLOURS[code % 10]}{bright}"
            elif code == 49:
                self.bg = None
            elif code in (38, 48):  # 256-colour and RGB forms: skipped, not drawn
                index += 2 if codes[index + 1 : index + 2] == [5] else 4
            index += 1


def to_html(text: str) -> str:
    """A whole text at once."""
    return AnsiHtml().feed(text, final=True)
