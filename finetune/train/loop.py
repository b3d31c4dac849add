"""One router's training run: checked, set up (model, rows, schedule, checkpoint), the loop over its steps with
validation, the best checkpoint kept and the router written.

Runs unchanged on a laptop CPU and under ``accelerate launch`` on several GPUs (the loop goes through
``accelerate.Accelerator``); ``four_bit`` is QLoRA via bitsandbytes on CUDA.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skills import Registry

from ..augment import epoch_rows
from ..base import gguf_architecture, load_base, resolve_gguf
from ..dataset import read_jsonl
from ..prompts import load_template, skills_text
from ..replay import read_learnt, replayed, replayed_size
from .checkpoint import Progress, fingerprint, load_checkpoint, save_checkpoint
from .compute import autocast, compile_layers, pick_precision
from .encoding import Encoded, batch_order, collate, encode_row, subset
from .from_router import init_router
from .options import TrainError, TrainOptions, TrainResult, TrainStep
from .steps import evaluate_loss, optimizer_and_schedule, train_step, with_lora
from .writing import write_router

logger = logging.getLogger(__name__)


@dataclass
class Run:
    """One router's training, set up: its options (as the run reads them), model, rows and schedule, and how far
    it has got."""

    options: TrainOptions
    registry: Registry
    accelerator: Any
    model: Any
    tokenizer: Any
    precision: str
    compiled: int
    """Decoder layers compiled (``compile_layers``)."""
    base_file: str | None
    """The base's GGUF file name, if it has one."""
    export: bool
    """Whether the llama.cpp adapter is written (a llama-architecture GGUF base)."""
    in_sample: bool
    """Validation rows were trained on (here or by the router it starts from): the last checkpoint is kept."""
    template: Any
    skills: str
    train_rows: list[dict]
    learnt: set[str] | None
    """The rows the router it starts from learnt (``init``), if it lists them."""
    eval_set: list[Encoded]
    epoch_size: int
    replaying: bool
    steps_per_epoch: int = 0
    total_steps: int = 0
    eval_every: int = 0
    optimizer: Any = None
    scheduler: Any = None
    setup: dict[str, Any] = field(default_factory=dict)
    """The checkpoint's fingerprint."""
    progress: Progress = field(default_factory=Progress)
    started: float = field(default_factory=time.perf_counter)


def train_one(options: TrainOptions, registry: Registry, members: list[str] | None = None,
              on_step: Callable[[TrainStep], None] | None = None) -> TrainResult:  # fmt: skip
    """One router: train, keep the best checkpoint, write it to ``options.out`` (its card listing ``members``);
    ``on_step`` hears of each step."""
    _check(options)
    run = _set_up(options, registry)
    _loop(run, on_step)
    seconds = time.perf_counter() - run.started
    if not run.accelerator.is_main_process:
        return TrainResult(options.out, None, run.progress.history)
    card = write_router(run, seconds, members)
    return TrainResult(options.out, card, run.progress.history)


def _check(options: TrainOptions) -> None:
    """The train extra is installed, the splits are there, QLoRA has a GPU."""
    try:
        import torch
        import transformers  # noqa: F401  (the train extra, checked up front)
        from accelerate import Accelerator  # noqa: F401
        from peft import set_peft_model_state_dict  # noqa: F401
    except ImportError as exc:
        raise TrainError(f"training needs the train extra ({exc.name} is missing): pip install -e '.[train]'") from exc
    for split in ("train", "validation"):
        if not (options.data / f"{split}.jsonl").exists():
            raise TrainError(f"{options.data / f'{split}.jsonl'} is missing; run `skillcall dataset --out "
                             f"{options.data}` first")  # fmt: skip
    if options.four_bit and not torch.cuda.is_available():
        raise TrainError("--4bit (QLoRA) needs a CUDA GPU and bitsandbytes; train in full precision on a CPU")


