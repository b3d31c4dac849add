"""The literal-only call parser, the canonical form and call equality."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from skills import BUILTIN_DIR, MAX_CALL_CHARS, CallError, Registry, SkillCall, calls_equal, printable, skill


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('weather(location="Berlin")', 'weather(location="Berlin")'),
        ("weather(location='Berlin')", 'weather(location="Berlin")'),
        ("weather('Berlin')", 'weather(location="Berlin")'),
        ("weather()", "weather()"),
        ("weather(location=None)", "weather()"),
        ("  other( )  ", "other()"),
        ('notes(action="add", note="buy \\"oat\\" milk")', 'notes(action="add", note="buy \\"oat\\" milk")'),
        ('notes(note="x", action="add")', 'notes(action="add", note="x")'),
        ('notes("list")', 'notes(action="list")'),
        ('timecheck(location="São Paulo")', 'timecheck(location="São Paulo")'),
        ('math(question="2 + 2")', 'math(question="2 + 2")'),
    ],
)
def test_parse_gives_canonical_form(registry, text, canonical):
    call = registry.parse(text)
    assert str(call) == canonical
    assert registry.parse(str(call)) == call


def test_parse_accepts_utf8_bytes(registry):
    assert str(registry.parse('weather(location="Zürich")'.encode())) == 'weather(location="Zürich")'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('wether(location="Oslo")', "unknown skill 'wether' — did you mean 'weather'?"),
        ("frobnicate()", "unknown skill 'frobnicate' (`skillcall skills`"),
        ("timer()", "timer needs duration"),
        ("weather(location=3)", "location must be text"),
        ('weather(city="Oslo")', "weather has no argument 'city' (it takes location)"),
        ('notes(action="delete")', "action must be one of 'add' or 'list'"),
        ('weather("Oslo", "Bergen")', "weather takes 1 argument(s), got 2"),
        ("weather(location=1e309)", "location is not a finite number"),
        ('weather(location="\\ud800")', "not text (a lone surrogate)"),
        ('weather("Oslo", location="Bergen")', "argument 'location' is given twice"),
        ("__import__('os').system('ls')", "only a bare skill name may be called"),
        ("weather(location=__import__('os'))", "must be a literal"),
        ("weather(location=os.environ)", "not an attribute access"),
        ("weather(location=open('/etc/passwd').read())", "not a function call"),
        ('weather(location=f"{1+1}")', "not an f-string"),
        ("weather(location='a' + 'b')", "not an expression"),
        ("weather(*['x'])", "*arguments are not allowed"),
        ("weather(**{'location': 'x'})", "**arguments are not allowed"),
        ("weather(location=[1])", "not a list"),
        ("weather(location=b'x')", "not a bytes literal"),
        ("weather", "is a name"),
        ("weather(location='Oslo'); import os", "not a call"),
        ("lambda: 0", "is a lambda"),
        ("", "the call is empty"),
        ("weather(location=", "not a call"),
        ("weather(location='\x00')", "not a call"),
        ("(" * 5000, "the limit is"),
    ],
)
def test_bad_calls_raise_one_clear_error(registry, text, message):
    with pytest.raises(CallError) as caught:
        registry.parse(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_enormous_string_is_refused(registry):
    with pytest.raises(CallError, match=f"the limit is {MAX_CALL_CHARS}"):
        registry.parse('weather(location="' + "x" * 1_000_000 + '")')


def test_non_utf8_bytes_are_refused(registry):
    with pytest.raises(CallError, match="not valid UTF-8"):
        registry.parse(b'weather(location="\xff\xfe")')


def test_deep_nesting_is_a_call_error(registry):
    with pytest.raises(CallError, match=r"not a call: .*\((RecursionError|MemoryError)\)"):  # a limit, not a crash
        registry.parse("weather(location=" + "-" * 3000 + "1)")


def test_calls_equal_ignores_case_whitespace_and_trailing_punctuation():
    a = SkillCall("weather", {"location": "New York"})
    assert calls_equal(a, SkillCall("weather", {"location": "  new york. "}))
    assert calls_equal(SkillCall("ask", {"question": "why?"}), SkillCall("ask", {"question": "Why ?!"}))
    assert not calls_equal(SkillCall("math", {"question": "-5 times 3"}), SkillCall("math", {"question": "5 times 3"}))
    assert not calls_equal(SkillCall("runapp", {"program": "C++"}), SkillCall("runapp", {"program": "C"}))
    assert not calls_equal(SkillCall("runapp", {"program": "C#"}), SkillCall("runapp", {"program": "C"}))
    assert not calls_equal(a, SkillCall("weather", {"location": "York"}))
    assert not calls_equal(a, SkillCall("timecheck", {"location": "New York"}))
    assert not calls_equal(a, SkillCall("weather", {}))


_names = st.sampled_from(["weather", "timer", "notes", "math", "other", "wether", "__import__", "x", "os.system"])
_literals = st.one_of(
    st.text(max_size=20).map(repr),
    st.integers().map(str),
    st.floats(allow_nan=True).map(repr),
    st.sampled_from(["None", "True", "true", "null", "os", "f'{x}'", "open('x')", "[1]", "-1", "+-2", "...", "b''"]),
)
_keys = st.sampled_from(["location", "duration", "action", "note", "question", "topic", "x", "", "**", "*"])
_arguments = st.lists(st.tuples(_keys, _literals).map(lambda kv: f"{kv[0]}={kv[1]}" if kv[0] else kv[1]), max_size=4)
_call_like = st.one_of(
    st.builds(lambda n, a: f"{n}({', '.join(a)})", _names, _arguments),
    st.builds(lambda n, a, junk: f"{n}({', '.join(a)}{junk}", _names, _arguments, st.text(max_size=5)),
    st.text(max_size=60),
    st.text(alphabet="()[]{}'\"=,.:;\\ abcx_0123456789-+*", max_size=80),
    st.binary(max_size=40),
)


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_call_like)
def test_random_call_like_strings_only_ever_raise_call_error(registry, text):
    try:
        call = registry.parse(text)
    except CallError as exc:
        assert str(exc)
    else:
        assert registry.parse(str(call)) == call


def knobs(count: int = 0, level: float = 0.0, loud: bool = False, mode: Literal["eco", 3] | None = None,
          label: str | None = None) -> str:
    """Set the knobs: a skill with every type a call carries."""
    return "set"


@pytest.fixture(scope="module")
def typed() -> Registry:
    """The built-in skills and ``knobs``: only parsed and validated, never dispatched."""
    registry = Registry()
    registry.load_dir(BUILTIN_DIR)
    registry.add(skill(knobs).__skill__)
    return registry


def _round_trips(registry: Registry, call: SkillCall) -> None:
    """The canonical form parses back to the same call: same text, same values, same types."""
    again = registry.parse(str(call))
    assert str(again) == str(call) and again == call
    assert [type(v) for v in again.arguments.values()] == [type(v) for v in call.arguments.values()]


def _one_printable_line(error: CallError) -> None:
    assert str(error) and printable(str(error)) == str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("math(question=0x" + "f" * 3900 + ")", "math: question is a number too long to write in a call"),
        ("knobs(count=0x" + "f" * 3900 + ")", "knobs: count is a number too long to write in a call"),
        ("knobs(count=-0x" + "f" * 3900 + ")", "knobs: count is a number too long to write in a call"),
        ("knobs(count=0x" + "f" * 3400 + ")", "knobs: the call is 4108 characters long written out"),
        ('weather("' + "x" * 4085 + '")', "weather: the call is 4105 characters long written out"),
        ('weather("' + "\x01" * 1000 + '")', "weather: the call is 6020 characters long written out"),
        ("knobs(level=1e309)", "knobs: level is not a finite number"),
        ('knobs(label="\\udfff")', "knobs: label holds a character that is not text"),
    ],
)
def test_calls_the_canonical_form_cannot_write_back_are_refused(typed, text, message):
    assert len(text) <= MAX_CALL_CHARS  # the call as written is within the limit; written out, it is not
    with pytest.raises(CallError) as caught:
        typed.parse(text)
    assert str(caught.value).startswith(message)
    _one_printable_line(caught.value)


_text = st.text(st.characters(exclude_categories=()), max_size=30)  # control characters and lone surrogates too
_values = st.one_of(  # any value at all, of a type a call carries or not
    st.none(), st.booleans(), st.integers(), st.floats(), _text, st.integers(4070, 4100).map(lambda n: "x" * n),
    st.sampled_from(["add", "list", "eco", 3, 3.0, -0.0, 2**13606, -(2**13607), b"x", [1], {"a": 1}]),
)
_PARAMETERS = {
    "knobs": {"count": st.integers(), "level": st.floats(), "loud": st.booleans(),
              "mode": st.sampled_from(["eco", 3, None]), "label": st.none() | _text},
    "weather": {"location": st.none() | _text}, "timer": {"duration": _text},
    "notes": {"action": st.sampled_from(["add", "list"]), "note": st.none() | _text}, "other": {},
}  # fmt: skip
"""Each skill's parameters and values of their types: most calls drawn are ones a router could write."""
_WRITERS = {str: (repr, json.dumps), int: (repr, hex), float: (repr,), bool: (repr, lambda b: str(b).lower()),
            type(None): (repr, lambda _: "null")}  # fmt: skip
