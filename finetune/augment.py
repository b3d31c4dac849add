"""Training rows varied each epoch the ways people really say them: to the assistant by its name or another
assistant's, to someone else, with a filler in front, typed plainly (lower case, no punctuation), numbers as
digits or words. Every variation keeps the call's spans the words said: a text argument changes with the words
it copies, and a row whose spans would not survive a variation is left as written.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from skills import MAX_CALLS, SEPARATOR, Registry, SkillcallError, span_positions

OTHER_PEOPLE = ("Mom", "Dad", "Mum", "honey", "babe", "guys", "kids", "Grandpa", "Grandma", "sweetheart",
                "darling")  # fmt: skip
"""Whom rows are addressed to instead of the assistant: family and company, never a first name, which may be an
assistant's (a request said to "Olly" or "Jarvis" is a request)."""

ASSISTANT_NAMES = ("Alexa", "Siri", "Hey Google", "OK Google", "Cortana", "Computer", "Jarvis", "Bixby",
                   "Hey Mycroft", "Assistant", "Nova", "Jeeves", "Echo", "Hey Rhasspy", "Friday", "Ava")  # fmt: skip
"""Other assistants' names: people who use several say one to this one, and a request said to any of them is the
same request (the daemon's own wake phrase is checked before routing)."""

FILLERS = ("um", "uh", "so", "so uh", "hmm", "er", "well", "okay so", "oh", "um so")
"""What people say before a request while they think; it never changes the call."""

_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORDS = {value: word for word, value in {**_UNITS, **_TENS}.items()}
_TENS_WORDS, _DIGIT_WORDS = "|".join(_TENS), "|".join(w for w, n in _UNITS.items() if 0 < n < 10)
_NUMBER_WORDS = re.compile(rf"(?<![\w'-])(?:({_TENS_WORDS})(?:[ -]({_DIGIT_WORDS}))?|({'|'.join(_UNITS)}))(?![\w'-])",
                           re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w.,:/'$£€-])\d{1,2}(?!\w|[.,:]\d|[%/'-])")
_UNIT_AFTER = re.compile(r"\s+(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|percent|degrees?|times|"
                         r"plus|minus|divided|over|am|pm|o'clock)\b", re.IGNORECASE)  # fmt: skip
_EDGE_PUNCTUATION = re.compile(r"[,?!;:\"“”()\[\]…]|(?<!\d)\.|\.(?!\d)|(?<!\w)'|'(?!\w)")


def epoch_rows(rows: list[dict], options: Any, epoch: int, registry: Registry) -> list[dict]:
    """The training rows as ``epoch`` sees them, seeded by seed and epoch (``options`` is the run's TrainOptions):
    some said to someone by name (``address``), some with a filler in front (``hesitate``), some with their numbers
    said the other way (``renumber``), some typed plainly (``plainly``); ``rows`` itself when none applies."""
    rng = random.Random(f"{options.seed}:address:{epoch}")
    if options.wake and options.address_share:
        rows = [address(r, options.wake, options.address_share, rng, registry) for r in rows]
    if options.filler_share:
        rows = [hesitate(r, options.filler_share, rng, registry) for r in rows]
    if options.numbers_share:
        rows = [renumber(r, options.numbers_share, rng, registry) for r in rows]
    if options.plain_share:
        rows = [plainly(r, options.plain_share, rng, registry) for r in rows]
    return rows


def address(row: dict, wake: str, share: float, rng: random.Random, registry: Registry) -> dict:
    """With probability ``share``, the row said to an assistant by name, first or last: half the time ``wake``,
    else another assistant's name (the same call); or, for a skill's row, a fifth of the time said to someone
    else (other()). The words of every span are kept as they are, so the call still copies the utterance."""
    text, call = row["text"], row["call"]
    if rng.random() >= share or re.search(rf"(?<!\w){re.escape(wake)}(?!\w)", text, re.IGNORECASE):
        return row  # already said to the assistant
    to_other = not call.startswith("other(") and rng.random() < 1 / 5
    if to_other:
        name, call = rng.choice([p for p in OTHER_PEOPLE if p.casefold() != wake.casefold()]), "other()"
    else:
        name = wake if rng.random() < 0.5 else rng.choice([a for a in ASSISTANT_NAMES if a.casefold() != wake.casefold()])
    if rng.random() < 0.3:  # last: "what time is it in Paris, Otto?", "what's the weather in Cardiff, Dad?"
        plain = text == text.lower()  # written like Whisper's unpunctuated lower-case output
        body = text.rstrip("?!.")
        name = name.lower() if plain else name
        return {**row, "text": f"{body}{' ' if plain else ', '}{name}{text[len(body):]}", "call": call}
    lead = rng.choice(("", "", "hey ", "okay ", "um ")) if len(name.split()) == 1 else ""  # not "Hey Hey Jarvis"
    return {**row, "text": said_first(row, lead.capitalize() + name, registry), "call": call}


