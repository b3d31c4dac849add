"""skillcall dataset --format: the same splits in the shapes other trainers read, each loadable by `datasets`."""

from __future__ import annotations

import json

import pytest

from finetune.dataset import DatasetError, DatasetOptions, build_dataset
from finetune.examples import load_examples
from finetune.formats import FORMATS, FormatOptions, export_dataset

CITIES = ["Paris", "Berlin", "Tokyo", "Lima", "Oslo", "Rome", "Cairo", "Quito", "Hanoi", "Dakar", "Perth", "Nice"]


@pytest.fixture
def example_set(tmp_path, registry):
    folder = tmp_path / "examples"
    folder.mkdir()
    files = {
        "weather": ('weather(location="[location]") get the current weather at a location.',
                    [(f"What's the weather in {c}?", f'weather(location="{c}")') for c in CITIES]),
        "timecheck": ('timecheck(location="[location]") the local time at a place.',
                      [(f"what time is it in {c}", f'timecheck(location="{c}")') for c in CITIES]),
        "other": ("other() not a request.", [(f"I loved {c} last summer.", "other()") for c in CITIES]),
    }  # fmt: skip
    for skill, (prompt, rows) in files.items():
        body = "".join(f"\n### User: {text}\n### Assistant: {call}\n" for text, call in rows)
        (folder / f"{skill}_examples.txt").write_text(f"#### Prompt:\n{prompt}\n\n#### Prompt Examples:\n\n"
                                                      f"#### Examples:\n{body}")  # fmt: skip
    return load_examples([folder], registry)


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_format_holds_the_splits_of_skillcall_dataset(example_set, registry, tmp_path):
    build_dataset(example_set, DatasetOptions(tmp_path / "data", seed=3))
    for fmt in FORMATS:
        export_dataset(example_set, DatasetOptions(tmp_path / fmt, seed=3), FormatOptions(fmt))
    for split in ("train", "validation", "test"):
        plain = _read(tmp_path / "data" / f"{split}.jsonl")
        assert _read(tmp_path / "jsonl" / f"{split}.jsonl") == plain
        alpaca = _read(tmp_path / "alpaca" / f"{split}.jsonl")
        assert [(r["input"], r["output"]) for r in alpaca] == [(r["text"], r["call"]) for r in plain]
        assert {r["instruction"] for r in alpaca} == {"Turn the user's words into one skill call."}
        chat = _read(tmp_path / "chatml" / f"{split}.jsonl")
        assert [[m["role"] for m in r["messages"]] for r in chat] == [["system", "user", "assistant"]] * len(plain)
        assert [(r["messages"][1]["content"], r["messages"][2]["content"]) for r in chat] == \
            [(r["text"], r["call"]) for r in plain]
        pairs = _read(tmp_path / "function-calls" / f"{split}.jsonl")
        singles = [r for r in plain if r["skill"] != "compound"]  # a pair holds one call
        assert sorted(r["input"]["user_question"] for r in pairs) == sorted(r["text"] for r in singles)
        for pair in pairs:
            call = pair["output"]["function_call"]
            assert set(pair) == {"instruction", "input", "output"} and set(call) == {"name", "arguments"}
            expected = next(r["call"] for r in singles if r["text"] == pair["input"]["user_question"])
            assert str(registry.validate(call["name"], json.loads(call["arguments"]))) == expected
    assert any(r["skill"] == "compound" for r in _read(tmp_path / "data" / "train.jsonl"))


def test_the_skill_list_after_the_instruction(example_set, tmp_path):
    export_dataset(example_set, DatasetOptions(tmp_path / "full"), FormatOptions("alpaca", skill_list="full"))
    told = _read(tmp_path / "full" / "train.jsonl")[0]["instruction"]
    assert told.startswith("Turn the user's words into one skill call.\n")
    assert 'weather(location="[location]") get the current weather at a location.' in told  # its file's prompt
    assert "math(question: str)" in told  # a skill without a file: its signature


@pytest.mark.parametrize("fmt", ["alpaca", "chatml", "function-calls"])
def test_each_format_loads_with_the_datasets_library(example_set, tmp_path, fmt):
    import datasets  # the dev extra installs it: a format that does not load is a failure, never a skip
    export_dataset(example_set, DatasetOptions(tmp_path / fmt), FormatOptions(fmt))
    loaded = datasets.load_dataset(str(tmp_path / fmt))
    assert set(loaded) == {"train", "validation", "test"}
    for split, rows in loaded.items():
        assert len(rows) == len(_read(tmp_path / fmt / f"{split}.jsonl")) > 0
    first = loaded["train"][0]
    assert first == _read(tmp_path / fmt / "train.jsonl")[0]


def test_bad_format_and_folder(example_set, tmp_path):
    with pytest.raises(DatasetError, match="no dataset format 'csv'; use one of jsonl, alpaca, chatml"):
        export_dataset(example_set, DatasetOptions(tmp_path), FormatOptions("csv"))  # type: ignore[arg-type]
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(DatasetError, match="cannot write the splits to .*taken.*choose another --out"):
        export_dataset(example_set, DatasetOptions(tmp_path / "taken"), FormatOptions("chatml"))
