"""Every turn of the daemon as a row in SQLite (WAL): what was heard, the call, the reply, each stage's latency."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import platformdirs

from skills import SkillcallError

logger = logging.getLogger(__name__)


def default_history_path() -> Path:
    return Path(platformdirs.user_data_dir("skillcall")) / "history.db"


@dataclass
class Turn:
    """One utterance and what the daemon did with it. Latencies in milliseconds."""

    text: str
    call: str | None = None
    reply: str = ""
    ok: bool | None = None
    skipped: str | None = None
    """Why nothing was dispatched: silence, no wake phrase, other(), dry run, awaiting confirmation, ..."""
    audio_s: float = 0.0
    start_s: float = 0.0
    vad_ms: float = 0.0
    transcribe_ms: float = 0.0
    route_ms: float = 0.0
    dispatch_ms: float = 0.0
    total_ms: float = 0.0
    """End of speech -> reply ready."""
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds"))

    def as_dict(self) -> dict:
        return asdict(self)


_COLUMNS = [name for name in Turn.__dataclass_fields__]


class History:
    """The turn log. Thread-safe; one connection, WAL so readers never block the daemon."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path or default_history_path())
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS turns (id INTEGER PRIMARY KEY, time TEXT, audio_s REAL, start_s REAL, "
                "text TEXT, call TEXT, reply TEXT, ok INTEGER, skipped TEXT, vad_ms REAL, transcribe_ms REAL, "
                "route_ms REAL, dispatch_ms REAL, total_ms REAL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise SkillcallError(f"cannot open the history database {self.path} ({exc}); set daemon.history_db") \
                from None

    def add(self, turn: Turn) -> None:
        """Log a turn. A database that cannot take it (disk full, locked, damaged) is warned about, not raised:
        the turn has happened, and the daemon goes on listening."""
        row = turn.as_dict()
        try:
            with self._lock, self._db:
                self._db.execute(f"INSERT INTO turns ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                                 [row[c] for c in _COLUMNS])  # fmt: skip
        except sqlite3.Error as exc:
            logger.warning("cannot log the turn to %s (%s); check the disk, or set daemon.history_db", self.path, exc)

    def recent(self, limit: int = 20) -> list[dict]:
        with self._lock:
            cursor = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM turns ORDER BY id DESC LIMIT ?", (limit,))
            return [dict(zip(_COLUMNS, row, strict=True)) for row in cursor]

    def close(self) -> None:
        with self._lock:
            self._db.close()
