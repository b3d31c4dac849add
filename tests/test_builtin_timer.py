"""timer and cancel_timer: real threads, real callbacks."""

from __future__ import annotations

import time

from skills import SkillCall


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
    assert registry.dispatch(SkillCall("cancel_timer")).text == "There are no timers running."
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
