"""The literal-only call parser, the canonical form and call equality."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skills import MAX_CALL_CHARS, CallError, SkillCall, calls_equal


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
