"""New examples from a chat model through OpenAI function calling, validated, deduplicated, appended atomically."""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from skills import CallError, Registry, SkillcallError

from .examples import (
    SUFFIX,
    Example,
    ExampleFile,
    check_call,
    read_example_file,
    utterance_key,
    write_example_file,
)

logger = logging.getLogger(__name__)

TOOL_NAME = "add_examples"
SYSTEM = """You write training data for the router of an offline voice assistant. Whisper transcribes what a \
person says; the router turns the text into exactly one skill call. Write utterances the way Whisper transcribes \
real people: mostly capitalised with punctuation, some lower-case without, contractions, filler words ("um", "uh"), \
polite wrappers, sometimes the wake word "Otto," in front, numbers as digits and as words. Vary wording and \
entities widely; never repeat a given example. Text arguments are spans: copy the words exactly as said, without \
prepositions, leading articles or trailing punctuation. Return the examples by calling the add_examples tool."""


class GenerateError(SkillcallError):
    """Generation cannot run or the endpoint keeps failing."""


@dataclass(frozen=True)
class GenerateOptions:
    """One ``skillcall generate`` run."""

    skill: str
    """The skill to write examples for; its examples file gets the new rows."""
    n: int = 20
    """How many new valid rows to append."""
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    """Any OpenAI-compatible endpoint (OpenAI, vLLM, llama-server); None = OpenAI's."""
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: int = 10
    """Rows asked for per request."""
    seed_examples: int = 15
    """Existing rows shown to the model as style seeds."""
    max_retries: int = 4
    """Retries of a request on 429 and 5xx answers, with exponential backoff (the openai client's)."""
    max_requests: int | None = None
    """Stop after this many requests even if fewer than ``n`` rows were valid; None = 3 x n / batch_size + 2."""
    timeout_s: float = 120.0
    seed: int = 0


