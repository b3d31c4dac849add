"""Example files: lossless read/write, every problem named with file and line, and the shipped files themselves."""

from __future__ import annotations

import os
import textwrap

import pytest

from finetune.examples import (
    EXAMPLES_DIR,
    Example,
    ExampleFile,
    load_examples,
    read_example_file,
    read_examples,
    write_atomic,
    write_example_file,
)
from skills.places import resolve
from skills.spoken import evaluate, parse_duration

GOOD = """\
#### Prompt:
weather(location="[location]") get the current weather at a location.

#### Prompt Examples:

### User: What's the weather in Berlin?
### Assistant: weather(location="Berlin")

#### Examples:

### User: is it going to rain in paris
### Assistant: weather(location="paris")
"""


def test_shipped_files_pass_and_meet_the_counts(registry):
    example_set = load_examples([EXAMPLES_DIR], registry)
    assert example_set.problems == []
    counts = example_set.counts()
    assert set(counts) == set(registry.names)
    assert all(count >= 100 for count in counts.values())
    assert counts["other"] >= 300


def test_reading_without_checks_gives_the_checked_fingerprint(registry, tmp_path):
    """`skillcall route` fingerprints unchecked files; a router's card holds the checked set's fingerprint."""
    assert read_examples([EXAMPLES_DIR], registry).fingerprint() == load_examples([EXAMPLES_DIR], registry).fingerprint()
    (tmp_path / "weather_examples.txt").write_text(GOOD.replace("Berlin", "Bern"))
    (tmp_path / "greet_examples.txt").write_text(GOOD.replace("weather", "greet"))  # no such skill: skipped by both
    (tmp_path / "bad_examples.txt").write_text("no header at all\n")
    checked, read = load_examples([tmp_path], registry), read_examples([tmp_path], registry)
    assert read.fingerprint() == checked.fingerprint() != load_examples([EXAMPLES_DIR], registry).fingerprint()
    assert {p.kind for p in checked.problems} > {p.kind for p in read.problems}  # only the checks find "missing"


def test_shipped_files_round_trip_byte_for_byte():
    for path in sorted(EXAMPLES_DIR.glob("*_examples.txt")):
        example_file, problems = read_example_file(path)
        assert not problems
        assert example_file.render() == path.read_text(encoding="utf-8"), path.name


def test_shipped_arguments_are_ones_the_skills_understand(registry):
    """The router copies spans; the skills must be able to read every span the examples teach it."""
    for skill, example in load_examples([EXAMPLES_DIR], registry).rows():
        arguments = registry.parse(example.call).arguments
        if skill == "math":
            evaluate(arguments["question"])
        elif skill == "timer":
            assert parse_duration(arguments["duration"]) > 0
        elif skill == "timecheck" and arguments:
            resolve(arguments["location"])


def _problems(tmp_path, registry, text, name="weather_examples.txt"):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return [p for p in load_examples([tmp_path], registry).problems if p.kind != "missing"]


def test_a_good_file_has_no_problems(tmp_path, registry):
    assert _problems(tmp_path, registry, GOOD) == []
    assert _problems(tmp_path / "bom", registry, "\ufeff" + GOOD) == []  # saved by a Windows editor
    assert _problems(tmp_path / "crlf", registry, GOOD.replace("\n", "\r\n")) == []


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("### User: is it", "User: is it"), 11, "looks like an example but is not in the format"),
        (("### Assistant: weather(location=\"paris\")", "Assistant: weather(location=\"paris\")"), 11,
         "'### User:' has no '### Assistant:' line after it"),
        (("weather(location=\"paris\")", "wether(location=\"paris\")"), 12, "did you mean 'weather'"),
        (("weather(location=\"paris\")", "weather(location=3)"), 12, "location must be text"),
        (("weather(location=\"paris\")", "weather(location='paris')"), 12, "not in canonical form"),
        (("weather(location=\"paris\")", "timecheck(location=\"paris\")"), 12, "this file is for weather"),
        (("weather(location=\"paris\")", "weather(location=\"Paris\")"), 12, "not a span of whole words"),
        (("weather(location=\"paris\")", "weather(location=\"par\")"), 12, "not a span of whole words"),
        (("weather(location=\"paris\")", "weather(location=__import__('os'))"), 12, "must be a literal"),
        (("is it going to rain in paris", "What's the weather in berlin"), 11, "duplicate of weather_examples.txt:6"),
        (("#### Examples:", "#### Exemples:"), 9, "unexpected line"),
        (("#### Prompt:\n", ""), 1, "no '#### Prompt:' line"),
    ],
)  # fmt: skip
def test_each_problem_names_file_and_line(tmp_path, registry, change, line, message):
    found = _problems(tmp_path, registry, GOOD.replace(*change))
    assert found, f"no problem found for {change}"
    assert any(p.line == line and message in str(p) and "weather_examples.txt" in str(p) for p in found), found


