"""New examples from a chat model through OpenAI function calling, validated, deduplicated, appended atomically.

Two sources: the skill's own rows as seeds (``generate --skill S -n N``), or the user's documents
(``generate --skill ask --from-docs DIR``: each chunk of text -> questions a person could ask that it answers,
the instruction-tuning recipe of chunk -> questions), each question a row whose one text argument is the question.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from skills import CallError, Registry, SkillCall, SkillcallError

from .documents import ChunkOptions, Skipped, chunks, find_documents
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
    from_docs: Path | None = None
    """A folder of documents: ``n`` questions are asked for per chunk of its text files, instead of rows like the
    skill's own (the skill must take one text argument, as ``ask(question)`` does)."""
    chunking: ChunkOptions = field(default_factory=ChunkOptions)
    """How ``from_docs`` files are cut into chunks."""


@dataclass
class GenerateResult:
    path: Path
    added: list[Example] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(the row as the model sent it, why it was refused)."""
    requests: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    """``from_docs`` files passed over (not text, empty, too large, unreadable) with why."""
    chunks: int = 0
    """``from_docs`` chunks asked about."""


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
    """The front door: ask the model in batches until ``n`` valid new rows are appended (or requests run out);
    with ``from_docs``, ask for ``n`` questions about each chunk of the documents. ``others``: the utterances of the
    other skills' files, refused too (the same words under two skills would teach the router both). ``progress``
    is called with the rows added (with ``from_docs``: with 1 for each chunk done).

    The file is rewritten atomically after every batch (chunk), so an interrupted run keeps what it had validated.
    """
    registry.get(options.skill)  # CallError for an unknown skill, with a suggestion
    question = _question_parameter(registry, options.skill) if options.from_docs is not None else None
    path = Path(examples_dir) / f"{options.skill}{SUFFIX}"
    example_file, problems = read_example_file(path) if path.exists() else (ExampleFile(options.skill, path=path), [])
    if problems:
        raise GenerateError(f"fix {path} first: {problems[0]}")
    prompt = example_file.prompt or f"{registry.get(options.skill).signature} {registry.get(options.skill).description}"
    example_file.prompt = prompt
    client = _client(options)
    seen = {utterance_key(text) for text in [*(e.text for e in example_file.rows), *others]}
    result = GenerateResult(path)
    if question is not None:
        return _from_docs(options, registry, client, (question, prompt), seen, result, progress)
    rng = random.Random(options.seed)
    limit = options.max_requests or 3 * -(-options.n // options.batch_size) + 2
    while len(result.added) < options.n and result.requests < limit:
        wanted = min(options.batch_size, options.n - len(result.added))
        result.requests += 1
        message = _ask(client, options, result, _messages(example_file, registry, wanted, rng, options.seed_examples),
                       tool_schema())  # fmt: skip
        if message is None:
            continue
        rows, rejected = _rows_of(message)
        result.rejected += rejected
        batch = []
        for row in rows:
            accepted = _accept(row, options.skill, registry, path, seen)
            if isinstance(accepted, Example) and len(result.added) + len(batch) < options.n:
                batch.append(accepted)
            elif not isinstance(accepted, Example):
                result.rejected.append((json.dumps(row, ensure_ascii=False)[:200], accepted))
        before = len(result.added)
        example_file = _append(path, prompt, batch, result) or example_file  # the next seeds include them
        if len(result.added) > before and progress:
            progress(len(result.added) - before)
    for row, reason in result.rejected:
        logger.info("rejected %s: %s", row, reason)
    return result


def _client(options: GenerateOptions):
    import openai

    key = os.environ.get(options.api_key_env)
    if not key and not options.base_url:
        raise GenerateError(f"no API key: set ${options.api_key_env}, or pass --base-url for a local "
                            "OpenAI-compatible server")  # fmt: skip
    return openai.OpenAI(base_url=options.base_url, api_key=key or "not-needed", max_retries=options.max_retries,
                         timeout=options.timeout_s)  # fmt: skip


def _ask(client, options: GenerateOptions, result: GenerateResult, messages: list[dict], tool: dict):
    """One request forcing ``tool``: the message, or None when the response had no choices (recorded). 429 and
    5xx answers are retried by the client with exponential backoff; an endpoint that keeps failing, cannot be
    reached or refuses the key is a ``GenerateError`` saying how many rows were kept."""
    import openai

    kept = f"{len(result.added)} examples were added before this"
    try:
        response = client.chat.completions.create(
            model=options.model, messages=messages, tools=[tool],
            tool_choice={"type": "function", "function": {"name": tool["function"]["name"]}},
        )  # fmt: skip
    except openai.APITimeoutError as exc:
        raise GenerateError(f"{options.base_url or 'the OpenAI API'} gave no answer within {options.timeout_s:g} s "
                            f"({options.max_retries + 1} tries); try a smaller --batch-size or a faster model "
                            f"({kept})") from exc  # fmt: skip
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
        return None
    return response.choices[0].message


def _append(path: Path, prompt: str, batch: list[Example], result: GenerateResult) -> ExampleFile | None:
    """Append the rows to the file as it is on disk now (it may have been edited while the model answered),
    leaving out those it has meanwhile, and add them to ``result``; the file as written (None: nothing was)."""
    example_file = ExampleFile(path.name[: -len(SUFFIX)], prompt, path=path)
    if path.exists():
        example_file, problems = read_example_file(path)
        if problems:
            raise GenerateError(f"{path} changed during the run and no longer reads ({problems[0]}); fix it and run "
                                f"generate again ({len(result.added)} examples were added before this)")  # fmt: skip
        example_file.prompt = example_file.prompt or prompt
        on_disk = {utterance_key(row.text) for row in example_file.rows}
        batch = [example for example in batch if utterance_key(example.text) not in on_disk]
    if not batch:
        return None
    example_file.examples += batch
    try:
        write_example_file(example_file, path)
    except OSError as exc:
        raise GenerateError(f"cannot write {path} ({exc}); make it writable and run generate again "
                            f"({len(result.added)} examples were added before this)") from None  # fmt: skip
    result.added += batch
    return example_file


# -- from documents ----------------------------------------------------------------------------------------------
QUESTIONS_TOOL = "add_questions"
QUESTIONS_SYSTEM = """You write training data for the router of an offline voice assistant. You are given a \
passage from the user's own documents. Write questions a person could ask the assistant that the passage answers, \
the way they would say them aloud: plain questions, short, self-contained (name what they are about; never "the \
passage", "the text", "the document" or "this"), varied in wording, without a polite wrapper or the assistant's \
name. Return them by calling the add_questions tool."""


def questions_tool() -> dict:
    """The function the model must call with its questions."""
    return {
        "type": "function",
        "function": {
            "name": QUESTIONS_TOOL,
            "description": "Record questions a person could ask that the passage answers.",
            "parameters": {"type": "object", "additionalProperties": False, "required": ["questions"],
                           "properties": {"questions": {"type": "array", "items": {"type": "string"}}}},
        },
    }  # fmt: skip


def _question_parameter(registry: Registry, skill: str) -> str:
    """The one required text argument a question fills (``ask``'s ``question``); any other must be optional."""
    found = registry.get(skill)
    required = [p for p in found.parameters if p.required]
    if len(required) != 1 or not required[0].span:
        raise GenerateError(f"--from-docs writes each question as the one required text argument of a skill like "
                            f"ask(question: str); {found.signature} is not such a skill")  # fmt: skip
    return required[0].name


def _from_docs(options: GenerateOptions, registry: Registry, client, fill: tuple[str, str], seen: set[str],
               result: GenerateResult, progress: Callable[[int], None] | None) -> GenerateResult:  # fmt: skip
    """Each chunk of each document -> ``n`` questions -> rows ``skill(question="...")``, appended chunk by chunk.
    ``fill``: the parameter a question fills, and the file's prompt line. A document that cannot be read to its
    end is recorded in ``skipped`` from where it stops; a malformed answer is recorded in ``rejected``; both go on
    to the next."""
    assert options.from_docs is not None
    question, prompt = fill
    documents, result.skipped = find_documents(options.from_docs, options.chunking)
    for skipped in result.skipped:
        logger.info("skipped %s", skipped)
    limit = options.max_requests
    for document in documents:
        read = 0
        try:
            for chunk in chunks(document, options.chunking):
                if limit is not None and result.requests >= limit:
                    return result
                read += 1
                result.requests += 1
                result.chunks += 1
                user = f"Passage (from {document.name}):\n\n{chunk}\n\nWrite {options.n} questions it answers."
                asked = [{"role": "system", "content": QUESTIONS_SYSTEM}, {"role": "user", "content": user}]
                message = _ask(client, options, result, asked, questions_tool())
                batch = []
                for said in _questions_of(message, result) if message is not None else []:
                    accepted = _accept_question(said, options.skill, question, registry, result.path, seen)
                    if isinstance(accepted, Example):
                        batch.append(accepted)
                    else:
                        result.rejected.append((json.dumps(said, ensure_ascii=False)[:200], accepted))
                _append(result.path, prompt, batch[: options.n], result)
                if progress:
                    progress(1)
        except (UnicodeDecodeError, OSError) as exc:
            reason = "not UTF-8 text from here on" if isinstance(exc, UnicodeDecodeError) else \
                f"cannot read it ({getattr(exc, 'strerror', None) or exc})"
            result.skipped.append(Skipped(document, f"{reason}: the rest skipped after {read} chunk(s) of it"))
    return result


def _questions_of(message, result: GenerateResult) -> list:
    """The questions of the model's tool calls; a malformed call is recorded in ``rejected`` and passed over."""
    found = []
    for call in message.tool_calls or []:
        arguments = call.function.arguments if call.function else ""
        if call.function is None or call.function.name != QUESTIONS_TOOL:
            result.rejected.append((str(arguments)[:200], f"called {getattr(call.function, 'name', None)!r}, not "
                                    f"{QUESTIONS_TOOL}"))  # fmt: skip
            continue
        try:
            items = json.loads(arguments)["questions"]
            if not isinstance(items, list):
                raise TypeError("questions is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            result.rejected.append((str(arguments)[:200], f"malformed tool arguments ({type(exc).__name__}: {exc})"))
            continue
        found += items
    if not message.tool_calls:
        result.rejected.append(((message.content or "")[:200], "the model answered without calling the tool"))
    return found


def _accept_question(said: object, skill: str, parameter: str, registry: Registry, path: Path,
                     seen: set[str]) -> Example | str:  # fmt: skip
    """A valid new row for a question (the utterance as said; the argument the question without its closing
    punctuation), or the reason it is refused."""
    if not isinstance(said, str):
        return "not a string"
    return _accept({"user": said, "assistant": str(SkillCall(skill, {parameter: _question_span(said)}))}, skill,
                   registry, path, seen)  # fmt: skip


def _question_span(text: str) -> str:
    return " ".join(text.split()).rstrip("?!. ")
