"""Quote a template value for the place it takes in a shell command.

A ``run:`` command is shell text that the user wrote around ``${{ }}`` expressions; a
value pasted into it must stay one literal piece of data wherever it sits. The
:class:`ShellText` scanner follows the quoting of the text written so far (unquoted,
'single', "double", $'ansi', $(substitution), `backticks`, # comments and
here-documents) and :meth:`ShellText.quote` escapes a value for that place, so that
``echo ${{ x }}``, ``echo "x=${{ x }}"`` and ``echo 'x=${{ x }}'`` all print the value
as given. Pure: no shell is run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_HEREDOC = re.compile(r"<<(-?)[ \t]*(?!-)((?:[^\s;&|<>()'\"\\]|'[^']*'|\"[^\"]*\"|\\.)+)")
_WORD_START = " \t\n;&|()<>"


class ShellQuoteError(ValueError):
    """A value that no quoting can keep literal in its place."""


@dataclass
class _Frame:
    kind: str  # plain, subst, backtick, single, double, ansi, comment
    parens: int = 0


@dataclass
class _Heredoc:
    delimiter: str
    quoted: bool
    strip_tabs: bool


class ShellText:
    """The quoting state at the end of the shell text fed so far."""

    def __init__(self) -> None:
        self.stack = [_Frame("plain")]
        self.pending: list[_Heredoc] = []
        self.heredoc: _Heredoc | None = None
        self.line = ""  # the current line of a here-document body
        self.pasted = False  # the current here-document line holds a value
        self.previous = "\n"
        self.escaped = False  # the text fed so far ends with an unfinished backslash
        self.delimiter_next = False  # the text fed so far ends with `<<`

    def feed(self, text: str) -> None:
        """Advance over ``text`` written by the user."""
        i = 0
        if text:
            self.delimiter_next = False
        while i < len(text):
            i = self._step(text, i)
        self.escaped = i > len(text)

    def paste(self, value: str) -> str:
        """``value`` quoted for the current place; the scanner moves past it."""
        quoted = self.quote(value)
        if self.heredoc is not None:
            self.line += quoted
            self.pasted = True
        self.previous = "x"
        return quoted

    def quote(self, value: str) -> str:
        glued = self.line[-1:] if self.heredoc is not None else self.previous
        if self.escaped or (glued in ("$", "\\") and self.stack[-1].kind != "single"):
            # `\${{ x }}` or `$${{ x }}` would make the value's first character shell syntax
            raise ShellQuoteError("a value cannot follow a `$` or `\\` directly")
        if self.delimiter_next:
            raise ShellQuoteError("a value cannot name the end of a here-document")
        if self.heredoc is not None:
            if "\n" in value:
                raise ShellQuoteError(
                    "a value with a line break cannot go into a here-document "
                    "(it could end it); pass it in an environment variable"
                )
            return value if self.heredoc.quoted else _escape(value, "\\$`")
        kind = self.stack[-1].kind
        if kind == "comment":
            return value.replace("\n", " ")
        if kind == "single":
            quoted = value.replace("'", "'\\''")
        elif kind == "double":
            quoted = _escape(value, '\\$`"')
        elif kind == "ansi":  # bash reads $'..' with escapes, dash as '..': fit both
            if "'" in value or "\\" in value:
                raise ShellQuoteError("a value with ' or \\ cannot go inside $'...'")
            quoted = value
        else:
            quoted = shlex.quote(value)
        # inside `...` the shell unescapes \\ and \` before it parses the command
        for frame in reversed(self.stack):
            if frame.kind == "backtick":
                quoted = _escape(quoted, "\\`")
        return quoted

    def _step(self, text: str, i: int) -> int:
        char = text[i]
        if self.heredoc is not None:
            return self._heredoc_char(text, i)
        frame = self.stack[-1]
        kind = frame.kind
        after = i + 1
        if kind == "comment":
            if char == "\n":
                self.stack.pop()
                self._newline()
        elif kind == "single":
            if char == "'":
                self.stack.pop()
        elif kind in ("double", "ansi"):
            if char == "\\":
                after = i + 2
            elif (kind == "double" and char == '"') or (kind == "ansi" and char == "'"):
                self.stack.pop()
            elif kind == "double":
                after = self._substitution(text, i)
        else:  # plain, subst, backtick: unquoted text
            after = self._unquoted(text, i, frame)
        self.previous = text[after - 1] if after <= len(text) else char
        return after

    def _unquoted(self, text: str, i: int, frame: _Frame) -> int:
        char = text[i]
        if char == "\\":
            return i + 2
        if char == "'":
            self.stack.append(_Frame("single"))
        elif char == '"':
            self.stack.append(_Frame("double"))
        elif char == "$" and text[i + 1 : i + 2] == "'":
            self.stack.append(_Frame("ansi"))
            return i + 2
        elif char == "#" and self.previous in _WORD_START:
            self.stack.append(_Frame("comment"))
        elif char == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            match = _HEREDOC.match(text, i)
            if match is None and not text[i:].strip("<- \t"):
                self.delimiter_next = True  # `<<${{ x }}`: the value would name the end
            if match:
                word = match.group(2)
                delimiter = _unquote(word)
                self.pending.append(_Heredoc(delimiter, delimiter != word, bool(match.group(1))))
                return match.end()
        elif char == "\n":
            self._newline()
        elif frame.kind == "subst" and char == "(":
            frame.parens += 1
        elif frame.kind == "subst" and char == ")":
            frame.parens -= 1
            if frame.parens == 0:
                self.stack.pop()
        elif frame.kind == "backtick" and char == "`":
            self.stack.pop()
        else:
            return self._substitution(text, i)
        return i + 1

    def _substitution(self, text: str, i: int) -> int:
        if text.startswith("$(", i):
            self.stack.append(_Frame("subst", parens=1))
            return i + 2
        if text[i] == "`":
            self.stack.append(_Frame("backtick"))
        return i + 1

    def _newline(self) -> None:
        if self.pending and self.stack[-1].kind in ("plain", "subst", "backtick"):
            self.heredoc = self.pending.pop(0)
            self.line, self.pasted = "", False

    def _heredoc_char(self, text: str, i: int) -> int:
        char = text[i]
        heredoc = self.heredoc
        assert heredoc is not None
        if char != "\n":
            self.line += char
            if char == "\\" and i + 1 < len(text) and text[i + 1] != "\n":
                self.line += text[i + 1]  # an escaped character
                return i + 2
            return i + 1
        line = self.line.lstrip("\t") if heredoc.strip_tabs else self.line
        if line == heredoc.delimiter:
            if self.pasted:
                raise ShellQuoteError(f"a value ends the here-document {heredoc.delimiter!r}")
            self.heredoc = self.pending.pop(0) if self.pending else None
        self.line, self.pasted = "", False
        self.previous = "\n"
        return i + 1


def _escape(value: str, specials: str) -> str:
    return "".join(f"\\{c}" if c in specials else c for c in value)


def _unquote(word: str) -> str:
    return re.sub(r"['\"\\]", "", word)
