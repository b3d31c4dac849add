"""The skillcall CLI: exit codes and one-line errors, via typer's CliRunner."""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest
from typer.testing import CliRunner

from assistant.cli import app

runner = CliRunner()


def test_skills_lists_the_thirteen():
    result = runner.invoke(app, ["skills"])
    assert result.exit_code == 0
    assert "weather(location: str | None = None)" in result.stdout
    assert result.stdout.count("(") >= 10
    rows = [json.loads(line) for line in runner.invoke(app, ["skills", "--json"]).stdout.splitlines()]
    assert len(rows) == 13 and {r["name"] for r in rows} >= {"weather", "other", "cancel_timer"}


def test_call_prints_the_reply():
    result = runner.invoke(app, ["call", 'math(question="nine times nine")'])
    assert result.exit_code == 0
    assert result.stdout == "nine times nine is 81\n"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ('wether(location="Oslo")', "did you mean 'weather'?"),
        ("timer()", "timer needs duration"),
        ("weather(location=3)", "location must be text"),
        ("__import__('os').system('id')", "only a bare skill name may be called"),
        ('math(question="banana")', "found no numbers"),
        ('runapp(program="x; rm -rf ~")', "I won't open"),
        ("weather(", "not a call"),
    ],
)
def test_bad_calls_exit_1_with_one_line(call, message):
    result = runner.invoke(app, ["call", call])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_timer_set_from_the_command_line_fires_before_it_exits():
    result = runner.invoke(app, ["call", 'timer(duration="1 second")'])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Timer set for 1 second.\nYour 1-second timer is done.\n"
    assert "waiting for the timer (Ctrl-C cancels)" in result.stderr


def test_a_user_skill_spinning_in_c_code_is_stopped_at_its_limit_with_one_line(tmp_path):
    import time

    folder = tmp_path / "user-skills"  # SKILLCALL_SKILLS_DIR
    folder.mkdir()
    (folder / "spin.py").write_text('import re\n\nfrom skills import skill\n\n\n@skill(timeout_s=0.5)\ndef spin() -> str:\n'
                                    '    """Backtrack for ever in C, holding the GIL."""\n'
                                    '    return str(re.match(r"(a+)+$", "a" * 40 + "b"))\n')  # fmt: skip
    start = time.monotonic()
    result = runner.invoke(app, ["call", "spin()"])
    assert time.monotonic() - start < 10
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "error: spin did not finish within 0.5 s and was stopped\n"
    assert runner.invoke(app, ["call", 'math(question="nine times nine")']).stdout == "nine times nine is 81\n"


def test_notes_round_trip_through_the_cli():
    assert runner.invoke(app, ["call", 'notes(action="add", note="water the plants")']).stdout == "Noted: water the plants.\n"
    assert "1. water the plants." in runner.invoke(app, ["call", 'notes(action="list")']).stdout


def test_user_skill_problems_are_warned_not_fatal(tmp_path, monkeypatch):
    folder = tmp_path / "user-skills"
    folder.mkdir()
    (folder / "bad.py").write_text("this is not python\n")
    result = runner.invoke(app, ["skills"])
    assert result.exit_code == 0
    assert "warning: skill file" in result.stderr and "bad.py" in result.stderr


