"""``skillcall train``: LoRA fine-tuning of the router, loss on the call tokens only, then export for llama.cpp.

Runs unchanged on a laptop CPU and under ``accelerate launch`` on several GPUs (the loop goes through
``accelerate.Accelerator``); ``four_bit`` is QLoRA via bitsandbytes on CUDA.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from skills import Registry, SkillcallError

from .augment import epoch_rows
from .base import DEFAULT_BASE, gguf_architecture, load_base, resolve_gguf
from .card import (
    ADAPTER_DIR,
    ADAPTER_GGUF,
    LOSS_PNG,
    MEMBERS_DIR,
    ROUTER_CARD,
    ROUTER_DIR,
    CardDataset,
    CardFiles,
    CardLora,
    CardMetrics,
    CardTraining,
    RouterCard,
    load_card,
    write_card,
)
from .dataset import CARD, read_jsonl
from .drafting import skill_words, span_starts
from .prompts import DEFAULT_TEMPLATE, SkillList, load_template, skills_text
from .replay import learnt_keys, read_learnt, replayed, replayed_size, unlearnt, write_learnt

logger = logging.getLogger(__name__)



class TrainError(SkillcallError):
    """Training cannot start or continue."""


class LoraOptions(BaseModel):
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input. 0 by default: on a CPU, "
                           "drawing the masks costs a third of a step, time better spent on more epochs.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Linear layers that get an adapter (llama names).",
    )


class TrainOptions(BaseModel):
    """Everything ``train`` needs; validated up front. Defaults fit a laptop CPU and the bundled SmolLM2-135M."""

    base: str = Field(DEFAULT_BASE, description="Base model: the bundled GGUF, a .gguf path, or an HF model dir/name.")
    data: Path = Field(Path("data"), description="Folder with train.jsonl and validation.jsonl (skillcall dataset).")
    out: Path = Field(ROUTER_DIR, description="Folder the router is written to.")
    template: str = Field(DEFAULT_TEMPLATE, description="Prompt template family (prompts/<name>.toml) or a .toml path.")
    skill_list: SkillList = Field("none", description="Skill list in the prompt: none, names or full.")
    epochs: float = Field(3.5, gt=0, description="Passes over the training rows (fractions allowed); 2 (over the "
                          "rows ``replay`` picks) unless given when starting from another router (``init``).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(8, ge=1, description="Rows per step; each batch is padded to its own longest row.")
    learning_rate: float = Field(1.5e-3, gt=0, description="Peak learning rate (cosine schedule after warm-up); "
                                 "1.5e-4 unless given when starting from another router (``init``).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0)
    eval_every: int | None = Field(None, ge=1, description="Steps between validations; None = four per run (two "
                                   "for a retrain that replays a share of the rows: each costs a minute here).")
    max_train_rows: int | None = Field(None, ge=1, description="Use only this many training rows (smoke tests).")
    train_on_validation: bool = Field(False, description="Train on the validation rows too, for a final router: "
                                      "more rows to learn from, while the test split stays held out for "
                                      "`skillcall eval` (``max_train_rows`` then draws from both). Validation then "
                                      "measures rows the router has seen, so it no longer picks a checkpoint: the "
                                      "last one is kept, and the card says so (as it does for a run started with "
                                      "``init`` from such a router).")  # fmt: skip
    max_eval_rows: int | None = Field(None, ge=1, description="Validate on only this many rows.")
    seed: int = Field(0, description="Seeds data order, LoRA init, addressing and dropout.")
    threads: int | None = Field(None, ge=1, description="CPU threads for PyTorch; None = all cores.")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Arithmetic of the frozen base model. bfloat16 runs a CPU step ≈1.3× faster where the "
        "CPU multiplies bfloat16 in hardware (AMX, AVX512-BF16); the adapter and the optimizer stay float32 either "
        "way. auto = bfloat16 on a GPU, or on a CPU that multiplies bfloat16 at least 1.5× faster than float32 "
        "(timed at start), else float32.")  # fmt: skip
    compile: bool = Field(True, description="Compile the decoder layers with torch.compile; they share the "
                          "compiled code, for every batch shape (≈40 s on a 2-vCPU laptop the first time, cached "
                          "after): a CPU step ≈1.3× faster. Where compilation fails (no C++ compiler), training runs "
                          "uncompiled.")  # fmt: skip
    resume: bool = Field(False, description="Continue from out/checkpoint if it is there.")
    init: Path | None = Field(None, description="Start from this router's adapter (a folder `skillcall train` wrote, "
                              "e.g. the shipped router/) instead of fresh LoRA weights: after adding a skill or "
                              "examples, a retrain keeps what that router learnt and needs fewer epochs. Its base, "
                              "template and LoRA rank must be this run's.")  # fmt: skip
    replay: float = Field(0.25, gt=0, le=1, description="Starting from a router that lists the rows it learnt "
                          "(``init``; finetune/replay.py), each epoch trains on every row it has not learnt (a new "
                          "skill's, corrections, rows added) and this share of the others, drawn afresh each epoch: "
                          "a retrain in minutes that keeps what the router knew. 1 = every row, every epoch. "
                          "Without ``init`` every row is new.")  # fmt: skip
    four_bit: bool = Field(False, description="QLoRA: load the base in 4 bits (bitsandbytes, CUDA only).")
    export: bool = Field(True, description="Write the llama.cpp adapter GGUF (needs a GGUF base).")
    progress: bool = Field(False, description="Show a progress bar.")
    wake: str | None = Field("Otto", description="The assistant's name (the wake phrase). Each epoch some rows are "
                             "said to it or to another assistant (\"Otto, ...\", \"Alexa, ...\": the same call) or "
                             "to someone else (\"Mom, ...\": other()), so the router learns whom a request is for; "
                             "None = rows as written.")  # fmt: skip
    address_share: float = Field(0.2, ge=0, le=1, description="Share of training rows varied that way per epoch.")
    filler_share: float = Field(0.15, ge=0, le=1, description="Share of training rows given a filler in front per "
                                "epoch (\"Um, …\", \"So uh …\"): the same call, so hesitation does not read as other().")
    numbers_share: float = Field(0.15, ge=0, le=1, description="Share of training rows whose numbers are said the "
                                 "other way per epoch (\"5 minutes\" <-> \"five minutes\"), spans alike.")
    plain_share: float = Field(0.25, ge=0, le=1, description="Share of training rows typed plainly per epoch: lower "
                               "case, no punctuation, sometimes no apostrophes, as people type to an assistant and "
                               "as a transcript without punctuation reads; spans alike.")  # fmt: skip
    members: int = Field(1, ge=1, description="Routers to train, seeded ``seed``, ``seed + 1``, …: the first is "
                         "written to ``out``, the others to ``out/members/2/``, …, and the router consults them on "
                         "the skill where its own choice is not clear (``router.consult_margin``). Each costs a "
                         "whole training run; three made the shipped router. With ``init``, each starts from the "
                         "matching router of that ensemble.")  # fmt: skip
    lora: LoraOptions = Field(default_factory=LoraOptions)

    @model_validator(mode="after")
    def _from_a_router(self) -> TrainOptions:
        """Starting from a trained router, two gentle passes over what ``replay`` picks: fresh weights' 3.5 epochs
        at 1.5e-3 would cost the time ``init`` saves and move the router as far as training from scratch does (at
        3e-4 a retrain of twenty corrections lost 11 of 108 compound test rows; at 1.5e-4, one: docs/training.md)."""
        if self.init is not None:  # through __dict__: the fields stay unset, as the user left them
            if "epochs" not in self.model_fields_set:
                self.__dict__["epochs"] = 2.0
            if "learning_rate" not in self.model_fields_set:
                self.__dict__["learning_rate"] = 1.5e-4
        return self


@dataclass
class TrainResult:
    out: Path
    card: RouterCard | None
    """None in the other processes under `accelerate launch`: the main one writes the router."""
    history: list[dict[str, float]] = field(default_factory=list)
    members: list[TrainResult] = field(default_factory=list)
    """The other routers of an ensemble (``TrainOptions.members``), each as written to its folder."""


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


def call_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(logits, targets, rows) for the call tokens only, one row of logits per label. The vocabulary projection
    (a fifth of the compute of a 135M model) runs only from the batch's first label on, and on positions given
    as a tensor: an ``int`` ``logits_to_keep`` slices the hidden states as a strided view, which makes the 49k-row
    head several times slower on a CPU. ``rows`` says which sequence each label belongs to."""
    import torch

    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    mask = labels != -100
    first = int(mask.any(dim=0).int().argmax())  # the earliest position that predicts a label
    keep = torch.arange(first, labels.size(1), device=labels.device)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep,
                   use_cache=False).logits  # training reads no KV cache: none is built
    if logits.size(1) != len(keep):  # a model without logits_to_keep returns every position
        logits = logits[:, first:-1]
    mask = mask[:, first:]
    return logits[mask], labels[:, first:][mask], mask.nonzero()[:, 0]


