"""Built-in skills: countdown timers, named or not, that can be cancelled, checked, paused and resumed.

Timers live in this process (the daemon's) and notify when they fire. A timer is found by the name it was given
("the pasta timer") or by its length as said ("the five minute timer" finds the 300-second one).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from skills import SkillContext, SkillFailed, printable, skill
from skills.spoken import parse_duration, say_duration

LONGEST_S = 7 * 24 * 3600
SAID_UP_TO_S = 100 * LONGEST_S
"""A duration too long for a timer is said back up to this ("14 days is longer..."), past it only refused."""
_ARTICLES = ("the ", "my ", "a ", "an ", "that ", "this ", "our ")


@dataclass(eq=False)
class _Timer:
    seconds: float
    """Its length as set."""
    name: str | None
    """The label it was given, as said ("pasta"), or None."""
    notify: object
    left_s: float = 0.0
    """Time left when paused; while running, ``due - now``."""
    due: float | None = None
    """``time.monotonic()`` when it fires; None while paused."""
    countdown: threading.Timer | None = field(default=None, repr=False)

    @property
    def called(self) -> str:
        """How a sentence names it: "pasta timer", "10-minute timer", "timer for 1 hour 30 minutes"."""
        if self.name:  # "timer" is never part of it (``_label``)
            return f"{self.name} timer"
        said = say_duration(self.seconds)
        count, unit, *rest = said.split()
        return f"timer for {said}" if rest else f"{count}-{unit.removesuffix('s')} timer"

    @property
    def short(self) -> str:
        """How a list names it: its name, or its length ("pasta", "1 hour 30 minutes")."""
        return self.name or say_duration(self.seconds)

    def left(self) -> float:
        return self.left_s if self.due is None else max(0.0, self.due - time.monotonic())

    def start(self, seconds: float) -> None:
        self.due = time.monotonic() + seconds
        self.countdown = threading.Timer(seconds, self._fire)
        self.countdown.daemon = True
        self.countdown.name = f"timer-{self.called}"
        self.countdown.start()

    def stop(self) -> None:
        if self.countdown is not None:
            self.countdown.cancel()
        self.countdown = None

    def _fire(self) -> None:
        with _lock:
            if self not in _running:
                return
            _running.remove(self)
        self.notify(f"Your {self.called} is done.")


_lock = threading.RLock()
_running: list[_Timer] = []  # in the order they were set


@skill(in_process=True)  # timers live in the daemon: they fire later, and later calls find them
def timer(duration: str, context: SkillContext, name: str | None = None) -> str:
    """Start a countdown timer for a spoken duration ("5 minutes", "an hour and a half"), optionally named."""
    seconds = parse_duration(duration)
    if seconds < 1:
        raise SkillFailed(f"{printable(duration)} is under a second; a timer runs for at least one second")
    if seconds > SAID_UP_TO_S:  # "a billion hours", "1e308 seconds", 4,000 nines (infinity): not said back
        raise SkillFailed("that is far longer than a timer runs (up to a week); use a calendar for that")
    said = say_duration(seconds)
    if seconds > LONGEST_S:
        raise SkillFailed(f"{said} is longer than a timer runs (up to a week); use a calendar for that")
    label = _label(name) if name else None
    countdown = _Timer(seconds, label or None, context.notify)
    with _lock:
        _running.append(countdown)
        countdown.start(seconds)
    context.hold(countdown.countdown)  # a one-shot `skillcall call` stays until it fires
    return f"{countdown.called[0].upper()}{countdown.called[1:]} set for {said}." if label else f"Timer set for {said}."


@skill(in_process=True)
def cancel_timer(name: str | None = None) -> str:
    """Cancel a running timer, by its name or its length; without one, every running timer."""
    with _lock:
        chosen = _choose(name, "cancel")
        for countdown in chosen:
            countdown.stop()
            _running.remove(countdown)
    if len(chosen) == 1:
        return f"Cancelled your {chosen[0].called}."
    return f"Cancelled {len(chosen)} timers: {_and([t.short for t in chosen])}."


@skill(in_process=True)
def timer_status(name: str | None = None) -> str:
    """Say how long is left on a running timer, or on each."""
    with _lock:
        chosen = _choose(name, "check")
        said = _and([f"{_left(t)} on your {t.called}{' (paused)' if t.due is None else ''}" for t in chosen])
    return f"{said[0].upper()}{said[1:]}."


@skill(in_process=True)
def pause_timer(name: str | None = None) -> str:
    """Pause a running timer, by its name or its length; without one, every running timer."""
    with _lock:
        chosen = [t for t in _choose(name, "pause") if t.due is not None]
        if not chosen:
            return "That timer is already paused." if name else "Your timers are already paused."
        for countdown in chosen:
            countdown.left_s = countdown.left()
            countdown.due = None
            countdown.stop()
        said = [f"your {t.called} with {_left(t).removesuffix(' left')} left" for t in chosen]
    return f"Paused {_and(said)}."


@skill(in_process=True)
def resume_timer(name: str | None = None) -> str:
    """Resume a paused timer, by its name or its length; without one, every paused timer."""
    with _lock:
        chosen = [t for t in _choose(name, "resume") if t.due is None]
        if not chosen:
            return "That timer is not paused." if name else "No timer is paused."
        for countdown in chosen:
            countdown.start(countdown.left_s)
        said = [f"your {t.called} with {_left(t).removesuffix(' left')} left" for t in chosen]
    return f"Resumed {_and(said)}."


def _choose(name: str | None, doing: str) -> list[_Timer]:
    """The running timers that ``name`` means: its label first, then a length as said ("five minute" finds a
    300-second timer); all of them when there is no name. Raises ``SkillFailed`` naming the timers there are when
    none matches or several do (so nothing is done to a timer the person did not mean)."""
    if not _running:
        raise SkillFailed("There are no timers running.")
    if not name or not _label(name):
        return list(_running)
    label = _label(name).casefold()
    found = [t for t in _running if t.name and _same(t.name, label)]
    if not found:
        try:
            seconds = parse_duration(name)
        except SkillFailed:
            seconds = None
        found = [t for t in _running if seconds is not None and abs(t.seconds - seconds) < 0.5]
    running = f"the {'timer running is' if len(_running) == 1 else 'timers running are'} {_and([t.short for t in _running])}"
    if not found:
        raise SkillFailed(f"There is no {printable(label)} timer; {running}.")
    if len(found) > 1:
        raise SkillFailed(f"{len(found)} timers match '{printable(label)}' ({_and([_left(t) for t in found])}); I "
                          f"did not {doing} any: say which by its length, or say all timers.")  # fmt: skip
    return found


def _same(name: str, label: str) -> bool:
    """Whether a timer's name is the label said, in any case, one or many: "eggs" is the "egg timer"."""
    return name.casefold().removesuffix("s") == label.removesuffix("s")


def _label(name: str) -> str:
    """A name as said, without "the", "my" or "timer" around it: "the pasta timer" -> "pasta"."""
    label = " ".join(name.split()).strip(" .,!?'\"")
    lowered = label.casefold()
    for article in _ARTICLES:
        if lowered.startswith(article):
            label, lowered = label[len(article):], lowered[len(article):]
    for suffix in (" timers", " timer"):
        if lowered.endswith(suffix):
            label, lowered = label[: -len(suffix)], lowered[: -len(suffix)]
    return "" if lowered in ("timer", "timers", "all", "all the", "every", "all my") else label.strip()


def _left(countdown: _Timer) -> str:
    return f"{say_duration(max(1, math.ceil(countdown.left() - 0.05)))} left"  # a countdown rounds up


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
