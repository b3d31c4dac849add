"""The ways training rows are varied each epoch: every variation keeps a valid call whose spans are the words said."""

from __future__ import annotations

import json
import random
import re
from types import SimpleNamespace

import pytest

from finetune.augment import (
    ASSISTANT_NAMES,
    FILLERS,
    OTHER_PEOPLE,
    address,
    epoch_rows,
    hesitate,
    plainly,
    renumber,
)
from finetune.dataset import DatasetOptions, build_dataset
from finetune.examples import EXAMPLES_DIR, load_examples
from skills import load_registry, span_positions


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def rows(tmp_path_factory, registry):
    out = tmp_path_factory.mktemp("data")
    build_dataset(load_examples([EXAMPLES_DIR], registry), DatasetOptions(out, seed=2))
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def assert_spans_are_words_said(row, registry):
    for call in registry.parse_calls(row["call"], limit=4):  # still valid calls ...
        for parameter in registry.get(call.name).parameters:
            value = call.arguments.get(parameter.name)
            if parameter.span and isinstance(value, str):
                assert span_positions(row["text"], value), (row, value)  # ... whose spans are still the words said


def test_addressed_rows_keep_their_spans_and_go_to_other_only_when_said_to_someone_else(rows, registry):
    varied = [address(row, "Otto", 1.0, random.Random(i), registry) for i, row in enumerate(rows)]
    said_to = {"Otto": 0, "another assistant": 0, "someone else": 0}

    def named(names, text):
        return any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text, re.IGNORECASE) for n in names)

    for row, new in zip(rows, varied, strict=True):
        if named(["Otto"], row["text"]):
            assert new is row  # already said to the assistant
            continue
        assert_spans_are_words_said(new, registry)
        if named(["Otto"], new["text"]):
            said_to["Otto"] += 1
            assert new["call"] == row["call"]
        elif new["call"] == row["call"]:  # "Alexa, what's the weather" is still a weather request
            said_to["another assistant"] += 1
            assert named(ASSISTANT_NAMES, new["text"]) and new["text"] != row["text"]
        else:
            said_to["someone else"] += 1
            assert new["call"] == "other()" and row["call"] != "other()"
            assert named(OTHER_PEOPLE, new["text"])
    assert said_to["Otto"] > said_to["someone else"] > 0
    assert said_to["another assistant"] > said_to["someone else"]
    assert [address(row, "Otto", 1.0, random.Random(i), registry) for i, row in enumerate(rows)] == varied
    assert all(address(row, "Otto", 0.0, random.Random(0), registry) is row for row in rows[:50])
    for i, row in enumerate(rows[:200]):  # a wake name that is also an assistant's, a wake phrase of two words
        for wake in ("Jarvis", "Hey Jarvis"):
            new = address(row, wake, 1.0, random.Random(i), registry)
            if new["call"] != row["call"]:
                assert named(OTHER_PEOPLE, new["text"]) and not named([wake], new["text"]), (wake, new)
            assert "hey hey" not in new["text"].casefold()


def test_a_filler_in_front_keeps_the_call_and_the_rows_style(rows, registry):
    varied = [hesitate(row, 1.0, random.Random(i), registry) for i, row in enumerate(rows)]
    for row, new in zip(rows, varied, strict=True):
        assert new["call"] == row["call"] and new["text"] != row["text"]
        assert_spans_are_words_said(new, registry)
        if new["text"] == new["text"].lower():  # Whisper's plain style stays plain: "um so what's 72 over 9"
            assert any(new["text"] == f"{f} {row['text']}" for f in FILLERS)
        else:  # "Um, what's 72 over 9?"
            filler, _, rest = new["text"].partition(", ")
            assert filler.casefold() in FILLERS and filler[0].isupper() and rest.casefold() == row["text"].casefold()
    assert {new["text"].split(",")[0].casefold() for new in varied} >= {"um", "so uh", "hmm"}
    assert [hesitate(row, 1.0, random.Random(i), registry) for i, row in enumerate(rows)] == varied
    assert all(hesitate(row, 0.0, random.Random(0), registry) is row for row in rows[:50])


