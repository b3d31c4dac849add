"""Prompt templates: one renderer for training rows and serving prompts."""

from __future__ import annotations

import pytest

from finetune.prompts import MAX_UTTERANCE_CHARS, PromptError, clean_utterance, load_template, skills_text


@pytest.mark.parametrize("family", ["compact", "chatml", "mistral", "llama2", "alpaca"])
def test_every_family_renders_prompt_then_completion(family, registry):
    template = load_template(family)
    prefix, utterance, suffix = template.parts("  What's the\nweather in Oslo?  ", skills_text(registry, "names"))
    assert utterance == "What's the weather in Oslo?"
    assert "weather(location?)" in prefix and "Turn the user's words" in prefix
    rendered = template.render("What's the weather in Oslo?", skills_text(registry, "names"))
    assert rendered == prefix + utterance + suffix
    assert template.render_completion('weather(location="Oslo")').strip().startswith('weather(location="Oslo")')
    assert template.stop


def test_chatml_exact_text():
    template = load_template("chatml")
    assert template.render("hi") + template.render_completion("other()") == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nother()<|im_end|>"
    )
    assert template.prefix("Skills: x") == (
        "<|im_start|>system\nTurn the user's words into one skill call.\nSkills: x<|im_end|>\n<|im_start|>user\n"
    )


def test_compact_is_the_default_and_puts_one_token_after_the_utterance():
    template = load_template()
    assert template.name == "compact"
    assert template.render("hi") + template.render_completion("other()") == "<|im_start|>hi<|im_end|>other()<|im_end|>"
    assert template.after == "<|im_end|>"  # a single special token: what routing evaluates besides the words


def test_the_prefix_does_not_depend_on_the_utterance():
    template = load_template("chatml")
    assert template.render("a").startswith(template.prefix()) and template.render("b").startswith(template.prefix())


def test_enormous_utterances_are_cut():
    assert len(load_template().parts("word " * 10_000)[1]) == MAX_UTTERANCE_CHARS


def test_skill_lists(registry):
    assert skills_text(registry, "none") == ""
    assert skills_text(registry, "names").startswith("Skills: ")
    full = skills_text(registry, "full", {"weather": 'weather(location="[location]") the weather.'})
    assert 'weather(location="[location]") the weather.' in full.splitlines()
    assert "timer(duration: str, name: str | None = None) Start a countdown" in full


def test_unknown_and_malformed_templates(tmp_path):
    with pytest.raises(PromptError, match="use one of alpaca, chatml, compact, llama2, mistral"):
        load_template("gpt5")
    bad = tmp_path / "bad.toml"
    bad.write_text('system = "x"\nsystem_block = ""\nbefore = "{nope}"\nafter = ""\ncompletion = "{call}"\n')
    with pytest.raises(PromptError, match="malformed"):
        load_template(bad)


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("\u0000", ""),  # nothing left: routed as an empty utterance, to other()
        ("\ud800", ""),  # a lone surrogate (valid JSON: "\ud800") is no text and cannot be encoded
        ("set a\u0000timer\x1b[2J for \udc80five minutes", "set a timer [2J for five minutes"),
        ("\x7fweather\x85in\x9bOslo\u2028please", "weather in Oslo please"),  # DEL, C1 controls, U+2028
        ("São Paulo 東京 🙂\u200d", "São Paulo 東京 🙂\u200d"),  # text stays as it is
    ],
)
def test_control_characters_and_code_points_that_are_no_text_are_cleaned(text, cleaned):
    assert clean_utterance(text) == cleaned
    clean_utterance(text).encode("utf-8")  # every router can encode it


def test_cleaning_comes_before_the_cut():
    assert clean_utterance("\u0000" * 1000 + "hello") == "hello"
