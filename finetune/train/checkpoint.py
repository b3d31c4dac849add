"""The checkpoint a run leaves in ``out/checkpoint`` (adapter, optimizer, schedule, the best weights so far, the
history) and the fingerprint that says whether a later run (``--resume``) may continue from it."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import TrainError, TrainOptions

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far a run has got: what a checkpoint keeps besides the weights."""

    step: int = 0
    best: dict[str, float] = field(default_factory=lambda: {"call_accuracy": -1.0, "loss": math.inf, "step": 0})
    """The best validation so far (call accuracy, then loss) and its step."""
    best_state: dict[str, Any] | None = None
    """The adapter's weights at ``best``."""
    history: list[dict[str, float]] = field(default_factory=list)


RESUME_FIELDS = {"base", "template", "skill_list", "batch_size", "seed", "lora", "max_train_rows", "wake",
                 "address_share", "filler_share", "numbers_share", "plain_share", "init", "learning_rate",
                 "warmup_ratio", "weight_decay", "max_eval_rows"}  # fmt: skip
"""The options that shape a run's steps: a checkpoint resumes only under the same ones (not ``epochs`` or
``max_steps``: a run may be extended)."""


def fingerprint(options: TrainOptions, precision: str, replaying: bool) -> dict[str, Any]:
    """What a run must share with the one that wrote a checkpoint to continue from it: ``RESUME_FIELDS`` as
    ``state.json`` keeps them, the data files' hashes, the batching and the precision. ``train_on_validation`` and
    ``replay`` are there only when they are in play, so that checkpoints written before they existed resume."""
    setup = options.model_dump(mode="json", include=RESUME_FIELDS)
    setup |= {"data": sha256(options.data / "train.jsonl"), "validation": sha256(options.data / "validation.jsonl"),
              "batching": "length-grouped", "precision": precision}  # fmt: skip
    if options.train_on_validation:
        setup["train_on_validation"] = True
    if replaying:
        setup["replay"] = options.replay
    return setup


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(folder: Path, progress: Progress, adapter: dict[str, Any], optimizer: Any, scheduler: Any,
                    total_steps: int, setup: dict[str, Any]) -> None:  # fmt: skip
    """Write the checkpoint: the adapter's weights (``adapter``), the optimizer's and the schedule's state, the
    best weights so far, and ``state.json`` (progress and the run's ``fingerprint``)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(adapter, folder / "adapter.pt")
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(scheduler.state_dict(), folder / "scheduler.pt")
    if progress.best_state is not None:
        torch.save(progress.best_state, folder / "best.pt")
    state = {"step": progress.step, "best": progress.best, "history": progress.history, "total_steps": total_steps,
             "setup": setup}  # fmt: skip
    (folder / "state.json").write_text(json.dumps(state))


def load_checkpoint(folder: Path, setup: dict[str, Any], optimizer: Any, scheduler: Any,
                    total_steps: int) -> tuple[Progress, dict[str, Any]] | None:  # fmt: skip
    """Continue from the checkpoint in ``folder``, if there is one: the optimizer and the schedule restored, the
    progress and the adapter's weights returned. TrainError when it was started with another ``setup``."""
    if not (folder / "state.json").exists():
        return None
    import torch

    state = json.loads((folder / "state.json").read_text())
    started_with = state.get("setup", {})
    changed = [key for key in [*setup, *(k for k in started_with if k not in setup)]
               if started_with.get(key) != setup.get(key)]  # fmt: skip
    if changed:
        raise TrainError(f"{folder} was started with another {', '.join(changed)}; train from scratch "
                         "without --resume (or delete the checkpoint)")  # fmt: skip
    adapter = torch.load(folder / "adapter.pt")
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt"))
    scheduler.load_state_dict(torch.load(folder / "scheduler.pt"))
    progress = Progress(state["step"], state["best"], None, state["history"])
    if (folder / "best.pt").exists():
        progress.best_state = torch.load(folder / "best.pt")
    logger.warning("resuming at step %d of %d", progress.step, total_steps)
    return progress, adapter
