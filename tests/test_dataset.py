"""skillcall dataset: stratified, deterministic, deduplicated splits."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from finetune.card import RouterCard
from finetune.dataset import DatasetError, DatasetOptions, build_dataset, read_jsonl, router_test_split
from finetune.examples import EXAMPLES_DIR, load_examples, utterance_key


@pytest.fixture
def example_set(registry):
    return load_examples([EXAMPLES_DIR], registry)


def test_splits_are_stratified_and_disjoint(example_set, registry, tmp_path):
    result = build_dataset(example_set, DatasetOptions(tmp_path))
    rows = {name: read_jsonl(path, ("text", "call", "skill")) for name, path in result.paths.items()}
    compound = {name: [r for r in part if r["skill"] == "compound"] for name, part in rows.items()}
    total = sum(len(r) for r in rows.values()) - sum(len(r) for r in compound.values())
    assert total == sum(example_set.counts().values())
    for name, part in compound.items():
        share = DatasetOptions().compound  # several requests in one breath: this share of each split, its words
        base = len(rows[name]) - len(part)
        assert 0.9 * share * base <= len(part) <= round(share * base)
        assert all(len(registry.parse_calls(r["call"], limit=4)) >= 1 for r in part)
        assert sum(";" in r["call"] for r in part) > 0.6 * len(part)  # the rest: a request and a remark
    for skill, count in example_set.counts().items():
        split = result.counts[skill]
        assert split["test"] == round(count * 0.1) and split["validation"] == round(count * 0.1)
        assert Counter(r["skill"] for r in rows["train"])[skill] == split["train"]
    keys = {name: {utterance_key(r["text"]) for r in part} for name, part in rows.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]


def test_a_router_is_tested_on_the_split_of_its_own_seed(example_set, registry, tmp_path):
    written = build_dataset(example_set, DatasetOptions(tmp_path, seed=7))
    test = read_jsonl(written.paths["test"], ("text", "call"))
    rows = router_test_split([EXAMPLES_DIR], registry,
                             RouterCard(dataset={"seed": 7, "compound": DatasetOptions().compound}))
    assert [(r["text"], r["call"]) for r in rows] == [(r["text"], r["call"]) for r in test]
    assert router_test_split([EXAMPLES_DIR], registry, RouterCard()) != rows  # a card without a seed: seed 0's split
    assert router_test_split([EXAMPLES_DIR], registry, None) == router_test_split([EXAMPLES_DIR], registry, RouterCard())


def test_same_seed_same_bytes_other_seed_other_order(example_set, tmp_path):
    first = build_dataset(example_set, DatasetOptions(tmp_path / "a", seed=7))
    again = build_dataset(example_set, DatasetOptions(tmp_path / "b", seed=7))
    other = build_dataset(example_set, DatasetOptions(tmp_path / "c", seed=8))
    for name in ("train", "validation", "test"):
        assert first.paths[name].read_bytes() == again.paths[name].read_bytes()
    assert first.paths["test"].read_bytes() != other.paths["test"].read_bytes()
    assert first.fingerprint == other.fingerprint


def test_near_duplicates_are_removed(registry, tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    rows = "".join(f"\n### User: Weather in city {i}?\n### Assistant: weather(location=\"city {i}\")\n" for i in range(20))
    (folder / "weather_examples.txt").write_text(
        "#### Prompt:\nweather.\n\n#### Prompt Examples:\n\n#### Examples:\n" + rows
        + "\n### User: weather in CITY 3\n### Assistant: weather(location=\"CITY 3\")\n"
    )
    result = build_dataset(load_examples([folder], registry), DatasetOptions(tmp_path / "out"))
    assert result.removed == 1
    assert sum(result.counts["weather"].values()) == 20


def test_adding_examples_keeps_the_other_rows_in_their_splits(registry, tmp_path):
    def splits(count: int) -> dict[str, str]:
        folder = tmp_path / f"ex{count}"
        folder.mkdir()
        rows = "".join(f"\n### User: Weather in town {i}?\n### Assistant: weather(location=\"town {i}\")\n"
                       for i in range(count))  # fmt: skip
        (folder / "weather_examples.txt").write_text("#### Prompt:\nweather.\n\n#### Prompt Examples:\n\n"
                                                      "#### Examples:\n" + rows)  # fmt: skip
        result = build_dataset(load_examples([folder], registry), DatasetOptions(tmp_path / f"out{count}"))
        return {row["text"]: name for name, path in result.paths.items() for row in read_jsonl(path)}

    before, after = splits(50), splits(55)
    moved = [text for text, name in before.items() if after[text] != name]
    assert len(moved) <= 2 * 5  # at most two rows per added example cross a split boundary (one at each)


def test_invalid_examples_stop_the_build(registry, tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "timer_examples.txt").write_text(
        "#### Prompt:\ntimer.\n\n#### Prompt Examples:\n\n#### Examples:\n\n### User: hi\n### Assistant: timer()\n"
    )
    with pytest.raises(DatasetError, match="timer needs duration"):
        build_dataset(load_examples([folder], registry), DatasetOptions(tmp_path / "out"))


def test_read_jsonl_names_the_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": 3}\n')
    with pytest.raises(DatasetError, match=r"rows.jsonl:3: each row needs text"):
        read_jsonl(path)
    path.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"rows.jsonl:2: not JSON"):
        read_jsonl(path)
    path.write_text(json.dumps({"text": "a", "extra": 1}) + "\n")
    assert read_jsonl(path) == [{"text": "a", "extra": 1}]
    path.write_text("\ufeff" + json.dumps({"text": "a\u2028b"}, ensure_ascii=False) + "\r\n")  # a Windows editor
    assert read_jsonl(path) == [{"text": "a\u2028b"}]


def test_corrected_rows_are_always_trained_on(registry, tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    rows = "".join(f"\n### User: weather in city number {i}\n### Assistant: weather(location=\"city number {i}\")\n"
                   for i in range(40))  # fmt: skip
    fixes = "".join(f"\n### User: how warm is town {i}\n### Assistant: weather(location=\"town {i}\")\n"
                    for i in range(30))  # fmt: skip
    (folder / "weather_examples.txt").write_text(f"#### Prompt:\nweather\n\n#### Prompt Examples:\n\n#### Examples:\n"
                                                 f"{rows}\n#### Corrections:\n{fixes}")  # fmt: skip
    example_set = load_examples([folder], registry)
    assert not [p for p in example_set.problems if p.kind == "invalid"]
    result = build_dataset(example_set, DatasetOptions(tmp_path / "data", compound=0))
    splits = {name: [r["text"] for r in read_jsonl(path)] for name, path in result.paths.items()}
    assert all(f"how warm is town {i}" in splits["train"] for i in range(30))  # none held out
    marked = {r["text"] for r in read_jsonl(result.paths["train"]) if r.get("corrected")}  # a retrain weighs them
    assert marked == {f"how warm is town {i}" for i in range(30)}
    assert result.counts["weather"] == {"train": 30 + 32, "validation": 4, "test": 4}
