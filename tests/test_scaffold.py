"""skillcall new-skill: a skill file and an example file that load, validate and pass examples check as written."""

from __future__ import annotations

import pytest

from assistant.scaffold import NewParameter, NewSkillOptions, ScaffoldError, new_skill
from finetune.examples import load_examples, read_example_file
from skills import SkillContext, load_registry


def _params(*specs):
    return tuple(NewParameter.parse(spec) for spec in specs)


def test_a_new_skill_loads_runs_and_its_seed_rows_pass_examples_check(tmp_path, settings, registry):
    skills = tmp_path / "skills"
    options = NewSkillOptions("greet", _params("name", "times:int=1", "place:str=None", "loud:bool=false"),
                              "Greet someone by name.", skills)  # fmt: skip
    written = new_skill(options, registry)
    assert written.skill_path == skills / "greet.py" and written.examples_path == skills / "greet_examples.txt"
    source = written.skill_path.read_text()
    assert "@skill\ndef greet(name: str, context: SkillContext, times: int = 1, place: str | None = None, " \
           "loud: bool = False) -> str:\n" in source and '"""Greet someone by name."""' in source
    loaded = load_registry(SkillContext(settings), skills)
    assert loaded.get("greet").signature == "greet(name: str, times: int = 1, place: str | None = None, " \
                                            "loud: bool = False)"
    result = loaded.dispatch(loaded.parse('greet(name="Ada", times=2)'))
    assert result.ok and result.text == "greet: name='Ada', times=2, place=None, loud=False"
    example_file, problems = read_example_file(written.examples_path)
    assert not problems
    assert example_file.prompt == 'greet(name="[name]", times=[times], place="[place]", loud=[loud]) Greet someone ' \
                                  "by name."
    assert [(e.text, e.call) for e in example_file.prompt_examples] == [
        ("Greet Alice.", 'greet(name="Alice")'),
        ("Could you greet Sam with times 3, place Tokyo and loud on?",
         'greet(name="Sam", times=3, place="Tokyo", loud=True)'),
        ("otto greet my sister", 'greet(name="my sister")')]  # fmt: skip
    checked = load_examples([skills], loaded)
    assert [p for p in checked.problems if p.kind != "missing"] == [] and checked.counts() == {"greet": 3}


def test_a_skill_without_parameters_and_without_a_description(tmp_path, registry, settings):
    written = new_skill(NewSkillOptions("lights_off", (), None, tmp_path), registry)
    loaded = load_registry(SkillContext(settings), tmp_path)
    assert loaded.get("lights_off").description == "Lights off."
    assert [e.call for e in written.seeds] == ["lights_off()"] * 3
    assert loaded.dispatch(loaded.parse("lights_off()")).text == "lights_off: done."
    assert not [p for p in load_examples([tmp_path], loaded).problems if p.kind != "missing"]


@pytest.mark.parametrize(
    ("name", "specs", "message"),
    [
        ("weather", (), "a skill named 'weather' is already loaded"),
        ("Greet", (), "use lower case letters"),
        ("class", (), "use lower case letters"),
        ("greet", ("a:list",), "type 'list' is not one of str, int, float, bool"),
        ("greet", ("times:int=many",), "default 'many' is not of type int"),
        ("greet", ("2x",), "write NAME, NAME:TYPE or NAME:TYPE=DEFAULT"),
        ("greet", ("context",), "a name the skill file uses itself"),
        ("greet", ("a", "a:int"), "a parameter is named twice"),
    ],
)
def test_bad_names_and_parameters_are_refused_and_nothing_is_written(tmp_path, registry, name, specs, message):
    with pytest.raises(ScaffoldError, match=message):
        new_skill(NewSkillOptions(name, _params(*specs), None, tmp_path), registry)
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_overwritten(tmp_path, registry):
    (tmp_path / "greet_examples.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="greet_examples.txt already exists"):
        new_skill(NewSkillOptions("greet", (), None, tmp_path), registry)
    assert [p.name for p in tmp_path.iterdir()] == ["greet_examples.txt"]
    assert (tmp_path / "greet_examples.txt").read_text() == "mine"
