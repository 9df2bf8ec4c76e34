"""Text safe for a terminal: one-line error messages, and the console every table is printed on.

User and spec text (a model name, a spec description, a file's contents) reaches the terminal only
through here: :func:`one_line` escapes control characters in error lines (``\\n``, ``\\x1b``) and cuts
absurdly long values; :func:`console` prints renderables with rich markup off (``"(no [network]
table)"`` keeps its brackets) and control characters (ESC, BEL, ...) removed from every string.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["console", "one_line", "printable"]

LONG_VALUE = 200  # characters: an echoed value longer than this is cut to its start and its length
KEPT = 60  # characters of a cut value that are kept
LONG_LINE = 4000  # characters: the whole line is cut beyond this
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HIDDEN = ("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn")
# a quoted value: the quote opens after no letter (not "model's") and closes before none
_QUOTED = re.compile(rf"(?<!\w)(?:'([^']{{{LONG_VALUE + 1},}})'|\"([^\"]{{{LONG_VALUE + 1},}})\")(?!\w)")
_LONG_WORD = re.compile(rf"\S{{{LONG_VALUE + 1},}}")
# C0 controls but tab and newline, DEL and C1: what a terminal would act on instead of showing
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """``text`` safe to print as one line: long echoed values cut short, control characters escaped."""
    text = _QUOTED.sub(lambda m: _cut(m.group(0)[0], m.group(1) if m.group(1) is not None else m.group(2)), text)
    text = _LONG_WORD.sub(lambda m: _cut("", m.group(0)), text)
    if len(text) > LONG_LINE:
        text = f"{text[:LONG_LINE]}…({len(text):,} chars)"
    return "".join(_escape(ch) for ch in text)


def printable(text: str) -> str:
    """``text`` without the control characters a terminal would obey (ESC, BEL, CR, ...); tab and
    newline are kept."""
    return _CONTROL.sub("", text)


def console(**kwargs):
    """A rich console for results: markup off, control characters removed from every string it renders."""
    from rich.console import Console

    class _Console(Console):
        def render_str(self, text, **kw):
            return super().render_str(printable(text), **kw)

        def on_broken_pipe(self) -> None:  # rich would exit 1; `perfmodel ... | head` is not an error
            raise BrokenPipeError

    kwargs.setdefault("markup", False)
    return _Console(**kwargs)


def _cut(quote: str, value: str) -> str:
    return f"{quote}{value[:KEPT]}…({len(value):,} chars){quote}"


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch.isprintable() or unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
