"""``skillcall new-skill NAME``: a skill file and its example file to start from, both valid as written.

The skill file has the typed signature, ``@skill`` and a docstring; the example file has the ``#### Prompt:`` line
and a few seed rows made from the signature, which pass ``skillcall examples check`` as they are. Both are written
to the user's skills folder, where the registry loads skills and the example files of user skills live.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from pathlib import Path

from finetune.examples import SUFFIX, Example, ExampleFile, check_call, write_atomic, write_example_file
from skills import Registry, Skill, SkillcallError, SkillDefinitionError

TYPES = ("str", "int", "float", "bool")
"""The argument types a new skill's parameters may have (edit the file for a ``Literal`` or more)."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SPEC = re.compile(r"^(?P<name>[^:=]+?)\s*(?::\s*(?P<type>[^=]+?))?\s*(?:=\s*(?P<default>.*))?$")
_RESERVED = {"context", "skill", "SkillContext", "SkillFailed"}
_SAMPLES = {
    ("name", "person", "who", "contact", "friend", "recipient"): ("Alice", "Sam", "my sister"),
    ("location", "city", "place", "where", "town", "country", "destination"): ("Paris", "Tokyo", "New York"),
    ("topic", "subject", "category"): ("football", "the election", "space"),
    ("song", "music", "track", "artist", "album", "playlist"): ("Yesterday", "some jazz", "Bohemian Rhapsody"),
    ("app", "program", "application"): ("Firefox", "the calculator", "Spotify"),
    ("date", "day", "when"): ("tomorrow", "Friday", "next week"),
    ("duration", "length"): ("five minutes", "an hour", "90 seconds"),
}  # fmt: skip
"""Values seed rows use for a text parameter, by its name; any other text parameter gets "the <name>" etc."""
_NUMBERS = {"int": (2, 3, 5), "float": (1.5, 2.5, 0.5), "bool": (True, False, True)}
"""Values seed rows use for the other types."""


class ScaffoldError(SkillcallError):
    """A new skill that cannot be written (a bad or taken name, a bad parameter, files already there)."""


@dataclass(frozen=True)
class NewParameter:
    """One parameter of a new skill: ``name:type`` or ``name:type=default`` (``=None``: optional, ``type | None``)."""

    name: str
    type: str = "str"
    optional: bool = False
    """Has a default (None, or ``default``)."""
    default: object = None

    @classmethod
    def parse(cls, spec: str) -> NewParameter:
        """``city``, ``city:str``, ``times:int=1``, ``place:str=None``; ``ScaffoldError`` naming the bad part."""
        found = _SPEC.match(spec.strip())
        name, kind = (found["name"].strip(), (found["type"] or "str").strip()) if found else (spec, "")
        if not found or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ScaffoldError(f"parameter {spec!r}: write NAME, NAME:TYPE or NAME:TYPE=DEFAULT (e.g. city:str, "
                                "times:int=1, place:str=None) with NAME a Python identifier")  # fmt: skip
        if name in _RESERVED:
            raise ScaffoldError(f"parameter {name!r} is a name the skill file uses itself; choose another")
        if kind not in TYPES:
            raise ScaffoldError(f"parameter {name}: type {kind!r} is not one of {', '.join(TYPES)} (edit the file "
                                "afterwards for a Literal)")  # fmt: skip
        if found["default"] is None:
            return cls(name, kind)
        text = found["default"].strip()
        if text == "None":
            return cls(name, kind, optional=True)
        try:
            value: object = {"str": lambda t: t.strip("\"'"), "int": int, "float": float,
                             "bool": lambda t: {"true": True, "false": False}[t.casefold()]}[kind](text)  # fmt: skip
        except (ValueError, KeyError):
            raise ScaffoldError(f"parameter {name}: default {text!r} is not of type {kind}") from None
        return cls(name, kind, optional=True, default=value)

    @property
    def annotation(self) -> str:
        return f"{self.type} | None" if self.optional and self.default is None else self.type

    def source(self) -> str:
        return f"{self.name}: {self.annotation}" + (f" = {self.default!r}" if self.optional else "")


@dataclass(frozen=True)
class NewSkillOptions:
    """One ``skillcall new-skill`` run."""

    name: str
    """The skill's name (its function's): lower case, digits and underscores."""
    parameters: tuple[NewParameter, ...] = ()
    description: str | None = None
    """The docstring's first line; None: made from the name ("Set alarm.")."""
    skills_dir: Path = field(default_factory=Path)
    """The user's skills folder (``skills_dir``): both files are written there."""


@dataclass
class NewSkill:
    skill_path: Path
    examples_path: Path
    seeds: list[Example]


def prompt_line(found: Skill) -> str:
    """An example file's ``#### Prompt:`` line for a skill: its call with placeholders, then its description."""
    parts = []
    for parameter in found.parameters:
        placeholder = f"[{parameter.name}]"
        parts.append(f'{parameter.name}="{placeholder}"' if parameter.span else f"{parameter.name}={placeholder}")
    return f"{found.name}({', '.join(parts)}) {found.description}"


