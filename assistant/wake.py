"""The wake phrase: "Otto, what's the weather?" wakes the assistant and carries its command in the same sentence;
after a wake, a follow-up window accepts commands without it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

_LEAD = {"hey", "hi", "ok", "okay", "oh", "yo", "um", "uh", "so", "and"}


class WakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: str | None = Field("otto", description="Wake phrase; None = every utterance is a command.")
    aliases: list[str] = Field(default_factory=lambda: ["auto", "otter", "oto", "otto's"],
                               description="What Whisper writes for the phrase now and then.")  # fmt: skip
    min_score: float = Field(80.0, ge=0, le=100, description="Fuzzy match score a heard word must reach.")
    follow_up_s: float = Field(8.0, ge=0, description="After a wake or a reply, commands need no wake for this long.")


@dataclass(frozen=True)
class Woken:
    command: str
    """The text after the wake phrase (the whole text inside a follow-up window)."""
    by_phrase: bool


def _words(text: str) -> list[tuple[str, int]]:
    """Words with the offset just past each one."""
    return [(m.group().casefold(), m.end()) for m in re.finditer(r"[\w'-]+", text)]


def check_wake(text: str, options: WakeOptions, in_follow_up: bool) -> Woken | None:
    """The command if the text wakes the assistant (or comes in the follow-up window), else None."""
    if not options.phrase:
        return Woken(text, False)
    from rapidfuzz import fuzz

    words = _words(text)
    names = [options.phrase.casefold(), *[a.casefold() for a in options.aliases]]
    size = len(options.phrase.split())
    for start in range(len(words) - size + 1):  # the phrase, after at most a few lead words ("hey", "um")
        heard = " ".join(w for w, _ in words[start : start + size])
        if any(heard[:1] == name[:1] and fuzz.ratio(heard, name) >= options.min_score for name in names):  # not lotto
            return Woken(text[words[start + size - 1][1] :].lstrip(" ,.!?:;-"), True)
        if words[start][0] not in _LEAD:
            break
    return Woken(text, False) if in_follow_up else None
