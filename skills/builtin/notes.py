"""Built-in skill: notes kept in SQLite (WAL) under the platform's data folder."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Literal

from skills import SkillContext, SkillFailed, printable, skill


def _connect(context: SkillContext) -> sqlite3.Connection:
    path = context.settings.notes_db
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=5)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, created TEXT NOT NULL "
            "DEFAULT (datetime('now')), text TEXT NOT NULL)"
        )
    except (OSError, sqlite3.Error) as exc:
        raise SkillFailed(f"I can't open the notes file {path} ({exc}); check skills.notes_db in the config") from exc
    return db


@skill
def notes(action: Literal["add", "list"], context: SkillContext, note: str | None = None) -> str:
    """Add a note, or read the notes back."""
    if action == "add" and not (note and note.strip()):
        raise SkillFailed("What should I note? Say it like 'add buy milk to my notes'.")
    with closing(_connect(context)) as db, db:
        if action == "add":
            db.execute("INSERT INTO notes (text) VALUES (?)", (note.strip(),))
            return f"Noted: {_sentence(note)}"
        rows = [text for (text,) in db.execute("SELECT text FROM notes ORDER BY id")]
    if not rows:
        return "You have no notes yet."
    listed = " ".join(f"{n}. {_sentence(text)}" for n, text in enumerate(rows, 1))
    return f"You have {len(rows)} note{'s' if len(rows) > 1 else ''}: {listed}"


def _sentence(text: str) -> str:
    """The note as one sentence of the reply: "buy milk" and "buy milk." both end "buy milk."; "why?" stays. One
    printable line, as kept: a newline or an escape said back as ``\\n``, ``\\x1b``."""
    text = printable(text.strip())
    return text if text.endswith((".", "!", "?")) else text + "."
