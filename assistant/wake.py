"""The wake phrase: "Otto, what's the weather?" wakes the assistant and carries its command in the same sentence;
after a wake, a follow-up window accepts commands without it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

_LEAD = {"hey", "hi", "ok", "okay", "oh", "yo", "um", "uh", "er", "hmm", "so", "and", "well", "right"}
OTTO_ALIASES = ["auto", "otter", "oto", "otto's"]
"""What Whisper writes for "Otto" now and then."""


class WakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: str | None = Field("otto", description="Wake phrase; None = every utterance is a command.")
    aliases: list[str] | None = Field(None, description="What Whisper writes for the phrase now and then; None = "
                                      "the usual ones for Otto (auto, otter, oto, otto's) when the phrase is Otto, "
                                      "else none.")  # fmt: skip
    min_score: float = Field(80.0, ge=0, le=100, description="Fuzzy match score a heard word must reach.")
    follow_up_s: float = Field(8.0, ge=0, description="After a wake or a reply, commands need no wake for this long.")


@dataclass(frozen=True)
class Woken:
    command: str
    """The text after the wake phrase (the whole text inside a follow-up window)."""
    by_phrase: bool


def _words(text: str) -> list[tuple[str, int, int]]:
    """Words with the offsets of their start and just past their end."""
    return [(m.group().casefold(), m.start(), m.end()) for m in re.finditer(r"[\w'-]+", text)]


def check_wake(text: str, options: WakeOptions, in_follow_up: bool) -> Woken | None:
    """The command if the text wakes the assistant (or comes in the follow-up window), else None."""
    if not options.phrase:
        return Woken(text, False)
    from rapidfuzz import fuzz

    words = _words(text)
    phrase = options.phrase.casefold()
    aliases = options.aliases if options.aliases is not None else OTTO_ALIASES if phrase == "otto" else []
    names = [phrase, *[a.casefold() for a in aliases]]
    size = len(options.phrase.split())

    def said(start: int, names: list[str]) -> bool:
        heard = " ".join(w for w, _, _ in words[start : start + size])
        return any(heard[:1] == name[:1] and fuzz.ratio(heard, name) >= options.min_score for name in names)  # not lotto

    for start in range(len(words) - size + 1):  # the phrase, after at most a few lead words ("hey", "um")
        if said(start, names):
            return Woken(text[words[start + size - 1][2] :].lstrip(" ,.!?:;-"), True)
        if words[start][0] not in _LEAD:
            break
    last = len(words) - size
    if last > 0:  # or last: "What time is it in Paris, Otto?" (an alias only after a comma: "a new auto" is not)
        vocative = "," in text[words[last - 1][2] : words[last][1]]
        if said(last, [phrase]) or (vocative and said(last, names)):
            return Woken(text[: words[last - 1][2]] + text[words[-1][2] :], True)  # "What time is it in Paris?"
    return Woken(text, False) if in_follow_up else None
