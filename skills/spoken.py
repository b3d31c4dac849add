"""Spoken numbers, durations and arithmetic, read without ``eval``: the skills interpret what the router copied."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

from .errors import SkillFailed, printable

_UNITS = {
    "zero": 0, "oh": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "fourty": 40,  # as people often type it
}  # fmt: skip
_SCALES = {"dozen": 12, "hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_FRACTIONS = {"half": 0.5, "quarter": 0.25}
_TOKEN = re.compile(r"(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:e[+-]?\d+)?|[a-z]+|[+\-*/×÷^%()]")
"""Numbers (``1,000``, ``2.5``, ``.5``, and whole in e-notation: ``1e308`` is one number, not 1, "e" and 308),
words and operator symbols."""


def tokenize(text: str) -> list[str]:
    """Lower-case words, numbers (``1,000`` -> ``1000``) and operator symbols; other punctuation dropped."""
    text = text.casefold().replace("’", "'").replace("'s", " is")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text)  # "twenty-five"
    return [t.replace(",", "") if t[0].isdigit() else t for t in _TOKEN.findall(text)]


def _is_number_word(token: str) -> bool:
    return token in _UNITS or token in _SCALES


def read_number(tokens: list[str], i: int) -> tuple[float, int] | None:
    """Read a number at ``tokens[i]``: digits, or words such as "one hundred and twenty three", "two point five",
    "a thousand". Returns the value and the index after it, or None."""
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token[0].isdigit() or token[0] == ".":
        try:
            value = float(token)
        except ValueError:
            return None
        point = tokens[i + 1 : i + 3]
        if token.isdigit() and len(point) == 2 and point[0] == "point" and point[1].isdigit():  # "1 point 5"
            return float(f"{token}.{point[1]}"), i + 3
        i += 1
        while i < len(tokens) and tokens[i] in _SCALES:  # "2 million", as Whisper writes it
            value, i = value * _SCALES[tokens[i]], i + 1
        return value, i
    if token in ("a", "an") and i + 1 < len(tokens) and tokens[i + 1] in _SCALES:
        i += 1
        token = tokens[i]
    if not _is_number_word(token):
        return None
    total, current, j, seen_scale = 0.0, 0.0, i, False
    while j < len(tokens):
        word = tokens[j]
        if word in _UNITS:
            current += _UNITS[word]
        elif word == "hundred":
            current = (current or 1) * 100
            seen_scale = True
        elif word in _SCALES:
            total += (current or 1) * _SCALES[word]
            current, seen_scale = 0.0, True
        elif word == "and" and seen_scale and j + 1 < len(tokens) and tokens[j + 1] in _UNITS:
            pass
        else:
            break
        j += 1
    value = total + current
    if tokens[j : j + 2] == ["and", "a"] and j + 2 < len(tokens) and tokens[j + 2] in _FRACTIONS:
        value, j = value + _FRACTIONS[tokens[j + 2]], j + 3  # "twelve and a half"
    if j + 1 < len(tokens) and tokens[j] == "point":
        digits = ""
        k = j + 1
        while k < len(tokens) and tokens[k] in _UNITS and _UNITS[tokens[k]] < 10:
            digits += str(_UNITS[tokens[k]])
            k += 1
        if digits:
            value += float("0." + digits)
            j = k
    return value, j


# -- durations -------------------------------------------------------------------------------------------------
_DURATION_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60, "m": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
    "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
}  # fmt: skip


def parse_duration(text: str) -> float:
    """Seconds in a spoken duration: "5 minutes", "one hour and ten minutes", "half an hour", "an hour and a half",
    "an hour and a quarter", "3 minutes 30", "90 seconds", "20 minute", "1.5 hours"; "zero seconds" is 0, for the
    caller to refuse as too short. Raises ``SkillFailed`` when it finds no duration."""
    tokens = [t for t in tokenize(text) if t not in ("-", "(", ")")]
    # a sign would be skipped like any unknown word, and "minus five minutes" read as five minutes
    if {"minus", "negative"} & set(tokens) or re.search(r"(?:^|[^\d\s]\s+)[-−]\s*\d", text):
        raise SkillFailed(f"a duration can't be negative ('{printable(text)}'); say it like 'five minutes'")
    total, i, found, last_unit, unit_end = 0.0, 0, False, 0, -1
    while i < len(tokens):
        amount: float | None = None
        start = i
        if tokens[i] in ("a", "an", "one") and i + 1 < len(tokens) and tokens[i + 1] in _FRACTIONS:
            i += 1  # "a half", "a quarter of an hour"
        if tokens[i] in _FRACTIONS:
            amount, i = _FRACTIONS[tokens[i]], i + 1
        elif tokens[i] in ("a", "an") and i + 1 < len(tokens) and tokens[i + 1] in _DURATION_UNITS:
            amount, i = 1.0, i + 1
        elif tokens[i] == "couple":
            amount, i = 2.0, i + 1
        else:
            number = read_number(tokens, i)
            if number:
                amount, i = number
                below = read_number(tokens, i + 1) if tokens[i : i + 1] == ["/"] else None
                if below and below[0]:  # "1/2 hour"
                    amount, i = amount / below[0], below[1]
        if amount is None:
            i += 1
            continue
        if tokens[i : i + 3] in (["and", "a", "half"], ["and", "one", "half"]):  # "one and a half hours"
            amount, i = amount + 0.5, i + 3
        elif i < len(tokens) and tokens[i] in ("quarter", "quarters", "halves"):  # "three quarters of an hour"
            amount, i = amount * (0.5 if tokens[i] == "halves" else 0.25), i + 1
        while i < len(tokens) and tokens[i] in ("of", "a", "an"):
            i += 1
        if i < len(tokens) and tokens[i] in _DURATION_UNITS:
            last_unit = _DURATION_UNITS[tokens[i]]
            total += amount * last_unit
            found, i = True, i + 1
            if tokens[i : i + 3] == ["and", "a", "half"]:  # "an hour and a half"
                total, i = total + 0.5 * last_unit, i + 3
            unit_end = i
        elif amount < 1 and last_unit:  # "two hours and a half", "an hour and a quarter"
            total += amount * last_unit
        elif last_unit > 1 and start in (unit_end, unit_end + 1):  # "3 minutes 30", "an hour and 10": the next unit
            total += amount * last_unit / 60
    if not found or math.isnan(total):  # NaN: "1e400/1e400 hours", infinity over infinity
        raise SkillFailed(f"I couldn't read a duration in '{printable(text)}'; say it like 'five minutes' or "
                          "'1 hour 30 minutes'")  # fmt: skip
    return total


def say_duration(seconds: float) -> str:
    """ "1 hour 10 minutes", "90 seconds" -> "1 minute 30 seconds"."""
    seconds = round(seconds)
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    return " ".join(parts) or "0 seconds"


# -- arithmetic ------------------------------------------------------------------------------------------------
_PHRASES = [  # longest first: (words, symbol)
    ("to the power of", "^"), ("raised to the power of", "^"), ("raised to", "^"), ("multiplied by", "*"),
    ("divided by", "/"), ("square root of", "sqrt"), ("cube root of", "cbrt"), ("percent of", "% *"),
    ("per cent of", "% *"), ("times", "*"), ("x", "*"), ("by", "*"), ("over", "/"), ("plus", "+"),
    ("minus", "-"), ("negative", "-"), ("less", "-"), ("take away", "-"), ("squared", "sq"), ("cubed", "cube"), ("percent", "%"),
    ("per cent", "%"), ("×", "*"), ("÷", "/"), ("of", "*"), ("root", "sqrt"),
]  # fmt: skip
_PHRASES.sort(key=lambda p: -len(p[0].split()))
_BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "^": operator.pow,
}  # fmt: skip
MAX_EXPONENT = 1000
MAX_NESTING = 50
"""Deepest the parser reads brackets, signs, roots and powers within each other: far past anything said, far
below Python's recursion limit (each level is a few frames)."""
_UNSUPPORTED = ("factorial", "modulo", "mod", "remainder", "log", "logarithm", "sine", "cosine", "tangent", "sin",
                "cos", "tan", "average", "mean", "median", "derivative", "integral")  # fmt: skip
