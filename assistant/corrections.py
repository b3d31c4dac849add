"""Corrections: the right call for a turn the router got wrong, learnt as an example row.

``skillcall correct TURN 'CALL'`` and the daemon's spoken corrections ("No, I meant the weather in Paris") end here.
The call is checked like any example row against the words that were heard (canonical, the skill loaded, every
text argument a span of those words) and appended atomically under ``#### Corrections:`` (rows always in the
training split) of the skill's own example file: ``<skill>_examples.txt`` where it already is (the examples folder for a built-in skill, beside the skill for
yours). So ``examples check``, ``dataset`` and ``train --init router`` see a correction as they see any row, and
the history database remembers which turn it corrected.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from finetune.examples import (
    SUFFIX,
    Example,
    ExampleFile,
    check_call,
    new_example_path,
    read_example_file,
    read_examples,
    utterance_key,
    write_example_file,
)
from finetune.prompts import clean_utterance
from skills import CallError, Registry, SkillCall, SkillcallError, span_positions

from .history import History
from .scaffold import prompt_line
from .wake import WakeOptions, check_wake

logger = logging.getLogger(__name__)


class Refusal(enum.Enum):
    """Why a correction was not learnt."""

    UNKNOWN_TURN = "unknown turn"
    NOTHING_HEARD = "nothing heard"
    INVALID_CALL = "invalid call"
    SEVERAL_CALLS = "several calls"
    NOT_A_SPAN = "not a span"
    CONFLICT = "conflict"
    """The words are already an example of another call (one a correction did not write)."""
    FILE = "file"
    """The skill's example file has problems or cannot be written."""


SPOKEN_REFUSALS = {
    Refusal.NOT_A_SPAN: "I can't learn that one: those words aren't in what I heard.",
    Refusal.CONFLICT: "I can't learn that one: my examples already say otherwise.",
    Refusal.SEVERAL_CALLS: "I can learn one request at a time.",
}
"""What the daemon says for a refusal; any other: ``SPOKEN_REFUSAL``."""
SPOKEN_REFUSAL = "I couldn't save that correction."


class CorrectionError(SkillcallError):
    """A correction refused: one line saying why, and the ``refusal`` as a value."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


class Learnt(enum.Enum):
    ADDED = "added"
    REPLACED = "replaced"
    """This turn's earlier correction was replaced."""
    KNOWN = "known"
    """The words were already an example of this call: nothing written."""


@dataclass(frozen=True)
class Correction:
    """A learnt correction: the words, the right call, and the row in its example file."""

    text: str
    call: SkillCall
    path: Path
    line: int
    """The row's ``### User:`` line."""
    learnt: Learnt
    turn: int | None = None


