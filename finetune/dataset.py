"""Example files -> ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``: stratified, deduplicated, deterministic,
and stable as examples are added (each row's split follows from a hash of its words)."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from skills import Registry, SkillcallError

from .card import CardDataset, RouterCard
from .compound import compose
from .examples import ExampleSet, load_examples, utterance_key, write_atomic

SPLITS = ("train", "validation", "test")
CARD = "dataset.json"
"""Written beside the splits: the examples' fingerprint, seed and counts (what a trained router records)."""


class DatasetError(SkillcallError):
    """The examples cannot make a dataset (invalid rows, too few for a split)."""


@dataclass(frozen=True)
class DatasetOptions:
    """How ``build_dataset`` splits the examples."""

    out: Path = Path("data")
    """Folder the three JSONL files are written to."""
    seed: int = 0
    """Same seed, same examples -> byte-identical files."""
    validation: float = 0.1
    """Share of each skill's rows in validation."""
    test: float = 0.1
    """Share of each skill's rows in test."""
    compound: float = 0.2
    """Rows of several requests in one breath added to each split, as a share of its rows, composed from that
    split's own rows (``finetune.compound``); 0 for none."""


@dataclass
class DatasetResult:
    paths: dict[str, Path]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """skill -> split -> rows."""
    removed: int = 0
    """Near-duplicate rows dropped (same utterance after case and punctuation)."""
    fingerprint: str = ""


def split_rows(example_set: ExampleSet, options: DatasetOptions) -> tuple[dict[str, list[dict]], DatasetResult]:
    """The rows of each split, before anything is written."""
    invalid = [p for p in example_set.problems if p.kind == "invalid"]
    if invalid:
        raise DatasetError(f"{len(invalid)} problem(s) in the example files, first: {invalid[0]}; "
                           "run `skillcall examples check`")  # fmt: skip
    by_skill: dict[str, list[dict]] = {}
    seen: set[str] = set()
    removed = 0
    corrected: list[dict] = []
    for skill, example in example_set.rows():
        key = utterance_key(example.text)
        if key in seen:
            removed += 1
            continue
        seen.add(key)
        if example.corrected:  # what a user corrected is learnt, never held out
            corrected.append({"text": example.text, "call": example.call, "skill": skill, "corrected": True})
            continue
        by_skill.setdefault(skill, []).append({"text": example.text, "call": example.call, "skill": skill})
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    counts: dict[str, dict[str, int]] = {}
    for skill in sorted(by_skill):
        rows = sorted(by_skill[skill], key=lambda r: _rank(options.seed, r["text"]))
        n_test = round(len(rows) * options.test)
        n_validation = round(len(rows) * options.validation)
        if len(rows) - n_test - n_validation < 1:
            raise DatasetError(f"skill {skill} has only {len(rows)} example(s); write more in {skill}_examples.txt")
        parts = {"test": rows[:n_test], "validation": rows[n_test : n_test + n_validation],
                 "train": rows[n_test + n_validation :]}  # fmt: skip
        for name in SPLITS:
            splits[name] += parts[name]
        counts[skill] = {name: len(parts[name]) for name in SPLITS}
    for row in corrected:
        splits["train"].append(row)
        counts.setdefault(row["skill"], dict.fromkeys(SPLITS, 0))["train"] += 1
    if options.compound and example_set.registry is not None:
        for name in SPLITS:
            four = 0.03 if name == "train" else 0.0  # only training hears a fourth request (a sequence keeps three)
            splits[name] += compose(splits[name], options.compound, options.seed, name, example_set.registry,
                                    four=four)  # fmt: skip
    for name in SPLITS:
        random.Random(f"{options.seed}:{name}").shuffle(splits[name])
    return splits, DatasetResult({}, counts, removed, example_set.fingerprint())


def _rank(seed: int, text: str) -> str:
    """A row's place in its skill's deterministic shuffle, from its own words only: each example added or removed
    moves at most two other rows across a split boundary (a shuffled list would reshuffle every split)."""
    return hashlib.sha256(f"{seed}:{utterance_key(text)}".encode()).hexdigest()


def build_dataset(example_set: ExampleSet, options: DatasetOptions) -> DatasetResult:
    """The front door: split and write the three files atomically."""
    splits, result = split_rows(example_set, options)
    card = {"examples_fingerprint": result.fingerprint, "seed": options.seed, "counts": result.counts,
            "removed": result.removed, "compound": options.compound,
            "compound_rows": {name: sum(r["skill"] == "compound" for r in rows) for name, rows in splits.items()}}
    try:
        for name, rows in splits.items():
            text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
            result.paths[name] = write_atomic(options.out / f"{name}.jsonl", text)
        write_atomic(options.out / CARD, json.dumps(card, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise DatasetError(f"cannot write the splits to {options.out} ({exc}); choose another --out") from None
    return result


def router_test_split(example_dirs: list[Path], registry: Registry, card: RouterCard | None = None) -> list[dict]:
    """The test rows of the dataset a router was trained on: the examples in ``example_dirs`` split with the seed
    its card records (``dataset.seed``; 0 for a card without one), as ``skillcall eval`` and the benchmarks read them."""
    dataset = card.dataset if card is not None else CardDataset()
    options = DatasetOptions(seed=dataset.seed or 0, compound=dataset.compound)
    return split_rows(load_examples(example_dirs, registry), options)[0]["test"]


def read_jsonl(path: Path, required: tuple[str, ...] = ("text",)) -> list[dict]:
    """Rows of a JSONL file; a bad line raises ``DatasetError`` naming file and line."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").split("\n")  # a BOM is no text; U+2028 may be in it
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path}:{number}: not JSON ({exc})") from None
        missing = [key for key in required if not isinstance(row, dict) or not isinstance(row.get(key), str)]
        if missing:
            raise DatasetError(f"{path}:{number}: each row needs text field(s) {missing}")
        rows.append(row)
    return rows
