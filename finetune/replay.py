"""What a retrain from a router (``train --init``) trains on: every row that router has not learnt, and a fresh
share of the ones it has, each epoch.

A router folder lists the rows it learnt in ``learnt.txt``: a short hash of each single-request training row (its
near-duplicate key and its call), one per line. Starting from that router, a retrain takes every row not on the
list — a new skill's rows, a correction, rows added to a skill or given another call — and, each epoch, a draw of
``replay`` of the rest (rows of several requests included: ``dataset`` composes them afresh, so they are always in
the draw), so that it keeps what it knew without paying for a whole epoch of it. That is rehearsal, the plainest
guard against forgetting when a model learns in steps. A row a user corrected (``"corrected"`` in the dataset, from
``#### Corrections:``) is new until learnt, and weighs ``CORRECTION_WEIGHT`` rows: one sentence among a thousand
is otherwise too faint to move the router, and the user said it matters.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from pathlib import Path

from .examples import utterance_key

LEARNT = "learnt.txt"
"""The file in a router folder that lists the rows it learnt."""
CORRECTION_WEIGHT = 4
"""How many times an epoch of a retrain trains on each new correction."""


def row_key(row: dict) -> str:
    """A row's entry in ``learnt.txt``: 12 hex digits of the hash of its key and call (collisions among tens of
    thousands of rows: about one in a billion)."""
    return hashlib.sha1(f"{utterance_key(row['text'])}\t{row['call']}".encode()).hexdigest()[:12]


def learnt_keys(rows: Iterable[dict]) -> set[str]:
    """The keys of the single-request rows among ``rows`` (``{"text", "call", "skill"}``)."""
    return {row_key(row) for row in rows if row.get("skill") != "compound"}


def read_learnt(folder: Path) -> set[str] | None:
    """The rows the router in ``folder`` learnt, or None when it does not list them (a router trained before the
    list existed, or a folder that is not a router)."""
    try:
        return set((folder / LEARNT).read_text(encoding="ascii").split())
    except (OSError, UnicodeDecodeError):
        return None


def write_learnt(folder: Path, keys: Iterable[str]) -> None:
    """Write ``learnt.txt`` into ``folder``, sorted so that it diffs well."""
    (folder / LEARNT).write_text("".join(f"{key}\n" for key in sorted(keys)), encoding="ascii")


def unlearnt(rows: list[dict], learnt: set[str] | None) -> list[dict]:
    """The single-request rows of ``rows`` that are not in ``learnt`` (all of them when there is no list)."""
    return [row for row in rows if row.get("skill") != "compound" and (learnt is None or row_key(row) not in learnt)]


def replayed(rows: list[dict], learnt: set[str] | None, share: float, seed: int, epoch: int) -> list[dict]:
    """The rows ``epoch`` trains on: every row not in ``learnt`` and ``share`` of the others, drawn by seed and
    epoch (so a resumed run draws the same); all of ``rows`` when there is no list or ``share`` is 1."""
    if learnt is None or share >= 1:
        return rows
    new = unlearnt(rows, learnt)
    fresh = {id(row) for row in new}
    known = [row for row in rows if id(row) not in fresh]
    drawn = random.Random(f"{seed}:replay:{epoch}").sample(known, round(share * len(known)))
    return [row for row in new for _ in range(CORRECTION_WEIGHT if row.get("corrected") else 1)] + drawn


def replayed_size(rows: list[dict], learnt: set[str] | None, share: float) -> int:
    """How many rows ``replayed`` gives each epoch (the same for every epoch)."""
    return len(replayed(rows, learnt, share, seed=0, epoch=0))


__all__ = ["CORRECTION_WEIGHT", "LEARNT", "learnt_keys", "read_learnt", "replayed", "replayed_size", "row_key",
           "unlearnt", "write_learnt"]  # fmt: skip
