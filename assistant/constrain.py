"""Constrained decoding for routers: which texts can still become a valid call.

Built from the live registry, per utterance: only loaded skills, their real argument names in signature order,
every required argument, Literal values from their choices, and text arguments that are spans of whole words of
the utterance (unless a skill opts a parameter out with ``@skill(not_spans=...)``) and, where the skill says which
values it can act on here (``@skill(values=...)``: runapp, the installed apps), only those spans — a skill whose
required argument has none in the utterance cannot be called at all. A router asks ``state(text)``
for each candidate continuation; where the grammar admits one continuation only (``weather`` -> ``(``),
``forced`` gives it so the router can append it without sampling.
"""

from __future__ import annotations

import json
import logging
import re
import typing
from dataclasses import dataclass
from typing import Literal

from skills import MAX_CALLS, SEPARATOR, Registry, span_positions
from skills.calls import format_value
from skills.registry import Parameter

logger = logging.getLogger(__name__)

NO, PARTIAL, COMPLETE = "no", "partial", "complete"
Status = Literal["no", "partial", "complete"]
MAX_SPAN_WORDS = 6
"""The longest span a skill's ``values`` function is asked about."""
_EDGE = "\"'“”‘’.,;:!?¿¡()[]{}…"
END = "\x03"
"""The end of what a router writes (its end token) where a sequence could go on: the grammar's other way out."""
JOINS = re.compile(r"(?i)(?<!\w)(and|then|also|plus|after that|as well)(?!\w)|[,.;:!?]\s")
"""A word or mark that can join two requests; an utterance without one after a call's words holds no more calls
(and routes without the extra look at what follows the call that a sequence needs)."""


def _kind(parameter: Parameter) -> tuple[str, list[str]]:
    annotation = parameter.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return "choice", [format_value(v) for v in typing.get_args(annotation)]
    if len(args) == 1 and typing.get_origin(args[0]) is Literal:
        return "choice", [format_value(v) for v in typing.get_args(args[0])]
    if annotation is bool or args == [bool]:
        return "choice", ["True", "False"]
    if annotation is int or args == [int]:
        return "int", []
    if annotation is float or args == [float]:
        return "number", []
    return ("span" if parameter.span else "text"), []


def _common_prefix(options: list[str]) -> str:
    if not options:
        return ""
    first, last = min(options), max(options)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


