"""The one error family: every error skillcall raises on purpose is a ``SkillcallError``.

Each message names the bad value and the next step, so the CLI can print it as one line.
"""

from __future__ import annotations


class SkillcallError(Exception):
    """Base of every error skillcall raises on purpose."""


class CallError(SkillcallError):
    """A call string that does not parse, names no loaded skill, or does not fit the skill's signature."""


class SkillDefinitionError(SkillcallError):
    """A function that cannot be a skill (missing hints or docstring, duplicate name, ...)."""


class SkillFailed(SkillcallError):
    """Raised by a skill for an expected failure; the message is the reply the user gets."""