def pick_precision(choice: str) -> str:
    """``choice``, or for "auto" what suits this machine (see ``TrainOptions.precision``)."""
    import torch

    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bfloat16"

    def fastest(x: Any, y: Any) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - started)
        return min(times)

    a, w = torch.randn(256, 576), torch.randn(576, 1536)  # a training step's shapes for the default base
    speedup = fastest(a, w) / fastest(a.bfloat16(), w.bfloat16())
    return "bfloat16" if speedup >= 1.5 else "float32"


@contextmanager
def autocast(model: Any, device_type: str, precision: str) -> Iterator[None]:
    """The context a forward pass of ``model`` runs in: bfloat16 autocast, or nothing for float32. Under autocast,
    peft's cast of each LoRA layer's input to the adapter's float32 is turned off: autocast casts it straight back
    to bfloat16 for the matrix product, so it only cost time (a step 6 % faster here, the loss bit-identical)."""
    import torch
    from peft.helpers import disable_input_dtype_casting

    low = precision == "bfloat16"
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=low), disable_input_dtype_casting(model, low):
        yield


PLAIN_HEADS = ("llama", "mistral", "qwen2", "qwen3")
"""Model types whose logits are exactly the output embedding applied to the decoder's last hidden state."""


def call_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over the call tokens of a batch. For a decoder with a plain, frozen head (``PLAIN_HEADS``)
    the hidden states of the call tokens are picked first and the vocabulary projection and the loss are computed
    together in chunks (``head_loss``), so the batch's 49k-wide logits and their gradient never exist whole (with the
    fused AdamW, a CPU step ≈6 % faster). Any other model goes through its own forward: one wrapped for several
    processes (DDP) or for accelerate's mixed precision (its forward wrapped), a head with an adapter, a bias or
    trainable weights."""
    import torch

    base = unwrapped(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    plain = getattr(getattr(base, "config", None), "model_type", None) in PLAIN_HEADS
    plain = plain and type(head) is torch.nn.Linear and head.bias is None and not hasattr(model, "_original_forward")
    if not plain or any(p.requires_grad for p in head.parameters()):
        return forward_loss(model, batch)
    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    mask = labels != -100
    hidden = base.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                use_cache=False).last_hidden_state  # fmt: skip
    return head_loss(hidden[:, :-1][mask], head.weight, labels[mask])


def forward_loss(model: Any, batch: dict[str, Any]) -> Any:
    """``call_loss`` through the model's own forward (``call_logits``): any model, any head."""
    import torch

    logits, targets, _ = call_logits(model, batch)
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def unwrapped(model: Any) -> Any:
    """The transformers model inside peft's wrapper, or ``model`` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def head_loss(hidden: Any, weight: Any, targets: Any, chunk: int = 128) -> Any:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` (in float32, as ``call_logits`` gives them) against
    ``targets``, ``chunk`` rows at a time; the gradient for ``hidden`` is computed in the same pass (``weight`` is
    frozen), so the backward pass only scales it; without gradients (``torch.no_grad``) it is not computed."""
    import torch

    return _head_loss_function().apply(hidden, weight, targets, chunk, torch.is_grad_enabled() and hidden.requires_grad)


