"""Example files (``examples/<skill>_examples.txt``, the otto format): read, write losslessly, check.

```
#### Prompt:
weather(location="[location]") get the current weather at a location.

#### Prompt Examples:

### User: What's the weather in Berlin?
### Assistant: weather(location="Berlin")

#### Examples:

### User: is it going to rain in paris
### Assistant: weather(location="paris")
```
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from skills import BUILTIN_DIR, CallError, Registry, SkillcallError, span_positions

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SUFFIX = "_examples.txt"
PROMPT, PROMPT_EXAMPLES, EXAMPLES = "#### Prompt:", "#### Prompt Examples:", "#### Examples:"
CORRECTIONS = "#### Corrections:"
"""An optional last section: rows a user corrected (``skillcall correct``), always trained on, never held out."""
_SECTIONS = (PROMPT, PROMPT_EXAMPLES, EXAMPLES, CORRECTIONS)
USER, ASSISTANT = "### User: ", "### Assistant: "
_LOOKS_LIKE_EXAMPLE = re.compile(r"^\W*(user|assistant|human|bot)\s*:", re.IGNORECASE)


class ExampleFileError(SkillcallError):
    """A problem in an example file, with the file and line it is on.

    ``kind`` is "invalid" (format, call or argument), "duplicate" (an utterance seen before) or "missing" (a
    loaded skill without a file).
    """

    def __init__(self, path: Path | str, line: int, message: str, kind: str = "invalid") -> None:
        self.path, self.line, self.message, self.kind = Path(path), line, message, kind
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


@dataclass(frozen=True)
class Example:
    """One utterance and the call it should route to; ``line`` is where its ``### User:`` stands."""

    text: str
    call: str
    line: int = 0
    corrected: bool = False
    """A correction (the file's ``#### Corrections:``): in the training split whatever its words."""


@dataclass
class ExampleFile:
    skill: str
    prompt: str = ""
    prompt_examples: list[Example] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    path: Path | None = None
    corrections: list[Example] = field(default_factory=list)

    @property
    def rows(self) -> list[Example]:
        return self.prompt_examples + self.examples + self.corrections

    def render(self) -> str:
        """The file's text in the canonical layout; ``read_example_file`` of it gives the same content back."""
        parts = [f"{PROMPT}\n{self.prompt}\n\n{PROMPT_EXAMPLES}\n"]
        parts += [f"\n{USER}{e.text}\n{ASSISTANT}{e.call}\n" for e in self.prompt_examples]
        parts.append(f"\n{EXAMPLES}\n")
        parts += [f"\n{USER}{e.text}\n{ASSISTANT}{e.call}\n" for e in self.examples]
        if self.corrections:
            parts.append(f"\n{CORRECTIONS}\n")
            parts += [f"\n{USER}{e.text}\n{ASSISTANT}{e.call}\n" for e in self.corrections]
        return "".join(parts)


