"""Documents for generate --from-docs: which files are text, and chunks read as needed, never a file whole."""

from __future__ import annotations

import tracemalloc

import pytest

from finetune.documents import ChunkOptions, DocumentError, chunks, estimate_chunks, find_documents


def _reference(text: str, size: int, step: int) -> list[str]:
    """Chunks by slicing the whole text: every ``step`` characters, up to the first that reaches the end."""
    found = []
    for start in range(0, len(text), step):
        found.append(text[start : start + size])
        if start + size >= len(text):
            break
    return [chunk for chunk in found if chunk.strip()]


@pytest.mark.parametrize(("size", "step"), [(4, 4), (4, 2), (4, 3), (4, 6), (5, 1), (512, 512), (3, 10), (100, 7)])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 5, 9, 10, 11, 37])
def test_chunks_read_as_needed_are_the_chunks_of_the_whole_text(tmp_path, size, step, length):
    text = "".join(chr(ord("a") + i % 26) if i % 7 else "é" for i in range(length))  # two bytes now and then
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    assert list(chunks(path, ChunkOptions(size, step))) == _reference(text, size, step)


def test_a_large_file_is_never_held_whole(tmp_path):
    path = tmp_path / "big.txt"
    line = "The quick brown fox jumps over the lazy dog. " * 20 + "\n"
    with path.open("w") as handle:
        for _ in range(5_000):  # 4.5 MB
            handle.write(line)
    tracemalloc.start()
    try:
        count = sum(1 for _ in chunks(path, ChunkOptions(512, 512)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == -(-path.stat().st_size // 512)
    assert peak < 1_000_000, peak


def test_which_files_are_documents(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "b.md").write_text("# Bees\nBees make honey.\n")
    (tmp_path / "a.txt").write_text("\ufeffAnts carry crumbs.")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\0\x10JFIF\0" + bytes(range(256)))
    (tmp_path / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    with (tmp_path / "huge.log").open("wb") as handle:  # 100 MB, sparse: the size alone refuses it
        handle.truncate(100_000_000)
    found, skipped = find_documents(tmp_path, ChunkOptions())
    assert found == [tmp_path / "a.txt", tmp_path / "notes" / "b.md"]
    assert {s.path.name: s.reason for s in skipped} == {
        "empty.txt": "empty", "photo.jpg": "not text (binary)", "latin1.txt": "not UTF-8 text",
        "huge.log": "100 MB, over the 10 MB limit (split it, or raise --max-file-mb)"}  # fmt: skip
    assert list(chunks(tmp_path / "a.txt", ChunkOptions())) == ["Ants carry crumbs."]  # the byte-order mark is no text
    assert estimate_chunks(found, ChunkOptions(10, 10)) == 3 + 3  # by bytes: 21 (a byte-order mark) and 24


def test_not_a_folder_and_bad_sizes(tmp_path):
    with pytest.raises(DocumentError, match="is not a folder; give --from-docs a folder of text files"):
        find_documents(tmp_path / "missing", ChunkOptions())
    with pytest.raises(DocumentError, match="must be at least 1 character"):
        ChunkOptions(0, 512)
