"""Documents for ``skillcall generate --from-docs DIR``: the text files under a folder, cut into chunks of characters
as they are read, so no file is ever held whole in memory.

A file that is not text (a NUL byte or invalid UTF-8 in its first 8 KiB), an empty one, or one larger than the
size limit is named with the reason and skipped; hidden files and folders (``.git``) are passed over.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from skills import SkillcallError

SNIFF_BYTES = 8192
"""How much of a file decides whether it is text."""


class DocumentError(SkillcallError):
    """The documents folder cannot be read."""


@dataclass(frozen=True)
class ChunkOptions:
    """How documents are cut (characters, not tokens: the same for every model)."""

    chunk_size: int = 512
    """Characters in a chunk."""
    step_size: int = 512
    """Characters from one chunk's start to the next's: less than ``chunk_size`` overlaps them, more skips text."""
    max_file_mb: float = 10.0
    """Larger files are skipped (each chunk is one request: 10 MB is about 20,000 of them at the defaults)."""

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.step_size < 1:
            raise DocumentError(f"--chunk-size ({self.chunk_size}) and --step-size ({self.step_size}) must be at "
                                "least 1 character")  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def find_documents(folder: Path, options: ChunkOptions) -> tuple[list[Path], list[Skipped]]:
    """The text files under ``folder``, recursively and in name order, and the files passed over with why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DocumentError(f"{folder} is not a folder; give --from-docs a folder of text files")
    found, skipped = [], []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        reason = _not_text(path, options)
        if reason:
            skipped.append(Skipped(path, reason))
        else:
            found.append(path)
    return found, skipped


def _not_text(path: Path, options: ChunkOptions) -> str | None:
    """Why a file is no document to read, or None."""
    try:
        size = path.stat().st_size
        if size == 0:
            return "empty"
        if size > options.max_file_mb * 1_000_000:
            return (f"{size / 1_000_000:,.0f} MB, over the {options.max_file_mb:g} MB limit (split it, or raise "
                    "--max-file-mb)")  # fmt: skip
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if b"\0" in head:
        return "not text (binary)"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return None


def estimate_chunks(paths: list[Path], options: ChunkOptions) -> int:
    """About how many chunks the files give (bytes for characters: a little more for text beyond ASCII)."""
    total = 0
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        total += 1 + max(0, -(-(size - options.chunk_size) // options.step_size))
    return total


def chunks(path: Path, options: ChunkOptions) -> Iterator[str]:
    """The chunks of one file, read as they are needed: ``chunk_size`` characters starting every ``step_size``,
    the last one ending with the file; chunks of only white space are left out. Raises ``UnicodeDecodeError``
    where the file stops being UTF-8 (after the chunks before it) and ``OSError`` when it cannot be read."""
    size, step = options.chunk_size, options.step_size
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        buffer = handle.read(size)
        eof = len(buffer) < size
        while buffer:
            if buffer.strip():
                yield buffer
            if eof:
                return  # this chunk reached the end of the file
            if step < len(buffer):
                buffer = buffer[step:]
            else:  # a step past this chunk: skip the text between
                skipped = handle.read(step - len(buffer))
                buffer = ""
                if len(skipped) < step - size:
                    return
            need = size - len(buffer)
            data = handle.read(need)
            eof = len(data) < need
            if not data:
                return  # what is left was in the chunk before
            buffer += data
