"""Skill calls: the literal-only parser (``ast``, never ``eval``), the canonical form, and call equality."""

from __future__ import annotations

import ast
import json
import math
import unicodedata
import warnings
from dataclasses import dataclass, field
from typing import Any

from .errors import CallError, printable

MAX_CALL_CHARS = 4096
"""Longest call string the parser accepts; a router's token bound keeps real calls far below it."""

MAX_CALLS = 3
"""Most calls one utterance routes to (DESIGN: several requests in one breath, in the order said)."""
SEPARATOR = "; "
"""What joins the calls of a sequence in the canonical form."""

_JSON_NAMES = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, eq=True)
class SkillCall:
    """One validated skill call. ``str(call)`` is the canonical form, e.g. ``weather(location="Berlin")``.

    Arguments are in signature order with arguments equal to their default left out; build calls with
    ``Registry.parse`` or ``Registry.validate`` so that holds.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{key}={format_value(value)}" for key, value in self.arguments.items())
        return f"{self.name}({args})"


class CallSequence(tuple[SkillCall, ...]):
    """The calls of one utterance, in the order said; ``str()`` joins them with ``SEPARATOR``
    (``timer(duration="ten minutes"); weather(location="Paris")``). One call is a sequence of one."""

    def __str__(self) -> str:
        return SEPARATOR.join(map(str, self))

    def __repr__(self) -> str:
        return f"CallSequence({list(self)!r})"


def split_calls(text: str | bytes) -> list[str]:
    """The calls of a sequence as written, each still to be read by ``read_call``: ``a(); b()`` -> ``["a()",
    "b()"]``. A ``;`` inside a string is not a separator. Raises ``CallError`` for text that is no sequence."""
    if isinstance(text, bytes):
        text = read_call_text(text)
    if not isinstance(text, str) or ";" not in text:
        return [text]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return [text]  # read_call says what is wrong with it
    if len(text) > (MAX_CALLS + 1) * MAX_CALL_CHARS:
        raise CallError(f"the calls are {len(text)} characters long; the limit is {MAX_CALL_CHARS} each")
    parts = [ast.get_source_segment(text.strip(), node) for node in tree.body]
    if not parts or any(part is None for part in parts):
        raise CallError(f"not a call: {_preview(text)}; write calls like weather(location=\"Oslo\"); timer(...)")
    return parts  # type: ignore[return-value]


def format_value(value: Any) -> str:
    """A literal as the canonical form writes it: JSON strings, Python numbers, booleans and None."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int, float)):
        try:
            return repr(value)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            raise CallError(f"cannot write a number of {value.bit_length()} bits in a call; use a smaller "
                            "one") from None
    raise CallError(f"cannot write {type(value).__name__} {value!r} in a call; use text, a number, True/False or None")


@dataclass(frozen=True)
class RawCall:
    """A call as written: its name and literal arguments, not yet checked against any skill."""

    name: str
    positional: tuple[Any, ...]
    keywords: dict[str, Any]


def read_call_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CallError(f"the call is not valid UTF-8 (bad byte at position {exc.start}); send text") from None


