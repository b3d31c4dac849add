"""notes: real SQLite in WAL mode."""

from __future__ import annotations

import sqlite3

from skills import SkillCall


def test_add_then_list(registry, settings):
    assert registry.dispatch(registry.parse('notes(action="list")')).text == "You have no notes yet."
    assert registry.dispatch(registry.parse('notes("add", "buy milk")')).text == "Noted: buy milk."
    assert registry.dispatch(registry.parse('notes(action="add", note="call Åsa 🙂")')).ok
    assert registry.dispatch(registry.parse('notes("add", "Ring Li.")')).text == "Noted: Ring Li."  # not "Li.."
    listed = registry.dispatch(SkillCall("notes", {"action": "list"}))
    assert listed.text == "You have 3 notes: 1. buy milk. 2. call Åsa 🙂. 3. Ring Li."
    with sqlite3.connect(settings.notes_db) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_without_a_note_asks_for_one(registry):
    result = registry.dispatch(registry.parse('notes(action="add")'))
    assert not result.ok and "What should I note?" in result.text


def test_unwritable_database_path_is_a_clear_failure(registry, settings, tmp_path):
    (tmp_path / "file").write_text("")
    settings.notes_db = tmp_path / "file" / "notes.db"
    result = registry.dispatch(registry.parse('notes(action="list")'))
    assert not result.ok and "can't open the notes file" in result.text


def test_a_note_is_echoed_on_one_printable_line_and_kept_as_said(registry, settings):
    said = "buy milk\nand \x1b[31meggs"
    assert registry.dispatch(SkillCall("notes", {"action": "add", "note": said})).text == \
        "Noted: buy milk\\nand \\x1b[31meggs."
    assert registry.dispatch(SkillCall("notes", {"action": "list"})).text == \
        "You have 1 note: 1. buy milk\\nand \\x1b[31meggs."
    with sqlite3.connect(settings.notes_db) as db:
        assert db.execute("SELECT text FROM notes").fetchone()[0] == said
