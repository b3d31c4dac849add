"""The call grammar used for constrained decoding: built from the live registry, spans of the utterance."""

from __future__ import annotations

import pytest

from assistant.constrain import COMPLETE, END, NO, PARTIAL, CallAcceptor

SAID = 'What\'s the weather like in "New York"? Add oat milk, please'


@pytest.fixture
def acceptor(registry):
    return CallAcceptor(registry, SAID, max_calls=1)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("", PARTIAL), ("wea", PARTIAL), ("weather(", PARTIAL), ('weather(location="New', PARTIAL),
        ('weather(location="New York")', COMPLETE), ("weather()", COMPLETE), ("other()", COMPLETE),
        ('notes(action="add", note="oat milk")', COMPLETE), ('notes(action="list")', COMPLETE),
        ('weather(location="Paris', NO), ('weather(location=" New', NO), ('weather(location="New ")', NO),
        ('weather(location="")', NO), ("wether(", NO), ("timer()", NO), ('timer(location="New")', NO),
        ('notes(action="delete"', NO), ('notes(note="oat milk")', NO), ("other() ", NO), ("weather(city=", NO),
        ('weather(location="\\"New York\\"")', COMPLETE), ("__import__(", NO),
        ('weather(location="ork', NO), ('notes(action="add", note="oat mil")', NO),  # spans are whole words
        ('notes(action="add", note="oat mil', PARTIAL),
    ],
)  # fmt: skip
def test_states(acceptor, text, status):
    assert acceptor.state(text)[0] == status


@pytest.mark.parametrize(
    ("text", "forced"),
    [("w", 'eather('), ("timer(", 'duration="'), ("cancel_timer(", ""), ("other(", ")"), ("notes(action=", '"'),
     ('notes(action="l', 'ist"'), ("weather(", ""), ('weather(location="', ""), ("", "")],
)  # fmt: skip
def test_forced_continuations(acceptor, text, forced):
    assert acceptor.forced(text) == forced


def test_a_sequence_of_calls_in_the_order_said(registry):
    acceptor, weather = CallAcceptor(registry, SAID), 'weather(location="New York")'
    assert acceptor.state(weather) == (PARTIAL, ["; ", END])  # the model's end token, or another request
    assert acceptor.forced(weather) == ""
    assert acceptor.state(weather + END)[0] == COMPLETE
    assert acceptor.state(weather + ";") == (PARTIAL, [" "])
    notes = 'notes(action="add", note="oat milk")'
    assert acceptor.state(f"{weather}; {notes}")[0] == PARTIAL
    assert acceptor.state(f"{weather}; {notes}{END}")[0] == COMPLETE
    assert acceptor.state(f"{weather}; {notes}; {weather}; {notes}")[0] == COMPLETE  # four: no fifth
    assert acceptor.state(f"{weather}; {notes}; {weather}; {notes}; ")[0] == NO
    for wrong in (f"{weather}; other()", f"{weather} ;", f"{weather};{notes}", f"{weather}; {notes[:-1]}; ",
                  f'{weather}; weather(location="Paris")', "other(); ", f"{weather[:-2]}{END}"):
        assert acceptor.state(wrong)[0] == NO, wrong
    assert acceptor.state("other()")[0] == COMPLETE  # no request: nothing follows


def test_an_utterance_with_no_word_that_joins_two_requests_holds_one_call(registry):
    acceptor = CallAcceptor(registry, "weather in New York")
    assert acceptor.state('weather(location="New York")')[0] == COMPLETE
    assert acceptor.state('weather(location="New York"); ')[0] == NO


def _with_user_skill(settings, tmp_path, name, source):
    """The built-ins and one user skill file."""
    from skills import SkillContext, load_registry

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    return load_registry(SkillContext(settings), folder)


def test_only_loaded_skills(registry, settings, tmp_path):
    greet = ("from skills import skill\n\n@skill(not_spans=('style',))\ndef greet(name: str, style: str = 'warm', "
             "times: int = 1) -> str:\n    '''Greet.'''\n    return name\n")  # fmt: skip
    with_user = CallAcceptor(_with_user_skill(settings, tmp_path, "greet", greet), "say hi to Ada")
    assert with_user.state('greet(name="Ada", style="anything at all", times=3)')[0] == COMPLETE
    assert with_user.state('greet(name="Bob")')[0] == NO
    assert with_user.state("greet(name=\"Ada\", times=x")[0] == NO
    assert CallAcceptor(registry, "say hi to Ada").state("greet(")[0] == NO


