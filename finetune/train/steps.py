"""One optimizer step and one validation: the adapter, AdamW and its schedule, the step, the validation metrics."""

from __future__ import annotations

from typing import Any

from .compute import autocast, uncompiled_on_failure
from .encoding import Encoded, collate
from .loss import call_logits, call_loss
from .options import LoraOptions, TrainOptions


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