@functools.cache
def _head_loss_function() -> Any:
    import torch

    class HeadLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, targets: Any, chunk: int, with_grad: bool) -> Any:
            count = max(len(targets), 1)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad = torch.zeros_like(hidden) if with_grad else None
            for start in range(0, len(targets), chunk):
                logits = hidden[start : start + chunk] @ weight.T  # bfloat16 under autocast, as the head's
                picked = targets[start : start + chunk, None]
                logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
                total -= logp.gather(1, picked).sum()
                if grad is not None:  # d loss / d logits = (softmax - one-hot) / count
                    probs = logp.exp_().scatter_add_(1, picked, torch.full_like(picked, -1, dtype=logp.dtype))
                    grad[start : start + chunk] = (probs.to(weight.dtype) @ weight).div_(count)
            ctx.save_for_backward(grad)
            return total / count

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> tuple:
            (grad,) = ctx.saved_tensors
            return grad * grad_output, None, None, None, None

    return HeadLoss


def compile_layers(model: Any, device_type: str) -> int:
    """Compile ``model``'s repeated blocks (its decoder layers: the classes in ``_no_split_modules``) in place with
    ``torch.compile``: layers of one class share their compiled code (two compilations for a LoRA model: the first
    layer, whose input carries no gradient, and the others) and, being dynamic, every batch shape. The parameters'
    names do not change, so the adapter saves as before. On a CPU the compiled kernels need a C++ compiler; without
    one the layers stay as they are, with a warning. Compilation happens at the first call; in ``train_step`` and
    ``evaluate_loss`` a failure falls back to the uncompiled layers (``uncompiled_on_failure``). How many blocks
    were compiled."""
    if device_type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        except Exception as exc:  # InvalidCxxCompiler, or a PyTorch whose compiler lookup moved
            logger.warning("training runs uncompiled, about 1.3x slower: torch.compile needs a C++ compiler (%s); "
                           "install one (Debian: build-essential) or set CXX", type(exc).__name__)  # fmt: skip
            return 0
    kinds = set(getattr(unwrapped(model), "_no_split_modules", None) or ())
    blocks = [module for module in model.modules() if type(module).__name__ in kinds]
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


