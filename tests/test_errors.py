"""The error family's one-line messages, and ``printable``: what a user said, as a message may echo it."""

from __future__ import annotations

import pytest

from skills import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("firefox\ntouch /tmp/x", "firefox\\ntouch /tmp/x"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # an ANSI escape never reaches the terminal
        ("a\tb\rc\x00d\x7fe\x9bf", "a\\tb\\rc\\x00d\\x7fe\\x9bf"),  # C0, DEL and C1 controls (\x9b: CSI)
        ("one\u2028two\u2029", "one\\u2028two\\u2029"),  # Unicode's line and paragraph separators
        ("\ud800", "\\ud800"),  # a lone surrogate: not text, cannot even be printed as UTF-8
        ("\u202eevil", "\\u202eevil"),  # a right-to-left override would reorder the line around it
    ],
)
def test_printable_escapes_what_would_break_the_line_or_reach_the_terminal(text, shown):
    assert printable(text) == shown
    assert shown.isascii() and "\n" not in shown
    assert printable(shown) == shown  # escaping twice changes nothing


@pytest.mark.parametrize("text", ["São Paulo", "東京", "C:\\temp", "a\u00a0b", "👨\u200d👩\u200d👧",
                                  "'it' \"is\" 50%"])
def test_printable_keeps_text_as_it_is(text):
    assert printable(text) == text
