"""@skill, loading skill files (built-in and user), validation and isolated, time-bounded dispatch."""

from __future__ import annotations

import logging
import textwrap
import time
from typing import Literal

import pytest

from skills import (
    CallError,
    Outcome,
    Registry,
    SkillCall,
    SkillContext,
    SkillDefinitionError,
    SkillSettings,
    load_registry,
    skill,
)

BUILTINS = ["ask", "math", "news", "notes", "other", "runapp", "timecheck", "timer", "cancel_timer", "timer_status",
            "pause_timer", "resume_timer", "weather"]  # fmt: skip


def test_the_thirteen_builtins_load_with_their_contract_signatures(registry):
    assert sorted(registry.names) == sorted(BUILTINS)
    assert not registry.problems
    signatures = {s.name: s.signature for s in registry}
    assert signatures == {
        "weather": "weather(location: str | None = None)",
        "timecheck": "timecheck(location: str | None = None)",
        "timer": "timer(duration: str, name: str | None = None)",
        "cancel_timer": "cancel_timer(name: str | None = None)",
        "timer_status": "timer_status(name: str | None = None)",
        "pause_timer": "pause_timer(name: str | None = None)",
        "resume_timer": "resume_timer(name: str | None = None)",
        "math": "math(question: str)",
        "notes": "notes(action: Literal['add', 'list'], note: str | None = None)",
        "news": "news(topic: str | None = None)",
        "runapp": "runapp(program: str)",
        "ask": "ask(question: str)",
        "other": "other()",
    }
    assert all(s.description and "\n" not in s.description for s in registry)
    assert registry.get("runapp").risky


def test_json_schema_hides_the_context_parameter(registry):
    schema = registry.get("notes").json_schema()
    assert set(schema["properties"]) == {"action", "note"}
    assert schema["required"] == ["action"]
    assert schema["properties"]["action"]["enum"] == ["add", "list"]
    assert schema["additionalProperties"] is False
    tool = registry.get("weather").tool()
    assert tool["function"]["name"] == "weather"
    assert "context" not in tool["function"]["parameters"]["properties"]


def _write(folder, name, source):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source))


def test_user_skills_load_and_a_broken_file_is_reported_and_left_out(tmp_path, settings):
    folder = tmp_path / "mine"
    _write(folder, "greet.py", '''
        from skills import skill

        @skill
        def greet(name: str, times: int = 1) -> str:
            """Say hello to someone."""
            return " ".join([f"Hello {name}!"] * times)
    ''')
    _write(folder, "broken.py", "def oops(:\n")
    _write(folder, "exits.py", "import sys\nsys.exit(3)\n")
    _write(folder, "_private.py", "raise RuntimeError('never imported')\n")
    _write(folder, "lazy.py", "class Lazy:\n    def __getattr__(self, name):\n        raise RuntimeError('not configured')\n"
                              "\n\nsettings = Lazy()\n")  # fmt: skip  # like django.conf.settings: read no attribute
    registry = load_registry(SkillContext(settings), folder)
    assert "greet" in registry and "weather" in registry
    assert sorted(p.path.name for p in registry.problems) == ["broken.py", "exits.py"]
    assert "SyntaxError" in str(registry.problems[0])
    result = registry.dispatch(registry.parse('greet("Ada", times=2)'))
    assert result.ok and result.text == "Hello Ada! Hello Ada!"
    result = registry.dispatch(SkillCall("greet", {"name": "Ada", "times": 2.0}))
    assert not result.ok and "times must be a whole number (2, not 2.0)" in result.text


def test_a_user_skill_named_like_a_builtin_is_refused(tmp_path, settings):
    _write(tmp_path / "mine", "weather.py", '''
        from skills import skill

        @skill
        def weather(location: str) -> str:
            """Shadow the built-in."""
            return "sunny"
    ''')
    registry = load_registry(SkillContext(settings), tmp_path / "mine")
    assert "already loaded" in registry.problems[0].message
    assert registry.get("weather").source.endswith("builtin/weather.py")