@contextmanager
def uncompiled_on_failure() -> Iterator[None]:
    """Where compiled layers (``compile_layers``) fail to compile, dynamo runs them uncompiled, with its warning
    (``suppress_errors``); the backward pass is compiled with the forward pass, so that this covers it too (else
    it compiles, and fails, inside ``backward()``)."""
    import torch

    with torch._dynamo.config.patch(suppress_errors=True), \
            torch._functorch.config.patch(force_non_lazy_backward_lowering=True):  # fmt: skip
        yield


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


def with_lora(model: Any, lora: LoraOptions) -> Any:
    """``model`` with a fresh LoRA adapter as ``lora`` describes it (peft)."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                            target_modules=lora.target_modules, task_type="CAUSAL_LM"))  # fmt: skip


def optimizer_and_schedule(model: Any, options: TrainOptions, total_steps: int, device_type: str = "cpu") -> tuple:
    """AdamW over the adapter's weights (one fused kernel for all of them on a CPU or CUDA ``device_type``), and its
    cosine schedule with warm-up over ``total_steps``."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=options.learning_rate,
                                  weight_decay=options.weight_decay,
                                  fused=True if device_type in ("cpu", "cuda") else None)  # fmt: skip
    return optimizer, get_cosine_schedule_with_warmup(optimizer, round(options.warmup_ratio * total_steps), total_steps)


def train_step(model: Any, batch: dict[str, Any], optimizer: Any, scheduler: Any, accelerator: Any,
               precision: str) -> float:
    """One optimizer step on a batch (forward, backward, clipping at norm 1, the schedule); the batch's loss."""
    with uncompiled_on_failure():
        with autocast(model, accelerator.device.type, precision):
            loss = call_loss(model, batch)
        accelerator.backward(loss)
    accelerator.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return loss.item()


def evaluate_loss(model: Any, rows: list[Encoded], pad_id: int, batch_size: int = 16) -> dict[str, float]:
    """Validation loss per call token and teacher-forced call accuracy: the share of rows whose every call token
    is the model's argmax, which is exactly whether unconstrained greedy decoding would write the call."""
    import torch

    model.eval()
    total_loss, total_tokens, exact = 0.0, 0, 0
    with torch.no_grad(), uncompiled_on_failure():
        for start in range(0, len(rows), batch_size):
            batch = collate(rows[start : start + batch_size], pad_id)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            logits, targets, owners = call_logits(model, batch)
            total_loss += torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
            total_tokens += len(targets)
            wrong = torch.zeros(len(batch["labels"]), dtype=torch.long).index_add_(
                0, owners.cpu(), (logits.argmax(-1) != targets).long().cpu())
            exact += int((wrong == 0).sum())
    model.train()
    return {"loss": total_loss / max(total_tokens, 1), "call_accuracy": exact / max(len(rows), 1)}


