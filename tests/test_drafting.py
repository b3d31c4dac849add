"""What a router drafts from: span starts and the skill the words point to, counted in the training rows."""

from __future__ import annotations

import json

import pytest

from finetune.dataset import DatasetOptions, split_rows
from finetune.drafting import likely_skill, skill_words, span_starts
from finetune.examples import EXAMPLES_DIR, load_examples


@pytest.fixture(scope="module")
def registry_module():
    from skills import load_registry

    return load_registry()


def test_span_starts_are_the_words_right_before_each_span(registry_module):
    rows = [
        {"text": "weather in Paris, please", "call": 'weather(location="Paris")'},
        {"text": "How's the weather IN Rome?", "call": 'weather(location="Rome")'},
        {"text": "Oslo weather for tomorrow", "call": 'weather(location="Oslo")'},
        {"text": "Why is the sky blue?", "call": 'ask(question="Why is the sky blue")'},
        {"text": "Note that: milk", "call": 'notes(action="add", note="milk")'},
        {"text": "set a timer", "call": "timer("},  # unparseable rows are skipped
    ]
    assert span_starts(rows, registry_module) == {
        "ask.question": [""], "notes.note": ["that"], "weather.location": ["in", ""],
    }  # fmt: skip


def test_skill_words_count_rows_not_mentions():
    rows = [{"text": "weather weather in Paris", "call": 'weather(location="Paris")'},
            {"text": "Weather in Rome", "call": 'weather(location="Rome")'},
            {"text": "the weather was nice", "call": "other()"}]  # fmt: skip
    stats = skill_words(rows, min_rows=2)
    assert stats == {"rows": {"other": 1, "weather": 2},
                     "words": {"in": {"weather": 2}, "weather": {"other": 1, "weather": 2}}}  # fmt: skip
    assert json.loads(json.dumps(stats)) == stats  # it goes into router.json


def test_likely_skill_guesses_held_out_rows_and_abstains_when_unsure(registry_module):
    splits = split_rows(load_examples([EXAMPLES_DIR], registry_module), DatasetOptions())[0]
    stats = skill_words(splits["train"])
    guesses = [(likely_skill(row["text"], stats), row["skill"]) for row in splits["validation"]
               if row["skill"] != "compound"]  # the words of several requests point to no one skill
    made = [(guess, skill) for guess, skill in guesses if guess is not None]
    assert len(made) > 0.5 * len(guesses)  # guesses most rows ...
    assert sum(guess == skill for guess, skill in made) > 0.85 * len(made)  # ... and most guesses are right
    assert likely_skill("", stats) is None and likely_skill("zxqv blorp", stats) is None
    assert likely_skill("what's the weather like in Lisbon", stats) == "weather"
    assert likely_skill("what's the weather like in Lisbon", stats, confidence=1.01) is None