def skill_of(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem


def read_example_file(path: Path) -> tuple[ExampleFile, list[ExampleFileError]]:
    """Parse one file. Every line that is not part of the format is a problem; nothing is dropped silently."""
    path = Path(path)
    result = ExampleFile(skill_of(path), path=path)
    problems: list[ExampleFileError] = []
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Windows editors) is not text
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        return result, [ExampleFileError(path, line, "not valid UTF-8; save the file as UTF-8")]
    except OSError as exc:
        return result, [ExampleFileError(path, 0, f"cannot read: {exc.strerror or exc}")]
    section: str | None = None
    pending: tuple[str, int] | None = None
    lines = text.split("\n")  # not splitlines(): U+2028 and friends can be inside an utterance
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped in _SECTIONS:
            if pending:
                problems.append(ExampleFileError(path, pending[1], "'### User:' has no '### Assistant:' line after it"))
                pending = None
            if stripped == PROMPT and section is not None or stripped != PROMPT and section is None or (
                    section == CORRECTIONS and stripped != CORRECTIONS):  # fmt: skip
                problems.append(ExampleFileError(path, number, f"section '{stripped}' is out of order; the order is "
                                                 f"'{PROMPT}', '{PROMPT_EXAMPLES}', '{EXAMPLES}' (and "
                                                 f"'{CORRECTIONS}' last)"))  # fmt: skip
            section = stripped
            continue
        if not stripped:
            continue
        if line.startswith(USER) or line.rstrip() == USER.rstrip():
            if pending:
                problems.append(ExampleFileError(path, pending[1], "'### User:' has no '### Assistant:' line after it"))
            utterance = line[len(USER) :].strip()
            if not utterance:
                problems.append(ExampleFileError(path, number, "empty utterance after '### User:'"))
                pending = None
            else:
                pending = (utterance, number)
            if section not in (PROMPT_EXAMPLES, EXAMPLES, CORRECTIONS):
                problems.append(ExampleFileError(path, number, f"example outside '{PROMPT_EXAMPLES}'/'{EXAMPLES}'"))
            continue
        if line.startswith(ASSISTANT) or line.rstrip() == ASSISTANT.rstrip():
            if not pending:
                problems.append(ExampleFileError(path, number, "'### Assistant:' without a '### User:' line before it"))
                continue
            example = Example(pending[0], line[len(ASSISTANT) :].strip(), pending[1])
            pending = None
            if section == PROMPT_EXAMPLES:
                result.prompt_examples.append(example)
            elif section == EXAMPLES:
                result.examples.append(example)
            elif section == CORRECTIONS:
                result.corrections.append(dataclasses.replace(example, corrected=True))
            continue
        if section == PROMPT and not result.prompt:
            result.prompt = stripped
            continue
        if _LOOKS_LIKE_EXAMPLE.match(stripped):
            hint = "### User: <utterance>" if stripped.lower().lstrip("#* ").startswith(("user", "human")) \
                else "### Assistant: <call>"
            problems.append(ExampleFileError(path, number, f"looks like an example but is not in the format: "
                                             f"{stripped[:50]!r}; write '{hint}'"))  # fmt: skip
        else:
            problems.append(ExampleFileError(path, number, f"unexpected line {stripped[:50]!r}"))
    if pending:
        problems.append(ExampleFileError(path, pending[1], "'### User:' has no '### Assistant:' line after it"))
    if not result.prompt:
        problems.append(ExampleFileError(path, 1, f"no '{PROMPT}' line: start the file with '{PROMPT}' and the "
                                         "skill's one-line description"))  # fmt: skip
    return result, problems


def write_example_file(example_file: ExampleFile, path: Path | None = None) -> Path:
    """Write atomically: a crash mid-write leaves the old file intact."""
    return write_atomic(Path(path or example_file.path or f"{example_file.skill}{SUFFIX}"), example_file.render())


def write_atomic(target: Path, text: str) -> Path:
    """Write UTF-8 text through a temporary file beside ``target`` and rename it into place. A symlink's file is
    the one written (the link stays), and the file keeps its permissions (a new one gets 0644)."""
    target = target.resolve() if target.is_symlink() else target
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def utterance_key(text: str) -> str:
    """Near-duplicate key: case, punctuation and spacing ignored."""
    return " ".join(re.sub(r"[^\w\s]", "", text.casefold()).split())


def check_call(example: Example, path: Path, registry: Registry, skill: str | None) -> ExampleFileError | None:
    """The call must parse, be canonical, belong to the file's skill, and copy its text arguments from the
    utterance (DESIGN: arguments are spans)."""
    try:
        call = registry.parse(example.call)
    except CallError as exc:
        return ExampleFileError(path, example.line + 1, str(exc))
    if str(call) != example.call:
        return ExampleFileError(path, example.line + 1, f"not in canonical form; write {call}")
    if skill and call.name != skill:
        return ExampleFileError(path, example.line + 1, f"calls {call.name} but this file is for {skill}; move it "
                                f"to {call.name}{SUFFIX}")  # fmt: skip
    for parameter in registry.get(call.name).parameters:
        value = call.arguments.get(parameter.name)
        if parameter.span and isinstance(value, str) and not span_positions(example.text, value):
            return ExampleFileError(path, example.line + 1, f"{parameter.name}={value!r} is not a span of whole "
                                    "words of the utterance; copy the words exactly as said")  # fmt: skip
    return None