"""How a call may write a value: Python and JSON literals, hex."""


@st.composite
def _calls(draw) -> tuple[str, dict]:
    """A skill's name (now and then one not loaded) and arguments: mostly its own (the required ones, some of the
    others) with values of their types; now and then any value, under any name."""
    name = draw(st.sampled_from([*_PARAMETERS, "nope"]))
    parameters = _PARAMETERS.get(name, {})
    keys = [key for key in parameters if key in ("duration", "action") or draw(st.booleans())]
    arguments = {key: draw(_values if draw(st.integers(0, 9)) == 0 else parameters[key]) for key in keys}
    if draw(st.integers(0, 9)) == 0:
        arguments[draw(st.sampled_from(["count", "location", "x"]) | st.text(max_size=3))] = draw(_values)
    return name, arguments


def _written(draw, name: str, arguments: dict) -> str:
    """The call as text, each value written one of the ways a call may write it (a value no literal writes, as
    its repr: ``b'x'``, ``[1]``)."""
    args = []
    for key, value in arguments.items():
        writer = draw(st.sampled_from(_WRITERS.get(type(value), (repr,))))
        args.append(f"{key}={writer(value)}" if type(value) is not int or value.bit_length() < 13000 else
                    f"{key}={hex(value)}")  # repr() refuses past 4,300 digits
    return f"{name}({', '.join(args)})"


