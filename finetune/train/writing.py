"""Writing a trained router: its best weights as the PEFT adapter and the llama.cpp GGUF, its card, the rows it
learnt and the loss plot."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..card import (
    ADAPTER_DIR,
    ADAPTER_GGUF,
    LOSS_PNG,
    CardDataset,
    CardFiles,
    CardLora,
    CardMetrics,
    CardTraining,
    RouterCard,
    write_card,
)
from ..dataset import CARD
from ..drafting import skill_words, span_starts
from ..replay import learnt_keys, unlearnt, write_learnt

if TYPE_CHECKING:
    from .loop import Run


def write_router(run: Run, seconds: float, members: list[str] | None) -> RouterCard:
    """Write the run's router to ``options.out``: the best checkpoint's weights, in fp16, as the PEFT adapter
    and (a llama-architecture GGUF base) the llama.cpp adapter; its card (listing ``members``), ``learnt.txt``
    and ``loss.png``."""
    from peft import set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    options, out = run.options, run.options.out
    final = run.accelerator.unwrap_model(run.model)
    if run.progress.best_state is not None:
        set_peft_model_state_dict(final, run.progress.best_state)
    out.mkdir(parents=True, exist_ok=True)
    for parameter in final.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.half()  # a 3.7 MB adapter instead of 7.4; fp16 keeps the deltas
    final.save_pretrained(out / ADAPTER_DIR)
    (out / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    if run.export:
        from ..export import write_adapter_gguf

        config = final.base_model.model.config
        write_adapter_gguf(get_peft_model_state_dict(final), options.lora.alpha, config.num_attention_heads,
                           config.num_key_value_heads, out / ADAPTER_GGUF)  # fmt: skip
    card = router_card(run, seconds, members)
    write_card(out, card)
    write_learnt(out, learnt_keys(run.train_rows))
    plot_history(run.progress.history, out / LOSS_PNG)
    return card


def router_card(run: Run, seconds: float, members: list[str] | None) -> RouterCard:
    """The card of the run's router: how it was trained, on what, and how well it validated."""
    import torch

    options, registry, train_rows, step, best = run.options, run.registry, run.train_rows, run.progress.step, \
        run.progress.best  # fmt: skip
    dataset_card = json.loads((options.data / CARD).read_text()) if (options.data / CARD).exists() else {}
    return RouterCard(
        base=options.base,
        base_file=run.base_file,
        template=options.template,
        skill_list=options.skill_list,
        skills={s.name: s.signature for s in registry},
        examples_fingerprint=dataset_card.get("examples_fingerprint"),
        dataset=CardDataset(train_rows=len(train_rows), validation_rows=len(run.eval_set),
                            validation_in_training=run.in_sample, train_sha256=run.setup["data"],
                            seed=dataset_card.get("seed"), compound=dataset_card.get("compound", 0.0)),
        span_starts=span_starts(train_rows, registry),
        skill_words=skill_words(train_rows),
        addressing={"wake": options.wake, "share": options.address_share, "filler_share": options.filler_share,
                    "numbers_share": options.numbers_share, "plain_share": options.plain_share},
        lora=CardLora(**options.lora.model_dump()),
        training=CardTraining(
            steps=step, epochs=round(step / run.steps_per_epoch, 3), processes=run.accelerator.num_processes,
            rows_per_epoch=run.epoch_size, replay=options.replay if run.replaying else 1.0,
            new_rows=len(unlearnt(train_rows, run.learnt)), batch_size=options.batch_size,
            learning_rate=options.learning_rate, seconds=round(seconds, 1),
            seconds_per_step=round(seconds / max(step, 1), 3), threads=torch.get_num_threads(),
            device=device_name(run.accelerator.device), precision=run.precision, compiled_layers=run.compiled,
            seed=options.seed, init=run.setup["init"]),
        metrics=CardMetrics(best_step=best["step"], validation_loss=round(best["loss"], 5),
                            validation_call_accuracy=round(best["call_accuracy"], 4)),
        files=CardFiles(adapter=ADAPTER_DIR, gguf=ADAPTER_GGUF if run.export else None),
        **({"members": members} if members else {}),
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip


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