@dataclass
class Corrector:
    """Learns corrections into the example files of ``folders`` (the configuration's ``example_dirs()``)."""

    registry: Registry
    folders: list[Path]
    examples_dir: Path
    """Where a built-in skill's example file goes when it has none."""
    history: History | None = None
    wake: WakeOptions = field(default_factory=WakeOptions)
    """The wake phrase, taken off a turn's words (the router never saw it)."""

    def correct_turn(self, turn_id: int, call: str | SkillCall) -> Correction:
        """``skillcall correct``: learn ``call`` for the words of turn ``turn_id`` in the history."""
        if self.history is None:
            raise CorrectionError("no history database to find the turn in", Refusal.UNKNOWN_TURN)
        turn = self.history.turn(turn_id)
        if turn is None:
            raise CorrectionError(f"no turn {turn_id} in the history {self.history.path}; `skillcall history` "
                                  "lists the turns with their numbers", Refusal.UNKNOWN_TURN)  # fmt: skip
        woken = check_wake(turn["text"] or "", self.wake, True)
        if not (turn["text"] or "").strip() or woken is None or not woken.command.strip():
            why = ": ".join(part for part in (turn["skipped"], turn.get("detail")) if part) or "nothing"
            raise CorrectionError(f"turn {turn_id} heard no words ({why}), so there is "
                                  "nothing to learn", Refusal.NOTHING_HEARD)  # fmt: skip
        return self.learn(woken.command, call, turn_id)

    def learn(self, text: str, call: str | SkillCall, turn_id: int | None = None) -> Correction:
        """Learn ``call`` for ``text``; ``turn_id`` (if any) is the turn it corrects, whose earlier correction it
        replaces. Raises ``CorrectionError`` with the reason."""
        text = clean_utterance(text)  # as the router reads it: one line, no control characters
        parsed = self._parse(call)
        parsed = _as_heard(text, parsed, self.registry)
        _check_spans(text, parsed, self.registry)
        path = self._file_for(parsed.name)
        example = Example(text, str(parsed))
        problem = check_call(example, path, self.registry, parsed.name)
        if problem:
            raise CorrectionError(f"cannot learn {parsed} for {text!r}: {problem.message}", Refusal.INVALID_CALL)
        earlier = self._earlier(turn_id)
        key = utterance_key(text)
        replaced = None
        for example_file in read_examples(self.folders, self.registry).files.values():
            where = example_file.path or path
            for row in (row for row in example_file.rows if utterance_key(row.text) == key):
                if row.call == str(parsed):
                    self._remember(turn_id, parsed, where)
                    return Correction(text, parsed, where, row.line, Learnt.KNOWN, turn_id)
                if earlier is None or row.call != earlier:
                    raise CorrectionError(f"{where}:{row.line}: {row.text!r} is already an example of {row.call}; "
                                          "edit or remove that row, then correct again", Refusal.CONFLICT)  # fmt: skip
                replaced = (where, row)
        if replaced is not None:
            self._remove(*replaced)
        line = self._append(path, example)
        self._remember(turn_id, parsed, path)
        return Correction(text, parsed, path, line, Learnt.REPLACED if replaced else Learnt.ADDED, turn_id)

    def _parse(self, call: str | SkillCall) -> SkillCall:
        written = str(call).strip()
        written = f"{written}()" if written.isidentifier() else written  # `skillcall correct 12 other`
        try:
            calls = self.registry.parse_calls(written)
        except CallError as exc:
            raise CorrectionError(str(exc), Refusal.INVALID_CALL) from None
        if len(calls) != 1:
            raise CorrectionError(f"{len(calls)} calls: a correction is one call (example files hold one request "
                                  "per utterance; rows of several are composed from them)",
                                  Refusal.SEVERAL_CALLS)  # fmt: skip
        return calls[0]

    def _file_for(self, skill: str) -> Path:
        return example_path(self.registry, skill, self.folders, self.examples_dir)

    def _earlier(self, turn_id: int | None) -> str | None:
        """The call an earlier correction of this turn wrote (its row may be replaced)."""
        if self.history is None or turn_id is None:
            return None
        turn = self.history.turn(turn_id)
        return ((turn or {}).get("correction") or {}).get("call")

    def _remember(self, turn_id: int | None, call: SkillCall, path: Path) -> None:
        if self.history is not None and turn_id is not None:
            self.history.add_correction(turn_id, str(call), path)

    def _read(self, path: Path) -> ExampleFile:
        if not path.exists():
            return ExampleFile(path.name[: -len(SUFFIX)], path=path)
        example_file, problems = read_example_file(path)
        if problems:
            raise CorrectionError(f"fix {path} first ({len(problems)} problem(s)), first: {problems[0]}; "
                                  "`skillcall examples check` lists them", Refusal.FILE)  # fmt: skip
        return example_file

    def _append(self, path: Path, example: Example) -> int:
        example_file = self._read(path)
        example_file.prompt = example_file.prompt or prompt_line(self.registry.get(example_file.skill))
        example_file.corrections.append(example)  # "#### Corrections:": always in the training split
        self._write(example_file, path)
        written, _ = read_example_file(path)
        return next(row.line for row in reversed(written.rows) if row.text == example.text)

    def _remove(self, path: Path, row: Example) -> None:
        example_file = self._read(path)
        example_file.prompt_examples = [e for e in example_file.prompt_examples if e.text != row.text]
        example_file.examples = [e for e in example_file.examples if e.text != row.text]
        example_file.corrections = [e for e in example_file.corrections if e.text != row.text]
        self._write(example_file, path)

    def _write(self, example_file: ExampleFile, path: Path) -> None:
        try:
            write_example_file(example_file, path)
        except OSError as exc:
            raise CorrectionError(f"cannot write {path} ({exc}); make it writable and correct again",
                                  Refusal.FILE) from None  # fmt: skip


