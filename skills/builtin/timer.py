"""Built-in skills: countdown timers and cancelling them. Timers live in this process and notify when they fire."""

from __future__ import annotations

import threading

from skills import SkillContext, SkillFailed, printable, skill
from skills.spoken import parse_duration, say_duration

_lock = threading.Lock()
_running: dict[int, tuple[threading.Timer, str]] = {}  # id -> (the countdown, its duration as said)
LONGEST_S = 7 * 24 * 3600
SAID_UP_TO_S = 100 * LONGEST_S
"""A duration too long for a timer is said back up to this ("14 days is longer..."), past it only refused."""


@skill
def timer(duration: str, context: SkillContext) -> str:
    """Start a countdown timer for a spoken duration ("5 minutes", "an hour and a half")."""
    seconds = parse_duration(duration)
    if seconds < 1:
        raise SkillFailed(f"{printable(duration)} is under a second; a timer runs for at least one second")
    if seconds > SAID_UP_TO_S:  # "a billion hours", "1e308 seconds", 4,000 nines (infinity): not said back
        raise SkillFailed("that is far longer than a timer runs (up to a week); use a calendar for that")
    said = say_duration(seconds)
    if seconds > LONGEST_S:
        raise SkillFailed(f"{said} is longer than a timer runs (up to a week); use a calendar for that")

    def fire() -> None:
        with _lock:
            _running.pop(id(countdown), None)
        context.notify(f"Your {_called(said)} is done.")

    countdown = threading.Timer(seconds, fire)
    countdown.daemon = True
    countdown.name = f"timer-{said}"  # `skillcall call` and `run` wait for threads so named
    with _lock:
        _running[id(countdown)] = (countdown, said)
    countdown.start()
    return f"Timer set for {said}."


@skill
def cancel_timer() -> str:
    """Cancel all running timers, saying which."""
    with _lock:
        timers = list(_running.values())
        _running.clear()
    for countdown, _ in timers:
        countdown.cancel()
    if not timers:
        return "There are no timers running."
    said = [s for _, s in timers]
    if len(said) == 1:
        return f"Cancelled your {_called(said[0])}."
    return f"Cancelled {len(timers)} timers: {', '.join(said[:-1])} and {said[-1]}."


def _called(said: str) -> str:
    """How a timer is named in a sentence: "10-minute timer", or "timer for 1 hour 30 minutes" when its duration
    has several parts."""
    count, unit, *rest = said.split()
    return f"timer for {said}" if rest else f"{count}-{unit.removesuffix('s')} timer"