def test_config_shows_file_and_env_overrides(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('[skills]\nhome_location = "Oslo"\n[skills.news]\nmax_headlines = 3\n')
    monkeypatch.setenv("SKILLCALL_SKILLS__NEWS__MAX_HEADLINES", "7")
    monkeypatch.setenv("SKILLCALL_SKILLS__NOTES_DB", "~/notes.db")
    monkeypatch.setenv("SKILLCALL_DAEMON__AUDIO__DEVICE", "3")
    monkeypatch.setenv("HOME", str(tmp_path))
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0
    header, body = result.stdout.split("\n", 1)
    assert header == f"# {tmp_path / 'config.toml'}"
    config = json.loads(body)
    assert config["skills"]["home_location"] == "Oslo"
    assert config["skills"]["news"]["max_headlines"] == 7
    assert config["skills"]["notes_db"] == str(tmp_path / "notes.db")  # ~ is home, as in a shell
    assert config["daemon"]["audio"]["device"] == 3  # an index, as `skillcall devices` prints it


@pytest.mark.parametrize(
    ("text", "message"),
    [("[skills\n", "cannot read the config file"), ('[skills]\ntimeout_s = "soon"\n', "skills.timeout_s"),
     ("unknown_key = 1\n", "unknown_key"), ('[skills]\nhome_locaton = "Oslo"\n', "skills.home_locaton"),
     ("[daemon.audio]\ndevise = 3\n", "daemon.audio.devise")],
)  # fmt: skip
def test_a_bad_config_file_is_one_line(tmp_path, text, message):
    (tmp_path / "config.toml").write_text(text)
    result = runner.invoke(app, ["call", "other()"])
    assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1


def test_a_named_config_that_is_not_there_is_said(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SKILLCALL_CONFIG", str(tmp_path))  # a folder
    result = runner.invoke(app, ["call", "other()"])
    assert result.exit_code == 1 and "is a folder" in result.stderr and result.stderr.count("\n") == 1
    monkeypatch.setenv("SKILLCALL_CONFIG", str(tmp_path / "typo.toml"))
    result = runner.invoke(app, ["call", "other()"])
    assert result.exit_code == 0 and "typo.toml, which does not exist: using the defaults" in caplog.text
    monkeypatch.setenv("SKILLCALL_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("SKILLCALL_DAEMON", "{not json")
    result = runner.invoke(app, ["call", "other()"])
    assert result.exit_code == 1 and "SKILLCALL_* variables" in result.stderr, result.stderr


def test_a_configured_folder_that_is_not_there_is_said(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("SKILLCALL_SKILLS_DIR")  # the file's word, then
    (tmp_path / "config.toml").write_text(f'skills_dir = "{tmp_path / "skils"}"\n')
    result = runner.invoke(app, ["skills"])
    assert result.exit_code == 0 and "weather(" in result.stdout
    assert f"skills_dir is {tmp_path / 'skils'}, which is not a folder: nothing is read from it" in caplog.text
    caplog.clear()
    (tmp_path / "skils").mkdir()
    monkeypatch.setenv("SKILLCALL_EXAMPLES_DIR", str(tmp_path / "config.toml"))
    runner.invoke(app, ["skills"])
    assert "examples_dir is" in caplog.text and "skills_dir" not in caplog.text


def test_examples_check_passes_on_the_shipped_files():
    result = runner.invoke(app, ["examples", "check"])
    assert result.exit_code == 0, result.stderr
    assert "other" in result.stdout and "total" in result.stdout


def test_examples_check_fails_on_a_bad_user_file(tmp_path):
    folder = tmp_path / "user-skills"
    folder.mkdir()
    (folder / "weather_examples.txt").write_text("#### Prompt:\nx\n\n#### Examples:\n\nUser: hi\n")
    result = runner.invoke(app, ["examples", "check"])
    assert result.exit_code == 1
    assert "weather_examples.txt:6: looks like an example" in result.stderr
    assert "second example file for weather" in result.stderr


def test_dataset_twice_is_byte_identical(tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(app, ["dataset", "--out", str(tmp_path / name), "--seed", "3"])
        assert result.exit_code == 0, result.stderr
        assert "total" in result.stdout
    for split in ("train", "validation", "test"):
        assert (tmp_path / "a" / f"{split}.jsonl").read_bytes() == (tmp_path / "b" / f"{split}.jsonl").read_bytes()
    (tmp_path / "c").write_text("a file, not a folder")
    result = runner.invoke(app, ["dataset", "--out", str(tmp_path / "c")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert f"cannot write the splits to {tmp_path / 'c'}" in result.stderr and "choose another --out" in result.stderr


def test_train_from_something_that_is_not_a_router_is_one_line(tmp_path):
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("")
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--init", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"--init {tmp_path}: not a router folder" in result.stderr and "the shipped router/" in result.stderr


def test_train_takes_a_recipe_file_and_the_options_given_override_it(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('data = "nowhere"\nepochs = 1.0\n[lora]\nr = 4\n')
    result = runner.invoke(app, ["train", "--config", str(recipe)])
    assert result.exit_code == 1 and "nowhere/train.jsonl is missing" in result.stderr
    result = runner.invoke(app, ["train", "--config", str(recipe), "--data", str(tmp_path / "elsewhere")])
    assert result.exit_code == 1 and "elsewhere/train.jsonl is missing" in result.stderr
    for text, says in (("epochs = 'many'", f"training option epochs in {recipe}: Input should be a valid number"),
                       ("colour = 3", f"training option colour in {recipe}: Extra inputs are not permitted"),
                       ("[lora]\nrank = 3", "training option lora.rank"),
                       ("[[broken", f"cannot read the training recipe {recipe}")):  # fmt: skip
        recipe.write_text(text)
        result = runner.invoke(app, ["train", "--config", str(recipe)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 1 and "cannot read the training recipe" in result.stderr


def test_train_on_the_validation_rows_too_says_its_score_is_on_rows_it_trained_on_for_each_member(tmp_path):
    result = runner.invoke(app, ["dataset", "--out", str(tmp_path / "full")])
    assert result.exit_code == 0, result.stderr
    for split, keep in (("train", 8), ("validation", 4)):
        rows = (tmp_path / "full" / f"{split}.jsonl").read_text().splitlines()[:keep]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--max-steps", "1",
                                 "--rank", "2", "--no-compile", "--train-on-validation", "--members", "2"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    written = [line for line in result.stdout.splitlines() if line.startswith("router written to")]
    assert [line.split(":")[0] for line in written] == [f"router written to {tmp_path / 'r'}",
                                                        f"router written to {tmp_path / 'r/members/2'}"]
    assert all("validation call accuracy" in line and "(rows it trained on), " in line for line in written)
    card = json.loads((tmp_path / "r" / "router.json").read_text())
    assert card["dataset"]["train_rows"] == 12 and card["dataset"]["validation_in_training"] is True
    assert card["members"] == ["members/2"]
    recipe = (tmp_path / "r" / "recipe.toml").read_text()  # how to make it again: `train --config`
    assert "train_on_validation = true" in recipe and "members = 2" in recipe and "r = 2" in recipe


def test_generate_without_key_is_one_line():
    result = runner.invoke(app, ["generate", "--skill", "weather", "-n", "2"])
    assert result.exit_code == 1 and "no API key" in result.stderr and "Traceback" not in result.stderr


def test_generate_appends_to_a_user_skill_file(tmp_path, stub):
    from tests.test_generate import _rows, _tool_response

    folder = tmp_path / "user-skills"
    folder.mkdir()
    (folder / "greet.py").write_text(
        'from skills import skill\n\n@skill\ndef greet(name: str) -> str:\n    """Greet someone."""\n    return name\n'
    )
    said = _rows(("Say hi to Ada", 'greet(name="Ada")'), ("Thank you so much!", 'greet(name="you")'))
    stub.routes["/v1/chat/completions"] = lambda request: _tool_response(said)
    result = runner.invoke(app, ["generate", "--skill", "greet", "-n", "1", "--base-url", f"{stub.url}/v1"])
    assert result.exit_code == 0, result.stderr
    assert "appended 1 row(s)" in result.stdout
    assert "rejected: duplicate of an existing example" in result.stderr  # other_examples.txt has it already
    assert 'greet(name="Ada")' in (folder / "greet_examples.txt").read_text()


def test_route_prints_canonical_calls():
    result = runner.invoke(app, ["route", "Stop the timer.", "Open Firefox."])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["cancel_timer()", 'runapp(program="Firefox")']


def test_route_json_and_jsonl(tmp_path):
    result = runner.invoke(app, ["route", "--json", "Set a timer for 5 minutes."])
    row = json.loads(result.stdout)
    assert row["call"] == 'timer(duration="5 minutes")' and row["ms"] > 0 and row["fallback"] is None
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"text": "Stop the timer.", "id": 7}\n{"text": ""}\n{"text": "\\ud800"}\n{"text": "\\u0000"}\n')
    result = runner.invoke(app, ["route", "--jsonl", str(rows)])  # a lone surrogate and NUL: valid JSON, no text
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"text": "Stop the timer.", "id": 7, "call": "cancel_timer()"}, {"text": "", "call": "other()"},
        {"text": "\ud800", "call": "other()"}, {"text": "\u0000", "call": "other()"}]
    rows.write_text('{"nope": 1}\n')
    result = runner.invoke(app, ["route", "--jsonl", str(rows)])
    assert result.exit_code == 1 and "in.jsonl:1" in result.stderr


def test_call_runs_several_calls_in_order_and_fails_after_them_all():
    result = runner.invoke(app, ["call", 'math(question="two plus two"); math(question="nine times nine")'])
    assert result.exit_code == 0 and result.stdout == "two plus two is 4\nnine times nine is 81\n"
    result = runner.invoke(app, ["call", 'math(question="banana"); math(question="nine times nine")'])
    assert result.exit_code == 1 and result.stdout == "nine times nine is 81\n"  # a failed call stops no other
    assert result.stderr.count("\n") == 1 and "found no numbers" in result.stderr
    result = runner.invoke(app, ["call", "other(); other(); other(); other()"])
    assert result.exit_code == 1 and "4 calls in one sequence; the limit is 3" in result.stderr


def test_run_routes_and_dispatches():
    result = runner.invoke(app, ["run", "What", "is", "nine", "times", "nine?"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "nine times nine is 81\n"
    assert 'math(question="nine times nine")' in result.stderr


def test_eval_on_a_small_file(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "Stop the timer.", "call": "cancel_timer()"}\n'
                    '{"text": "Open Firefox.", "call": "runapp(program=\\"firefox\\")"}\n')  # fmt: skip
    result = runner.invoke(app, ["eval", "--data", str(rows), "--no-base", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.stderr
    assert re.search(r"^exact-call accuracy +1\.0 *$", result.stdout, re.M), result.stdout
    assert re.search(r"^single-call rows +2/2 exact, 0 split *$", result.stdout, re.M), result.stdout
    assert "95 % interval" in result.stdout and "0.342–1.000" in result.stdout  # 2 of 2 rows right
    assert list((tmp_path / "eval").glob("confusion-*.png"))
    (tmp_path / "taken").write_text("a file, not a folder")
    result = runner.invoke(app, ["eval", "--data", str(rows), "--no-base", "--out", str(tmp_path / "taken")])
    assert result.exit_code == 0 and "exact-call accuracy" in result.stdout  # the figures all the same
    assert f"confusion matrix: cannot write it to {tmp_path / 'taken'}" in result.stderr
    (tmp_path / "empty.jsonl").write_text("")
    result = runner.invoke(app, ["eval", "--data", str(tmp_path / "empty.jsonl"), "--no-base"])
    assert result.exit_code == 1 and f"no rows to evaluate in {tmp_path / 'empty.jsonl'}" in result.stderr


def test_listen_on_a_file_gives_one_row_per_spoken_command(tmp_path, monkeypatch):
    from tests.speech import join, speak, write_wav

    monkeypatch.setenv("SKILLCALL_DAEMON__HISTORY_DB", str(tmp_path / "history.db"))
    said = ["What is two plus two?", "Set a timer for five minutes.", "Open Firefox.", "Stop the timer."]
    wav = write_wav(tmp_path / "commands.wav", join([speak(s, tmp_path) for s in said]), rate=16000)
    result = runner.invoke(app, ["listen", "--input", str(wav), "--dry-run", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["call"] for r in rows] == ['math(question="two plus two")', 'timer(duration="five minutes")',
                                         'runapp(program="Firefox")', "cancel_timer()"]  # fmt: skip
    for row in rows:
        assert row["skipped"] == "dry run" and row["reply"] == ""
        assert {"text", "call", "reply", "vad_ms", "transcribe_ms", "route_ms", "dispatch_ms", "total_ms"} <= set(row)


def test_listen_on_silence_and_noise_dispatches_nothing(tmp_path, monkeypatch):
    import numpy as np

    from tests.speech import write_wav

    monkeypatch.setenv("SKILLCALL_DAEMON__HISTORY_DB", str(tmp_path / "history.db"))
    rng = np.random.default_rng(7)
    audio = np.concatenate([np.zeros(32000), rng.normal(0, 0.05, 48000), np.zeros(16000),
                            0.3 * np.sign(np.sin(np.arange(8000) / 3))]).astype(np.float32)  # fmt: skip
    wav = write_wav(tmp_path / "noise.wav", audio)
    result = runner.invoke(app, ["listen", "--input", str(wav), "--json"])
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["call"] for line in result.stdout.splitlines()] in ([], ["other()"])
    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("SELECT count(*) FROM turns WHERE ok IS NOT NULL").fetchone()[0] == 0


def test_listen_stops_quietly_when_its_reader_goes(tmp_path):
    import subprocess
    import sys

    from tests.speech import join, speak, write_wav

    said = ["What is two plus two?", "What is three plus three?", "What is four plus four?"]
    wav = write_wav(tmp_path / "said.wav", join([speak(s, tmp_path) for s in said], pause_s=1.0))
    env = {**os.environ, "SKILLCALL_DAEMON__HISTORY_DB": str(tmp_path / "history.db")}
    listen = subprocess.Popen([sys.executable, "-m", "assistant.cli", "listen", "--input", str(wav), "--dry-run",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)  # fmt: skip
    first = listen.stdout.readline()  # `| head -1`
    listen.stdout.close()
    err = listen.stderr.read()
    assert listen.wait(timeout=120) == 0 and json.loads(first)["call"].startswith("math(")
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_transcribe_and_listen_find_no_speech_in_silence_or_a_tone(tmp_path, monkeypatch):
    import numpy as np

    from tests.speech import write_wav

    monkeypatch.setenv("SKILLCALL_DAEMON__HISTORY_DB", str(tmp_path / "history.db"))
    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 300, np.float32))  # 5 minutes of digital silence
    t = np.arange(16000 * 5) / 16000
    square = write_wav(tmp_path / "square.wav", np.clip(1.5 * np.sign(np.sin(2 * np.pi * 440 * t)), -1, 1))
    result = runner.invoke(app, ["transcribe", str(silence), str(square)])
    assert result.exit_code == 0 and result.stdout == "\n\n"  # not "you you you", not "Ahhhhhhh…"
    assert result.stderr.splitlines() == [f"{path}: no speech found (the VAD heard none)"
                                          for path in (silence, square)]  # fmt: skip
    listened = runner.invoke(app, ["listen", "--input", str(square), "--dry-run"])
    assert listened.exit_code == 0 and f"no speech found in {square}" in listened.stderr


def test_transcribe_and_install_service(tmp_path, monkeypatch):
    import numpy as np

    from tests.speech import speak, write_wav

    monkeypatch.setenv("SKILLCALL_DAEMON__HISTORY_DB", str(tmp_path / "history.db"))

    wav = write_wav(tmp_path / "a.wav", speak("Set a timer for five minutes.", tmp_path), rate=16000, channels=2)
    result = runner.invoke(app, ["transcribe", "--json", str(wav)])
    assert result.exit_code == 0, result.stderr
    assert "timer" in json.loads(result.stdout)["text"].lower()
    assert runner.invoke(app, ["transcribe", str(tmp_path / "none.wav")]).exit_code == 1
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    result = runner.invoke(app, ["transcribe", str(silent), str(wav)])
    assert result.exit_code == 0 and result.stdout.split("\n")[0] == "" and "timer" in result.stdout.lower()
    assert f"{silent}: no speech" in result.stderr
    listened = runner.invoke(app, ["listen", "--input", str(silent), "--dry-run"])
    assert listened.exit_code == 0 and f"no speech found in {silent}" in listened.stderr
    noise = np.concatenate([np.zeros(16000), np.random.default_rng(1).normal(0, 0.02, 48000)]).astype(np.float32)
    noisy = write_wav(tmp_path / "noise.wav", noise)  # heard as an utterance, dropped by Whisper
    listened = runner.invoke(app, ["listen", "--input", str(noisy), "--dry-run"])
    assert listened.exit_code == 0 and f"no speech found in {noisy}" in listened.stderr
    unit = runner.invoke(app, ["install-service", "--print"]).stdout
    assert "ExecStart=" in unit and unit.rstrip().endswith("WantedBy=default.target")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    written = tmp_path / "xdg" / "systemd" / "user" / "skillcall.service"
    assert runner.invoke(app, ["install-service"]).exit_code == 0 and written.read_text() == unit
    written.write_text(unit.replace("RestartSec=5", "RestartSec=30"))  # edited by its user
    result = runner.invoke(app, ["install-service"])
    assert result.exit_code == 0 and written.read_text() == unit and "the one there before is" in result.stdout
    assert "RestartSec=30" in written.with_suffix(".service.bak").read_text()


def _history_with_turns(path):
    from assistant.history import CallRun, History, Turn

    history = History(path)
    history.add(Turn(text="Otto, how is Paris looking today?", call="other()", skipped="not a request", route_ms=71.5,
                     transcribe_ms=402, total_ms=473.5))  # fmt: skip
    history.add(Turn(text="what is banana", call='math(question="banana")', ok=False, reply="no numbers",
                     calls=[CallRun('math(question="banana")', False, "I found no numbers.", 2.0)]))  # fmt: skip
    history.close()


def test_history_then_correct_a_turn(tmp_path, monkeypatch):
    import shutil

    from finetune.examples import EXAMPLES_DIR

    monkeypatch.setenv("SKILLCALL_DAEMON__HISTORY_DB", str(tmp_path / "history.db"))
    monkeypatch.setenv("SKILLCALL_EXAMPLES_DIR", str(shutil.copytree(EXAMPLES_DIR, tmp_path / "examples")))
    missing = runner.invoke(app, ["history"])
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "no history at" in missing.stderr
    _history_with_turns(tmp_path / "history.db")
    shown = runner.invoke(app, ["history"])
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("#2 ") and lines[0].endswith('"what is banana"')
    assert lines[1].strip() == 'math(question="banana")  [failed]  I found no numbers.'
    assert lines[3].startswith("#1 ") and lines[4].strip() == "other()  [not a request]"
    assert lines[5].strip() == "transcribe 402 · route 72 · total 474 ms"
    rows = [json.loads(line) for line in runner.invoke(app, ["history", "--failed", "--json"]).stdout.splitlines()]
    assert [(r["id"], r["ok"], r["calls"][0]["ok"]) for r in rows] == [(2, False, False)]
    assert runner.invoke(app, ["history", "--skill", "weather"]).stderr.startswith("no turns match")
    learnt = runner.invoke(app, ["correct", "1", 'weather(location="paris")'])
    assert learnt.exit_code == 0, learnt.stderr
    assert learnt.stdout.startswith('learnt: "how is Paris looking today?" -> weather(location="Paris")  (')
    assert "skillcall dataset && skillcall train --init router" in learnt.stderr
    assert "### User: how is Paris looking today?\n### Assistant: weather(location=\"Paris\")\n" in \
        (tmp_path / "examples" / "weather_examples.txt").read_text()
    assert "corrected to weather(location=\"Paris\")" in runner.invoke(app, ["history", "--last", "1", "--skill",
                                                                             "other"]).stdout  # fmt: skip
    assert runner.invoke(app, ["examples", "check"]).exit_code == 0
    for argv, message in ((["correct", "7", "other"], "no turn 7 in the history"),
                          (["correct", "1", 'weather(location="Rome")'], "location='Rome' is not in what was heard"),
                          (["correct", "1", "wether()"], "did you mean 'weather'?")):  # fmt: skip
        refused = runner.invoke(app, argv)
        assert refused.exit_code == 1 and refused.stderr.count("\n") == 1 and message in refused.stderr, argv


def test_new_skill_writes_files_that_examples_check_passes(tmp_path):
    result = runner.invoke(app, ["new-skill", "greet", "name", "times:int=1", "--description", "Greet someone."])
    assert result.exit_code == 0, result.stderr
    assert f"wrote {tmp_path / 'user-skills' / 'greet.py'}" in result.stdout
    assert "skillcall generate --skill greet -n 50" in result.stdout and "skillcall examples check" in result.stdout
    checked = runner.invoke(app, ["examples", "check"])
    assert checked.exit_code == 0, checked.stderr
    assert re.search(r"^greet +3$", checked.stdout, re.M)
    assert runner.invoke(app, ["call", 'greet(name="Ada")']).stdout == "greet: name='Ada', times=1\n"
    again = runner.invoke(app, ["new-skill", "greet"])
    assert again.exit_code == 1 and "a skill named 'greet' is already loaded" in again.stderr


def test_dataset_in_the_formats_of_other_trainers(tmp_path):
    for fmt in ("alpaca", "chatml", "function-calls"):
        result = runner.invoke(app, ["dataset", "--out", str(tmp_path), "--format", fmt])
        assert result.exit_code == 0, result.stderr
        assert f"wrote {tmp_path / fmt / 'train.jsonl'}" in result.stdout
        first = json.loads((tmp_path / fmt / "test.jsonl").read_text().splitlines()[0])
        assert set(first) == ({"messages"} if fmt == "chatml" else {"instruction", "input", "output"})
    assert not (tmp_path / "train.jsonl").exists()  # what `skillcall train` reads is left alone
    assert runner.invoke(app, ["dataset", "--format", "csv"]).exit_code == 2


def test_generate_from_documents(tmp_path, stub, monkeypatch):
    from tests.test_generate import _questions

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.txt").write_text("Green tea steeps at 80 degrees for two minutes.")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff\0JFIF")
    folder = tmp_path / "examples"  # not the checkout's
    folder.mkdir()
    monkeypatch.setenv("SKILLCALL_EXAMPLES_DIR", str(folder))
    (folder / "ask_examples.txt").write_text("#### Prompt:\nask\n\n#### Prompt Examples:\n\n#### Examples:\n")
    stub.routes["/v1/chat/completions"] = lambda request: _questions("How hot should the water be for green tea?")
    result = runner.invoke(app, ["generate", "--skill", "ask", "--from-docs", str(docs), "--base-url",
                                 f"{stub.url}/v1"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "appended 1 row(s)" in result.stdout and "from 1 chunk(s)" in result.stdout
    assert f"skipped {docs / 'photo.jpg'}: not text (binary)" in result.stderr
    assert "Write 5 questions" in stub.requests[0].body["messages"][1]["content"]
    assert "### User: How hot should the water be for green tea?" in (folder / "ask_examples.txt").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["generate", "--skill", "ask", "--from-docs", str(empty), "--base-url", stub.url])
    assert result.exit_code == 1 and result.stderr.strip() == f"error: no text files under {empty}; --from-docs " \
                                                              "reads UTF-8 text files (.txt, .md, ...)"
