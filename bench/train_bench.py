"""Training speed: seconds per optimizer step and tokens per second of the default LoRA set-up on this CPU.

    .venv/bin/python bench/train_bench.py [--steps N] [--batch-size B] [--precision auto|float32|bfloat16]
                                          [--no-compile]

The step is `skillcall train`'s own (``finetune.train.train_step``: forward, backward, clipping, AdamW, the cosine
schedule) on the first epoch's rows as it prepares them (some addressed by name, some with a filler), batched as it
batches them, with the decoder layers compiled as it compiles them (the first step, which compiles them, is timed
apart). Reads the training split an earlier `skillcall dataset --out data` wrote (``--data``); the first run also
converts the bundled base into the cache (its peak memory then includes that). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import torch
from accelerate import Accelerator

from finetune.augment import epoch_rows
from finetune.base import load_base
from finetune.dataset import read_jsonl
from finetune.prompts import load_template
from finetune.train import (
    TrainOptions,
    batch_order,
    collate,
    compile_layers,
    encode_row,
    optimizer_and_schedule,
    pick_precision,
    train_step,
    with_lora,
)
from skills import load_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data", default="data/train.jsonl")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--no-compile", action="store_true", help="Time the uncompiled layers.")
    args = parser.parse_args()
    options = TrainOptions(batch_size=args.batch_size, precision=args.precision)
    precision = pick_precision(options.precision)
    model, tokenizer = load_base(dtype=precision)
    model = with_lora(model, options.lora)
    accelerator = Accelerator()
    compiled = 0 if args.no_compile else compile_layers(model, accelerator.device.type)
    template = load_template(options.template)
    written = read_jsonl(args.data, ("text", "call"))
    rows = [encode_row(tokenizer, template, "", r["text"], r["call"])
            for r in epoch_rows(written, options, 0, load_registry())]  # fmt: skip
    total = args.steps + 2
    optimizer, scheduler = optimizer_and_schedule(model, options, total, accelerator.device.type)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)  # as train() does
    model.train()
    batches = batch_order([len(r.input_ids) for r in rows], args.batch_size, 0)  # as `skillcall train` batches
    times, tokens, first = [], [], 0.0
    for step in range(total):
        batch = collate([rows[i] for i in batches[step % len(batches)]], tokenizer.pad_token_id)
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        started = time.perf_counter()
        train_step(model, batch, optimizer, scheduler, accelerator, precision)
        if step == 0:
            first = time.perf_counter() - started  # the compilation, where there is one
        if step >= 2:  # the first steps warm allocators up
            times.append(time.perf_counter() - started)
            tokens.append(int(batch["attention_mask"].sum()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {precision}, {compiled} layers compiled (first step {first:.1f} s)")
    print(f"rows: {len(rows)}, mean tokens per row {statistics.fmean(len(r.input_ids) for r in rows):.1f}")
    print(f"batch {args.batch_size}: {statistics.median(times):.2f} s per step (median of {len(times)}), "
          f"{sum(tokens) / sum(times):.0f} tokens/s, {1 / statistics.median(times):.2f} steps/s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
