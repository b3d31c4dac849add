"""skillcall's skills layer: the registry, safe calls, dispatch and the built-in skills.

It imports neither ``finetune`` nor ``assistant``.
"""

from .calls import (
    MAX_CALL_CHARS,
    MAX_CALLS,
    SEPARATOR,
    CallSequence,
    SkillCall,
    calls_equal,
    normalize_value,
    sequences_equal,
    span_positions,
)
from .errors import CallError, SkillcallError, SkillDefinitionError, SkillFailed, printable
from .registry import (
    BUILTIN_DIR,
    LoadProblem,
    Outcome,
    Parameter,
    Registry,
    Skill,
    SkillContext,
    SkillResult,
    load_registry,
    skill,
)
from .settings import SkillSettings, UserPath

__all__ = [
    "BUILTIN_DIR",
    "MAX_CALLS",
    "MAX_CALL_CHARS",
    "SEPARATOR",
    "CallError",
    "CallSequence",
    "LoadProblem",
    "Outcome",
    "Parameter",
    "Registry",
    "Skill",
    "SkillCall",
    "SkillContext",
    "SkillDefinitionError",
    "SkillFailed",
    "SkillResult",
    "SkillSettings",
    "SkillcallError",
    "UserPath",
    "calls_equal",
    "load_registry",
    "normalize_value",
    "printable",
    "sequences_equal",
    "skill",
    "span_positions",
]
