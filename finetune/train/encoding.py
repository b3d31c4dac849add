"""Rows as the model reads them: prompt and call as token ids (the loss on the call only), batches padded to their
own longest row, an epoch's order, and the subset a quick run takes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_row(tokenizer: Any, template: Any, skills: str, text: str, call: str) -> Encoded:
    """Prompt and completion as token ids, tokenized in the pieces the routers use (prefix and suffix with
    special tokens, the utterance without). Labels are -100 on the prompt: the loss is on the call only."""
    before, utterance, after = template.parts(text, skills)
    prompt = tokenizer(before, add_special_tokens=False)["input_ids"]
    prompt += tokenizer(utterance, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    prompt += tokenizer(after, add_special_tokens=False)["input_ids"]
    if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None:
        prompt = [tokenizer.bos_token_id] + prompt
    completion = tokenizer(template.render_completion(call), add_special_tokens=False)["input_ids"]
    if template.append_eos:
        completion.append(tokenizer.eos_token_id)
    return Encoded(prompt + completion, [-100] * len(prompt) + completion)


def collate(rows: list[Encoded], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch to its own longest row; padding is masked and carries label -100."""
    import torch

    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, :n] = torch.tensor(row.input_ids)
        labels[i, :n] = torch.tensor(row.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_order(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """One epoch's batches: shuffled by ``seed``, then rows of similar length grouped (sorted within windows of 32
    batches) so padding to each batch's longest row wastes little; the batches themselves are shuffled too."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def subset(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most ``limit`` rows, keeping every skill represented (round-robin over skills)."""
    if not limit or len(rows) <= limit:
        return rows
    by_skill: dict[str, list[dict]] = {}
    for row in rows:
        by_skill.setdefault(row.get("skill", ""), []).append(row)
    picked: list[dict] = []
    while len(picked) < limit:
        for skill in sorted(by_skill):
            if by_skill[skill] and len(picked) < limit:
                picked.append(by_skill[skill].pop(0))
    random.Random(seed).shuffle(picked)
    return picked