@dataclass
class CallAcceptor:
    """The grammar of one routing: the registry's skills and the utterance whose spans arguments may copy."""

    registry: Registry
    utterance: str
    spans: bool = True
    """False: text arguments may be any JSON string, not only spans of the utterance."""
    known_values: bool = True
    """False: a parameter's ``values`` function is not asked; any span will do (evaluation on rows naming apps
    this machine lacks)."""
    max_calls: int = MAX_CALLS + 1
    """How many calls the text may hold: one more than a sequence keeps, so that a router can tell a fourth
    request was said (the sequence keeps the first ``MAX_CALLS``)."""

    def __post_init__(self) -> None:
        self.source = json.dumps(self.utterance, ensure_ascii=False)[1:-1]  # spans as they appear in a call
        self.names = sorted(self.registry.names)
        self.joins = [m.start() for m in JOINS.finditer(self.source)]
        self.kinds = {(s.name, p.name): _kind(p) for s in self.registry for p in s.parameters}
        if not self.spans:
            self.kinds = {key: ("text", choices) if kind == "span" else (kind, choices)
                          for key, (kind, choices) in self.kinds.items()}  # fmt: skip
        elif self.known_values:
            self._limit_to_known_values()

    def _limit_to_known_values(self) -> None:
        """Span parameters with a ``values`` function take only the spans it accepts, as fixed choices."""
        candidates: list[str] | None = None
        for skill in self.registry:
            for parameter in skill.parameters:
                if parameter.values is None or not parameter.span:
                    continue
                candidates = word_spans(self.utterance) if candidates is None else candidates
                known = [value for value in candidates if self._known(skill.name, parameter, value)]
                self.kinds[(skill.name, parameter.name)] = ("choice", [format_value(v) for v in known])
                if not known and parameter.required and skill.name in self.names:
                    self.names.remove(skill.name)

    def _known(self, skill: str, parameter: Parameter, value: str) -> bool:
        try:
            return bool(parameter.values(value, self.registry.context))  # type: ignore[misc]
        except Exception as exc:  # a skill's own function failing must not stop routing: the value is allowed
            logger.warning("skill %s: its values function failed on %r (%s: %s); any span allowed",
                           skill, value, type(exc).__name__, exc)  # fmt: skip
            return True

    def state(self, text: str) -> tuple[Status, list[str] | None]:
        """Whether ``text`` is a complete call, a prefix of one, or neither; for a prefix at a point where only
        fixed strings can follow, those strings (else None)."""
        status, live, _ = self._scan(text)
        return status, live

    def span_rest(self, text: str, starts: dict[str, list[str]] | None = None) -> str:
        """When ``text`` ends inside a span value, the likeliest rest of the call: the words that follow the value
        so far in the utterance (less trailing punctuation) and the closing quote. For a value not begun yet,
        ``starts`` ("skill.param" -> words that usually come right before it, "" = the utterance's start) says
        where: after the last place one of those words occurs (spans tend to end the utterance), else at the
        start if "" is among them. A guess for a router to verify (prompt-lookup drafting), never a constraint;
        "" when there is nothing to guess."""
        status, _, open_span = self._scan(text)
        if status != PARTIAL or open_span is None:
            return ""
        start, key = open_span
        value = text[start:]
        if value:
            at = span_positions(self.source, value, closed=False)[0] + len(value)
        else:
            words = (starts or {}).get(key, [])
            found = [at for word in words if word for at in self._after(word)]
            if not found and "" in words:
                found = self._after("")
            at = max(found) if found else None
            if at is None:
                return ""
        rest = self.source[at:].rstrip(" ?!.,;:")
        for close in ('")', '"'):
            if self.state(text + rest + close)[0] != NO:
                return rest + close
        return rest

    def _after(self, word: str) -> list[int]:
        """Where a word starts right after each occurrence of ``word`` in the utterance ("" = its first word)."""
        pattern = r"^\W*" if not word else rf"(?<!\w){re.escape(word)}\W*\s"
        return [m.end() for m in re.finditer(pattern, self.source, re.IGNORECASE) if m.end() < len(self.source)]

    def _scan(self, text: str) -> tuple[Status, list[str] | None, tuple[int, str] | None]:
        """``state``, plus (where its value starts, "skill.param") when ``text`` ends inside a span argument.

        ``text`` is a sequence of calls joined by ``SEPARATOR`` (DESIGN): after a whole call, when another may
        follow (fewer than ``max_calls`` so far, not ``other()``, and a word that joins two requests is said after
        the words the calls so far copy), the text is a prefix with two ways on: the separator, or ``END`` (the
        model's end token)."""
        base, count, reach = 0, 0, 0
        while True:
            status, live, open_span, end = self._scan_call(text, base, first=count == 0)
            if status != COMPLETE:
                return status, live, open_span
            count += 1
            rest = text[end:]
            reach = self._reach(text[base:end], reach)
            more = (count < self.max_calls and text[base:text.index("(", base)] != "other"
                    and any(at >= reach for at in self.joins))  # fmt: skip
            if rest == END:
                return COMPLETE, [], None
            if not rest:
                return (PARTIAL, [SEPARATOR, END], None) if more else (COMPLETE, [], None)
            if not more or not rest.startswith(SEPARATOR):
                live = [SEPARATOR[len(rest):]] if more and SEPARATOR.startswith(rest) else None
                return (PARTIAL, live, None) if live else (NO, None, None)
            base = end + len(SEPARATOR)

    def _reach(self, call: str, reach: int) -> int:
        """Where in the utterance the words a call copies end (its spans, each found from ``reach`` on, as the
        requests come in the order said): another request can only be joined on after them."""
        for value in re.findall(r'="((?:[^"\\]|\\.)*)"', call):
            found = span_positions(self.source, value)
            if found:
                at = next((p for p in found if p >= reach), found[0])
                reach = max(reach, at + len(value))
        return reach

    def _scan_call(self, text: str, base: int, first: bool) -> tuple[Status, list[str] | None, tuple[int, str] | None,
                                                                        int]:  # fmt: skip
        """One call of the sequence, from ``base``: its status and, when whole, where it ends."""
        names = self.names if first else [n for n in self.names if n != "other"]
        cut = text.find("(", base)
        if cut < 0:
            head = text[base:]
            live = [n[len(head) :] + "(" for n in names if n.startswith(head)]
            return (PARTIAL, live, None, 0) if live else (NO, None, None, 0)
        if text[base:cut] not in names:
            return NO, None, None, 0
        skill = self.registry.get(text[base:cut])
        params = skill.parameters
        pos, k = cut + 1, 0
        while True:
            rest = text[pos:]
            heads = []
            for j in range(k, len(params)):
                heads.append((j, ("" if k == 0 else ", ") + params[j].name + "="))
                if params[j].required:
                    break
            closable = all(not p.required for p in params[k:])
            if closable and rest.startswith(")"):
                return COMPLETE, [], None, pos + 1
            matched = next(((j, head) for j, head in heads if rest.startswith(head)), None)
            if matched is None:
                options = [h for _, h in heads] + ([")"] if closable else [])
                live = [o[len(rest) :] for o in options if o.startswith(rest)]
                return (PARTIAL, live, None, 0) if live else (NO, None, None, 0)
            j, head = matched
            start = pos + len(head)
            status, pos, live = self._value(skill.name, params[j], text, start)
            if status != COMPLETE:
                span = self.kinds[(skill.name, params[j].name)][0] == "span"
                open_span = (start + 1, f"{skill.name}.{params[j].name}") if span and text[start:] else None
                return status, live, open_span if status == PARTIAL else None, 0
            k = j + 1

    def _value(self, skill: str, parameter: Parameter, text: str, pos: int) -> tuple[Status, int, list[str] | None]:
        """Read one argument value at ``pos``: (COMPLETE, end, None) when it is whole."""
        kind, choices = self.kinds[(skill, parameter.name)]
        rest = text[pos:]
        if kind == "choice":  # a choice ends where the argument does: 1 is not the start of 10
            whole = [c for c in choices if rest.startswith(c) and rest[len(c) : len(c) + 1] in ("", ",", ")")]
            longer = [c for c in choices if c.startswith(rest) and c != rest]
            if whole and not (rest in whole and longer):
                return COMPLETE, pos + len(max(whole, key=len)), None
            live = [c[len(rest) :] for c in longer]
            return (PARTIAL, pos, None if whole else live) if live else (NO, pos, None)
        if kind == "int":  # as Python writes one: no point, no leading zero
            digits = re.match(r"-?(0|[1-9][0-9]*)?", rest)
            end = digits.end()
            if end == len(rest):
                return PARTIAL, pos, None
            if not digits.group(1) or rest[end] not in ",)":
                return NO, pos, None
            return COMPLETE, pos + end, None
        if kind == "number":
            end = 0
            while end < len(rest) and (rest[end].isdigit() or rest[end] in "-." and (end == 0) == (rest[end] == "-")):
                end += 1
            if end == len(rest):
                return PARTIAL, pos, None
            try:
                float(rest[:end])
            except ValueError:
                return NO, pos, None
            return COMPLETE, pos + end, None
        if not rest:
            return PARTIAL, pos, ['"']
        if rest[0] != '"':
            return NO, pos, None
        end, escaped = 1, False
        while end < len(rest):
            if escaped:
                escaped = False
            elif rest[end] == "\\":
                escaped = True
            elif rest[end] == '"':
                break
            end += 1
        value, closed = rest[1:end], end < len(rest)
        if kind == "span":
            if value and (value.startswith(" ") or not self._span_starts(value, closed=False)):
                return NO, pos, None
            if not closed:
                return PARTIAL, pos, None
            if not value.strip() or value.endswith(" ") or not self._span_starts(value):
                return NO, pos, None
            return COMPLETE, pos + end + 1, None
        if "\n" in value or END in value:
            return NO, pos, None
        if not closed:
            return PARTIAL, pos, None
        try:
            json.loads(f'"{value}"')
        except ValueError:
            return NO, pos, None
        return COMPLETE, pos + end + 1, None

    def _span_starts(self, value: str, closed: bool = True) -> list[int]:
        """Where ``value`` (as a call writes it, escaped) is a span of the utterance: never from inside an escape
        ("\\nowhere" is not a span of "x\\nowhere"), and a closed value must be one once unescaped too."""
        starts = [at for at in span_positions(self.source, value, closed)
                  if (len(self.source[:at]) - len(self.source[:at].rstrip("\\"))) % 2 == 0]  # fmt: skip
        if starts and closed:
            try:
                return starts if span_positions(self.utterance, json.loads(f'"{value}"')) else []
            except ValueError:
                return []
        return starts

    def continues(self, text: str, tail: bytes) -> bool:
        """Whether ``text`` followed by the first bytes of a character (``tail``; byte-level tokens split
        characters) can still become a valid call: inside a span only if the utterance has that character there,
        inside other free text always, at a structural point never."""
        status, options, open_span = self._scan(text)
        if status == NO or options is not None:
            return False
        if open_span is None:
            return True
        value = text[open_span[0] :]
        return any(span_positions(self.source, value + c, closed=False)
                   for c in set(self.source) if c.encode().startswith(tail))  # fmt: skip

    def accepts(self, text: str) -> bool:
        return self.state(text)[0] != NO

    def forced(self, text: str) -> str:
        """What must follow ``text`` whatever is chosen next: "" at a real choice."""
        forced = ""
        while True:
            status, options = self.state(text + forced)
            step = _common_prefix(options) if status == PARTIAL and options else ""
            if not step:
                return forced
            forced += step


def word_spans(text: str, max_words: int = MAX_SPAN_WORDS) -> list[str]:
    """Every span of up to ``max_words`` whole words of ``text``, without punctuation at its edges, first seen
    first ("open firefox please" -> "open", "open firefox", …)."""
    words = list(re.finditer(r"\S+", text))
    found: dict[str, None] = {}
    for i, first in enumerate(words):
        for last in words[i : i + max_words]:
            value = text[first.start() : last.end()].strip(_EDGE)
            if value and value not in found and span_positions(text, value):
                found[value] = None
    return list(found)
