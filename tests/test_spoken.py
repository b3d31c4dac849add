"""Spoken numbers, durations and arithmetic."""

from __future__ import annotations

import pytest

from skills import SkillFailed, printable
from skills.spoken import evaluate, parse_duration, read_number, say_duration, say_number, tokenize


@pytest.mark.parametrize(
    ("text", "value"),
    [("one hundred and twenty three", 123), ("twenty-five", 25), ("a thousand", 1000), ("1,000", 1000),
     ("two point five", 2.5), ("3.5", 3.5), ("three thousand four hundred", 3400), ("zero", 0)],
)  # fmt: skip
def test_read_number(text, value):
    assert read_number(tokenize(text), 0)[0] == value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5 minutes", 300), ("one hour and ten minutes", 4200), ("90 seconds", 90), ("half an hour", 1800),
        ("an hour", 3600), ("20 minute", 1200), ("an hour and a half", 5400), ("one and a half hours", 5400),
        ("1.5 hours", 5400), ("5 minutes and 10 seconds", 310), ("a quarter of an hour", 900),
        ("three quarters of an hour", 2700), ("two hours, 30 minutes and 15 seconds", 9015), ("10-minute", 600),
        ("a couple of minutes", 120), ("45 secs", 45), ("twenty five minutes", 1500),
        ("an hour and a quarter", 4500), ("two hours and a half", 9000), ("3 minutes 30", 210),
        ("four minutes thirty", 270), ("1 hour 10 minute", 4200), ("an hour and 10", 4200), ("1/2 hour", 1800),
        ("2 days", 172800), ("a week", 604800), ("a day and a half", 129600), ("zero seconds", 0),
        ("5 - 10 minutes", 600),
    ],
)  # fmt: skip
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_unreadable_durations():
    for text in ("", "soon", "minutes", "zero"):
        with pytest.raises(SkillFailed):
            parse_duration(text)
    for text in ("minus five minutes", "negative 2 hours", "-5 minutes", "for \u22125 minutes"):
        with pytest.raises(SkillFailed, match="can't be negative"):
            parse_duration(text)


def test_say_duration():
    assert say_duration(4210) == "1 hour 10 minutes 10 seconds"
    assert say_duration(60) == "1 minute"
    assert say_duration(90000) == "1 day 1 hour"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("nine times nine", 81), ("15 percent of 80", 12), ("square root of 16", 4), ("2 to the power of 10", 1024),
        ("3.5 plus 2.25", 5.75), ("seven squared", 49), ("5 cubed", 125), ("six by seven", 42),
        ("12 divided by 4", 3), ("10 over 4", 2.5), ("100 minus 7 times 3", 79), ("15% of 80", 12),
        ("multiply 23 by 7", 161), ("divide 100 by 4", 25), ("add 15 and 27", 42), ("subtract 8 from 50", 42),
        ("two to the eighth power", 256), ("cube root of 27", 3), ("-5 plus 3", -2), ("half of 10", 5),
        ("20% of $86", 17.2), ("2 × 3 ÷ 4", 1.5), ("zero point five times 4", 2), ("the square root of 144", 12),
        ("negative five times three", -15), ("5 less than 10", 5), ("3 more than 4", 7), ("a third of 90", 30),
        ("two fifths of 10", 4), ("one quarter of 20", 5), ("three quarters of 20", 15), ("2 million times 3", 6e6), ("1.5 billion divided by 3", 5e8),
        ("ten divided by two thirds", 15), ("8 to the power of a third", 2), ("twenty five less than 100", 75),
        ("square 17", 289), ("the square of twelve", 144), ("cube 3", 27), ("take 27 away from 300", 273),
        ("add three hundred and forty to eight hundred and five", 1145), ("add 340 and 805", 1145),
        ("add three hundred and forty and eight hundred", 1140), ("add 5 and 3 and 2", 10), ("add 2 and 3 times 4", 14),
        ("add one hundred and twenty three and four hundred and fifty six", 579), ("add 5 and 3 plus 2", 10),
        ("add up three hundred and forty and eight hundred", 1140), ("multiply three hundred and forty by 2", 680),
        ("square 3 plus square 4", 25), ("the square of 4 times 3", 48), ("how many square feet is 10 by 12", 120),
        ("20 square metres divided by 4", 5), ("square root of nine", 3),
        # a percentage added or taken away is a share of what it changes, as on a calculator
        ("80 minus 20 percent", 64), ("80 plus 20 percent", 96), ("take 20 percent away from 80", 64),
        ("add 20 percent to 80", 96), ("20 percent off 80", 64), ("15% off $40", 34), ("increase 80 by 20 percent", 96),
        ("reduce 80 by 20 percent", 64), ("increase 80 by 20", 100), ("20 percent more than 80", 96),
        ("80 plus 10 percent plus 10 percent", 96.8), ("2 plus 3 minus 10 percent", 4.5),
        ("100 minus 15 percent of 80", 88), ("50 percent plus 20 percent", 0.7), ("add 2 to 3 times 4", 14),
        ("cut 90 by a third", 60), ("reduce 80 by half", 40), ("increase 60 by a quarter", 75),
        ("reduce 10 by two fifths", 6), ("lower 50 by 5", 45),
        # multiples and parts once dropped as unknown words ("double 12" was 12, "3 hundredths of 100" 300)
        ("double 12", 24), ("twice 7", 14), ("triple 4 minus 2", 10), ("5 dozen", 60), ("a dozen times 3", 36),
        ("1 third of 9", 3), ("3 hundredths of 100", 3),
    ],
)  # fmt: skip
def test_evaluate(text, value):
    assert evaluate(text) == pytest.approx(value)


