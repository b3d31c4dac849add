"""Every turn of the daemon as a row in SQLite (WAL): what was heard, the call, the reply, each stage's latency."""

from __future__ import annotations

import contextlib
import enum
import logging
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import platformdirs

from skills import SkillcallError
from skills.calls import split_calls

logger = logging.getLogger(__name__)


def default_history_path() -> Path:
    return Path(platformdirs.user_data_dir("skillcall")) / "history.db"


class Skipped(str, enum.Enum):
    """Why a turn ran no skill (or not all of them); stored in the history as its text."""

    NO_SPEECH = "no speech"
    """The transcriber dropped what it heard as noise or its own invention (``Turn.detail`` says which)."""
    NO_WAKE = "no wake phrase"
    WAKE_ONLY = "wake phrase only"
    NOT_A_REQUEST = "not a request"
    """Routed to other(): ``Turn.route_reason`` says when that was the router's fallback, not its choice."""
    DRY_RUN = "dry run"
    AWAITING_CONFIRMATION = "awaiting confirmation"
    CANCELLED = "cancelled"
    AWAITING_CORRECTION = "awaiting correction"
    CORRECTION_NOT_UNDERSTOOD = "correction not understood"
    CORRECTION_CANCELLED = "correction cancelled"
    FAILED = "failed"
    """A stage raised (``Turn.detail``: the error)."""

    def __str__(self) -> str:
        return self.value


@dataclass
class Announcement:
    """What a skill said on its own (a timer going off), not in answer to a turn."""

    text: str
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

    def as_dict(self) -> dict:
        return {"announcement": self.text, "time": self.time}


@dataclass
class CallRun:
    """One call of a turn (a turn of several requests has several), and what running it gave."""

    call: str
    ok: bool | None = None
    """None: not run (a dry run, awaiting or refused confirmation)."""
    reply: str = ""
    dispatch_ms: float = 0.0


@dataclass
class Turn:
    """One utterance and what the daemon did with it. Latencies in milliseconds."""

    text: str
    call: str | None = None
    """The call, or the calls joined by "; " (several requests in one breath); each is in ``calls``."""
    reply: str = ""
    ok: bool | None = None
    skipped: Skipped | None = None
    """Why nothing was dispatched (or not every call): silence, no wake phrase, other(), dry run, ..."""
    detail: str = ""
    """More on ``skipped``: what the transcriber dropped, the error of a failed stage."""
    route_reason: str | None = None
    """Why the router gave what it gave when it was not the model's own call (a grammar fallback to other())."""
    audio_s: float = 0.0
    start_s: float = 0.0
    vad_ms: float = 0.0
    transcribe_ms: float = 0.0
    route_ms: float = 0.0
    dispatch_ms: float = 0.0
    ready_ms: float = 0.0
    """End of speech -> the call ready to run (typed words: routing)."""
    total_ms: float = 0.0
    """End of speech -> reply ready."""
    early: bool = False
    """The words were transcribed in the pause before the utterance ended (``daemon.early_ms``)."""
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))
    calls: list[CallRun] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


_COLUMNS = [name for name in Turn.__dataclass_fields__ if name != "calls"]
_CALL_COLUMNS = list(CallRun.__dataclass_fields__)


class HistoryError(SkillcallError):
    """The history database cannot be opened or read (missing, locked, damaged)."""