def test_a_user_file_named_like_a_builtin_file_loads_beside_it(tmp_path, settings):
    _write(tmp_path / "mine", "news.py", '''
        import logging

        from skills import skill

        @skill
        def headlines() -> str:
            """Read my own headlines."""
            return logging.getLogger(__name__).name
    ''')
    registry = load_registry(SkillContext(settings), tmp_path / "mine")
    assert not registry.problems and "news" in registry and "headlines" in registry
    assert registry.dispatch(SkillCall("headlines")).text == "skillcall_user_news"  # its own module, beside
    assert registry.get("news").function.__module__ == "skillcall_builtin_news"  # the built-in's (no hash in logs)
    _write(tmp_path / "theirs", "news.py", '''
        from skills import skill

        @skill
        def briefing() -> str:
            """Another folder's news.py."""
            return __name__
    ''')
    registry.load_dir(tmp_path / "theirs")
    assert registry.dispatch(SkillCall("briefing")).text.startswith("skillcall_user_news_")
    assert registry.dispatch(SkillCall("headlines")).text == "skillcall_user_news"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x: int) -> int:\n    return x", "has no docstring"),
        ('def f(x) -> int:\n    """Doc."""', "needs a type hint"),
        ('def f(*args: int) -> int:\n    """Doc."""', "plain keyword parameter"),
        ('def _f() -> int:\n    """Doc."""', "public Python identifier"),
        ('def f(items: list[str]) -> str:\n    """Doc."""', "items is list\\[str\\]; a call carries text, numbers"),
        ('def f(x: int | str) -> str:\n    """Doc."""', "a call carries text"),
        ('async def f() -> str:\n    """Doc."""', "not async, not a generator"),
    ],
)
def test_functions_that_cannot_be_skills_are_rejected(source, message):
    namespace: dict = {}
    exec(source, namespace)  # test-only: defines the function under test
    with pytest.raises(SkillDefinitionError, match=message):
        skill(namespace[[k for k in namespace if k.lstrip("_") == "f"][0]])


def test_skill_options_are_checked():
    def f() -> str:
        """Doc."""
        return ""

    for bad in ("10", -1, True):
        with pytest.raises(SkillDefinitionError, match="give a number of seconds above 0"):
            skill(timeout_s=bad)(f)
    assert skill(timeout_s=2.5)(f).__skill__.timeout_s == 2.5


def test_warm_ups_run_once_and_a_failing_one_is_only_logged(caplog):
    warmed = []

    def ready() -> str:
        """Warms up."""
        return "ok"

    def broken() -> str:
        """Cannot warm up."""
        return "ok"

    def boom():
        raise OSError("index file missing")

    registry = Registry(SkillContext(SkillSettings()))
    registry.add(skill(warm=lambda: warmed.append("ready"))(ready).__skill__)
    registry.add(skill(warm=boom)(broken).__skill__)
    with caplog.at_level("WARNING"):
        registry.warm()
    assert warmed == ["ready"]
    assert "skill broken could not warm up (OSError: index file missing)" in caplog.text
    assert registry.dispatch(SkillCall("broken")).text == "ok"  # the skill itself still runs
    with pytest.raises(SkillDefinitionError, match="give a function that takes no arguments"):
        skill(warm="index")(ready)


def test_not_spans_must_name_real_parameters():
    def f(query: str) -> str:
        """Doc."""
        return query

    assert skill(not_spans=("query",))(f).__skill__.parameters[0].span is False
    with pytest.raises(SkillDefinitionError, match="unknown parameters"):
        skill(not_spans=("nope",))(f)


def test_values_must_name_text_parameters_copied_from_the_utterance_and_be_functions():
    def known(value, context):
        return value == "Ana"

    def f(name: str, query: str, times: int = 1) -> str:
        """Doc."""
        return name

    built = skill(values={"name": known}, not_spans=("query",))(f).__skill__
    assert built.parameters[0].values is known and built.parameters[1].values is None
    for bad in ("query", "times", "nope"):
        with pytest.raises(SkillDefinitionError, match="not text parameters copied from the utterance"):
            skill(values={bad: known}, not_spans=("query",))(f)
    with pytest.raises(SkillDefinitionError, match="function"):
        skill(values={"name": ["Ana"]})(f)


def _registry_with(*functions) -> Registry:
    registry = Registry(SkillContext(SkillSettings(timeout_s=0.5)))
    for fn in functions:
        registry.add(skill(fn).__skill__)
    return registry


def test_a_literal_takes_its_own_values_only():
    def speed(level: Literal[1, 2], mode: Literal["eco", "fast"] | None = None) -> str:
        """Set a speed."""
        return f"{level} {mode}"

    registry = _registry_with(speed)
    assert registry.dispatch(registry.parse('speed(2, "eco")')).text == "2 eco"
    for bad in ({"level": True}, {"level": 1.0}, {"level": 1, "mode": "Eco"}):  # pydantic alone took True, 1.0
        result = registry.dispatch(SkillCall("speed", bad))
        assert not result.ok and "must be one of" in result.text, bad
    with pytest.raises(CallError, match="level must be one of 1 or 2"):
        registry.parse("speed(True)")
    assert registry.dispatch(registry.parse("speed(1, None)")).ok