def test_a_plainly_typed_row_is_lower_case_without_punctuation_and_its_spans_change_alike(rows, registry):
    varied = [plainly(row, 1.0, random.Random(i), registry) for i, row in enumerate(rows)]
    changed = [(row, new) for row, new in zip(rows, varied, strict=True) if new is not row]
    typed = [row for row in rows if row["text"] != row["text"].lower() or re.search(r"[?!,;\"]", row["text"])]
    assert len(changed) >= 0.98 * len(typed) > 0  # every row not typed plainly already, but a rare span kept it
    for row, new in changed:
        assert new["text"] == new["text"].lower() and not re.search(r"[?!,;\"]", new["text"]), new
        assert_spans_are_words_said(new, registry)
        assert [c.name for c in registry.parse_calls(new["call"], limit=4)] == [c.name for c in registry.parse_calls(row["call"], limit=4)]
    plain = {row["text"]: new for row, new in changed}
    row = {"text": "What's the weather in St. Louis, Missouri?", "call": 'weather(location="St. Louis, Missouri")'}
    new = plainly(row, 1.0, random.Random(0), registry)
    assert new["text"] in ("what's the weather in st louis missouri", "whats the weather in st louis missouri")
    assert new["call"] == 'weather(location="st louis missouri")'
    maths = {"text": "What's 2.5 times 4?", "call": 'math(question="2.5 times 4")'}
    assert plainly(maths, 1.0, random.Random(0), registry)["call"] == 'math(question="2.5 times 4")'  # a point kept
    assert all(plainly(row, 0.0, random.Random(0), registry) is row for row in rows[:50])
    assert plain  # deterministic for a seed
    assert [plainly(row, 1.0, random.Random(i), registry) for i, row in enumerate(rows)] == varied


@pytest.mark.parametrize(("text", "call", "new_text", "new_call"), [
    ("Set a timer for 5 minutes.", 'timer(duration="5 minutes")',
     "Set a timer for five minutes.", 'timer(duration="five minutes")'),
    ("what's twenty one times three", 'math(question="twenty one times three")',
     "what's 21 times 3", 'math(question="21 times 3")'),
    ("set a timer for one hour", 'timer(duration="one hour")', "set a timer for 1 hour", 'timer(duration="1 hour")'),
    ("which one is bigger, the sun or the moon", 'ask(question="which one is bigger, the sun or the moon")',
     None, None),  # "one" alone before no unit stays a word
    ("What's 15% of 80?", 'math(question="15% of 80")', "What's 15% of eighty?", 'math(question="15% of eighty")'),
    ("Wake me at 10:30.", "other()", None, None),  # a clock time is left alone
])  # fmt: skip
def test_numbers_are_said_the_other_way_in_the_text_and_the_call_alike(registry, text, call, new_text, new_call):
    row = {"text": text, "call": call}
    new = renumber(row, 1.0, random.Random(0), registry)
    if new_text is None:
        assert new is row
    else:
        assert (new["text"], new["call"]) == (new_text, new_call)


def test_an_epoch_varies_rows_by_seed_and_epoch_and_not_at_all_with_every_share_zero(rows, registry):
    options = SimpleNamespace(seed=1, wake="Otto", address_share=0.2, filler_share=0.15, numbers_share=0.15,
                              plain_share=0.25)  # fmt: skip
    first, again = epoch_rows(rows, options, 0, registry), epoch_rows(rows, options, 0, registry)
    assert first == again and first != epoch_rows(rows, options, 1, registry)
    plain = sum(r["text"] == r["text"].lower() for r in first) - sum(r["text"] == r["text"].lower() for r in rows)
    assert plain > 0.1 * len(rows)
    for row in first:
        assert_spans_are_words_said(row, registry)
    still = SimpleNamespace(seed=1, wake=None, address_share=0.2, filler_share=0, numbers_share=0, plain_share=0)
    assert epoch_rows(rows, still, 0, registry) is rows