def _subset(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
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


def _init_router(options: TrainOptions) -> tuple[dict[str, Any], RouterCard]:
    """The adapter weights and card of the router ``options.init`` names, checked against this run's base, template
    and LoRA."""
    from peft.utils import load_peft_weights

    card = _init_card(options.init)
    lora = options.lora.model_dump(include={"r", "alpha", "target_modules"})
    theirs = card.recipe_differences(options.base, options.template, lora)
    if theirs:
        raise TrainError(f"--init {options.init} was trained with another {', '.join(theirs)} "
                         f"({', '.join(f'{k}={v}' for k, v in theirs.items())}); train without --init")  # fmt: skip
    return load_peft_weights(str(options.init / ADAPTER_DIR), device="cpu"), card


def _init_card(init: Path) -> RouterCard:
    """The card of a router folder named by ``--init`` (or of one of its ensemble's routers)."""
    card_path = init / ROUTER_CARD
    if not card_path.is_file() or not (init / ADAPTER_DIR).is_dir():
        raise TrainError(f"--init {init}: not a router folder (it needs {ROUTER_CARD} and {ADAPTER_DIR}/); name "
                         "one `skillcall train` wrote, such as the shipped router/")  # fmt: skip
    try:
        card = load_card(init)
    except (OSError, ValueError) as exc:
        raise TrainError(f"--init {init}: {ROUTER_CARD} is unreadable ({exc}); name another router, or "
                         "train without --init") from None  # fmt: skip
    return card


def _llama_architecture(gguf_file: Path) -> bool:
    """Whether the GGUF is a llama-architecture model: the export permutes q/k as llama.cpp stores them for it."""
    try:
        return gguf_architecture(gguf_file) == "llama"
    except (OSError, ValueError) as exc:
        raise TrainError(f"{gguf_file} is not a readable GGUF ({type(exc).__name__}: {exc})") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(options: TrainOptions, registry: Registry) -> TrainResult:
    """The front door: train each router of the ensemble (one by default; the others first, so that the first
    router's card, written last, lists them only once they are there), keep each one's best checkpoint (validation
    call accuracy, then loss; the last one when the validation rows were trained on), write the router."""
    inits = _member_inits(options)  # every starting folder checked before anything is trained
    folders = [f"{MEMBERS_DIR}/{k + 1}" for k in range(1, options.members)]
    members = [_train_one(options.model_copy(update={"members": 1, "seed": options.seed + k, "init": inits[k],
                                                     "out": options.out / folder}), registry)
               for k, folder in enumerate(folders, start=1)]  # fmt: skip
    result = _train_one(options.model_copy(update={"members": 1}), registry, folders)
    result.members = members
    if result.card:  # not another process under `accelerate launch`
        _prune_members(options.out, folders)
    return result


def _member_inits(options: TrainOptions) -> list[Path | None]:
    """Where each router starts: fresh weights, or with ``init`` the router in the same place of that ensemble."""
    if options.init is None:
        return [None] * options.members
    card = _init_card(options.init)
    try:
        theirs = card.member_folders()
    except ValueError as exc:
        raise TrainError(f"--init {options.init}: {ROUTER_CARD} is unreadable ({exc}); name another router, or "
                         "train without --init") from None  # fmt: skip
    if options.members > 1 + len(theirs):
        raise TrainError(f"--init {options.init} is an ensemble of {1 + len(theirs)}; train at most that many "
                         "--members from it, or more without --init")  # fmt: skip
    inits = [options.init, *(options.init / folder for folder in theirs)][: options.members]
    for folder in inits[1:]:
        _init_card(folder)
    return inits


def _prune_members(out: Path, keep: list[str]) -> None:
    """Remove the routers of an earlier ensemble written to ``out`` that this one does not list: they would not
    match it (a skill added since). Only router folders go; anything else there stays."""
    folder = out / MEMBERS_DIR
    if not folder.is_dir():
        return
    for old in folder.iterdir():
        if old.is_dir() and (old / ROUTER_CARD).is_file() and f"{MEMBERS_DIR}/{old.name}" not in keep:
            shutil.rmtree(old)
    if not keep and not any(folder.iterdir()):
        folder.rmdir()


def _train_one(options: TrainOptions, registry: Registry, members: list[str] | None = None) -> TrainResult:
    """One router: train, keep the best checkpoint, write it to ``options.out`` (its card listing ``members``)."""
    try:
        import torch
        import transformers  # noqa: F401  (the train extra, checked up front)
        from accelerate import Accelerator
        from peft import set_peft_model_state_dict
        from peft.utils import get_peft_model_state_dict
    except ImportError as exc:
        raise TrainError(f"training needs the train extra ({exc.name} is missing): pip install -e '.[train]'") from exc

    for split in ("train", "validation"):
        if not (options.data / f"{split}.jsonl").exists():
            raise TrainError(f"{options.data / f'{split}.jsonl'} is missing; run `skillcall dataset --out "
                             f"{options.data}` first")  # fmt: skip
    if options.four_bit and not torch.cuda.is_available():
        raise TrainError("--4bit (QLoRA) needs a CUDA GPU and bitsandbytes; train in full precision on a CPU")
    init_weights, init_card = _init_router(options) if options.init else (None, None)
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

    quantization = None
    if options.four_bit:
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                          bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
    precision = pick_precision(options.precision)
    model, tokenizer = load_base(options.base, dtype=precision, quantization_config=quantization)
    if options.four_bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    model = with_lora(model, options.lora)
    if init_weights is not None:
        set_peft_model_state_dict(model, init_weights)
    compiled = compile_layers(model, accelerator.device.type) if options.compile else 0

    template = load_template(options.template)
    skills = skills_text(registry, options.skill_list)
    validation_rows = read_jsonl(options.data / "validation.jsonl", ("text", "call"))
    train_rows = read_jsonl(options.data / "train.jsonl", ("text", "call"))
    if options.train_on_validation:
        train_rows += validation_rows
    train_rows = _subset(train_rows, options.max_train_rows, options.seed)
    learnt = read_learnt(options.init) if options.init else None
    if options.init and learnt is None and options.replay < 1:
        logger.warning("--init %s does not list the rows it learnt (trained before routers did): every row is "
                       "trained on", options.init)  # fmt: skip
        if "epochs" not in options.model_fields_set and not options.max_steps:
            options = options.model_copy(update={"epochs": 1.0})
    epoch_size = replayed_size(train_rows, learnt, options.replay)
    replaying = learnt is not None and options.replay < 1
    eval_rows = _subset(validation_rows, options.max_eval_rows, options.seed)
    eval_set = [encode_row(tokenizer, template, skills, r["text"], r["call"]) for r in eval_rows]
    pad_id = tokenizer.pad_token_id
    shards = accelerator.num_processes  # under `accelerate launch`, each process takes its share of a batch
    global_batch = options.batch_size * shards
    steps_per_epoch = math.ceil(epoch_size / global_batch)
    total_steps = options.max_steps or max(1, round(options.epochs * steps_per_epoch))
    validations = 2 if replaying else 4  # a retrain of minutes: validating costs as much
    eval_every = options.eval_every or max(1, math.ceil(total_steps / validations))

    optimizer, scheduler = optimizer_and_schedule(model, options, total_steps, accelerator.device.type)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    out = options.out
    checkpoint = out / "checkpoint"
    history: list[dict[str, float]] = []
    step, best = 0, {"call_accuracy": -1.0, "loss": math.inf, "step": 0}
    best_state: dict[str, Any] | None = None
    setup = {"base": options.base, "template": options.template, "skill_list": options.skill_list,
             "batch_size": options.batch_size, "seed": options.seed, "lora": options.lora.model_dump(),
             "data": _sha256(options.data / "train.jsonl"), "max_train_rows": options.max_train_rows,
             "batching": "length-grouped", "wake": options.wake, "address_share": options.address_share,
             "filler_share": options.filler_share, "numbers_share": options.numbers_share,
             "plain_share": options.plain_share, "init": str(options.init) if options.init else None,
             "learning_rate": options.learning_rate, "warmup_ratio": options.warmup_ratio,
             "weight_decay": options.weight_decay, "precision": precision, "max_eval_rows": options.max_eval_rows,
             "validation": _sha256(options.data / "validation.jsonl")}  # fmt: skip
    if options.train_on_validation:  # only then, so that checkpoints of earlier releases (no such key) resume
        setup["train_on_validation"] = True
    if replaying:
        setup["replay"] = options.replay
    if options.resume and (checkpoint / "state.json").exists():
        state = json.loads((checkpoint / "state.json").read_text())
        started_with = state.get("setup", {})
        changed = [key for key in [*setup, *(k for k in started_with if k not in setup)]
                   if started_with.get(key) != setup.get(key)]  # fmt: skip
        if changed:
            raise TrainError(f"{checkpoint} was started with another {', '.join(changed)}; train from scratch "
                             "without --resume (or delete the checkpoint)")  # fmt: skip
        set_peft_model_state_dict(accelerator.unwrap_model(model), torch.load(checkpoint / "adapter.pt"))
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt"))
        scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt"))
        step, best, history = state["step"], state["best"], state["history"]
        if (checkpoint / "best.pt").exists():
            best_state = torch.load(checkpoint / "best.pt")
        logger.warning("resuming at step %d of %d", step, total_steps)

    def save_checkpoint() -> None:
        if not accelerator.is_main_process:
            return
        checkpoint.mkdir(parents=True, exist_ok=True)
        torch.save(get_peft_model_state_dict(accelerator.unwrap_model(model)), checkpoint / "adapter.pt")
        torch.save(optimizer.state_dict(), checkpoint / "optimizer.pt")
        torch.save(scheduler.state_dict(), checkpoint / "scheduler.pt")
        if best_state is not None:
            torch.save(best_state, checkpoint / "best.pt")
        state = {"step": step, "best": best, "history": history, "total_steps": total_steps, "setup": setup}
        (checkpoint / "state.json").write_text(json.dumps(state))

    bar = None
    if options.progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, unit="step", desc="train")
    model.train()
    running = None
    batches_epoch, batches = -1, []
    while step < total_steps:
        epoch, index = divmod(step, steps_per_epoch)
        if epoch != batches_epoch:  # the same rows and batches on resume: a function of seed and epoch
            rows = epoch_rows(replayed(train_rows, learnt, options.replay, options.seed, epoch), options, epoch,
                              registry)  # fmt: skip
            if rows is not train_rows or batches_epoch < 0:  # rows as written are encoded once
                train_set = [encode_row(tokenizer, template, skills, r["text"], r["call"]) for r in rows]
            lengths = [len(row.input_ids) for row in train_set]
            batches_epoch, batches = epoch, batch_order(lengths, global_batch, options.seed * 1000 + epoch)
        share = batches[index][accelerator.process_index :: shards] or \
            [batches[index][accelerator.process_index % len(batches[index])]]  # a last batch smaller than the shards
        batch_rows = [train_set[i] for i in share]
        batch = {k: v.to(accelerator.device) for k, v in collate(batch_rows, pad_id).items()}
        value = train_step(model, batch, optimizer, scheduler, accelerator, precision)
        step += 1
        running = value if running is None else 0.9 * running + 0.1 * value
        history.append({"step": step, "train_loss": value})
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}")
        if step % eval_every == 0 or step == total_steps:
            with autocast(model, accelerator.device.type, precision):
                metrics = evaluate_loss(accelerator.unwrap_model(model), eval_set, pad_id)
            history[-1].update({"validation_loss": metrics["loss"], "validation_call_accuracy": metrics["call_accuracy"]})
            logger.info("step %d: validation loss %.4f, call accuracy %.3f", step, metrics["loss"],
                        metrics["call_accuracy"])  # fmt: skip
            if bar:
                bar.write(f"step {step}: validation loss {metrics['loss']:.4f}, "
                          f"call accuracy {metrics['call_accuracy']:.3f}")  # fmt: skip
            better = (metrics["call_accuracy"], -metrics["loss"]) > (best["call_accuracy"], -best["loss"])
            if in_sample or better:
                best = {**metrics, "step": step}
                best_state = {k: v.detach().clone() for k, v in
                              get_peft_model_state_dict(accelerator.unwrap_model(model)).items()}  # fmt: skip
            save_checkpoint()
    if bar:
        bar.close()
    seconds = time.perf_counter() - started
    if not accelerator.is_main_process:
        return TrainResult(out, None, history)

    final = accelerator.unwrap_model(model)
    if best_state is not None:
        set_peft_model_state_dict(final, best_state)
    out.mkdir(parents=True, exist_ok=True)
    for parameter in final.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.half()  # a 3.7 MB adapter instead of 7.4; fp16 keeps the deltas
    final.save_pretrained(out / ADAPTER_DIR)
    (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    if export:
        from .export import write_adapter_gguf

        config = final.base_model.model.config
        write_adapter_gguf(get_peft_model_state_dict(final), options.lora.alpha, config.num_attention_heads,
                           config.num_key_value_heads, out / ADAPTER_GGUF)  # fmt: skip
    dataset_card = json.loads((options.data / CARD).read_text()) if (options.data / CARD).exists() else {}
    card = RouterCard(
        base=options.base,
        base_file=gguf_base.name if gguf_base else None,
        template=options.template,
        skill_list=options.skill_list,
        skills={s.name: s.signature for s in registry},
        examples_fingerprint=dataset_card.get("examples_fingerprint"),
        dataset=CardDataset(train_rows=len(train_rows), validation_rows=len(eval_set),
                            validation_in_training=in_sample, train_sha256=setup["data"],
                            seed=dataset_card.get("seed"), compound=dataset_card.get("compound", 0.0)),
        span_starts=span_starts(train_rows, registry),
        skill_words=skill_words(train_rows),
        addressing={"wake": options.wake, "share": options.address_share, "filler_share": options.filler_share,
                    "numbers_share": options.numbers_share, "plain_share": options.plain_share},
        lora=CardLora(**options.lora.model_dump()),
        training=CardTraining(
            steps=step, epochs=round(step / steps_per_epoch, 3), processes=shards, rows_per_epoch=epoch_size,
            replay=options.replay if replaying else 1.0, new_rows=len(unlearnt(train_rows, learnt)),
            batch_size=options.batch_size, learning_rate=options.learning_rate, seconds=round(seconds, 1),
            seconds_per_step=round(seconds / max(step, 1), 3), threads=torch.get_num_threads(),
            device=device_name(accelerator.device), precision=precision, compiled_layers=compiled, seed=options.seed,
            init=setup["init"]),
        metrics=CardMetrics(best_step=best["step"], validation_loss=round(best["loss"], 5),
                            validation_call_accuracy=round(best["call_accuracy"], 4)),
        files=CardFiles(adapter=ADAPTER_DIR, gguf=ADAPTER_GGUF if export else None),
        **({"members": members} if members else {}),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip
    write_card(out, card)
    write_learnt(out, learnt_keys(train_rows))
    plot_history(history, out / LOSS_PNG)
    return TrainResult(out, card, history)


def device_name(device: Any) -> str:
    """What the card records as the training device: "cpu", or the GPU's name ("cuda: NVIDIA H100 80GB HBM3")."""
    import torch

    return f"{device.type}: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Training loss per step and validation loss/accuracy at each validation, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    axis.plot([h["step"] for h in history], [h["train_loss"] for h in history], lw=0.8, alpha=0.6, label="train loss")
    evals = [h for h in history if "validation_loss" in h]
    axis.plot([h["step"] for h in evals], [h["validation_loss"] for h in evals], "o-", label="validation loss")
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss per call token")
    accuracy = axis.twinx()
    accuracy.plot([h["step"] for h in evals], [h["validation_call_accuracy"] for h in evals], "s--", color="green",
                  label="validation call accuracy")  # fmt: skip
    accuracy.set_ylim(0, 1)
    accuracy.set_ylabel("call accuracy")
    figure.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


__all__ = ["LoraOptions", "TrainError", "TrainOptions", "TrainResult", "train"]
