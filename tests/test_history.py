"""The SQLite turn log."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.history import CallRun, History, HistoryError, Skipped, Turn
from skills import SkillcallError


def test_turns_are_rows_with_every_stage(tmp_path):
    history = History(tmp_path / "h.db")
    history.add(Turn(text="what is two plus two", call='math(question="two plus two")', reply="two plus two is 4",
                     ok=True, audio_s=1.5, vad_ms=410, transcribe_ms=700, route_ms=80, dispatch_ms=1, total_ms=1191))
    history.add(Turn(text="", skipped="no speech"))
    rows = history.recent()
    assert [r["skipped"] for r in rows] == ["no speech", None]
    assert rows[1]["route_ms"] == 80 and rows[1]["ok"] == 1 and rows[1]["time"].endswith("+00:00")
    with sqlite3.connect(tmp_path / "h.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    history.close()


def test_an_unwritable_path_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SkillcallError, match="cannot open the history database"):
        History(tmp_path / "file" / "h.db")


def test_each_call_of_a_turn_is_kept_in_the_order_said(tmp_path):
    history = History(tmp_path / "h.db")
    calls = [CallRun('timer(duration="ten minutes")', True, "Timer set for 10 minutes.", 0.4),
             CallRun('runapp(program="Firefox")', None, "cancelled"),
             CallRun('weather(location="Paris")', False, "weather: no network", 2.5)]  # fmt: skip
    history.add(Turn(text="a timer, firefox and the weather in Paris", call="; ".join(c.call for c in calls),
                     ok=False, calls=calls))  # fmt: skip
    history.add(Turn(text="thanks", call="other()", skipped="not a request"))
    newest, turn = history.recent()
    assert newest["calls"] == []
    assert [(c["call"], c["ok"], c["reply"]) for c in turn["calls"]] == [(c.call, c.ok, c.reply) for c in calls]
    history.close()
    assert [r["calls"] for r in History(tmp_path / "h.db").recent()] == [[], turn["calls"]]  # as stored


def _logged(path):
    history = History(path)
    ids = [history.add(Turn(text="what is nine times nine", call='math(question="nine times nine")', ok=True,
                            reply="nine times nine is 81",
                            calls=[CallRun('math(question="nine times nine")', True, "nine times nine is 81")])),
           history.add(Turn(text="", skipped="no speech: silence")),
           history.add(Turn(text="a timer and the weather in Paris", ok=False,
                            call='timer(duration="ten minutes"); weather(location="Paris")',
                            calls=[CallRun('timer(duration="ten minutes")', True, "Timer set."),
                                   CallRun('weather(location="Paris")', False, "no network")])),
           history.add(Turn(text="open firefox", ok=False, skipped="failed: RuntimeError: the router broke")),
           history.add(Turn(text="thanks", call="other()", skipped="not a request"))]  # fmt: skip
    return history, ids


def test_turns_by_id_skill_and_failure(tmp_path):
    history, ids = _logged(tmp_path / "h.db")
    assert ids == [1, 2, 3, 4, 5]
    assert [t["id"] for t in history.recent(3)] == [5, 4, 3]
    assert [t["id"] for t in history.recent(skill="weather")] == [3]  # the second call of a turn counts too
    assert [t["id"] for t in history.recent(skill="math")] == [1]
    assert [t["id"] for t in history.recent(failed=True)] == [4, 3]
    assert [t["id"] for t in history.recent(failed=True, skill="timer")] == [3]
    assert history.recent(skill="notes") == []
    turn = history.turn(1)
    assert turn["ok"] is True and turn["calls"][0]["reply"] == "nine times nine is 81" and turn["correction"] is None
    assert history.turn(99) is None
    history.add_correction(5, 'weather(location="Paris")', tmp_path / "weather_examples.txt")
    history.add_correction(5, "other()", tmp_path / "other_examples.txt")  # a later one replaces it
    assert history.turn(5)["correction"]["call"] == "other()"
    assert history.recent(1)[0]["correction"]["path"] == str(tmp_path / "other_examples.txt")


def test_a_missing_locked_or_damaged_database_is_one_clear_error(tmp_path):
    with pytest.raises(HistoryError, match=r"no history at .*missing.db: nothing has been logged yet"):
        History(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    history, _ = _logged(tmp_path / "h.db")
    history.close()
    holder = sqlite3.connect(tmp_path / "h.db")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match=r"cannot open the history database .*h.db \(locked by another "
                                               r"process\); try again"):  # fmt: skip
            History(tmp_path / "h.db", create=False, timeout_s=0.1)
    finally:
        holder.rollback()
        holder.close()
    history = History(tmp_path / "h.db", create=False)
    assert len(history.recent()) == 5
    with sqlite3.connect(tmp_path / "h.db") as other:
        other.execute("DROP TABLE corrections")
    with pytest.raises(HistoryError, match=r"cannot read .*h.db \(no such table: corrections\); set daemon.history_db"):
        history.recent()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(HistoryError, match="junk.db \\(file is not a database\\); set daemon.history_db"):
        History(tmp_path / "junk.db", create=False)


def test_a_turn_keeps_why_it_ran_nothing_and_an_older_history_gains_the_columns(tmp_path):
    path = tmp_path / "h.db"
    with sqlite3.connect(path) as db:  # a history written before turns kept a detail and the router's reason
        db.execute("CREATE TABLE turns (id INTEGER PRIMARY KEY, time TEXT, audio_s REAL, start_s REAL, text TEXT, "
                   "call TEXT, reply TEXT, ok INTEGER, skipped TEXT, vad_ms REAL, transcribe_ms REAL, route_ms REAL, "
                   "dispatch_ms REAL, total_ms REAL)")  # fmt: skip
        db.execute("INSERT INTO turns (time, text, skipped) VALUES ('2026-12-01T10:00:00+00:00', '', "
                   "'no speech: silence')")  # fmt: skip
    history = History(path)
    history.add(Turn(text="zzkx qwv", call="other()", skipped=Skipped.NOT_A_REQUEST,
                     route_reason="no call completed under the grammar"))  # fmt: skip
    history.add(Turn(text="", skipped=Skipped.FAILED, detail="RuntimeError: the decoder broke", ready_ms=512.5,
                     early=True))  # fmt: skip
    failed, fallback, old = history.recent()
    assert (failed["ready_ms"], failed["early"], fallback["early"]) == (512.5, 1, 0)
    assert (fallback["skipped"], fallback["route_reason"]) == ("not a request", "no call completed under the grammar")
    assert (failed["skipped"], failed["detail"]) == ("failed", "RuntimeError: the decoder broke")
    assert old["skipped"] == "no speech: silence" and old["detail"] is None
    assert [t["id"] for t in history.recent(failed=True)] == [failed["id"]]
    history.close()
