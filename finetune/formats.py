"""The dataset for other trainers: the same splits as ``skillcall dataset``, written in the shapes they read.

| format | one row |
|---|---|
| ``jsonl`` | ``{"text", "call", "skill"}`` (what ``skillcall train`` reads) |
| ``alpaca`` | ``{"instruction", "input", "output"}``: the project's instruction, the words, the call |
| ``chatml`` | ``{"messages": [system, user, assistant]}``: chat messages (trl's conversational format) |
| ``function-calls`` | ``{"instruction", "input": {"user_question"}, "output": {"function_call": {…}}}`` |

Every format is one JSON object per line in ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl``, the names
``datasets.load_dataset(folder)`` takes for the splits. A function call is ``{"name", "arguments"}``, its
``arguments`` a JSON string as OpenAI's API writes it (the keys differ from skill to skill, which one column of
objects could not hold); a function-call pair holds one call, so that format has no rows of several requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from skills import Registry

from .dataset import SPLITS, DatasetError, DatasetOptions, DatasetResult, split_rows
from .examples import ExampleSet, write_atomic
from .prompts import DEFAULT_TEMPLATE, SkillList, load_template, skills_text

Format = Literal["jsonl", "alpaca", "chatml", "function-calls"]
FORMATS: tuple[str, ...] = ("jsonl", "alpaca", "chatml", "function-calls")


@dataclass(frozen=True)
class FormatOptions:
    """How ``export_dataset`` writes the rows."""

    format: Format = "jsonl"
    skill_list: SkillList = "none"
    """Skills listed after the instruction: none (as the shipped router is trained: it learns its skills), names,
    or full (each skill's ``#### Prompt:`` line: a model that reads the list can route skills it never saw)."""
    template: str = DEFAULT_TEMPLATE
    """The prompt template whose instruction (``system``) the rows carry."""


def instruction(registry: Registry, options: FormatOptions, descriptions: dict[str, str] | None = None) -> str:
    """The project's instruction text, with the skill list ``options.skill_list`` asks for."""
    listed = skills_text(registry, options.skill_list, descriptions)
    system = load_template(options.template).system
    return f"{system}\n{listed}" if listed else system


def row_writer(registry: Registry, options: FormatOptions, descriptions: dict[str, str] | None = None
               ) -> Callable[[dict], dict]:  # fmt: skip
    """A function from a dataset row (``{"text", "call", "skill"}``) to the row of ``options.format``."""
    told = instruction(registry, options, descriptions)
    if options.format == "jsonl":
        return dict
    if options.format == "alpaca":
        return lambda row: {"instruction": told, "input": row["text"], "output": row["call"]}
    if options.format == "chatml":
        return lambda row: {"messages": [{"role": "system", "content": told}, {"role": "user", "content": row["text"]},
                                         {"role": "assistant", "content": row["call"]}]}  # fmt: skip

    def function_call(row: dict) -> dict:
        call = registry.parse(row["call"])
        return {"instruction": told, "input": {"user_question": row["text"]},
                "output": {"function_call": {"name": call.name,
                                             "arguments": json.dumps(call.arguments, ensure_ascii=False)}}}  # fmt: skip

    return function_call


def export_dataset(example_set: ExampleSet, options: DatasetOptions, format_options: FormatOptions) -> DatasetResult:
    """The front door: ``skillcall dataset --format F``. The splits ``build_dataset`` makes for the same seed
    (function-call pairs without rows of several requests), each row written in the format, atomically, to
    ``options.out``."""
    if format_options.format not in FORMATS:
        raise DatasetError(f"no dataset format {format_options.format!r}; use one of {', '.join(FORMATS)}")
    if example_set.registry is None:
        raise DatasetError("the examples were read without a registry; load them with load_examples")
    if format_options.format == "function-calls":
        options = replace(options, compound=0.0)
    splits, result = split_rows(example_set, options)
    descriptions = {skill: f.prompt for skill, f in example_set.files.items() if f.prompt}
    write = row_writer(example_set.registry, format_options, descriptions)
    try:
        for name in SPLITS:
            text = "".join(json.dumps(write(row), ensure_ascii=False, sort_keys=True) + "\n" for row in splits[name])
            result.paths[name] = write_atomic(Path(options.out) / f"{name}.jsonl", text)
    except OSError as exc:
        raise DatasetError(f"cannot write the splits to {options.out} ({exc}); choose another --out") from None
    return result