def test_non_utf8_and_unknown_skill_files(tmp_path, registry):
    found = _problems(tmp_path, registry, GOOD.encode() + b"\n### User: caf\xe9\n")
    assert found[0].line == 14 and "not valid UTF-8" in str(found[0])
    found = _problems(tmp_path / "other", registry, GOOD, name="wether_examples.txt")
    assert "no loaded skill is called 'wether'" in str(found[0])


def test_a_skill_without_a_file_is_reported(tmp_path, registry):
    missing = [p for p in load_examples([tmp_path], registry).problems if p.kind == "missing"]
    assert len(missing) == len(registry.names)
    assert {p.path for p in missing} == {EXAMPLES_DIR / f"{name}_examples.txt" for name in registry.names}
    assert "skillcall generate --skill weather" in str(next(p for p in missing if p.path.name.startswith("weather")))


def test_a_user_skill_without_a_file_is_told_where_to_write_it(tmp_path, settings):
    from skills import SkillContext, load_registry

    (tmp_path / "greet.py").write_text('from skills import skill\n\n@skill\ndef greet(name: str) -> str:\n'
                                       '    """Greet someone."""\n    return name\n')  # fmt: skip
    registry = load_registry(SkillContext(settings), tmp_path)
    missing = [p for p in load_examples([EXAMPLES_DIR, tmp_path], registry).problems if p.kind == "missing"]
    assert [str(p) for p in missing] == [f"{tmp_path / 'greet_examples.txt'}: skill greet has no example file, so "
                                         "the router cannot learn it; write this one (the format: README, 'Example "
                                         "files'), or draft rows with `skillcall generate --skill greet`"]  # fmt: skip


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "weather_examples.txt"
    path.write_text(GOOD)
    example_file, _ = read_example_file(path)
    example_file.examples.append(Example("weather in oslo", 'weather(location="oslo")'))

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_example_file(example_file, path)
    assert path.read_text() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["weather_examples.txt"]


def test_a_symlinked_file_stays_a_link_and_keeps_its_mode(tmp_path):
    real = tmp_path / "dotfiles" / "weather_examples.txt"
    real.parent.mkdir()
    real.write_text(GOOD)
    os.chmod(real, 0o664)
    link = tmp_path / "weather_examples.txt"
    link.symlink_to(real)
    write_atomic(link, GOOD + "\n")
    assert link.is_symlink() and real.read_text() == GOOD + "\n" and oct(real.stat().st_mode & 0o777) == "0o664"
    assert oct(write_atomic(tmp_path / "new.txt", "x").stat().st_mode & 0o777) == "0o644"


def test_write_then_read_is_lossless(tmp_path):
    original = ExampleFile(
        "notes", 'notes(action="[add|list]") notes.', [Example("Note: \"quotes\" ✓", 'notes(action="list")')],
        [Example("Añade leche", 'notes(action="add", note="leche")'),
         Example("note lines\u2028apart", 'notes(action="add", note="lines\u2028apart")')],
    )
    path = write_example_file(original, tmp_path / "notes_examples.txt")
    again, problems = read_example_file(path)
    assert not problems
    assert (again.prompt, again.prompt_examples, again.examples) == (
        original.prompt, [Example(e.text, e.call, 6) for e in original.prompt_examples],
        [Example(e.text, e.call, 11 + 3 * i) for i, e in enumerate(original.examples)],
    )  # fmt: skip
    assert again.render() == path.read_text()


def test_user_example_file_beside_a_user_skill(tmp_path, settings):
    from skills import SkillContext, load_registry

    (tmp_path / "greet.py").write_text(textwrap.dedent('''
        from skills import skill

        @skill
        def greet(name: str) -> str:
            """Greet someone."""
            return f"Hello {name}"
    '''))
    (tmp_path / "greet_examples.txt").write_text(
        '#### Prompt:\ngreet(name="[name]") greet someone.\n\n#### Prompt Examples:\n\n'
        '### User: Say hi to Ada.\n### Assistant: greet(name="Ada")\n\n#### Examples:\n'
    )
    registry = load_registry(SkillContext(settings), tmp_path)
    example_set = load_examples([EXAMPLES_DIR, tmp_path], registry)
    assert example_set.problems == [] and example_set.counts()["greet"] == 1