def _set_up(options: TrainOptions, registry: Registry) -> Run:
    """The run's model (base, adapter, starting weights), rows, schedule and optimizer, resumed from the
    checkpoint with ``resume``."""
    import torch
    from accelerate import Accelerator
    from peft import set_peft_model_state_dict

    init_weights, init_card = init_router(options) if options.init else (None, None)
    # validation rows this router (or the one it starts from) trained on cannot pick a checkpoint: the last is kept
    in_sample = options.train_on_validation or bool(init_card and init_card.dataset.validation_in_training)
    gguf_base = resolve_gguf(options.base)
    export = options.export and gguf_base is not None and _llama_architecture(gguf_base)
    if options.export and not export:
        logger.warning("the base is not a llama-architecture GGUF (the bundled SmolLM2, Llama, Mistral): the llama.cpp "
                       "export is skipped; serve with the transformers router")  # fmt: skip
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    if options.threads:
        torch.set_num_threads(options.threads)
    accelerator = Accelerator(step_scheduler_with_optimizer=False)  # else it steps once per process: the schedule
    # counts global batches already
    started = time.perf_counter()
    precision = pick_precision(options.precision)
    model, tokenizer = _model(options, precision)
    if init_weights is not None:
        set_peft_model_state_dict(model, init_weights)
    compiled = compile_layers(model, accelerator.device.type) if options.compile else 0

    template = load_template(options.template)
    skills = skills_text(registry, options.skill_list)
    validation_rows = read_jsonl(options.data / "validation.jsonl", ("text", "call"))
    train_rows = read_jsonl(options.data / "train.jsonl", ("text", "call"))
    if options.train_on_validation:
        train_rows += validation_rows
    train_rows = subset(train_rows, options.max_train_rows, options.seed)
    learnt = read_learnt(options.init) if options.init else None
    if options.init and learnt is None and options.replay < 1:
        logger.warning("--init %s does not list the rows it learnt (trained before routers did): every row is "
                       "trained on", options.init)  # fmt: skip
        if "epochs" not in options.model_fields_set and not options.max_steps:
            options = options.model_copy(update={"epochs": 1.0})
    eval_rows = subset(validation_rows, options.max_eval_rows, options.seed)
    run = Run(options, registry, accelerator, model, tokenizer, precision, compiled,
              gguf_base.name if gguf_base else None, export, in_sample, template,
              skills, train_rows, learnt, [encode_row(tokenizer, template, skills, r["text"], r["call"]) for r in eval_rows],
              replayed_size(train_rows, learnt, options.replay), learnt is not None and options.replay < 1)  # fmt: skip
    run.started = started
    _schedule(run)
    _resume(run)
    return run


def _model(options: TrainOptions, precision: str) -> tuple[Any, Any]:
    """The base in ``precision`` (4 bits for QLoRA) with a fresh LoRA adapter, and its tokenizer."""
    quantization = None
    if options.four_bit:
        import torch
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    model, tokenizer = load_base(options.base, dtype=precision, quantization_config=quantization)
    if options.four_bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return with_lora(model, options.lora), tokenizer


def _schedule(run: Run) -> None:
    """Steps per epoch (global batches: under ``accelerate launch`` each process takes its share of one), the
    total, how often to validate; the optimizer and its schedule over them."""
    options = run.options
    global_batch = options.batch_size * run.accelerator.num_processes
    run.steps_per_epoch = math.ceil(run.epoch_size / global_batch)
    run.total_steps = options.max_steps or max(1, round(options.epochs * run.steps_per_epoch))
    validations = 2 if run.replaying else 4  # a retrain of minutes: validating costs as much
    run.eval_every = options.eval_every or max(1, math.ceil(run.total_steps / validations))
    optimizer, scheduler = optimizer_and_schedule(run.model, options, run.total_steps, run.accelerator.device.type)
    run.model, run.optimizer, run.scheduler = run.accelerator.prepare(run.model, optimizer, scheduler)


def _resume(run: Run) -> None:
    """The run's fingerprint; with ``resume``, the checkpoint's weights and progress where it matches."""
    run.setup = fingerprint(run.options, run.precision, run.replaying)
    if not run.options.resume:
        return
    resumed = load_checkpoint(run.options.out / "checkpoint", run.setup, run.optimizer, run.scheduler,
                              run.total_steps)  # fmt: skip
    if resumed is not None:
        from peft import set_peft_model_state_dict

        run.progress, adapter = resumed
        set_peft_model_state_dict(run.accelerator.unwrap_model(run.model), adapter)