def example_path(registry: Registry, skill: str, folders: list[Path], examples_dir: Path) -> Path:
    """A skill's example file: where it already is among ``folders``, else where a new one belongs (the examples
    folder for a built-in skill, beside the skill's own file for yours)."""
    for folder in folders:
        if (Path(folder) / f"{skill}{SUFFIX}").exists():
            return Path(folder) / f"{skill}{SUFFIX}"
    return new_example_path(registry, skill, examples_dir)


def _as_heard(text: str, call: SkillCall, registry: Registry) -> SkillCall:
    """The call with each text argument written as it was heard when it differs only in case ("paris" for heard
    "Paris"): the span rule compares exactly."""
    arguments = dict(call.arguments)
    for parameter in registry.get(call.name).parameters:
        value = arguments.get(parameter.name)
        if not (parameter.span and isinstance(value, str)) or span_positions(text, value):
            continue
        lowered = text.lower()
        if len(lowered) == len(text):  # lower() kept every offset
            found = span_positions(lowered, value.lower())
            if found:
                arguments[parameter.name] = text[found[0] : found[0] + len(value)]
    return registry.validate(call.name, arguments) if arguments != call.arguments else call


def _check_spans(text: str, call: SkillCall, registry: Registry) -> None:
    for parameter in registry.get(call.name).parameters:
        value = call.arguments.get(parameter.name)
        if parameter.span and isinstance(value, str) and not span_positions(text, value):
            raise CorrectionError(f"{parameter.name}={value!r} is not in what was heard ({text!r}): a text argument "
                                  "copies words as said; correct with words from it", Refusal.NOT_A_SPAN)  # fmt: skip


# -- spoken corrections ----------------------------------------------------------------------------------------
_LEAD = r"^\W*(?:(?:um|uh|er|oh|hmm|well|sorry|otto)\W+)*"
_NO = r"(?:no|nope|nah)"
_MEANT = (r"(?:i\s+(?:meant|mean|said|wanted|asked(?:\s+for)?|was\s+asking(?:\s+for)?)|"
          r"what\s+i\s+(?:meant|said|wanted)\s+(?:was|is))")
_WRONG = (r"(?:(?:that'?s|that\s+is|that\s+was|it'?s|you'?re|you\s+are|you\s+got\s+(?:it|that))\s+(?:wrong|not\s+(?:"
          r"right|it|what\s+i\s+(?:meant|said|wanted|asked(?:\s+for)?)))|wrong(?:\s+one)?(?=\W*$|[.,!;:]))")
_NOT_FOR_ME = (r"(?:i\s+(?:wasn'?t|was\s+not)\s+(?:talking|speaking)\s+to\s+you|that\s+(?:wasn'?t|was\s+not)\s+for\s+"
               r"you|i\s+(?:wasn'?t|was\s+not)\s+asking\s+you)")
_PATTERNS = [
    re.compile(_LEAD + rf"(?:{_NO}\W+)?{_NOT_FOR_ME}\W*$", re.IGNORECASE),
    re.compile(_LEAD + rf"{_NO}\W+{_MEANT}\b\W*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL),
    re.compile(_LEAD + rf"(?:{_NO}\W+)?{_WRONG}\W*(?:(?:{_NO}\W+)?{_MEANT}\b\W*)?(?P<rest>.*)$",
               re.IGNORECASE | re.DOTALL),
    re.compile(_LEAD + r"(?:i\s+meant|what\s+i\s+meant\s+was)\b\W*(?P<rest>.+)$", re.IGNORECASE | re.DOTALL),
]  # fmt: skip


@dataclass(frozen=True)
class SpokenCorrection:
    """An utterance that corrects the turn before it."""

    words: str
    """What was meant, as said after the correction phrase ("the weather in Paris"); empty for "That's wrong."."""
    not_for_me: bool = False
    """ "I wasn't talking to you": the turn was no request (``other()``)."""


def spoken_correction(text: str) -> SpokenCorrection | None:
    """Whether an utterance corrects the turn before it: "No, I meant the weather in Paris", "That's wrong.",
    "That's not what I said, I asked for the time in Tokyo", "I meant Paris", "I wasn't talking to you". None for
    anything else ("No.", "Wrong number again?")."""
    for pattern in _PATTERNS:
        found = pattern.match(text.strip())
        if found:
            rest = found.groupdict().get("rest")
            if rest is None:
                return SpokenCorrection("", not_for_me=True)
            return SpokenCorrection(rest.strip(" \t\n,.;:!-"))
    return None