def hesitate(row: dict, share: float, rng: random.Random, registry: Registry) -> dict:
    """With probability ``share``, the row with a filler in front ("Um, what's 72 over 9?"): the same call."""
    if rng.random() >= share:
        return row
    return {**row, "text": said_first(row, rng.choice(FILLERS).capitalize(), registry)}


def said_first(row: dict, words: str, registry: Registry) -> str:
    """The row's text with ``words`` in front, in its style: "um otto what's the weather" for Whisper's plain
    lower-case output, else "Um, Otto, what's the weather" (the first letter lowered unless a span needs it)."""
    text = row["text"]
    if text == text.lower():
        return f"{words.lower()} {text}"
    values = _text_values(row["call"], registry)
    lowered = text[:1].lower() + text[1:]
    spans_kept = all(value in lowered for value in values if value in text)
    if lowered != text and spans_kept and not text.startswith("I "):
        text = lowered  # "Otto, what's the weather", not "Otto, What's the weather"
    return f"{words}, {text}"


def plainly(row: dict, share: float, rng: random.Random, registry: Registry) -> dict:
    """With probability ``share``, the row as people type it to an assistant, or as a transcript without
    punctuation reads: lower case, no punctuation, half the time no apostrophes ("whats the weather in st
    louis"); the spans change alike ("St. Louis" -> "st louis")."""
    if rng.random() >= share:
        return row
    drop_apostrophes = rng.random() < 0.5

    def plain(text: str) -> str:
        text = _EDGE_PUNCTUATION.sub(" ", text.lower())
        if drop_apostrophes:
            text = re.sub(r"(?<=\w)'(?=\w)", "", text)
        return " ".join(text.split())

    return _rewritten(row, plain, registry)


def renumber(row: dict, share: float, rng: random.Random, registry: Registry) -> dict:
    """With probability ``share``, the row's numbers under a hundred said the other way: "5 minutes" <->
    "five minutes", "twenty one" -> "21" ("one" alone only before a unit: "which one" stays)."""
    if rng.random() >= share:
        return row
    if _DIGITS.search(row["text"]):
        return _rewritten(row, lambda text: _DIGITS.sub(lambda m: _words(int(m.group())), text), registry)

    def digits(match: re.Match) -> str:
        tens, unit, alone = match.groups()
        if alone and alone.casefold() == "one" and not _UNIT_AFTER.match(match.string, match.end()):
            return match.group()
        if alone:
            return str(_UNITS[alone.casefold()])
        return str(_TENS[tens.casefold()] + (_UNITS[unit.casefold()] if unit else 0))

    return _rewritten(row, lambda text: _NUMBER_WORDS.sub(digits, text), registry)


def _words(number: int) -> str:
    if number in _WORDS:
        return _WORDS[number]
    return f"{_WORDS[number - number % 10]} {_WORDS[number % 10]}"


def _rewritten(row: dict, change: Callable[[str], str], registry: Registry) -> dict:
    """The row with ``change`` applied to its text and to every text argument of its calls alike; the row itself
    when that changes nothing, or when a span would no longer be the words said."""
    text = change(row["text"])
    if text == row["text"] or not text.strip():
        return row
    try:
        written = []
        for call in registry.parse_calls(row["call"], limit=MAX_CALLS + 1):
            skill = registry.get(call.name)
            arguments = {k: change(v) if isinstance(v, str) else v for k, v in call.arguments.items()}
            spans = [arguments[p.name] for p in skill.parameters if p.span and isinstance(arguments.get(p.name), str)]
            if not all(value and span_positions(text, value) for value in spans):
                return row
            written.append(str(registry.validate(call.name, arguments)))
        return {**row, "text": text, "call": SEPARATOR.join(written)}
    except SkillcallError:
        return row


def _text_values(call: str, registry: Registry) -> list[str]:
    try:
        calls = registry.parse_calls(call, limit=MAX_CALLS + 1)
    except SkillcallError:
        return []
    return [v for one in calls for v in one.arguments.values() if isinstance(v, str)]