def _loop(run: Run, report: Callable[[TrainStep], None] | None) -> None:
    """The steps from where the run is to ``total_steps``, validating every ``eval_every`` and at the end; each
    step ``report``ed (by the main process)."""
    options, accelerator, progress = run.options, run.accelerator, run.progress
    shards = accelerator.num_processes
    report = report if accelerator.is_main_process else None
    run.model.train()
    batches_epoch, batches, train_set = -1, [], []
    while progress.step < run.total_steps:
        epoch, index = divmod(progress.step, run.steps_per_epoch)
        if epoch != batches_epoch:  # the same rows and batches on resume: a function of seed and epoch
            train_set = _epoch_set(run, epoch, train_set if batches_epoch >= 0 else None)
            lengths = [len(row.input_ids) for row in train_set]
            batches_epoch = epoch
            batches = batch_order(lengths, options.batch_size * shards, options.seed * 1000 + epoch)
        share = batches[index][accelerator.process_index :: shards] or \
            [batches[index][accelerator.process_index % len(batches[index])]]  # a last batch smaller than the shards
        batch = {k: v.to(accelerator.device) for k, v in collate([train_set[i] for i in share],
                                                                  run.tokenizer.pad_token_id).items()}  # fmt: skip
        value = train_step(run.model, batch, run.optimizer, run.scheduler, accelerator, run.precision)
        progress.step += 1
        progress.history.append({"step": progress.step, "train_loss": value})
        metrics = {}
        if progress.step % run.eval_every == 0 or progress.step == run.total_steps:
            metrics = _validate(run)
            if accelerator.is_main_process:
                save_checkpoint(options.out / "checkpoint", progress, _adapter_state(run), run.optimizer,
                                run.scheduler, run.total_steps, run.setup)  # fmt: skip
        if report is not None:
            report(TrainStep(options.out, progress.step, run.total_steps, value, metrics.get("loss"),
                             metrics.get("call_accuracy")))  # fmt: skip


def _epoch_set(run: Run, epoch: int, encoded: list[Encoded] | None) -> list[Encoded]:
    """An epoch's rows, encoded: the rows ``replay`` picks, varied as people say them (``epoch_rows``); the rows
    as written are encoded once (``encoded``, the last epoch's, when it had them)."""
    options = run.options
    rows = epoch_rows(replayed(run.train_rows, run.learnt, options.replay, options.seed, epoch), options, epoch,
                      run.registry)  # fmt: skip
    if rows is run.train_rows and encoded is not None:
        return encoded
    return [encode_row(run.tokenizer, run.template, run.skills, r["text"], r["call"]) for r in rows]


def _validate(run: Run) -> dict[str, float]:
    """Validate at this step, keep the weights where they are the best so far (the last, ``in_sample``); the
    validation's loss and call accuracy."""
    progress, accelerator = run.progress, run.accelerator
    with autocast(run.model, accelerator.device.type, run.precision):
        metrics = evaluate_loss(accelerator.unwrap_model(run.model), run.eval_set, run.tokenizer.pad_token_id)
    progress.history[-1].update({"validation_loss": metrics["loss"],
                                 "validation_call_accuracy": metrics["call_accuracy"]})  # fmt: skip
    logger.info("step %d: validation loss %.4f, call accuracy %.3f", progress.step, metrics["loss"],
                metrics["call_accuracy"])  # fmt: skip
    better = (metrics["call_accuracy"], -metrics["loss"]) > (progress.best["call_accuracy"], -progress.best["loss"])
    if run.in_sample or better:
        progress.best = {**metrics, "step": progress.step}
        progress.best_state = {k: v.detach().clone() for k, v in _adapter_state(run).items()}
    return metrics


def _adapter_state(run: Run) -> dict[str, Any]:
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(run.accelerator.unwrap_model(run.model))


def _llama_architecture(gguf_file: Path) -> bool:
    """Whether the GGUF is a llama-architecture model: the export permutes q/k as llama.cpp stores them for it."""
    try:
        return gguf_architecture(gguf_file) == "llama"
    except (OSError, ValueError) as exc:
        raise TrainError(f"{gguf_file} is not a readable GGUF ({type(exc).__name__}: {exc})") from None