def read_call(text: str | bytes) -> RawCall:
    """Parse ``name(arg=literal, ...)`` syntax. Raises ``CallError`` for anything else, never another error."""
    if isinstance(text, bytes):
        text = read_call_text(text)
    if not isinstance(text, str):
        raise CallError(f"a call must be text, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise CallError('the call is empty; write it like weather(location="Oslo")')
    if len(text) > MAX_CALL_CHARS:
        raise CallError(f"the call is {len(text)} characters long; the limit is {MAX_CALL_CHARS}")
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" is the string's problem, not a crash
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CallError(f"not a call: {_preview(text)} ({exc.msg}); write it like weather(location=\"Oslo\")") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise CallError(f"not a call: {_preview(text)} ({type(exc).__name__})") from None
    node = tree.body
    if not isinstance(node, ast.Call):
        raise CallError(f"not a call: {_preview(text)} is {_describe(node)}; write it like weather(location=\"Oslo\")")
    if not isinstance(node.func, ast.Name):
        raise CallError(f"not a call: {_preview(text)} calls {_describe(node.func)}; only a bare skill name may be called")
    positional = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise CallError(f"{node.func.id}: *arguments are not allowed; name each argument")
        positional.append(_literal(node.func.id, f"argument {len(positional) + 1}", arg))
    keywords: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise CallError(f"{node.func.id}: **arguments are not allowed; name each argument")
        if kw.arg in keywords:
            raise CallError(f"{node.func.id}: argument '{kw.arg}' is given twice")
        keywords[kw.arg] = _literal(node.func.id, kw.arg, kw.value)
    return RawCall(node.func.id, tuple(positional), keywords)


def _literal(skill: str, where: str, node: ast.expr) -> Any:
    return check_literal(skill, where, _literal_value(skill, where, node))


_LITERAL_TYPES = (str, int, float, bool, type(None))
_MAX_INT_BITS = int(MAX_CALL_CHARS * math.log2(10))
"""Whole numbers up to this many bits have at most ``MAX_CALL_CHARS`` digits: any more cannot be in a call."""


def check_literal(skill: str, where: str, value: Any) -> Any:
    """The one check of an argument's value that ``parse`` (``read_call``) and ``validate`` share: a literal that
    the canonical form writes so that ``parse`` reads it back. Text, a number, True/False or None (exactly: no
    subclass, whose repr may be anything); a finite number (not ``1e309`` or NaN); a whole number of at most
    ``MAX_CALL_CHARS`` digits (not ``0x`` and 3,900 f's); text that is UTF-8 (no lone surrogate)."""
    where = printable(str(where))
    if type(value) not in _LITERAL_TYPES:
        raise CallError(f"{skill}: {where} must be a literal (text, number, True/False or None), not "
                        f"{type(value).__name__}")  # fmt: skip
    if isinstance(value, float) and not math.isfinite(value):
        raise CallError(f"{skill}: {where} is not a finite number")
    if type(value) is int and abs(value).bit_length() > _MAX_INT_BITS:
        raise CallError(f"{skill}: {where} is a number too long to write in a call (over {MAX_CALL_CHARS} digits)")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise CallError(f"{skill}: {where} holds a character that is not text (a lone surrogate)") from None
    return value


def check_written(call: SkillCall) -> SkillCall:
    """``call`` if ``parse`` reads its canonical form back: at most ``MAX_CALL_CHARS`` characters written out
    (a call's literals may be longer written out than read: ``0x...`` in decimal, a control character escaped)."""
    text = str(call)
    if len(text) > MAX_CALL_CHARS:
        raise CallError(f"{call.name}: the call is {len(text)} characters long written out; the limit is "
                        f"{MAX_CALL_CHARS}, so shorten its arguments")  # fmt: skip
    return call


def _literal_value(skill: str, where: str, node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, bool, int, float))):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    raise CallError(f"{skill}: {where} must be a literal (text, number, True/False or None), not {_describe(node)}")


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Call: "a function call",
        ast.Attribute: "an attribute access",
        ast.JoinedStr: "an f-string",
        ast.Name: "a name",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.BinOp: "an expression",
        ast.Compare: "a comparison",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
    }
    if isinstance(node, ast.Constant):
        return f"a {type(node.value).__name__} literal"
    return kinds.get(type(node), f"a {type(node).__name__} expression")


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


_SENTENCE_END = ".,;:!?…'\"”’)]"
"""The trailing punctuation call equality trims: what ends a sentence or a quote, not part of a name ("C#", "10%")."""


def normalize_value(value: Any) -> Any:
    """A value as call equality compares it (DESIGN): text trimmed of whitespace and trailing punctuation, case
    folded. Symbols and leading signs stay: "-5 times 3" is not "5 times 3", nor "C++" "C", nor "C#" "C"."""
    if isinstance(value, str):
        return " ".join(value.rstrip().rstrip(_SENTENCE_END + " ").casefold().split())
    return value


def _glued(a: str, b: str) -> bool:
    """Two characters of one word: letters, digits or combining marks of a script that spaces its words (CJK does
    not)."""
    return all((c.isalnum() or unicodedata.category(c).startswith("M")) and ord(c) < 0x2E80 for c in (a, b))


def _elided(text: str, at: int) -> bool:
    """``text[at]`` follows a letter and an apostrophe: the rest of one word ("m" of "I'm", "s" of "Zoë's")."""
    return at >= 2 and text[at - 1] in "'’" and _glued(text[at - 2], text[at])


def span_positions(text: str, value: str, closed: bool = True) -> list[int]:
    """Where ``value`` occurs in ``text`` as a span of whole words (DESIGN: arguments are spans): it starts at a
    word's start and, when ``closed``, ends at a word's end ("seven" is not a span of "seventeen", "m" not of
    "I'm"). A value still being written (not ``closed``) only needs the start. Empty values occur nowhere."""
    found, at = [], text.find(value) if value else -1
    while at >= 0:
        end = at + len(value)
        starts_word = at == 0 or not (_glued(text[at - 1], text[at]) or _elided(text, at))
        ends_word = not closed or end == len(text) or not _glued(text[end - 1], text[end])
        if starts_word and ends_word:
            found.append(at)
        at = text.find(value, at + 1)
    return found


def sequences_equal(a: tuple[SkillCall, ...], b: tuple[SkillCall, ...]) -> bool:
    """DESIGN's equality of sequences: as long, and equal call by call."""
    return len(a) == len(b) and all(calls_equal(x, y) for x, y in zip(a, b, strict=True))


def calls_equal(a: SkillCall, b: SkillCall) -> bool:
    """DESIGN's equality: same name, and the same arguments after trimming, edge punctuation and case."""
    if a.name != b.name or a.arguments.keys() != b.arguments.keys():
        return False
    return all(normalize_value(a.arguments[key]) == normalize_value(b.arguments[key]) for key in a.arguments)
