"""math: replies in the DESIGN's form."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("nine times nine", "nine times nine is 81"),
        ("15 percent of 80", "15 percent of 80 is 12"),
        ("square root of 16?", "square root of 16 is 4"),
    ],
)
def test_replies(registry, question, reply):
    result = registry.dispatch(registry.parse(f'math(question="{question}")'))
    assert result.ok and result.text == reply


@pytest.mark.parametrize(
    ("question", "message"),
    [("ten divided by zero", "can't divide by zero"), ("banana", "found no numbers"), ("2 to the power of 99999", "too large"), ("1" + "0" * 200 + " squared", "too large"),
     ("7 factorial", "can't work out a factorial yet")],
)
def test_failures(registry, question, message):
    result = registry.dispatch(registry.parse(f'math(question="{question}")'))
    assert not result.ok and message in result.text


def test_deep_nesting_gets_the_skills_own_reply(registry):
    result = registry.dispatch(registry.parse(f'math(question="{"( " * 600}5")'))
    assert not result.ok and "nested too deeply" in result.text and "RecursionError" not in result.text


def test_the_question_is_echoed_on_one_printable_line(registry):
    from skills import SkillCall

    result = registry.dispatch(SkillCall("math", {"question": "nine times nine\x1b[K"}))
    assert result.ok and result.text == "nine times nine\\x1b[K is 81"