@st.composite
def _cases(draw) -> tuple[str, object]:
    """What parse or validate is given: arguments, a call written from them, or a call-like string."""
    name, arguments = draw(_calls())
    kind = draw(st.sampled_from(["validate", "parse", "parse", "mangled"]))
    if kind == "validate":
        return kind, (name, arguments)
    text = _written(draw, name, arguments)
    if kind == "mangled":  # cut, spliced, or with junk put in
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", ")", "(", "=", ",", "'", '"', "\\", "0x", "1e309", "*", "\n"])) + \
            text[at + draw(st.integers(0, 3)):]
    return "parse", text


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_cases())
@example(("validate", ("knobs", {"level": float("nan")})))  # the probe's finds, every run
@example(("validate", ("knobs", {"level": float("inf")})))
@example(("validate", ("weather", {"location": "\ud800"})))
@example(("validate", ("weather", {"location": "x" * 4090})))
@example(("validate", ("knobs", {"count": 16**3900 - 1})))
@example(("parse", "knobs(count=0x" + "f" * 3900 + ")"))
@example(("parse", 'weather("' + "\x01" * 700 + '")'))
def test_every_call_parse_or_validate_accepts_round_trips_exactly(typed, case):
    """parse and validate share one literal check: whatever either accepts, its canonical form parses back to it,
    value for value; whatever either refuses, it refuses with a CallError of one printable line."""
    kind, given_ = case
    try:
        call = typed.parse(given_) if kind == "parse" else typed.validate(*given_)
    except CallError as exc:
        _one_printable_line(exc)
    else:
        _round_trips(typed, call)


@pytest.mark.parametrize(
    ("text", "value", "closed", "starts"),
    [
        ("seventeen plus twenty-six", "seventeen", True, [0]),
        ("seventeen plus twenty-six", "seven", True, []),  # ends inside a word
        ("seventeen plus twenty-six", "seven", False, [0]),  # still being written: may grow into "seventeen"
        ("pull up iterm", "erm", False, []),  # starts inside a word
        ("twenty-six", "twenty", True, [0]),  # a hyphen ends a word
        ("Tom's party", "Tom", True, [0]),
        ("I'm visiting Minneapolis", "m visiting Minneapolis", False, []),  # the rest of "I'm" starts no word
        ("Zoë’s flight", "s flight", True, []),
        ("said 'Paris' twice", "Paris", True, [6]),  # a quote mark after a space is not an elision
        ("Paris or paris, Paris", "Paris", True, [0, 16]),
        ("東京の天気", "東京", True, [0]),  # no spaces between CJK words: any substring
        ("Zu\u0308rich", "Zu", True, []),  # a combining mark belongs to its word (NFD "Zürich")
        ("weather", "", True, []),
    ],
)  # fmt: skip
def test_span_positions_only_at_whole_words(text, value, closed, starts):
    from skills import span_positions

    assert span_positions(text, value, closed) == starts


def test_a_sequence_of_calls_parses_in_order_and_writes_back_joined(registry):
    text = 'timer(duration="ten minutes");weather(location="Paris") ;  notes(action="add", note="bread; milk")'
    calls = registry.parse_calls(text)
    assert [c.name for c in calls] == ["timer", "weather", "notes"]
    assert str(calls) == 'timer(duration="ten minutes"); weather(location="Paris"); notes(action="add", ' \
                         'note="bread; milk")'  # a ";" in a string is text
    assert registry.parse_calls(str(calls)) == calls
    assert registry.parse_calls("other()") == (SkillCall("other"),)  # one call: a sequence of one
    with pytest.raises(CallError, match="4 calls in one sequence; the limit is 3"):
        registry.parse_calls("other(); other(); other(); other()")
    assert len(registry.parse_calls("other(); other(); other(); other()", limit=4)) == 4
    with pytest.raises(CallError, match=r"^call 2 of 2: unknown skill 'wether'"):
        registry.parse_calls('weather(); wether(location="x")')
    for bad in ("weather(); import os", "weather(); x = 1", "weather(); (weather())"[:-1], "weather() weather()"):
        with pytest.raises(CallError):
            registry.parse_calls(bad)