def test_numbers_and_choices_as_the_registry_takes_them(registry, settings, tmp_path):
    volume = ("from typing import Literal\nfrom skills import skill\n\n@skill\ndef volume(level: Literal[1, 10], "
              "steps: int = 1, gain: float = 1.0) -> str:\n    '''Set the volume.'''\n    return str(level)\n")
    mine = _with_user_skill(settings, tmp_path, "volume", volume)
    acceptor = CallAcceptor(mine, "volume ten")
    for text, status in [("volume(level=10)", COMPLETE), ("volume(level=1)", COMPLETE), ("volume(level=1", PARTIAL),
                         ("volume(level=100)", NO), ("volume(level=10, steps=3)", COMPLETE),
                         ("volume(level=1, steps=2.5)", NO), ("volume(level=1, steps=05)", NO),
                         ("volume(level=1, steps=-2)", COMPLETE), ("volume(level=1, gain=2.5)", COMPLETE)]:  # fmt: skip
        assert acceptor.state(text)[0] == status, text
        if status == COMPLETE:
            mine.parse(text)  # what the grammar lets through, the registry takes
    assert acceptor.forced("volume(level=1") == ""  # 10 is still open: nothing is forced


@pytest.mark.parametrize(
    ("utterance", "text", "rest"),
    [
        ("what's the weather in Berlin?", 'weather(location="Ber', 'lin")'),
        ("note that the oven is 200, not 180.", 'notes(action="add", note="the oven', ' is 200, not 180")'),
        ('she said "hi" to me', 'ask(question="she said \\"hi', '\\" to me")'),
        ("what's the weather in Berlin?", 'weather(location="', ""),  # the model chooses where a span starts
        ("what's the weather in Berlin?", "weather(", ""),
        ("what's the weather in Berlin?", 'weather(location="Paris', ""),  # not a valid call: no guess
        ("what's the weather in Berlin?", 'weather(location="Berlin', '")'),  # the utterance ends: close
    ],
)  # fmt: skip
def test_span_rest_guesses_the_rest_of_the_utterance(registry, utterance, text, rest):
    assert CallAcceptor(registry, utterance).span_rest(text) == rest


def test_spans_can_be_switched_off(registry):
    call = 'weather(location="Paris")'
    assert CallAcceptor(registry, "what's the weather like").state(call)[0] == NO
    assert CallAcceptor(registry, "what's the weather like", spans=False).state(call)[0] == COMPLETE


@pytest.mark.parametrize(
    ("utterance", "text", "rest"),
    [
        ("what's the weather in Berlin?", 'weather(location="', 'Berlin")'),
        ("What's the news on the Lunar New Year?", 'news(topic="', 'Lunar New Year")'),  # the last "the"
        ("Hey Otto, why is the sky blue?", 'ask(question="', 'why is the sky blue")'),
        ("why is the sky blue", 'ask(question="', 'why is the sky blue")'),  # "" = the first word
        ("open", 'runapp(program="', ""),  # nothing after the word: no guess
        ("what's the weather like", 'weather(location="', ""),
    ],
)  # fmt: skip
def test_span_rest_guesses_where_a_span_starts_from_the_words_before_it(registry, utterance, text, rest):
    starts = {"weather.location": ["in"], "news.topic": ["the", "on"], "ask.question": ["", "otto"],
              "runapp.program": ["open"]}  # fmt: skip
    assert CallAcceptor(registry, utterance).span_rest(text, starts) == rest


def test_a_character_split_across_tokens_continues_only_where_the_utterance_has_it(registry):
    zurich = CallAcceptor(registry, "weather in Zürich")
    assert zurich.continues('weather(location="Z', "ü".encode()[:1])
    assert not zurich.continues('weather(location="Zu', "ü".encode()[:1])  # the utterance has "Zü", not "Zuü"
    hawaii = CallAcceptor(registry, "What time is it in Hawaii?")
    assert not hawaii.continues('timecheck(location="Hawai', "ʻ".encode()[:1])  # a dead end: "Hawaiʻi" is not said
    assert not hawaii.continues("timecheck(", "ʻ".encode()[:1])  # structure is ASCII
    assert CallAcceptor(registry, "hi").continues("ask(question=", b"") is False  # before the quote: structure


