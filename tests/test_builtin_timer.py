"""The timer skills: real threads, real callbacks, timers found by name and by length."""

from __future__ import annotations

import time

import pytest

from skills import SkillCall


@pytest.fixture(autouse=True)
def no_timers_left(registry):
    """Timers live in the process: each test starts and ends with none running."""
    registry.dispatch(SkillCall("cancel_timer"))
    yield
    registry.dispatch(SkillCall("cancel_timer"))


def _wait_for(predicate, seconds=3.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not predicate():
        time.sleep(0.02)
    return predicate()


def test_a_timer_fires_its_notification(registry, notified):
    result = registry.dispatch(registry.parse('timer(duration="1 second")'))
    assert result.ok and result.text == "Timer set for 1 second."
    assert _wait_for(lambda: notified == ["Your 1-second timer is done."])


def test_cancel_stops_running_timers(registry, notified):
    registry.dispatch(registry.parse('timer(duration="one second")'))
    registry.dispatch(registry.parse('timer(duration="90 seconds")'))
    registry.dispatch(registry.parse('timer(duration="an hour and a half")'))
    assert registry.dispatch(SkillCall("cancel_timer")).text == \
        "Cancelled 3 timers: 1 second, 1 minute 30 seconds and 1 hour 30 minutes."  # in the order they were set
    time.sleep(1.3)
    assert notified == []
    nothing = registry.dispatch(SkillCall("cancel_timer"))
    assert not nothing.ok and nothing.text == "There are no timers running."
    registry.dispatch(registry.parse('timer(duration="ten minutes")'))
    assert registry.dispatch(SkillCall("cancel_timer")).text == "Cancelled your 10-minute timer."
    registry.dispatch(registry.parse('timer(duration="an hour and a half")'))
    assert registry.dispatch(SkillCall("cancel_timer")).text == "Cancelled your timer for 1 hour 30 minutes."


def test_unreadable_duration_fails_clearly(registry):
    result = registry.dispatch(registry.parse('timer(duration="a while")'))
    assert not result.ok and "couldn't read a duration in 'a while'" in result.text
    result = registry.dispatch(registry.parse('timer(duration="a billion hours")'))  # past what a thread can wait
    assert not result.ok and "longer than a timer runs (up to a week)" in result.text
    result = registry.dispatch(registry.parse('timer(duration="0.2 seconds")'))  # not "Timer set for 0 seconds."
    assert not result.ok and "under a second" in result.text
    result = registry.dispatch(registry.parse('timer(duration="0 seconds")'))  # read, and refused as such
    assert not result.ok and result.text == "0 seconds is under a second; a timer runs for at least one second"


def test_days_and_weeks_up_to_a_week(registry):
    assert registry.dispatch(registry.parse('timer(duration="2 days")')).text == "Timer set for 2 days."
    assert registry.dispatch(SkillCall("cancel_timer")).text == "Cancelled your 2-day timer."
    assert "longer than a timer runs" in registry.dispatch(registry.parse('timer(duration="two weeks")')).text


def test_absurd_durations_are_refused_as_too_long(registry):
    for duration in ("9" * 4000 + " seconds", "1e308 seconds", "1e309 seconds", "a billion hours"):
        result = registry.dispatch(SkillCall("timer", {"duration": duration}))
        assert not result.ok, duration
        assert result.text == "that is far longer than a timer runs (up to a week); use a calendar for that"


def test_a_number_in_e_notation_is_read_whole(registry):
    result = registry.dispatch(registry.parse('timer(duration="1e3 seconds")'))  # 1000 s, never 3 s
    assert result.ok and result.text == "Timer set for 16 minutes 40 seconds."
    registry.dispatch(SkillCall("cancel_timer"))


def test_what_was_said_is_echoed_on_one_printable_line(registry):
    result = registry.dispatch(SkillCall("timer", {"duration": "a while\n\x1b[2J"}))
    assert not result.ok and "couldn't read a duration in 'a while\\n\\x1b[2J'" in result.text
    result = registry.dispatch(SkillCall("timer", {"duration": "0.2\u2028seconds"}))
    assert not result.ok and result.text.startswith("0.2\\u2028seconds is under a second")


def _say(registry, call: str) -> str:
    return registry.dispatch(registry.parse(call)).text


def test_a_named_timer_is_announced_by_its_name(registry, notified):
    assert _say(registry, 'timer(duration="1 second", name="the pasta timer")') == "Pasta timer set for 1 second."
    assert _wait_for(lambda: notified == ["Your pasta timer is done."])


def test_a_timer_is_found_by_its_name_or_its_length_as_said(registry, notified):
    _say(registry, 'timer(duration="ten minutes", name="Pasta")')
    _say(registry, 'timer(duration="5 minutes")')
    _say(registry, 'timer(duration="an hour")')
    assert _say(registry, 'cancel_timer(name="pasta")') == "Cancelled your Pasta timer."  # the label, any case
    assert _say(registry, 'cancel_timer(name="five minute")') == "Cancelled your 5-minute timer."  # words or digits
    assert _say(registry, 'timer_status(name="the 60 minute timer")') == "1 hour left on your 1-hour timer."
    assert _say(registry, 'cancel_timer(name="1 hour")') == "Cancelled your 1-hour timer."


def test_a_name_that_matches_no_timer_says_which_there_are_and_does_nothing(registry):
    nothing = registry.dispatch(registry.parse('cancel_timer(name="pasta")'))
    assert not nothing.ok and nothing.text == "There are no timers running."
    _say(registry, 'timer(duration="10 minutes", name="eggs")')
    _say(registry, 'timer(duration="90 seconds")')
    for call in ('cancel_timer(name="pasta")', 'pause_timer(name="pasta")', 'timer_status(name="2 minute")'):
        result = registry.dispatch(registry.parse(call))
        assert not result.ok, call
    assert result.text == "There is no 2 minute timer; the timers running are eggs and 1 minute 30 seconds."
    assert _say(registry, "timer_status()").startswith("10 minutes left on your eggs timer and 1 minute ")


def test_two_timers_of_one_name_are_not_cancelled_on_a_guess(registry):
    _say(registry, 'timer(duration="10 minutes", name="pasta")')
    _say(registry, 'timer(duration="4 minutes", name="pasta")')
    result = registry.dispatch(registry.parse('cancel_timer(name="pasta")'))
    assert not result.ok
    assert result.text == ("2 timers match 'pasta' (10 minutes left and 4 minutes left); I did not cancel any: say "
                           "which by its length, or say all timers.")  # fmt: skip
    assert _say(registry, 'cancel_timer(name="4 minute")') == "Cancelled your pasta timer."
    assert _say(registry, "timer_status()") == "10 minutes left on your pasta timer."
    assert _say(registry, 'cancel_timer(name="all timers")') == "Cancelled your pasta timer."


def test_a_paused_timer_keeps_its_time_and_does_not_fire_until_resumed(registry, notified):
    _say(registry, 'timer(duration="2 seconds", name="tea")')
    _say(registry, 'timer(duration="1 hour")')
    time.sleep(0.5)
    assert _say(registry, 'pause_timer(name="tea")') == "Paused your tea timer with 2 seconds left."
    assert _say(registry, 'pause_timer(name="tea")') == "That timer is already paused."
    time.sleep(2.0)
    assert notified == []
    assert _say(registry, "timer_status()").startswith("2 seconds left on your tea timer (paused) and 59 minutes 5")
    assert _say(registry, "pause_timer()").startswith("Paused your 1-hour timer with 59 minutes 5")  # the one running
    assert _say(registry, "resume_timer()").startswith("Resumed your tea timer with 2 seconds left and your 1-hour")
    assert _say(registry, "resume_timer()") == "No timer is paused."
    assert _wait_for(lambda: notified == ["Your tea timer is done."])


def test_a_timer_hands_its_countdown_to_whoever_must_wait_for_it(settings, notified):
    from skills import SkillContext, load_registry

    held = []
    registry = load_registry(SkillContext(settings, notified.append, held.append))
    assert registry.dispatch(registry.parse('timer(duration="1 second", name="tea")')).ok
    [countdown] = held
    assert countdown.is_alive()  # `skillcall call` waits for it...
    countdown.join(5)
    assert not countdown.is_alive() and notified == ["Your tea timer is done."]  # ...and it ends when the timer fires