"""Operations people ask for that are not read: an answer without them would be wrong."""
_ORDINALS = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
             "tenth": 10}  # fmt: skip
_PARTS = {**{word: n for word, n in _ORDINALS.items() if word != "second"}, "quarter": 4, "hundredth": 100,
          "thousandth": 1000}  # fmt: skip
"""Parts of a whole: "a third", "two fifths", "three quarters" ("a second" is a time)."""
_TIMES = {"double": 2, "twice": 2, "triple": 3, "treble": 3, "thrice": 3, "quadruple": 4}
"""Multiples said before the number: "double 12" is 24."""
_SHARE = rf"half|(?:a|an|one|two|three|four|five) (?:{'|'.join(_PARTS)})s?"
"""A fraction said as a share ("a third", "two fifths", "half"): "reduce 90 by a third" takes a third of the 90."""
_REWRITES = [  # verb-first phrasings -> infix ("subtract 8 from 50" -> "50 minus 8")
    (re.compile(r"\bdivide (.+?) by (.+)"), r"\1 divided by \2"),
    (re.compile(r"\bmultiply (.+?) (?:by|with) (.+)"), r"\1 times \2"),
    (re.compile(r"\bmultiply (.+ and .+)"), lambda m: _split_terms(m[1], "times")),
    (re.compile(r"\badd (?:up )?(.+?) to (.+)"), r"\2 plus \1"),  # "add 20 percent to 80": 80 plus 20 percent
    (re.compile(r"\badd (?:up )?(.+ and .+)"), lambda m: _split_terms(m[1], "plus")),
    (re.compile(r"\bsubtract (.+?) from (.+)"), r"\2 minus \1"),
    (re.compile(r"\btake (.+?) away from (.+)"), r"\2 minus \1"),
    (re.compile(r"\b(increase|raise|decrease|reduce|lower|cut) (.+?) by (.+)"), lambda m: _change_by(*m.groups())),
    (re.compile(r"^(.+?(?:percent|per cent|%)) off (.+)$"), r"\2 minus \1"),  # "20 percent off 80"
    (re.compile(r"^(.+?) less than (.+)$"), r"\2 minus \1"),  # "twenty five less than 100"
    (re.compile(r"^(.+?) more than (.+)$"), r"\2 plus \1"),
    (re.compile(rf"\bto the ({'|'.join(_ORDINALS)}|\d+)(?:st|nd|rd|th)? power\b"),
     lambda m: f"to the power of {_ORDINALS.get(m[1], m[1])}"),
]