def test_say_number():
    assert say_number(81.0) == "81"
    assert say_number(1 / 3) == "0.333333"
    assert say_number(10_000_000 / 3) == "3333333" and say_number(-2.5) == "-2.5" and say_number(999999.5) == "1000000"
    assert say_number(1e18) == "1 times 10 to the power of 18" and say_number(0.5e-5) == "5 times 10 to the power of -6"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1e3 seconds", 1000), ("1E3 seconds", 1000), ("2.5e2 seconds", 250), ("1e308 seconds", 1e308),
     ("1e-3 seconds", 0.001), ("3eggs and 2 minutes", 120)],
)  # fmt: skip
def test_numbers_in_e_notation_are_read_whole(text, seconds):
    assert parse_duration(text) == seconds  # never "1e308" as 1, a word "e" and 308


def test_e_notation_in_arithmetic_and_an_overflowing_number():
    assert evaluate("1e3 plus 1") == 1001
    assert tokenize("2e5 times 1.5E-2") == ["2e5", "times", "1.5e-2"]
    with pytest.raises(SkillFailed, match="too large to say"):
        evaluate("1e400 times 2")
    assert parse_duration("9" * 4000 + " seconds") == float("inf")  # for the timer to refuse as too long


def test_a_number_said_with_point_after_a_decimal_is_no_crash():
    assert read_number(tokenize("1.5 point 5"), 0) == (1.5, 1)  # not float("1.5.5")
    assert read_number(tokenize("1 point 5"), 0) == (1.5, 3)
    with pytest.raises(SkillFailed, match="couldn't work out"):
        evaluate("1.5 point 5")


def test_a_duration_that_is_not_a_number_is_unreadable():
    with pytest.raises(SkillFailed, match="couldn't read a duration"):
        parse_duration("1e400/1e400 hour")  # infinity over infinity


@pytest.mark.parametrize("text", ["( " * 600 + "5", "minus " * 600 + "5", "square root of " * 600 + "16",
                                  "2 ^ " * 600 + "1", "(" * 600 + "5" + ")" * 600])  # fmt: skip
def test_deep_nesting_is_refused_not_a_recursion_error(text):
    with pytest.raises(SkillFailed, match="nested too deeply") as caught:
        evaluate(text)
    assert len(str(caught.value)) < 200


def test_nesting_people_say_is_worked_out():
    assert evaluate("( " * 30 + "5" + " )" * 30) == 5
    assert evaluate("minus minus 5") == 5


@pytest.mark.parametrize(
    ("read", "text"),
    [(parse_duration, "soon\n\x1b[2J"), (parse_duration, "-5 minutes\n\x1b[2J"), (evaluate, "banana\n\x1b[J"),
     (evaluate, "2 plus\n\x1b[J")],
)  # fmt: skip
def test_messages_show_what_was_said_on_one_printable_line(read, text):
    with pytest.raises(SkillFailed) as caught:
        read(text)
    assert printable(text) in str(caught.value) and printable(str(caught.value)) == str(caught.value)
