"""Text from model files, made safe to print on a terminal.

Metadata, tensor names and error messages can carry whatever a model file holds: ANSI escape
sequences (colours, cursor moves, window titles), bells, carriage returns that overwrite a line,
Unicode direction overrides. Printed raw, they act on the user's terminal. `printable` turns
every such character into a visible escape (`\\x1b`, `\\u202e`); everything else is untouched.
"""
from __future__ import annotations

import re

# C0 and C1 controls, DEL, line/paragraph separators, bidi embedding/override/isolate controls.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with control and direction-changing characters shown as escapes."""
    s = str(text)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in s.split("\n"))
    return _UNSAFE.sub(_escape, s)