@dataclass
class GenerateResult:
    path: Path
    added: list[Example] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(the row as the model sent it, why it was refused)."""
    requests: int = 0


def tool_schema() -> dict:
    """The function the model must call: a list of {user, assistant} pairs."""
    pair = {
        "type": "object",
        "properties": {
            "user": {"type": "string", "description": "What the person said, as Whisper would transcribe it."},
            "assistant": {"type": "string", "description": "The one skill call it routes to, e.g. weather(location=\"Oslo\")."},
        },
        "required": ["user", "assistant"],
        "additionalProperties": False,
    }  # fmt: skip
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Record new training examples for the router.",
            "parameters": {"type": "object", "properties": {"examples": {"type": "array", "items": pair}},
                           "required": ["examples"], "additionalProperties": False},  # fmt: skip
        },
    }


def _messages(example_file: ExampleFile, registry: Registry, count: int, rng: random.Random, k: int) -> list[dict]:
    found = registry.get(example_file.skill)
    seeds = example_file.prompt_examples + rng.sample(example_file.examples, min(k, len(example_file.examples)))
    shown = "\n".join(f"User: {e.text}\nAssistant: {e.call}" for e in seeds)
    user = (f"Skill: {found.signature} - {example_file.prompt or found.description}\n\n"
            f"Existing examples:\n{shown}\n\nWrite {count} new, different examples for this skill.")  # fmt: skip
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _rows_of(message) -> tuple[list, list[tuple[str, str]]]:
    rows, rejected = [], []
    for call in message.tool_calls or []:
        arguments = call.function.arguments if call.function else ""
        if call.function is None or call.function.name != TOOL_NAME:
            rejected.append((str(arguments)[:200], f"called {getattr(call.function, 'name', None)!r}, not {TOOL_NAME}"))
            continue
        try:
            payload = json.loads(arguments)
            items = payload["examples"]
            if not isinstance(items, list):
                raise TypeError("examples is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            rejected.append((str(arguments)[:200], f"malformed tool arguments ({type(exc).__name__}: {exc})"))
            continue
        rows += items
    if not message.tool_calls:
        rejected.append(((message.content or "")[:200], "the model answered without calling the tool"))
    return rows, rejected


def _accept(row: object, skill: str, registry: Registry, path: Path, seen: set[str]) -> Example | str:
    """A valid new Example, or the reason the row is refused."""
    if not isinstance(row, dict) or not isinstance(row.get("user"), str) or not isinstance(row.get("assistant"), str):
        return "not a {user, assistant} pair of strings"
    text = " ".join(row["user"].split())
    if not text or len(text) > 300:
        return "empty or longer than 300 characters"
    try:
        call = str(registry.parse(row["assistant"]))
    except CallError as exc:
        return f"invalid call: {exc}"
    example = Example(text, call)
    problem = check_call(example, path, registry, skill)
    if problem:
        return problem.message
    key = utterance_key(text)
    if key in seen:
        return "duplicate of an existing example"
    seen.add(key)
    return example


def generate(
    options: GenerateOptions,
    registry: Registry,
    examples_dir: Path,
    progress: Callable[[int], None] | None = None,
    others: Iterable[str] = (),
) -> GenerateResult:
    """The front door: ask the model in batches until ``n`` valid new rows are appended (or requests run out).
    ``others``: the utterances of the other skills' files, refused too (the same words under two skills would
    teach the router both).

    The file is rewritten atomically after every batch, so an interrupted run keeps what it had validated.
    """
    import openai

    registry.get(options.skill)  # CallError for an unknown skill, with a suggestion
    path = Path(examples_dir) / f"{options.skill}{SUFFIX}"
    example_file, problems = read_example_file(path) if path.exists() else (ExampleFile(options.skill, path=path), [])
    if problems:
        raise GenerateError(f"fix {path} first: {problems[0]}")
    prompt = example_file.prompt or f"{registry.get(options.skill).signature} {registry.get(options.skill).description}"
    example_file.prompt = prompt
    key = os.environ.get(options.api_key_env)
    if not key and not options.base_url:
        raise GenerateError(f"no API key: set ${options.api_key_env}, or pass --base-url for a local "
                            "OpenAI-compatible server")  # fmt: skip
    client = openai.OpenAI(base_url=options.base_url, api_key=key or "not-needed", max_retries=options.max_retries,
                           timeout=options.timeout_s)  # fmt: skip
    seen = {utterance_key(text) for text in [*(e.text for e in example_file.rows), *others]}
    result = GenerateResult(path)
    rng = random.Random(options.seed)
    limit = options.max_requests or 3 * -(-options.n // options.batch_size) + 2
    while len(result.added) < options.n and result.requests < limit:
        wanted = min(options.batch_size, options.n - len(result.added))
        result.requests += 1
        try:
            response = client.chat.completions.create(
                model=options.model,
                messages=_messages(example_file, registry, wanted, rng, options.seed_examples),
                tools=[tool_schema()],
                tool_choice={"type": "function", "function": {"name": TOOL_NAME}},
            )
        except openai.APITimeoutError as exc:
            raise GenerateError(f"{options.base_url or 'the OpenAI API'} gave no answer within {options.timeout_s:g} s "
                                f"({options.max_retries + 1} tries); try a smaller --batch-size or a faster model "
                                f"({len(result.added)} examples were added before this)") from exc  # fmt: skip
        except openai.APIConnectionError as exc:
            raise GenerateError(f"cannot reach {options.base_url or 'the OpenAI API'} ({exc}); check --base-url") from exc
        except openai.AuthenticationError as exc:
            raise GenerateError(f"the endpoint refused the API key in ${options.api_key_env}") from exc
        except openai.APIStatusError as exc:
            retried = exc.status_code in (408, 409, 429) or exc.status_code >= 500  # what the client retries
            after = f" after {options.max_retries} retries" if retried and options.max_retries else ""
            raise GenerateError(f"the endpoint answered {exc.status_code}{after}: {exc.message}") from exc
        if not response.choices:
            result.rejected.append(("", "the response had no choices"))
            continue
        rows, rejected = _rows_of(response.choices[0].message)
        result.rejected += rejected
        batch = []
        for row in rows:
            accepted = _accept(row, options.skill, registry, path, seen)
            if isinstance(accepted, Example) and len(result.added) + len(batch) < options.n:
                batch.append(accepted)
            elif not isinstance(accepted, Example):
                result.rejected.append((json.dumps(row, ensure_ascii=False)[:200], accepted))
        if batch:
            if path.exists():  # what is on disk now: the file may have been edited while the model answered
                example_file, problems = read_example_file(path)
                if problems:
                    raise GenerateError(f"{path} changed during the run and no longer reads ({problems[0]}); fix it "
                                        f"and run generate again ({len(result.added)} examples were added before "
                                        "this)")  # fmt: skip
                example_file.prompt = example_file.prompt or prompt
                on_disk = {utterance_key(row.text) for row in example_file.rows}
                batch = [example for example in batch if utterance_key(example.text) not in on_disk]
            example_file.examples += batch
            try:
                write_example_file(example_file, path)
            except OSError as exc:
                raise GenerateError(f"cannot write {path} ({exc}); make it writable and run generate again "
                                    f"({len(result.added)} examples were added before this)") from None  # fmt: skip
            result.added += batch
            if progress:
                progress(len(batch))
    for row, reason in result.rejected:
        logger.info("rejected %s: %s", row, reason)
    return result
