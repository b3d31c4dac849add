"""The SQLite turn log."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.history import History, Turn
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
