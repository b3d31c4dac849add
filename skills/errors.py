"""The one error family: every error skillcall raises on purpose is a ``SkillcallError``.

Each message names the bad value and the next step, so the CLI can print it as one line.
"""

from __future__ import annotations

import re


class SkillcallError(Exception):
    """Base of every error skillcall raises on purpose."""


class CallError(SkillcallError):
    """A call string that does not parse, names no loaded skill, or does not fit the skill's signature."""


class SkillDefinitionError(SkillcallError):
    """A function that cannot be a skill (missing hints or docstring, duplicate name, ...)."""


class SkillFailed(SkillcallError):
    """Raised by a skill for an expected failure; the message is the reply the user gets."""


_NOT_PRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What must not reach a message as it is: control characters (newlines, ANSI escapes), Unicode's line and
paragraph separators, the marks that reorder a line (bidi), and lone surrogates (no text, not even printable)."""


def printable(text: str) -> str:
    """``text`` as a message may echo what a user said: one printable line, each character above escaped as
    ``repr`` writes it (``\\n``, ``\\x1b``, ``\\u2028``); everything else (São Paulo, 東京, 🙂) as it is."""
    return _NOT_PRINTABLE.sub(lambda found: repr(found[0])[1:-1], str(text))