def test_dispatch_isolates_a_skill_that_raises(caplog):
    def explode() -> str:
        """Raise."""
        raise ZeroDivisionError("boom")

    with caplog.at_level(logging.WARNING):
        result = _registry_with(explode).dispatch(SkillCall("explode"))
    assert not result.ok and result.outcome is Outcome.FAILED
    assert result.text == "explode failed: ZeroDivisionError: boom"
    assert not any(r.exc_info for r in caplog.records)  # no traceback on the console unless asked for (-v)
    with caplog.at_level(logging.DEBUG):
        _registry_with(explode).dispatch(SkillCall("explode"))
    assert any(r.exc_info for r in caplog.records)


def test_dispatch_gives_up_on_a_skill_that_hangs_and_runs_no_second_one_alongside():
    import threading

    release, runs = threading.Event(), []

    def hang() -> str:
        """Hang until released."""
        runs.append(1)
        release.wait()
        return "done"

    registry = _registry_with(hang)
    start = time.monotonic()
    result = registry.dispatch(SkillCall("hang"))
    assert time.monotonic() - start < 3
    assert not result.ok and "did not finish within 0.5 s; it may still finish in the background" in result.text
    assert result.outcome is Outcome.TIMED_OUT  # added by hand, so run in this process: given up on, not stopped
    again = registry.dispatch(SkillCall("hang"))
    assert not again.ok and "still busy with the last request" in again.text and len(runs) == 1
    assert again.outcome is Outcome.BUSY
    release.set()
    time.sleep(0.2)
    assert registry.dispatch(SkillCall("hang")).text == "done" and len(runs) == 2


def test_dispatch_validates_calls_built_by_hand(registry):
    result = registry.dispatch(SkillCall("weather", {"location": 3}))
    assert not result.ok and "location must be text" in result.text and result.outcome is Outcome.INVALID
    result = registry.dispatch(SkillCall("nope"))
    assert not result.ok and "unknown skill" in result.text


def test_duplicate_add_is_an_error(registry):
    with pytest.raises(SkillDefinitionError, match="already loaded"):
        registry.add(registry.get("weather"))


def test_get_unknown_skill_suggests(registry):
    with pytest.raises(CallError, match="did you mean 'timer'"):
        registry.get("timre")


def test_a_failed_dispatch_is_one_printable_line_whatever_the_skill_raised():
    from skills import SkillFailed

    def refuse(text: str) -> str:
        """Refuse with what was said."""
        raise SkillFailed(f"no: {text}")

    def crash() -> str:
        """Crash with a message over lines."""
        raise ValueError("bad\nvalue \x1b[2J")

    registry = _registry_with(refuse, crash)
    assert registry.dispatch(SkillCall("refuse", {"text": "a\nb\x1b[0m"})).text == "no: a\\nb\\x1b[0m"
    assert registry.dispatch(SkillCall("crash")).text == "crash failed: ValueError: bad\\nvalue \\x1b[2J"


def test_call_errors_show_odd_names_on_one_printable_line(registry):
    with pytest.raises(CallError) as caught:
        registry.validate("weather", {"place\n\x1b[2J": "Oslo"})
    assert "weather has no argument 'place\\n\\x1b[2J'" in str(caught.value)
    with pytest.raises(CallError) as caught:
        registry.get("wea\nther")
    assert str(caught.value).startswith("unknown skill 'wea\\nther'")


def test_validate_refuses_what_the_canonical_form_cannot_write_back():
    def knob(level: float = 0.0, count: int = 0, label: str | None = None) -> str:
        """Set a knob."""
        return "ok"

    registry = _registry_with(knob)
    for arguments, message in [
        ({"level": float("nan")}, "knob: level is not a finite number"),
        ({"level": float("-inf")}, "knob: level is not a finite number"),
        ({"count": 10**5000}, "knob: count is a number too long to write in a call"),
        ({"label": "\ud800"}, "knob: label holds a character that is not text (a lone surrogate)"),
        ({"label": "x" * 5000}, "knob: the call is 5014 characters long written out; the limit is 4096"),
        ({"label": b"x"}, "knob: label must be a literal (text, number, True/False or None), not bytes"),
    ]:
        with pytest.raises(CallError) as caught:
            registry.validate("knob", arguments)
        assert str(caught.value).startswith(message), caught.value
        result = registry.dispatch(SkillCall("knob", arguments))  # a call built by hand: refused the same way
        assert not result.ok and result.text.startswith(message)
