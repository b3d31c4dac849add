"""Corrections: a turn's right call learnt as an example row, checked like one, in real files and a real history."""

from __future__ import annotations

import re

import pytest

from assistant.corrections import (
    CorrectionError,
    Corrector,
    Learnt,
    Refusal,
    SpokenCorrection,
    example_path,
    spoken_correction,
)
from assistant.history import History, Skipped, Turn
from finetune.examples import load_examples, read_example_file

FILES = {
    "weather": ('weather(location="[location]") get the current weather at a location.',
                [("What's the weather in Berlin?", 'weather(location="Berlin")'),
                 ("is it going to rain in paris", 'weather(location="paris")')]),
    "timecheck": ('timecheck(location="[location]") the local time at a place.',
                  [("What time is it in Tokyo?", 'timecheck(location="Tokyo")')]),
    "other": ("other() not a request for any skill.", [("Thanks, that's all.", "other()")]),
}  # fmt: skip


@pytest.fixture
def folder(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    for skill, (prompt, rows) in FILES.items():
        body = "".join(f"\n### User: {text}\n### Assistant: {call}\n" for text, call in rows)
        (examples / f"{skill}_examples.txt").write_text(f"#### Prompt:\n{prompt}\n\n#### Prompt Examples:\n{body}\n"
                                                        "#### Examples:\n")  # fmt: skip
    return examples


@pytest.fixture
def history(tmp_path):
    history = History(tmp_path / "history.db")
    for turn in (Turn(text="Otto, how is Paris looking today?", call="other()", skipped="not a request"),
                 Turn(text="", skipped=Skipped.NO_SPEECH, detail="silence"),
                 Turn(text="is it going to rain in paris", call="timecheck(location=\"paris\")", ok=True)):  # fmt: skip
        history.add(turn)
    yield history
    history.close()


@pytest.fixture
def corrector(registry, folder, history, tmp_path):
    return Corrector(registry, [folder, tmp_path / "user-skills"], folder, history)


def _rows(path):
    example_file, problems = read_example_file(path)
    assert not problems
    return [(e.text, e.call) for e in example_file.rows]


def test_a_correction_is_a_row_of_its_skill_that_examples_check_accepts(corrector, folder, history, registry):
    learnt = corrector.correct_turn(1, 'weather(location="paris")')
    assert learnt.learnt is Learnt.ADDED and learnt.turn == 1
    assert learnt.text == "how is Paris looking today?"  # the wake phrase off, as the router saw it
    assert str(learnt.call) == 'weather(location="Paris")'  # written as heard: the span rule compares exactly
    path = folder / "weather_examples.txt"
    assert learnt.path == path and _rows(path)[-1] == ("how is Paris looking today?", 'weather(location="Paris")')
    assert path.read_text().splitlines()[learnt.line - 1] == "### User: how is Paris looking today?"
    assert history.turn(1)["correction"]["call"] == 'weather(location="Paris")'
    assert history.recent()[-1]["correction"]["path"] == str(path)
    checked = load_examples([folder], registry)
    assert [p for p in checked.problems if p.kind != "missing"] == []


def test_correcting_a_turn_again_replaces_its_row(corrector, folder, history):
    corrector.correct_turn(1, 'weather(location="Paris")')
    again = corrector.correct_turn(1, 'timecheck(location="Paris")')
    assert again.learnt is Learnt.REPLACED and again.path == folder / "timecheck_examples.txt"
    assert ("how is Paris looking today?", 'weather(location="Paris")') not in _rows(folder / "weather_examples.txt")
    assert _rows(folder / "timecheck_examples.txt")[-1] == ("how is Paris looking today?",
                                                            'timecheck(location="Paris")')  # fmt: skip
    assert history.turn(1)["correction"]["call"] == 'timecheck(location="Paris")'


def test_a_row_already_there_is_not_written_twice(corrector, folder):
    before = (folder / "weather_examples.txt").read_bytes()
    learnt = corrector.correct_turn(3, 'weather(location="paris")')
    assert learnt.learnt is Learnt.KNOWN and learnt.line == 9
    assert (folder / "weather_examples.txt").read_bytes() == before


def test_other_by_name_and_a_user_skill_without_a_file(corrector, folder, registry, tmp_path):
    assert str(corrector.correct_turn(1, "other").call) == "other()"
    assert _rows(folder / "other_examples.txt")[-1] == ("how is Paris looking today?", "other()")
    skills = tmp_path / "user-skills"
    skills.mkdir()
    (skills / "mood.py").write_text('from skills import skill\n\n@skill\ndef mood(place: str) -> str:\n'
                                    '    """How a place looks."""\n    return place\n')  # fmt: skip
    registry.load_file(skills / "mood.py")
    learnt = corrector.learn("how is Paris looking today?", 'mood(place="Paris")', 1)
    assert learnt.path == skills / "mood_examples.txt" == example_path(registry, "mood", [folder], folder)
    example_file, problems = read_example_file(learnt.path)
    assert not problems and example_file.prompt == 'mood(place="[place]") How a place looks.'


@pytest.mark.parametrize(
    ("turn", "call", "refusal", "message"),
    [
        (9, "other()", Refusal.UNKNOWN_TURN, "no turn 9 in the history"),
        (2, "other()", Refusal.NOTHING_HEARD, "turn 2 heard no words (no speech: silence)"),
        (1, 'wether(location="Paris")', Refusal.INVALID_CALL, "did you mean 'weather'?"),
        (1, "weather(location=3)", Refusal.INVALID_CALL, "location must be text"),
        (1, 'weather(location="London")', Refusal.NOT_A_SPAN, "location='London' is not in what was heard"),
        (1, 'weather(location="Par")', Refusal.NOT_A_SPAN, "not in what was heard"),
        (1, 'weather(location="Paris"); other()', Refusal.SEVERAL_CALLS, "2 calls: a correction is one call"),
        (3, 'timecheck(location="paris")', Refusal.CONFLICT, "weather_examples.txt:9: 'is it going to rain in "
                                                             "paris' is already an example of weather"),
    ],
)  # fmt: skip
def test_a_bad_correction_is_refused_with_one_line_and_nothing_written(corrector, folder, history, turn, call,
                                                                        refusal, message):  # fmt: skip
    before = {path: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(CorrectionError, match=re.escape(message)) as raised:
        corrector.correct_turn(turn, call)
    assert raised.value.refusal is refusal and "\n" not in str(raised.value)
    assert {path: path.read_bytes() for path in folder.iterdir()} == before
    assert all(t["correction"] is None for t in history.recent())


def test_a_skill_file_with_problems_is_named_with_its_line(corrector, folder):
    path = folder / "weather_examples.txt"
    path.write_text(path.read_text() + "User: oops\n")
    with pytest.raises(CorrectionError, match=r"fix .*weather_examples.txt first .*weather_examples.txt:13: looks "
                                              "like an example") as raised:  # fmt: skip
        corrector.correct_turn(1, 'weather(location="Paris")')
    assert raised.value.refusal is Refusal.FILE


@pytest.mark.parametrize(
    ("said", "found"),
    [
        ("No, I meant the weather in Paris.", SpokenCorrection("the weather in Paris")),
        ("Um, no, I said set a timer for 5 minutes", SpokenCorrection("set a timer for 5 minutes")),
        ("Nope. I wanted the news", SpokenCorrection("the news")),
        ("That's wrong.", SpokenCorrection("")),
        ("Wrong.", SpokenCorrection("")),
        ("You got it wrong!", SpokenCorrection("")),
        ("That's not what I said, I asked for the time in Tokyo", SpokenCorrection("the time in Tokyo")),
        ("that is wrong, the weather in Rome", SpokenCorrection("the weather in Rome")),
        ("I meant Paris", SpokenCorrection("Paris")),
        ("I wasn't talking to you.", SpokenCorrection("", not_for_me=True)),
        ("No, that wasn't for you", SpokenCorrection("", not_for_me=True)),
        ("No.", None),
        ("No, the weather in Paris", None),
        ("Wrong number again?", None),
        ("I mean it", None),
        ("What's the weather in Paris?", None),
    ],
)
def test_spoken_corrections(said, found):
    assert spoken_correction(said) == found