def _one_number(parts: list[str]) -> bool:
    """Whether parts joined by "and" are one number as people say it: "one hundred and twenty three", "two
    thousand and five" (an "and" only after a scale word, and no scale word after it), read whole."""
    for part in parts[:-1]:
        words = tokenize(part)
        if not words or words[-1] not in _SCALES:
            return False
    if any(word in _SCALES for part in parts[1:] for word in tokenize(part)):
        return False
    words = tokenize(" and ".join(parts))
    number = read_number(words, 0)
    return bool(number) and number[1] == len(words)


def _split_terms(text: str, operation: str) -> str:
    """ "three hundred and forty and eight hundred" -> "three hundred and forty plus eight hundred": number words
    hold "and" too, so each term is the longest run of parts that is one number (the first leaves one for the
    rest). Anything else keeps its first "and" as the operation and is left to the parser."""
    parts, terms, i = text.split(" and "), [], 0
    while i < len(parts):
        for j in range(len(parts) - (not terms), i, -1):
            if _one_number(parts[i:j]):
                terms.append(" and ".join(parts[i:j]))
                i = j
                break
        else:
            return text.replace(" and ", f" {operation} ", 1)
    return f" {operation} ".join(terms)


def _change_by(verb: str, number: str, change: str) -> str:
    """ "increase 80 by 20 percent" -> "80 plus 20 percent"; a fraction is a share of the number: "reduce 90 by a
    third" -> "90 minus a third of 90"."""
    sign = "plus" if verb in ("increase", "raise") else "minus"
    return f"{number} {sign} {change} of {number}" if re.fullmatch(_SHARE, change) else f"{number} {sign} {change}"


def _number_after(words: list[str], i: int) -> int:
    """Where the number named after "square" or "cube" starts ("of" and "the" skipped), or 0 when none follows
    ("square feet", "square root")."""
    while i < len(words) and words[i] in ("of", "the"):
        i += 1
    return i if read_number(words, i) else 0


def _math_tokens(text: str) -> list[str | float]:
    text = text.casefold()
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    words = tokenize(text)
    out: list[str | float] = []
    pending: str | None = None  # "square 17": the power follows the number it names
    i = 0
    while i < len(words):
        number = read_number(words, i)
        if number:
            out.append(number[0])
            if pending:
                out.append(pending)
                pending = None
            i = number[1]
            continue
        for phrase, symbol in _PHRASES:
            size = len(phrase.split())
            if words[i : i + size] == phrase.split():
                out.extend(symbol.split())
                i += size
                break
        else:
            word = words[i]
            denominator = _PARTS.get(word.removesuffix("s"))
            if denominator and (word.endswith("s") or i and words[i - 1] in ("a", "an", "one", "1")):  # one value:
                if out and isinstance(out[-1], float):  # "ten divided by two thirds" is 15
                    out[-1] /= denominator
                else:
                    out.append(1 / denominator)
            elif word in _TIMES:  # "double 12", "twice seven"
                out.extend([float(_TIMES[word]), "*"])
            elif word in "+-*/^%()" or word in ("half", "quarter"):  # "a third of 90", "two fifths of 10"
                out.append(_FRACTIONS.get(word, word))
            elif word in ("square", "cube") and (start := _number_after(words, i + 1)):  # "square 17", "the cube of 3"
                pending, i = ("sq" if word == "square" else "cube"), start
                continue
            elif word in _UNSUPPORTED:
                raise SkillFailed(f"I can't work out a {word} yet; I do + - × ÷, powers, roots and percentages")
            i += 1
    # "of" only multiplies after a number or percent ("half of ten"); elsewhere it is filler ("square root of").
    cleaned: list[str | float] = []
    for token in out:
        if token == "*" and (not cleaned or isinstance(cleaned[-1], str) and cleaned[-1] not in ("%", "sq", "cube", ")")):
            continue
        cleaned.append(token)
    return cleaned