def new_skill(options: NewSkillOptions, registry: Registry) -> NewSkill:
    """The front door: write ``<name>.py`` and ``<name>_examples.txt`` into the skills folder, each checked as the
    registry and ``examples check`` will read them. Nothing is overwritten; on a failure nothing is left behind."""
    name = options.name
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"skill name {name!r}: use lower case letters, digits and underscores, starting with a "
                            "letter (e.g. set_alarm)")  # fmt: skip
    if name in registry:
        raise ScaffoldError(f"a skill named {name!r} is already loaded (from {registry.get(name).source}); choose "
                            "another name")  # fmt: skip
    names = [p.name for p in options.parameters]
    if len(set(names)) < len(names):
        raise ScaffoldError(f"a parameter is named twice in {', '.join(names)}")
    folder = Path(options.skills_dir)
    skill_path, examples_path = folder / f"{name}.py", folder / f"{name}{SUFFIX}"
    for path in (skill_path, examples_path):
        if path.exists():
            raise ScaffoldError(f"{path} already exists; remove it or choose another name")
    required = [p for p in options.parameters if not p.optional]
    optional = [p for p in options.parameters if p.optional]  # Python wants those with defaults last
    description = (options.description or f"{name.replace('_', ' ').capitalize()}.").strip()
    if not description or '"""' in description or "\n" in description:
        raise ScaffoldError("the description is one line of text (no triple quotes)")
    try:
        write_atomic(skill_path, _skill_source(name, required, optional, description))
        check = Registry(isolate=False)
        check.load_file(skill_path)
        if check.problems or name not in check:
            raise ScaffoldError(f"the skill file did not load: {check.problems[0] if check.problems else 'no skill'}")
        found = check.get(name)
        seeds = _seeds(check, found, required, optional)
        for seed in seeds:
            problem = check_call(seed, examples_path, check, name)
            if problem:
                raise ScaffoldError(f"a seed row is invalid ({problem}); write the rows by hand")
        write_example_file(ExampleFile(name, prompt_line(found), prompt_examples=seeds), examples_path)
    except (OSError, SkillDefinitionError, ScaffoldError) as exc:
        for path in (skill_path, examples_path):
            path.unlink(missing_ok=True)
        if isinstance(exc, ScaffoldError):
            raise
        raise ScaffoldError(f"cannot write the skill into {folder} ({exc}); check skills_dir") from None
    return NewSkill(skill_path, examples_path, seeds)


def _skill_source(name: str, required: list[NewParameter], optional: list[NewParameter], description: str) -> str:
    signature = ", ".join([*(p.source() for p in required), "context: SkillContext", *(p.source() for p in optional)])
    shown = ", ".join(f"{p.name}={{{p.name}!r}}" for p in [*required, *optional])
    reply = f'f"{name}: {shown}"' if shown else f'"{name}: done."'
    return f'''"""{name}: a skill of your own (written by `skillcall new-skill`; edit it freely).

The docstring's first line is the description that prompts and `skillcall generate` show. The type-hinted
parameters are the arguments the router fills in; text arguments are copied from what was said, and the skill
interprets them. The SkillContext parameter is injected (context.settings is the configuration) and hidden from
the router. Raise SkillFailed("...") to reply why something cannot be done.
"""

from __future__ import annotations

from skills import SkillContext, SkillFailed, skill


@skill
def {name}({signature}) -> str:
    """{description}"""
    # TODO: do the work here. The text returned is the reply the user hears; raise SkillFailed("...") to say
    # why it cannot be done.
    return {reply}
'''


def _seeds(registry: Registry, found: Skill, required: list[NewParameter],
           optional: list[NewParameter]) -> list[Example]:  # fmt: skip
    """Three rows from the signature: the required arguments, all of them, and a plain lower-case one said to
    Otto. Text values are copied into the utterance (they are spans); the calls are canonical."""
    words = found.name.replace("_", " ")
    rows = []
    for index, (start, end, chosen) in enumerate(((words.capitalize(), ".", required),
                                                  (f"Could you {words}", "?", required + optional),
                                                  (f"otto {words}", "", required))):  # fmt: skip
        arguments = {p.name: _sample(p, index) for p in chosen}
        bare = [str(arguments[p.name]) for p in chosen if p in required and p.type == "str"]
        named = [f"{p.name.replace('_', ' ')} {_spoken(arguments[p.name])}" for p in chosen
                 if not (p in required and p.type == "str")]  # fmt: skip
        said = bare + ([f"with {', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else f"with {named[0]}"]
                       if named else [])  # fmt: skip
        rows.append(Example(" ".join([start, *said]) + end, str(registry.validate(found.name, arguments))))
    return rows


def _spoken(value: object) -> str:
    return {True: "on", False: "off"}[value] if isinstance(value, bool) else str(value)


def _sample(parameter: NewParameter, index: int) -> object:
    """A value for a seed row; never an optional parameter's default (the call would leave it out)."""
    if parameter.type != "str":
        values = _NUMBERS[parameter.type]
    else:
        words = parameter.name.replace("_", " ")
        values = next((v for names, v in _SAMPLES.items() if parameter.name.casefold() in names),
                      (f"the {words}", f"my {words}", f"another {words}"))  # fmt: skip
    choices = [v for v in values[index:] + values[:index] if not (parameter.optional and v == parameter.default)]
    return choices[0]
