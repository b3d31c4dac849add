"""The skill registry: ``@skill``, loading skill files (built-in and user alike), validation and dispatch."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import importlib.util
import inspect
import logging
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .calls import MAX_CALLS, CallSequence, SkillCall, check_literal, check_written, read_call, split_calls
from .errors import CallError, SkillDefinitionError, SkillFailed, printable
from .settings import SkillSettings

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).parent / "builtin"
_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class SkillContext:
    """What the framework hands a skill that asks for it (a parameter annotated ``SkillContext``).

    The parameter is hidden from the model: it is in no schema, grammar or prompt.
    """

    settings: SkillSettings = field(default_factory=SkillSettings)
    notify: Callable[[str], None] = field(default=lambda text: logger.warning("%s", text))
    hold: Callable[[threading.Thread], None] = field(default=lambda work: None)
    """An in-process skill that leaves work running (a timer's countdown) hands its thread here: a one-shot command
    (``skillcall call``, ``run``) waits for it before it exits; the daemon lives on anyway. A skill in a worker
    process has no such work: the worker is reused or killed."""


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: Any
    default: Any = _EMPTY
    span: bool = False
    """A text parameter whose values are spans of the utterance (DESIGN); the router constrains them to be."""
    values: Callable[[str, SkillContext], bool] | None = None
    """For a span parameter: whether a value is one the skill can act on here (``@skill(values=...)``); the router
    then writes only spans it accepts."""

    @property
    def required(self) -> bool:
        return self.default is _EMPTY

    def __str__(self) -> str:
        text = f"{self.name}: {_type_name(self.annotation)}"
        return text if self.required else f"{text} = {self.default!r}"


@dataclass(frozen=True)
class Skill:
    """A registered skill: the function and everything derived from its signature."""

    name: str
    function: Callable[..., Any]
    description: str
    parameters: tuple[Parameter, ...]
    model: type[BaseModel]
    context_parameter: str | None = None
    risky: bool = False
    timeout_s: float | None = None
    source: str = ""
    warm: Callable[[], Any] | None = None
    in_process: bool = False
    """Runs in the caller's process (``@skill(in_process=True)``), not a worker: given up on at its limit, not
    stopped."""

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(str(p) for p in self.parameters)})"

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments, as OpenAI tools and dataset generation want it."""
        schema = self.model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        return schema

    def tool(self) -> dict[str, Any]:
        """The skill as an OpenAI function-calling tool."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.json_schema()},
        }


def skill(
    function: Callable[..., Any] | None = None,
    *,
    risky: bool = False,
    timeout_s: float | None = None,
    not_spans: tuple[str, ...] = (),
    warm: Callable[[], Any] | None = None,
    values: dict[str, Callable[[str, SkillContext], bool]] | None = None,
    in_process: bool = False,
) -> Any:
    """Mark a function as a skill: ``@skill`` or ``@skill(risky=True, not_spans=("query",))``.

    The name is the function's ``__name__``, the description its docstring's first line, the arguments its
    type-hinted keyword parameters. ``risky`` asks the daemon to confirm first; ``not_spans`` names string
    parameters whose values are not copied from the utterance; ``warm`` is called once in the background when the
    daemon starts (``Registry.warm``), for what the first call would otherwise wait for (an index, a model).
    ``values`` maps a text parameter copied from the utterance to a function ``(value, context) -> bool`` that says
    whether the skill can act on a value here (runapp: an installed app answers to the name); the router then
    copies only such spans, and where the utterance has none it does not call the skill (``router.known_values``).

    A skill from a file runs in a worker process, which is killed at the skill's time limit (``timeout_s``, else
    the settings'), whatever the skill is doing then. ``in_process=True`` runs it in the caller's process (the
    daemon's), in a thread, for a skill whose state must live there between calls (timers, which fire later and
    are cancelled by another call); such a skill is given up on at its limit but cannot be stopped.
    """

    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                  or not timeout_s > 0):  # fmt: skip
        raise SkillDefinitionError(f"@skill(timeout_s={timeout_s!r}): give a number of seconds above 0")
    if warm is not None and not callable(warm):
        raise SkillDefinitionError(f"@skill(warm={warm!r}): give a function that takes no arguments")
    if values is not None and (not isinstance(values, dict) or not all(callable(f) for f in values.values())):
        raise SkillDefinitionError(f"@skill(values={values!r}): give {{parameter name: function(value, context) -> "
                                   "bool}")  # fmt: skip

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__skill__ = _build_skill(fn, risky=risky, timeout_s=timeout_s, not_spans=not_spans,  # type: ignore[attr-defined]
                                    warm=warm, values=values or {}, in_process=bool(in_process))
        return fn

    return mark(function) if function is not None else mark


def _build_skill(fn: Callable[..., Any], *, risky: bool, timeout_s: float | None, not_spans: tuple[str, ...],
                 warm: Callable[[], Any] | None = None,
                 values: dict[str, Callable[[str, SkillContext], bool]] | None = None,
                 in_process: bool = False) -> Skill:
    name = fn.__name__
    if not name.isidentifier() or name.startswith("_"):
        raise SkillDefinitionError(f"skill name {name!r} must be a public Python identifier")
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise SkillDefinitionError(f"skill {name} must be a plain function that returns its reply (not async, "
                                   "not a generator)")  # fmt: skip
    doc = inspect.getdoc(fn)
    if not doc:
        raise SkillDefinitionError(f"skill {name} has no docstring; its first line is the description the router sees")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # a hint that does not resolve
        raise SkillDefinitionError(f"skill {name}: cannot resolve its type hints ({exc})") from exc
    params: list[Parameter] = []
    context_parameter = None
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise SkillDefinitionError(f"skill {name}: parameter {p.name} must be a plain keyword parameter")
        if p.name not in hints:
            raise SkillDefinitionError(f"skill {name}: parameter {p.name} needs a type hint")
        if hints[p.name] is SkillContext:
            context_parameter = p.name
            continue
        if not _callable_type(hints[p.name]):
            raise SkillDefinitionError(f"skill {name}: parameter {p.name} is {_type_name(hints[p.name])}; a call "
                                       "carries text, numbers, True/False or a Literal of those (each may be "
                                       "| None)")  # fmt: skip
        span = _is_text(hints[p.name]) and p.name not in not_spans
        params.append(Parameter(p.name, hints[p.name], p.default, span=span, values=(values or {}).get(p.name)))
    unknown = set(not_spans) - {p.name for p in params}
    if unknown:
        raise SkillDefinitionError(f"skill {name}: not_spans names unknown parameters {sorted(unknown)}")
    not_copied = sorted(set(values or {}) - {p.name for p in params if p.span})
    if not_copied:
        raise SkillDefinitionError(f"skill {name}: values names {not_copied}, which are not text parameters copied "
                                   "from the utterance")  # fmt: skip
    fields = {p.name: (p.annotation, ... if p.required else p.default) for p in params}
    try:
        model = create_model(
            f"{name}_arguments", __config__=ConfigDict(strict=True, extra="forbid"), **fields  # type: ignore[call-overload]
        )
    except Exception as exc:
        raise SkillDefinitionError(f"skill {name}: its parameter types cannot be validated ({exc})") from exc
    return Skill(
        name=name,
        function=fn,
        description=doc.splitlines()[0].strip(),
        parameters=tuple(params),
        model=model,
        context_parameter=context_parameter,
        risky=risky,
        timeout_s=timeout_s,
        source=getattr(fn, "__module__", ""),
        warm=warm,
        in_process=in_process,
    )


@dataclass(frozen=True)
class LoadProblem:
    """A skill file that failed to load, or a skill in it that was refused."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Outcome(enum.Enum):
    """What happened to a dispatched call."""

    DONE = "done"
    """The skill returned its reply."""
    INVALID = "invalid"
    """The call does not fit a loaded skill; nothing ran."""
    FAILED = "failed"
    """The skill refused (``SkillFailed``), raised, or its worker process died."""
    TIMED_OUT = "timed out"
    """The skill ran past its time limit: its worker was killed (an in-process skill is left to finish)."""
    BUSY = "busy"
    """An in-process skill is still running from an earlier call that timed out; nothing ran."""


@dataclass(frozen=True)
class SkillResult:
    """What a dispatch produced: the reply text, whether the skill succeeded, how long it took, and what
    happened (``outcome``; DONE exactly when ``ok``)."""

    call: SkillCall
    ok: bool
    text: str
    seconds: float = 0.0
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", Outcome.DONE if self.ok else Outcome.FAILED)


def run_skill(found: Skill, kwargs: dict[str, Any]) -> tuple[Outcome, str]:
    """Call a skill's function here and now: its reply, or its exception as the one line a user gets."""
    try:
        value = found.function(**kwargs)
        return Outcome.DONE, "" if value is None else str(value)
    except SkillFailed as exc:
        return Outcome.FAILED, str(exc)
    except BaseException as exc:  # noqa: BLE001 - isolation is the point (sys.exit() in a skill included)
        logger.debug("skill %s raised", found.name, exc_info=exc)  # where, for the skill's author (-v)
        return Outcome.FAILED, f"{found.name} failed: {type(exc).__name__}: {exc}"


class Registry:
    """The loaded skills. ``parse`` and ``validate`` turn text into a ``SkillCall``; ``dispatch`` runs one."""

    def __init__(self, context: SkillContext | None = None, *, isolate: bool = True) -> None:
        """``isolate``: run skills loaded from files in worker processes (``skills.worker``), unless declared
        ``in_process``. Skills added by hand (``add``) always run in this process."""
        self.context = context or SkillContext()
        self.skills: dict[str, Skill] = {}
        self.problems: list[LoadProblem] = []
        self.isolate = isolate
        self._files: dict[str, tuple[str, str]] = {}  # the skill files loaded, in order: as each skill's ``source``
        # names it -> (its absolute path, a hash of its text): what a worker loads
        self._overdue: dict[str, threading.Thread] = {}  # skills still running after dispatch gave up on them

    # -- loading -----------------------------------------------------------------------------------------------
    def add(self, skill_: Skill) -> None:
        if skill_.name in self.skills:
            raise SkillDefinitionError(
                f"a skill named {skill_.name!r} is already loaded (from {self.skills[skill_.name].source}); rename one"
            )
        self.skills[skill_.name] = skill_

    def load_file(self, path: Path) -> list[str]:
        """Import one skill file and add its ``@skill`` functions. A failure is recorded in ``problems``."""
        path = Path(path)
        kind = "builtin" if path.resolve().parent == BUILTIN_DIR.resolve() else "user"
        module_name = f"skillcall_{kind}_{path.stem}"  # what its log lines are headed with
        held = sys.modules.get(module_name)
        if held is not None and Path(getattr(held, "__file__", "") or "").resolve() != path.resolve():
            module_name += "_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]  # same name, other folder
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise ImportError("not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            text_hash = hashlib.sha1(path.read_bytes()).hexdigest()
            spec.loader.exec_module(module)
        except BaseException as exc:  # a user file may do anything on import, even sys.exit()
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            message = f"failed to load: {type(exc).__name__}: {exc}; fix the file, its skills are left out"
            logger.warning("%s: %s", path, message)
            self.problems.append(LoadProblem(path, message))
            return []
        self._files[str(path)] = (str(path.absolute()), text_hash)
        added = []
        for value in vars(module).values():  # functions only: another object's __getattr__ may do anything
            found = value.__dict__.get("__skill__") if inspect.isfunction(value) else None
            if isinstance(found, Skill) and value.__module__ == module_name:
                found = dataclasses.replace(found, source=str(path))
                try:
                    self.add(found)
                except SkillDefinitionError as exc:
                    logger.warning("%s: %s", path, exc)
                    self.problems.append(LoadProblem(path, str(exc)))
                    continue
                added.append(found.name)
        return added

    def load_dir(self, directory: Path) -> list[str]:
        """Load every ``*.py`` file (not ``_*.py``) of a folder, in name order. A missing folder loads nothing."""
        directory = Path(directory)
        if not directory.is_dir():
            return []
        added = []
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                added += self.load_file(path)
        return added

    def warm(self) -> None:
        """Run each skill's ``warm`` (``@skill(warm=...)``), one after the other, where the skill runs: the worker
        pool is started and each worker warms its skills in the background. The daemon calls this in a background
        thread at start. A failure is logged, never raised: the skill's first call tries again."""
        if any(self._in_worker(entry) for entry in self.skills.values()):
            from . import worker

            worker.warm(self._file_key())
        for entry in list(self.skills.values()):
            if entry.warm is not None and not self._in_worker(entry):
                try:
                    entry.warm()
                except Exception as exc:  # a skill's own code: anything can go wrong
                    logger.warning("skill %s could not warm up (%s: %s); its first call will be slower",
                                   entry.name, type(exc).__name__, exc)  # fmt: skip

    # -- lookup ------------------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.skills)

    def __iter__(self) -> Iterator[Skill]:
        return iter(self.skills.values())

    def __len__(self) -> int:
        return len(self.skills)

    def __contains__(self, name: object) -> bool:
        return name in self.skills

    def get(self, name: str) -> Skill:
        try:
            return self.skills[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise CallError(f"unknown skill '{printable(name)}'{hint} (`skillcall skills` lists the loaded "
                            "ones)") from None

    # -- calls -------------------------------------------------------------------------------------------------
    def parse(self, text: str | bytes) -> SkillCall:
        """Parse and validate a call string; raises ``CallError`` with a message a user can act on."""
        raw = read_call(text)
        found = self.get(raw.name)
        if len(raw.positional) > len(found.parameters):
            raise CallError(f"{found.name} takes {len(found.parameters)} argument(s), got {len(raw.positional)}: "
                            f"use {found.signature}")
        arguments = dict(zip((p.name for p in found.parameters), raw.positional, strict=False))
        for key, value in raw.keywords.items():
            if key in arguments:
                raise CallError(f"{found.name}: argument '{key}' is given twice")
            arguments[key] = value
        return self.validate(found.name, arguments)

    def parse_calls(self, text: str | bytes, limit: int = MAX_CALLS) -> CallSequence:
        """Parse and validate a sequence of calls joined by ``; `` (DESIGN), at most ``limit`` of them; one call is
        a sequence of one. ``CallError`` names the call that is wrong."""
        parts = split_calls(text)
        if len(parts) > limit:
            raise CallError(f"{len(parts)} calls in one sequence; the limit is {limit}")
        calls = []
        for number, part in enumerate(parts, 1):
            try:
                calls.append(self.parse(part))
            except CallError as exc:
                raise CallError(f"call {number} of {len(parts)}: {exc}" if len(parts) > 1 else str(exc)) from None
        return CallSequence(calls)

    def validate(self, name: str, arguments: dict[str, Any]) -> SkillCall:
        """Check arguments against the skill's typed signature and return the canonical call, one that ``parse``
        reads back from ``str(call)`` (the literal check ``parse`` makes, and the written length)."""
        found = self.get(name)
        if not isinstance(arguments, dict):
            raise CallError(f"{found.name}: arguments come as a dict of name to value, not {type(arguments).__name__}")
        for key, value in arguments.items():
            check_literal(found.name, key, value)
        for p in found.parameters:  # pydantic takes True and 1.0 for Literal[1, 2]: a value must be one, type and all
            choices = _literal_values(p.annotation)
            value = arguments.get(p.name)
            if choices and p.name in arguments and not (value is None or any(
                    type(value) is type(choice) and value == choice for choice in choices)):  # fmt: skip
                # as pydantic says it: 'add' or 'list'
                said = ", ".join(map(repr, choices[:-1])) + " or " * (len(choices) > 1) + repr(choices[-1])
                raise CallError(f"{p.name} must be one of {said} — use {found.signature}")
        try:
            model = found.model.model_validate(arguments)
        except ValidationError as exc:
            raise CallError(_explain(found, exc)) from None
        values = model.model_dump()
        canonical = {}
        for p in found.parameters:
            value = values[p.name]
            if p.required or value != p.default or type(value) is not type(p.default):
                canonical[p.name] = check_literal(found.name, p.name, value)  # as validated: 1 for a float is 1.0
        return check_written(SkillCall(found.name, canonical))

    def dispatch(self, call: SkillCall, timeout_s: float | None = None) -> SkillResult:
        """Run a call: validated again, bounded in time, its exceptions turned into a failed ``SkillResult``.

        A skill from a file runs in a worker process that is killed if it runs past the limit (``timeout_s``, else
        the skill's own, else the settings'); an ``in_process`` skill, or one added by hand, runs here in a thread.
        """
        start = time.perf_counter()

        def result(outcome: Outcome, text: str) -> SkillResult:  # a failure is one printable line, whatever it said
            ok = outcome is Outcome.DONE
            return SkillResult(call, ok, text if ok else printable(text), time.perf_counter() - start, outcome)

        try:
            call = self.validate(call.name, dict(call.arguments))
            found = self.get(call.name)
        except CallError as exc:
            return result(Outcome.INVALID, str(exc))
        limit = timeout_s or found.timeout_s or self.context.settings.timeout_s
        if self._in_worker(found):
            from . import worker

            return result(*worker.run(self, self._file_key(), found.name, dict(call.arguments), limit))
        kwargs = dict(call.arguments)
        if found.context_parameter:
            kwargs[found.context_parameter] = self.context
        return result(*self._run_here(found, kwargs, limit))

    def _in_worker(self, found: Skill) -> bool:
        from . import worker

        return self.isolate and worker.SUPPORTED and not found.in_process and found.source in self._files

    def _file_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._files.values())

    def _run_here(self, found: Skill, kwargs: dict[str, Any], limit: float) -> tuple[Outcome, str]:
        """Run a skill in a thread of this process and wait up to ``limit`` s; past it, leave it running."""
        overdue = self._overdue.get(found.name)
        if overdue is not None and overdue.is_alive():  # not a second one alongside (an app opened twice)
            return Outcome.BUSY, f"{found.name} is still busy with the last request; try again when it has finished"
        box: list[tuple[Outcome, str]] = []
        thread = threading.Thread(target=lambda: box.append(run_skill(found, kwargs)), name=f"skill-{found.name}",
                                  daemon=True)  # fmt: skip
        thread.start()
        thread.join(limit)
        if thread.is_alive():
            logger.error("skill %s still running after %.3g s; left in the background", found.name, limit)
            self._overdue[found.name] = thread
            return Outcome.TIMED_OUT, (f"{found.name} did not finish within {limit:g} s; it may still finish in the "
                                       "background")  # fmt: skip
        return box[0]


def _explain(found: Skill, exc: ValidationError) -> str:
    reasons = []
    for error in exc.errors():
        where = printable(".".join(str(part) for part in error["loc"][:1])) or found.name
        kind = error["type"]
        if kind == "missing":
            reasons.append(f"{found.name} needs {where}")
        elif kind == "extra_forbidden":
            takes = ", ".join(p.name for p in found.parameters) or "no arguments"
            reasons.append(f"{found.name} has no argument '{where}' (it takes {takes})")
        elif kind == "string_type":
            reasons.append(f"{where} must be text")
        elif kind in ("int_type", "int_from_float"):
            reasons.append(f"{where} must be a whole number (2, not 2.0)")
        elif kind == "float_type":
            reasons.append(f"{where} must be a number")
        elif kind == "bool_type":
            reasons.append(f"{where} must be True or False")
        elif kind == "literal_error":
            reasons.append(f"{where} must be one of {error['ctx']['expected']}")
        else:
            reasons.append(f"{where}: {error['msg']}")
    return "; ".join(dict.fromkeys(reasons)) + f" — use {found.signature}"


def _callable_type(annotation: Any) -> bool:
    """Whether a call can carry the type (what the call grammar and strict validation both take): str, int,
    float, bool, a Literal of text/int/bool values, each optionally ``| None``."""
    args = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) != 1:
        return False
    if args[0] in (str, int, float, bool):
        return True
    return typing.get_origin(args[0]) is typing.Literal and all(
        v is None or type(v) in (str, int, bool) for v in typing.get_args(args[0])
    )


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` (or ``Literal | None``) annotation; () for any other type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        literals = [a for a in typing.get_args(annotation) if typing.get_origin(a) is typing.Literal]
        return typing.get_args(literals[0]) if literals else ()
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _is_text(annotation: Any) -> bool:
    """``str`` or ``str | None``: free text, which DESIGN says the router copies from the utterance."""
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = set(typing.get_args(annotation))
        return str in args and args <= {str, type(None)}
    return False


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in typing.get_args(annotation)) + "]"
    return str(annotation).replace("typing.", "")


def load_registry(
    context: SkillContext | None = None, user_dir: Path | None = None, builtins: bool = True
) -> Registry:
    """The front door: built-in skills, then the user's skill files, through the same loader."""
    registry = Registry(context)
    if builtins:
        registry.load_dir(BUILTIN_DIR)
    if user_dir is not None:
        registry.load_dir(user_dir)
    return registry