class History:
    """The turn log. Thread-safe; one connection, WAL so readers never block the daemon.

    ``create=False`` opens only a database that exists (``skillcall history``, ``skillcall correct``): a missing one
    is a ``HistoryError`` saying so, not a new empty file.
    """

    def __init__(self, path: Path | None = None, *, create: bool = True, timeout_s: float = 5.0) -> None:
        self.path = Path(path or default_history_path())
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise HistoryError(f"no history at {self.path}: nothing has been logged yet (`skillcall listen` logs "
                               "every turn; daemon.history_db names another file)")  # fmt: skip
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=timeout_s)
            self._db.create_function("calls_skill", 2, _calls_skill, deterministic=True)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY, time TEXT, audio_s REAL, start_s REAL, "
                "text TEXT, call TEXT, reply TEXT, ok INTEGER, skipped TEXT, vad_ms REAL, transcribe_ms REAL, "
                "route_ms REAL, dispatch_ms REAL, total_ms REAL, detail TEXT, route_reason TEXT, ready_ms REAL, "
                "early INTEGER)"
            )
            known = {row[1] for row in self._db.execute("PRAGMA table_info(turns)")}
            added = {"detail": "TEXT", "route_reason": "TEXT", "ready_ms": "REAL", "early": "INTEGER"}
            for column, kind in added.items():  # a history from before these columns
                if column not in known:
                    self._db.execute(f"ALTER TABLE turns ADD COLUMN {column} {kind}")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (turn INTEGER REFERENCES turns(id), position INTEGER, call TEXT, "
                "ok INTEGER, reply TEXT, dispatch_ms REAL, PRIMARY KEY (turn, position))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS corrections (turn INTEGER PRIMARY KEY REFERENCES turns(id), time TEXT, "
                "call TEXT, path TEXT)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open the history database {self.path} ({_why(exc)}); "
                               f"{_next_step(exc)}") from None  # fmt: skip

    def add(self, turn: Turn) -> int | None:
        """Log a turn; its id (what ``skillcall correct`` names it by), or None when it could not be logged. A
        database that cannot take it (disk full, locked, damaged) is warned about, not raised: the turn has
        happened, and the daemon goes on listening."""
        row = turn.as_dict()
        try:
            with self._lock, self._db:
                cursor = self._db.execute(f"INSERT INTO turns ({', '.join(_COLUMNS)}) VALUES "
                                          f"({', '.join('?' * len(_COLUMNS))})", [row[c] for c in _COLUMNS])
                self._db.executemany(f"INSERT INTO calls (turn, position, {', '.join(_CALL_COLUMNS)}) VALUES "
                                     f"({', '.join('?' * (2 + len(_CALL_COLUMNS)))})",
                                     [(cursor.lastrowid, position, *(run[c] for c in _CALL_COLUMNS))
                                      for position, run in enumerate(row["calls"])])  # fmt: skip
            return cursor.lastrowid
        except sqlite3.Error as exc:
            logger.warning("cannot log the turn to %s (%s); check the disk, or set daemon.history_db", self.path, exc)
            return None

    def recent(self, limit: int = 20, *, skill: str | None = None, failed: bool = False) -> list[dict]:
        """The last turns, newest first: each a dict of the turn's fields with its ``id``, its ``calls`` in the
        order said, and its ``correction`` (``{"call", "path", "time"}``, or None). ``skill``: only turns with a
        call of that skill; ``failed``: only turns where a call or a stage failed."""
        where, values = [], []
        if skill:
            where.append("calls_skill(call, ?)")
            values.append(skill)
        if failed:
            where.append("(ok = 0 OR skipped LIKE 'failed%')")
        sql = (f"SELECT id, {', '.join(_COLUMNS)} FROM turns {'WHERE ' + ' AND '.join(where) if where else ''} "
               "ORDER BY id DESC LIMIT ?")  # fmt: skip
        return self._turns(sql, [*values, limit])

    def turn(self, turn_id: int) -> dict | None:
        """One turn by its id, as ``recent`` gives it; None when there is no such turn."""
        found = self._turns(f"SELECT id, {', '.join(_COLUMNS)} FROM turns WHERE id = ?", [turn_id])
        return found[0] if found else None

    def _turns(self, sql: str, values: list) -> list[dict]:
        with self._lock, self._reading():
            turns = {row[0]: {"id": row[0], **dict(zip(_COLUMNS, row[1:], strict=True)), "calls": [],
                              "correction": None} for row in self._db.execute(sql, values)}  # fmt: skip
            for found in turns.values():
                found["ok"] = None if found["ok"] is None else bool(found["ok"])
            marks = ", ".join("?" * len(turns))
            cursor = self._db.execute(f"SELECT turn, {', '.join(_CALL_COLUMNS)} FROM calls WHERE turn IN ({marks}) "
                                      "ORDER BY turn, position", list(turns))  # fmt: skip
            for turn, *rest in cursor:
                run = dict(zip(_CALL_COLUMNS, rest, strict=True))
                turns[turn]["calls"].append({**run, "ok": None if run["ok"] is None else bool(run["ok"])})
            cursor = self._db.execute(f"SELECT turn, call, path, time FROM corrections WHERE turn IN ({marks})",
                                      list(turns))  # fmt: skip
            for turn, call, path, time in cursor:
                turns[turn]["correction"] = {"call": call, "path": path, "time": time}
            return list(turns.values())

    def add_correction(self, turn_id: int, call: str, path: Path) -> None:
        """Record that turn ``turn_id`` should have routed to ``call`` (written as an example row to ``path``); a
        later correction of the same turn replaces it."""
        with self._lock, self._reading(), self._db:
            self._db.execute("INSERT OR REPLACE INTO corrections (turn, time, call, path) VALUES (?, ?, ?, ?)",
                             (turn_id, datetime.now(timezone.utc).isoformat(timespec="milliseconds"), call,
                              str(path)))  # fmt: skip

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Errors of the database (locked by another process, damaged) as one ``HistoryError``."""
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot read the history database {self.path} ({_why(exc)}); {_next_step(exc)}") \
                from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _calls_skill(call: str | None, skill: str) -> bool:
    """Whether a turn's call string (one call, or several joined by "; ") calls ``skill``."""
    if not call:
        return False
    try:
        parts = split_calls(call)
    except SkillcallError:
        parts = [call]
    return any(part.split("(", 1)[0].strip() == skill for part in parts)


def _why(exc: Exception) -> str:
    return "locked by another process" if "locked" in str(exc) else str(exc)


def _next_step(exc: Exception) -> str:
    if "locked" in str(exc):
        return "try again in a moment, or stop the program that holds it"
    return "set daemon.history_db to another file"