@dataclass
class ExampleSet:
    """All example files of some folders, checked against a registry."""

    files: dict[str, ExampleFile]
    problems: list[ExampleFileError]
    registry: Registry | None = None
    """The registry the rows were checked against (what composes rows of several calls)."""

    def counts(self) -> dict[str, int]:
        return {skill: len(f.rows) for skill, f in self.files.items()}

    def rows(self) -> Iterable[tuple[str, Example]]:
        for skill, example_file in self.files.items():
            for example in example_file.rows:
                yield skill, example

    def fingerprint(self) -> str:
        """sha256 of every (skill, utterance, call): what a trained router records to notice changed examples."""
        digest = hashlib.sha256()
        for skill, example in sorted(self.rows(), key=lambda row: (row[0], row[1].text, row[1].call)):
            digest.update(json.dumps([skill, example.text, example.call], ensure_ascii=False).encode())
        return digest.hexdigest()


def load_examples(folders: Iterable[Path], registry: Registry) -> ExampleSet:
    """The front door: read every ``*_examples.txt`` in the folders and check each against the registry.

    Problems: the format, calls that fail to parse or validate, non-canonical calls, arguments that are not spans,
    duplicate utterances (after case and punctuation), files for skills that are not loaded, skills with no file.
    """
    example_set = read_examples(folders, registry)
    files, problems = example_set.files, example_set.problems
    seen: dict[str, tuple[Path, int]] = {}
    for skill, example_file in files.items():
        for example in example_file.rows:
            assert example_file.path is not None
            problem = check_call(example, example_file.path, registry, skill)
            if problem:
                problems.append(problem)
            key = utterance_key(example.text)
            if key in seen:
                other_path, other_line = seen[key]
                problems.append(ExampleFileError(example_file.path, example.line, f"duplicate of {other_path.name}:"
                                                 f"{other_line} ({example.text!r}); keep one", "duplicate"))  # fmt: skip
            else:
                seen[key] = (example_file.path, example.line)
    for name in registry.names:
        if name not in files:
            message = (f"skill {name} has no example file, so the router cannot learn it; write this one (the "
                       f"format: README, 'Example files'), or draft rows with `skillcall generate --skill {name}`")
            problems.append(ExampleFileError(new_example_path(registry, name), 0, message, "missing"))
    return example_set


def new_example_path(registry: Registry, skill: str, examples_dir: Path = EXAMPLES_DIR) -> Path:
    """Where a skill's example file belongs when it has none: ``examples_dir`` for a built-in, beside the skill's
    own file for yours."""
    source = Path(registry.get(skill).source)
    builtin = not source.is_file() or source.parent.resolve() == BUILTIN_DIR.resolve()
    return (examples_dir if builtin else source.parent) / f"{skill}{SUFFIX}"


def read_examples(folders: Iterable[Path], registry: Registry) -> ExampleSet:
    """The example files of the loaded skills, read but with no row checked: the same rows, and so the same
    fingerprint, as ``load_examples`` in a tenth of the time (what ``skillcall route`` needs to warn of changes).
    Problems: only the format's, and files for skills that are not loaded or that have a file already."""
    files: dict[str, ExampleFile] = {}
    problems: list[ExampleFileError] = []
    for folder in folders:
        for path in sorted(Path(folder).glob(f"*{SUFFIX}")):
            example_file, found = read_example_file(path)
            problems += found
            if example_file.skill not in registry:
                problems.append(ExampleFileError(path, 0, f"no loaded skill is called {example_file.skill!r}; "
                                                 "rename the file or fix the skill so it loads"))  # fmt: skip
                continue
            if example_file.skill in files:
                problems.append(ExampleFileError(path, 0, f"a second example file for {example_file.skill} "
                                                 f"(first: {files[example_file.skill].path}); merge them"))  # fmt: skip
                continue
            files[example_file.skill] = example_file
    return ExampleSet(dict(sorted(files.items())), problems, registry)


def problem_summary(problems: list[ExampleFileError]) -> str:
    kinds = Counter(p.path.name for p in problems)
    return ", ".join(f"{name}: {count}" for name, count in kinds.most_common())
