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
