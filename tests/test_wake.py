"""The wake phrase and its follow-up window."""

from __future__ import annotations

import pytest

from assistant.wake import WakeOptions, check_wake

OPTIONS = WakeOptions(phrase="otto")


@pytest.mark.parametrize(
    ("text", "command"),
    [("Otto, what's the weather in Oslo?", "what's the weather in Oslo?"), ("Hey Otto, stop the timer.", "stop the timer."),
     ("OK auto: open Firefox", "open Firefox"), ("Otto.", ""), ("otter what time is it", "what time is it"),
     ("Um, Otto, thanks", "thanks"), ("Hmm, Otto, what's the weather?", "what's the weather?"),
     ("Well Otto, open Firefox", "open Firefox"), ("What time is it in Paris, Otto?", "What time is it in Paris?"),
     ("what time is it otto", "what time is it"), ("Is it raining, auto?", "Is it raining?")],
)  # fmt: skip
def test_the_phrase_wakes_and_carries_the_command(text, command):
    woken = check_wake(text, OPTIONS, in_follow_up=False)
    assert woken is not None and woken.by_phrase and woken.command == command


@pytest.mark.parametrize("text", ["What's the weather in Oslo?", "Auto-renewal is off", "Ottoman history is fun",
                                  "Motto of the day", "Lotto numbers tonight", "Hotter than ever",
                                  "I bought a new auto", "We watched an otter"])  # fmt: skip
def test_other_speech_does_not_wake(text):
    assert check_wake(text, OPTIONS, in_follow_up=False) is None


def test_the_follow_up_window_accepts_commands_without_the_phrase():
    woken = check_wake("and in Bergen?", OPTIONS, in_follow_up=True)
    assert woken is not None and not woken.by_phrase and woken.command == "and in Bergen?"


def test_no_phrase_means_every_utterance_is_a_command():
    assert check_wake("open firefox", WakeOptions(phrase=None), in_follow_up=False).command == "open firefox"


def test_another_phrase_does_not_answer_to_ottos_aliases():
    options = WakeOptions(phrase="jarvis")
    assert check_wake("Auto, what's the weather?", options, False) is None
    assert check_wake("Otto, open Firefox", options, False) is None
    assert check_wake("Jarvis, open Firefox", options, False).command == "open Firefox"
    assert check_wake("what time is it, jarvis?", options, False).command == "what time is it?"


def test_a_two_word_phrase():
    options = WakeOptions(phrase="hey computer", aliases=[])
    assert check_wake("Hey computer, what time is it?", options, False).command == "what time is it?"
    assert check_wake("hey, what time is it?", options, False) is None