class _Parser:
    """Recursive descent over number and operator tokens: + - < * / < unary, roots < ^ < postfix."""

    def __init__(self, tokens: list[str | float], text: str) -> None:
        self.tokens, self.i, self.text, self.depth = tokens, 0, text, 0

    def peek(self) -> str | float | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str | float | None:
        token = self.peek()
        self.i += 1
        return token

    def fail(self) -> SkillFailed:
        return SkillFailed(f"I couldn't work out '{printable(self.text)}'; say it like 'nine times nine' or '15 "
                           "percent of 80'")  # fmt: skip

    def expression(self) -> float:
        start = self.i
        value = self.term()
        percent = self.bare_percent(start, self.i)  # "50 percent plus 20 percent" is 70 percent
        while self.peek() in ("+", "-"):
            op, start = str(self.take()), self.i
            right = self.term()
            if self.bare_percent(start, self.i) and not percent:
                right *= value  # "80 minus 20 percent" is 64, as on a calculator: 20 percent of the 80
            value, percent = _BINARY[op](value, right), False
        return value

    def bare_percent(self, start: int, end: int) -> bool:
        """Whether tokens[start:end] are a percentage alone ("20 percent"), not a share of something ("20 percent
        of 80")."""
        return end - start == 2 and isinstance(self.tokens[start], float) and self.tokens[start + 1] == "%"

    def term(self) -> float:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = str(self.take())
            right = self.unary()
            if op == "/" and right == 0:
                raise SkillFailed("I can't divide by zero")
            value = _BINARY[op](value, right)
        return value

    def unary(self) -> float:
        """Every nesting passes here (a bracket's expression, a sign, a root, a power's exponent): the depth is
        counted here."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SkillFailed(f"that is nested too deeply for me to work out (over {MAX_NESTING} brackets, signs or "
                              "powers within each other); say it more simply")  # fmt: skip
        value = self._unary()
        self.depth -= 1
        return value

    def _unary(self) -> float:
        token = self.peek()
        if token in ("-", "+"):
            self.take()
            value = self.unary()
            return -value if token == "-" else value
        if token in ("sqrt", "cbrt"):
            self.take()
            value = self.unary()
            if token == "sqrt":
                if value < 0:
                    raise SkillFailed("I can't take the square root of a negative number")
                return math.sqrt(value)
            return math.copysign(abs(value) ** (1 / 3), value)
        return self.power()

    def power(self) -> float:
        value = self.postfix()
        if self.peek() == "^":
            self.take()
            exponent = self.unary()
            if abs(exponent) > MAX_EXPONENT:
                raise SkillFailed(f"that power is too large to say; keep the exponent under {MAX_EXPONENT}")
            try:
                value = value**exponent
            except (OverflowError, ZeroDivisionError):
                raise SkillFailed("that result is too large to say") from None
            if isinstance(value, complex):
                raise SkillFailed("that has no real answer")
        return value

    def postfix(self) -> float:
        value = self.atom()
        while self.peek() in ("sq", "cube", "%"):
            token = self.take()
            try:
                value = value**2 if token == "sq" else value**3 if token == "cube" else value / 100
            except OverflowError:
                raise SkillFailed("that result is too large to say") from None
        return value

    def atom(self) -> float:
        token = self.take()
        if token == "(":
            value = self.expression()
            if self.take() != ")":
                raise self.fail()
            return value
        if isinstance(token, float):
            return token
        raise self.fail()


def evaluate(text: str) -> float:
    """The value of spoken arithmetic ("nine times nine", "15 percent of 80", "square root of 16")."""
    tokens = _math_tokens(text)
    if not any(isinstance(t, float) for t in tokens):
        raise SkillFailed(f"I found no numbers in '{printable(text)}'; say it like 'nine times nine'")
    parser = _Parser(tokens, text)
    value = parser.expression()
    if parser.peek() is not None:
        raise parser.fail()
    if math.isinf(value) or math.isnan(value):
        raise SkillFailed("that result is too large to say")
    return value


def say_number(value: float) -> str:
    """As it is read aloud: 81.0 -> "81", 0.333333333 -> "0.333333", 3333333.33 -> "3333333", 1e18 -> "1 times
    10 to the power of 18" (never "1e+18")."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.6g}"
    if "e" not in text:
        return text
    if 1 <= abs(value) < 1e15:  # 3333333.33, 999999.5
        return str(round(value))
    mantissa, exponent = f"{value:.5e}".split("e")
    return f"{float(mantissa):g} times 10 to the power of {int(exponent)}"
