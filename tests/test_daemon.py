"""The daemon end to end on real speech: segmenter, Whisper, the shipped router, real skills, SQLite history."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from assistant.daemon import Daemon, DaemonOptions, confirmation_answer
from assistant.history import Announcement, History, Skipped
from assistant.routers import RouterOptions, load_router
from assistant.transcribe import load_transcriber
from assistant.vad import Segmenter
from tests.speech import join, natural_voices, noisy, say, speak, trim


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from skills import load_registry

    registry = load_registry()
    return {"transcriber": load_transcriber(), "router": load_router(RouterOptions(threads=2), registry),
            "folder": tmp_path_factory.mktemp("speech")}  # fmt: skip


@pytest.fixture
def daemon(parts, registry, tmp_path):
    turns = []
    parts["router"].registry = registry  # the test's isolated registry (tmp notes, no network)

    def build(**options):
        flags = {k: options.pop(k) for k in ("dry_run", "use_wake") if k in options}
        made = Daemon(registry, parts["transcriber"], parts["router"], DaemonOptions(**options),
                      History(tmp_path / "history.db"), turns.append, **flags)  # fmt: skip
        made.turns = turns
        return made

    return build


def _utterances(audio):
    segmenter = Segmenter()
    return segmenter.feed(audio) + segmenter.flush()


def test_spoken_commands_in_order(daemon, parts, tmp_path):
    said = ["What is two plus two?", "Add buy some bread to my notes.", "Read my notes."]
    audio = join([speak(s, parts["folder"]) for s in said])
    run = daemon(use_wake=False)
    assert run.run(np.array_split(audio, len(audio) // 512)) == 3
    assert [t.call for t in run.turns] == ['math(question="two plus two")',
                                           'notes(action="add", note="buy some bread")', 'notes(action="list")']
    assert run.turns[0].reply == "two plus two is 4"
    assert "buy some bread" in run.turns[2].reply
    for turn in run.turns:
        assert turn.ok and turn.transcribe_ms > 0 and turn.route_ms > 0 and 0 < turn.vad_ms < 1000
    with sqlite3.connect(tmp_path / "history.db") as db:
        rows = db.execute("SELECT text, call, reply, route_ms FROM turns ORDER BY id").fetchall()
    assert [r[1] for r in rows] == [t.call for t in run.turns] and all(r[3] > 0 for r in rows)


def test_the_words_are_worked_on_in_the_pause_and_kept_when_no_speech_came_back(daemon, parts):
    audio = join([speak("What is two plus two?", parts["folder"])])
    early, late = daemon(use_wake=False, dry_run=True), daemon(use_wake=False, dry_run=True, early_ms=0)
    for run in (early, late):
        assert run.run(np.array_split(audio, len(audio) // 512)) == 1
    first, second = early.turns
    assert (first.early, second.early) == (True, False)
    assert first.text == second.text and first.call == second.call == 'math(question="two plus two")'
    assert first.vad_ms <= first.ready_ms <= first.total_ms and first.transcribe_ms > 0 and first.route_ms > 0
    assert second.ready_ms >= second.vad_ms + second.transcribe_ms + second.route_ms - 1
    assert (early.early.started, early.early.kept, late.early.started) == (1, 1, 0)
    cut = np.concatenate([np.zeros(8000, np.float32), trim(speak("What is two plus two?", parts["folder"])),
                          np.zeros(4000, np.float32)])  # the stream ends in the pause: the work is kept  # fmt: skip
    assert early.run([cut]) == 1 and early.turns[-1].early and early.turns[-1].call == first.call


def test_speech_that_comes_back_after_a_pause_is_heard_whole(daemon, parts):
    said = [trim(speak(s, parts["folder"])) for s in ("Set a timer for", "five minutes.")]
    pause = np.zeros(int(0.3 * 16000), dtype=np.float32)  # longer than early_ms, shorter than the VAD's end
    audio = join([np.concatenate([said[0], pause, said[1]])])
    run = daemon(use_wake=False, dry_run=True)
    assert run.run(np.array_split(audio, len(audio) // 512)) == 1
    assert (run.early.started, run.early.kept) == (2, 1)  # in the pause, and at the end
    (turn,) = run.turns
    assert turn.early and turn.call == 'timer(duration="five minutes")'


NATURAL = [("af_heart", "What's the weather like in London?", 'weather(location="London")'),
           ("bm_george", "What time is it in Tokyo?", 'timecheck(location="Tokyo")'),
           ("am_michael", "Add eggs to my shopping list.", 'notes(action="add", note="eggs")'),
           ("bf_emma", "Please cancel the timer.", "cancel_timer()")]  # fmt: skip


@pytest.mark.skipif(not natural_voices(), reason="Kokoro's voices are not here: see tests/speech.py")
@pytest.mark.parametrize("snr_db", [None, 10])
def test_natural_voices_in_a_quiet_and_a_noisy_room(daemon, snr_db):
    """Four of Kokoro-82M's voices (US and UK, female and male), clean and with a room's noise 10 dB below them."""
    clips = [say(said, voice) for voice, said, _ in NATURAL]
    audio = join(clips, pause_s=1.2, lead_s=0.6)
    if snr_db is not None:
        audio = noisy(audio, snr_db, speech=np.concatenate(clips))
    run = daemon(use_wake=False, dry_run=True)
    assert run.run(np.array_split(audio, len(audio) // 512)) == len(NATURAL)
    assert [t.call for t in run.turns] == [call for _, _, call in NATURAL], [t.text for t in run.turns]


def test_an_early_start_that_could_never_come_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"early_ms \(400\) must be below vad.end_silence_ms \(400\)"):
        DaemonOptions(early_ms=400)
    assert DaemonOptions(early_ms=0, vad={"end_silence_ms": 100}).early_ms == 0


def test_dry_run_routes_but_runs_nothing(daemon, parts, settings):
    run = daemon(use_wake=False, dry_run=True)
    for utterance in _utterances(join([speak("Add buy some bread to my notes.", parts["folder"])])):
        run.handle(utterance)
    assert run.turns[0].call.startswith('notes(action="add"') and run.turns[0].skipped == "dry run"
    assert not settings.notes_db.exists()


def test_silence_and_noise_dispatch_nothing(daemon, tmp_path):
    run = daemon(use_wake=False)
    noise = np.concatenate([np.zeros(16000, np.float32), np.random.default_rng(1).normal(0, 0.02, 48000)])
    run.run([noise.astype(np.float32)])
    assert run.turns == []
    with sqlite3.connect(tmp_path / "history.db") as db:  # what was heard is logged with the reason it was dropped
        skipped = db.execute("SELECT skipped, detail FROM turns").fetchall()
    assert all(reason == "no speech" and detail for reason, detail in skipped), skipped


def test_wake_phrase_and_follow_up_window(daemon, parts):
    run = daemon(use_wake=True, wake={"phrase": "otto", "follow_up_s": 30})
    folder = parts["folder"]
    asleep = run.handle(_utterances(join([speak("What is ten minus three?", folder)]))[0])
    assert asleep.skipped == "no wake phrase" and asleep.call is None
    woken = run.handle(_utterances(join([speak("Otto, what is two plus two?", folder)]))[0])
    assert woken.call == 'math(question="two plus two")' and woken.reply == "two plus two is 4"
    follow = run.handle(_utterances(join([speak("And what is five plus five?", folder)]))[0])
    assert follow.call is not None and follow.call.startswith("math(")


def test_risky_calls_wait_for_a_yes(daemon, parts, settings, tmp_path):
    apps = tmp_path / "applications"
    apps.mkdir()
    (apps / "firefox.desktop").write_text(f"[Desktop Entry]\nType=Application\nName=Firefox\nExec=touch {tmp_path}/ran\n")
    run = daemon(use_wake=False)
    asked = run.handle(_utterances(join([speak("Open Firefox.", parts["folder"])]))[0])
    assert asked.skipped == "awaiting confirmation" and "Say yes" in asked.reply
    assert not (tmp_path / "ran").exists()
    confirmed = run.handle(_utterances(join([speak("Yes.", parts["folder"])]))[0])
    assert confirmed.ok and confirmed.reply == "Opening Firefox."
    (tmp_path / "ran").unlink(missing_ok=True)
    woken = daemon(use_wake=True, wake={"phrase": "otto", "follow_up_s": 0})  # no follow-up window at all
    assert woken.handle(_utterances(join([speak("Otto, open Firefox.", parts["folder"])]))[0]).skipped == \
        "awaiting confirmation"
    answered = woken.handle(_utterances(join([speak("Yes.", parts["folder"])]))[0])  # an answer needs no "Otto"
    assert answered.ok and answered.reply == "Opening Firefox."


def test_several_requests_run_in_order_and_a_risky_one_waits_for_its_yes(daemon, parts, registry, tmp_path):
    apps = tmp_path / "applications"
    apps.mkdir()
    (apps / "firefox.desktop").write_text(f"[Desktop Entry]\nType=Application\nName=Firefox\nExec=touch {tmp_path}/ran\n")
    run = daemon(use_wake=False)
    said = speak("Set a timer for ten minutes and then open Firefox.", parts["folder"])
    try:
        asked = run.handle(_utterances(join([said]))[0])
        assert [c.name for c in registry.parse_calls(asked.call)] == ["timer", "runapp"], asked.text
        assert asked.skipped == "awaiting confirmation" and not (tmp_path / "ran").exists()
        assert asked.reply.startswith("Timer set for 10 minutes. Shall I run runapp(")  # the timer has run
        assert [c.ok for c in asked.calls] == [True]
        confirmed = run.handle(_utterances(join([speak("Yes.", parts["folder"])]))[0])
        assert confirmed.ok and confirmed.reply == "Opening Firefox."
        history = History(tmp_path / "history.db").recent()
        assert [[c["call"].split("(")[0] for c in turn["calls"]] for turn in history] == [["runapp"], ["timer"]]
    finally:
        registry.dispatch(registry.parse("cancel_timer()"))


@pytest.mark.parametrize(
    ("said", "answer"),
    [("Yes.", True), ("Okay, go ahead.", True), ("Um, yeah, do it, thanks.", True), ("Sure.", True),
     ("No.", False), ("Okay, never mind.", False), ("Yes... no, wait, don't.", False), ("Please don't.", False),
     ("Cancel that.", False),
     ("Sure, what time is it?", None), ("Cancel the timer.", None), ("Okay so open Firefox", None), ("Thanks.", None)],
)  # fmt: skip
def test_only_a_whole_answer_confirms_and_a_no_anywhere_cancels(said, answer):
    assert confirmation_answer(said) is answer


def test_replies_are_spoken_and_the_microphone_muted_meanwhile(daemon, parts, tmp_path, monkeypatch):
    import subprocess

    spoken = tmp_path / "reply.wav"
    run = daemon(use_wake=False, speak=True, tts_command=["espeak-ng", "-w", str(spoken)])
    said = _utterances(join([speak("What is two plus two?", parts["folder"])]))[0]  # spoken before the watch
    speaking, muted = subprocess.run, []

    def watched(*args, **kwargs):  # the real espeak-ng, noting whether the microphone is muted meanwhile
        muted.append(run.mute.is_set())
        return speaking(*args, **kwargs)

    monkeypatch.setattr("assistant.daemon.subprocess.run", watched)
    run.handle(said)
    assert spoken.stat().st_size > 1000
    assert muted == [True] and not run.mute.is_set()


def test_a_failing_turn_is_logged_and_the_daemon_listens_on(daemon, parts, tmp_path, caplog):
    class CrashesOnce:  # the speech engine failing once (a decoder error), then working again
        def __init__(self, real):
            self.real, self.calls = real, 0

        def transcribe(self, audio):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("decoder crashed")
            return self.real.transcribe(audio)

    run = daemon(use_wake=False)
    run.transcriber = CrashesOnce(parts["transcriber"])
    audio = join([speak(s, parts["folder"]) for s in ("What is two plus two?", "What is five plus five?")])
    assert run.run(np.array_split(audio, len(audio) // 512)) == 2
    assert run.turns[0].skipped is Skipped.FAILED and run.turns[0].ok is False
    assert run.turns[0].detail == "RuntimeError: decoder crashed"
    assert run.turns[1].reply == "five plus five is 10"
    with sqlite3.connect(tmp_path / "history.db") as db:
        skipped = [row[0] for row in db.execute("SELECT skipped FROM turns ORDER BY id")]
        assert skipped == ["failed", None]  # the failed turn is logged too
        db.execute("DROP TABLE turns")  # now damage the history: turns are still handled and shown, with a warning
    assert run.run([join([speak("What is two plus two?", parts["folder"])])]) == 1
    assert run.turns[2].reply == "two plus two is 4"
    assert "cannot log the turn" in caplog.text and "set daemon.history_db" in caplog.text


def test_a_skill_spinning_in_c_code_is_stopped_and_the_daemon_listens_on(parts, settings, tmp_path):
    import time

    from skills import BUILTIN_DIR, Registry, SkillContext

    (tmp_path / "slow_math.py").write_text(
        "import re\n\nfrom skills import skill\n\n\n@skill(timeout_s=0.5)\ndef math(question: str) -> str:\n"
        '    """Arithmetic that backtracks for ever in C on one question (holding the GIL)."""\n'
        '    if "two" in question:\n        re.match(r"(a+)+$", "a" * 40 + "b")\n    return "ten"\n')
    registry = Registry(SkillContext(settings))  # the built-ins, with the user's math in place of the built-in one
    for path in sorted(BUILTIN_DIR.glob("*.py")):
        if path.name != "arithmetic.py":
            registry.load_file(path)
    registry.load_file(tmp_path / "slow_math.py")
    parts["router"].registry = registry
    turns = []
    run = Daemon(registry, parts["transcriber"], parts["router"], emit=turns.append, use_wake=False)
    audio = join([speak(s, parts["folder"]) for s in ("What is two plus two?", "What is five plus five?")])
    start = time.monotonic()
    assert run.run(np.array_split(audio, len(audio) // 512)) == 2
    assert [t.call for t in turns] == ['math(question="two plus two")', 'math(question="five plus five")']
    assert turns[0].ok is False and turns[0].reply == "math did not finish within 0.5 s and was stopped"
    assert 500 <= turns[0].dispatch_ms < 2500
    assert turns[1].ok and turns[1].reply == "ten"
    assert time.monotonic() - start < 60


def test_a_timer_announcement_leaves_the_segmenter_to_the_audio_thread(daemon, parts, tmp_path):
    import threading

    run = daemon(use_wake=False, speak=True, tts_command=["espeak-ng", "-w", str(tmp_path / "announce.wav")])
    speech = speak("What is two plus two?", parts["folder"])
    assert run.segmenter.feed(np.concatenate([np.zeros(8000, np.float32), speech[: len(speech) // 2]])) == []
    held = len(run.segmenter._audio)
    timer = threading.Thread(target=run.announce, args=("Your tea timer is done.",))  # as a timer fires
    timer.start()
    timer.join()
    assert (tmp_path / "announce.wav").stat().st_size > 1000 and run.turns[-1] == Announcement(
        "Your tea timer is done.", run.turns[-1].time)
    assert held and len(run.segmenter._audio) == held  # untouched by the timer's thread
    assert run.run([np.zeros(32000, np.float32)]) == 0  # the audio thread dropped the half heard before the reply


def test_talk_around_the_assistant_does_not_hold_the_follow_up_window_open(daemon, parts):
    now = [1000.0]
    run = daemon(use_wake=True, wake={"phrase": "otto", "follow_up_s": 8})
    run.clock = lambda: now[0]

    def hear(text):
        return run.handle(_utterances(join([speak(text, parts["folder"])]))[0])

    assert hear("Otto, what is two plus two?").reply == "two plus two is 4"
    now[0] += 6
    assert hear("Thank you so much.").skipped == "not a request"  # in the window, so routed: other()
    now[0] += 6  # 12 s after the reply, 6 after the remark (the TV)
    assert hear("What is five plus five?").skipped == "no wake phrase"


def test_the_windows_open_when_the_reply_has_been_spoken(daemon, parts, tmp_path, monkeypatch):
    import subprocess

    now = [1000.0]
    run = daemon(use_wake=True, speak=True, wake={"phrase": "otto", "follow_up_s": 8},
                 tts_command=["espeak-ng", "-w", str(tmp_path / "reply.wav")])  # fmt: skip
    run.clock = lambda: now[0]
    speaking = subprocess.run

    def slow_speech(*args, **kwargs):  # a reply that takes 9 s to say
        now[0] += 9
        return speaking(*args, **kwargs)

    said = [_utterances(join([speak(text, parts["folder"])]))[0]  # spoken before speech is slowed down
            for text in ("Otto, what is two plus two?", "And what is five plus five?")]
    monkeypatch.setattr("assistant.daemon.subprocess.run", slow_speech)
    woken = run.handle(said[0])
    assert woken.reply == "two plus two is 4"
    now[0] += 1
    follow = run.handle(said[1])
    assert follow.call is not None and follow.call.startswith("math(")


def test_spoken_corrections_are_learnt_from_the_words_after_them(registry, stub, tmp_path):
    """Words in, with the OpenAI-compatible router on a stub that routes a few phrases: no Whisper, no model."""
    import json

    from assistant.corrections import Corrector
    from assistant.routers import load_router as load
    from tests.servers import json_response

    meant = {"the weather in Paris": ("weather", {"location": "Paris"}), "the time in Paris": ("timecheck",
             {"location": "Paris"}), "what's the weather in Perth": ("weather", {"location": "Perth"})}  # fmt: skip

    def route(request):
        name, arguments = meant.get(request.body["messages"][-1]["content"], ("other", {}))
        call = {"id": "c", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        return json_response({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "finish_reason": "tool_calls",
             "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]})  # fmt: skip

    stub.routes["/v1/chat/completions"] = route
    examples = tmp_path / "examples"
    examples.mkdir()
    for skill in ("weather", "timecheck", "other"):
        (examples / f"{skill}_examples.txt").write_text(f"#### Prompt:\n{skill}\n\n#### Prompt Examples:\n\n"
                                                        "#### Examples:\n")  # fmt: skip
    history = History(tmp_path / "history.db")
    now = [1000.0]
    run = Daemon(registry, None, load(RouterOptions(kind="openai", base_url=f"{stub.url}/v1", model="m"), registry),
                 DaemonOptions(), history, use_wake=False, corrector=Corrector(registry, [examples], examples, history))
    run.clock = lambda: now[0]

    def rows(skill):
        return (examples / f"{skill}_examples.txt").read_text().partition("#### Corrections:\n")[2]

    assert run.handle_text("How is Paris looking today?").skipped == "not a request"
    learnt = run.handle_text("No, I meant the weather in Paris.")
    assert learnt.call == 'weather(location="Paris")' and learnt.reply.startswith("Got it, I'll remember that. ")
    assert learnt.calls[0].call == 'weather(location="Paris")'  # and what was meant is run
    assert rows("weather") == '\n### User: How is Paris looking today?\n### Assistant: weather(location="Paris")\n'
    asked = run.handle_text("That's wrong.")
    assert asked.skipped == "awaiting correction" and asked.reply == "What did you mean?"
    again = run.handle_text("the time in Paris")  # the answer: what was meant, learnt for the same turn
    assert again.call == 'timecheck(location="Paris")' and again.reply.startswith("Got it")
    assert rows("weather") == "" and "timecheck(location=\"Paris\")" in rows("timecheck")
    assert history.turn(1)["correction"]["call"] == 'timecheck(location="Paris")'
    assert run.handle_text("I wasn't talking to you.").call == "other()"
    assert rows("other") == "\n### User: How is Paris looking today?\n### Assistant: other()\n"

    run.handle_text("what's the weather in Perth")
    refused = run.handle_text("No, I meant the weather in Paris")  # "Paris" was not heard: run, not learnt
    assert refused.reply.startswith("I can't learn that one: those words aren't in what I heard.")
    assert refused.calls[0].call == 'weather(location="Paris")' and "Perth" not in rows("weather")
    assert run.handle_text("That's wrong.").reply == "What did you mean?"
    assert run.handle_text("never mind").skipped == "correction cancelled"
    now[0] += 31  # past daemon.correct_window_s: the words are routed as any others
    late = run.handle_text("No, I meant the weather in Paris.")
    assert late.call == "other()" and late.skipped == "not a request"