def test_a_split_character_must_continue_a_whole_word_span(registry):
    evian = CallAcceptor(registry, "weather in Evian, the café town")  # "é" only inside a word
    assert not evian.continues('weather(location="', "é".encode()[:1])
    assert evian.continues('weather(location="caf', "é".encode()[:1])


def test_a_span_never_starts_inside_an_escape(registry):
    acceptor = CallAcceptor(registry, r"weather in x\nowhere")  # a literal backslash, as said
    assert acceptor.state(r'weather(location="\nowhere")')[0] == NO  # a newline: not a span once unescaped
    assert acceptor.state(r'weather(location="x\\nowhere")')[0] == COMPLETE
    quoted = CallAcceptor(registry, 'note that she said "hi" to me')
    assert quoted.state(r'notes(action="add", note="she said \"hi\" to me")')[0] == COMPLETE


@pytest.fixture
def installed(registry, settings):
    folder = settings.runapp.app_dirs[0]
    folder.mkdir()
    (folder / "firefox.desktop").write_text("[Desktop Entry]\nType=Application\nName=Firefox Web Browser\nExec=true\n")
    return registry


@pytest.mark.parametrize(
    ("utterance", "text", "status"),
    [
        ("Open Firefox, please.", 'runapp(program="Firefox")', COMPLETE),
        ("Open Firefox, please.", 'runapp(program="Firefox, please")', NO),
        ("Open Firefox, please.", 'runapp(program="Open")', NO),
        ("open the fire fox browser", 'runapp(program="fire fox")', COMPLETE),  # fuzzy, as the skill resolves
        ("Turn on the coffee maker.", "runapp(", NO),
        ("Turn on the coffee maker.", "run", NO),
        ("Turn on the coffee maker.", "other()", COMPLETE),
    ],
)  # fmt: skip
def test_runapp_takes_only_spans_that_name_an_installed_app(installed, utterance, text, status):
    assert CallAcceptor(installed, utterance, max_calls=1).state(text)[0] == status


def test_with_known_values_off_any_span_will_do(installed):
    acceptor = CallAcceptor(installed, "Turn on the coffee maker.", known_values=False)
    assert acceptor.state('runapp(program="coffee maker")')[0] == COMPLETE


def test_an_app_installed_while_running_is_found(installed, settings):
    import time

    assert CallAcceptor(installed, "open gimp").state("runapp(")[0] == NO
    (settings.runapp.app_dirs[0] / "gimp.desktop").write_text("[Desktop Entry]\nName=GIMP\nExec=true\n")
    time.sleep(1.1)  # the folders are looked at again once a second at most
    assert CallAcceptor(installed, "open gimp").state('runapp(program="gimp")')[0] == COMPLETE


def test_a_values_function_that_fails_allows_any_span_and_says_so(caplog):
    from skills import Registry, skill

    def broken(value, context):
        raise RuntimeError("no index")

    @skill(values={"name": broken})
    def greet(name: str) -> str:
        """Greet someone."""
        return name

    registry = Registry()
    registry.add(greet.__skill__)
    with caplog.at_level("WARNING"):
        acceptor = CallAcceptor(registry, "say hi to Ana")
    assert acceptor.state('greet(name="Ana")')[0] == COMPLETE
    assert "values function failed" in caplog.text


def test_word_spans_are_whole_words_without_edge_punctuation():
    from assistant.constrain import word_spans

    spans = word_spans('Open "Firefox", please.', max_words=2)
    assert spans == ["Open", 'Open "Firefox', "Firefox", "Firefox\", please", "please"]


def test_another_call_may_follow_only_where_a_joining_word_comes_after_the_words_copied(registry):
    acceptor = CallAcceptor(registry, "Otto, what's the weather in Paris?")  # a comma, but before the place
    assert acceptor.state('weather(location="Paris")')[0] == COMPLETE
    acceptor = CallAcceptor(registry, "weather in Paris, and a timer for ten minutes")
    assert acceptor.state('weather(location="Paris")')[0] == PARTIAL
    both = 'weather(location="Paris"); timer(duration="ten minutes")'
    assert acceptor.state(both)[0] == COMPLETE  # nothing joined on after the duration
    assert acceptor.state("cancel_timer()")[0] == PARTIAL  # no words copied: a join anywhere will do
